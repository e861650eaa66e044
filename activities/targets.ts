// The facade workflows call: every operation names a configured target, and this module decides
// what that means for the target's kind (container, systemd unit, database, HTTP service).
// A name that is not in the config is refused here, so alert labels can never reach anything else.
import type { Logger } from 'pino';
import { parseDuration } from '../config/duration.js';
import type { EngineConfig, Target } from '../config/schema.js';
import { safeUrl } from '../config/secret.js';
import { configuredHosts } from '../config/runbookReferences.js';
import type {
  ActionContext,
  ActionResult,
  BackupResult,
  Check,
  DiagnosticSection,
  Diagnostics,
  MaintainOptions,
  TargetActivities,
  Verification,
} from './contract.js';
import type { DockerActivities } from './docker.js';
import { badInput, targetNotFound } from './failures.js';
import type { HttpActivities } from './http.js';
import { activityInfo, capText, heartbeating } from './limits.js';
import { mysqlConnection, type MysqlActivities } from './mysql.js';
import { pgConnection, type PostgresActivities } from './postgres.js';
import { redisConnection, type RedisActivities } from './redis.js';
import type { SystemdActivities } from './systemd.js';
import { createTargetLogs } from './targetLogs.js';
import { createTargetCommands } from './commands.js';
import type { DockerExec } from './dockerExec.js';
import { createHostDiagnostics } from './hostDiagnostics.js';
import { createLogFiles } from './logFiles.js';
import { createHousekeeping } from './housekeeping.js';
import { resolveHeaders } from './requestHeaders.js';
import { configSecrets } from './redaction.js';
import { redact } from '../config/secret.js';
import type { CommandRunner } from './systemd.js';

export interface TargetDeps {
  config: EngineConfig;
  logger: Logger;
  docker: DockerActivities;
  http: HttpActivities;
  postgres: PostgresActivities;
  mysql: MysqlActivities;
  redis: RedisActivities;
  /** Only on a host agent: systemd units are acted on where they live. */
  systemd?: SystemdActivities;
  /** Who serves these targets when that is not the engine ("the host agent of 'web-1', …"), for refusals. */
  owner?: string;
  /** The engine: commands and diagnostics inside containers (`docker exec`). */
  dockerExec?: DockerExec;
  /** A host agent: commands and diagnostics on this host, for its own units. */
  hostRunner?: CommandRunner;
  /** The hosts a diagnostics TCP check may connect to (the whole config's; default: this config's). */
  tcpHosts?: Set<string>;
}

/** Long-running statements worth showing in diagnostics. */
const slowQuerySeconds = 10;

export function createTargetActivities(deps: TargetDeps): TargetActivities {
  const { config, logger } = deps;
  const sectionBytes = Math.max(1_024, Math.floor(config.limits.outputBytes / 4));
  // A health endpoint may echo the token it was sent; a log line may hold a password.
  const secrets = configSecrets(config);
  /** A target's health or action headers, `{ secret }` resolved here, in the activity. */
  const headersOf = (what: string, given: Parameters<typeof resolveHeaders>[1]) => resolveHeaders(what, given, config.secrets);

  function resolve(op: string, name: string): Target {
    const target = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
    if (!target)
      throw targetNotFound(`${op} of target '${name}'`, deps.owner ? `not a target of ${deps.owner}` : 'no such target in the config');
    return target;
  }

  function systemd(op: string, name: string): SystemdActivities {
    if (!deps.systemd) {
      throw badInput(`${op} of systemd target '${name}'`, 'systemd units are handled by their host agent; this worker is not one');
    }
    return deps.systemd;
  }

  const dryRun = (ctx: ActionContext) => ctx.dryRun || config.dryRun;

  function audit(action: string, target: string, ctx: ActionContext, summary: string): void {
    logger.info({ action, target, incident: ctx.incidentId, actor: ctx.actor, reason: ctx.reason, dryRun: dryRun(ctx) }, summary);
  }

  async function ownChecks(name: string, t: Target): Promise<Check[]> {
    switch (t.kind) {
      case 'container': {
        const s = await deps.docker.containerStatus({ endpoint: t.docker, container: t.container });
        const ok = s.running && s.health !== 'unhealthy';
        return [{ check: 'container', ok, detail: `${s.state}${s.health ? ` (${s.health})` : ''}, started ${s.startedAt ?? 'never'}` }];
      }
      case 'systemd': {
        const s = await systemd('verification', name).unitStatus(t.unit);
        return [
          {
            check: 'unit',
            ok: s.activeState === 'active',
            detail: `${s.activeState}/${s.subState}, pid ${s.mainPid}${s.nRestarts === undefined ? '' : `, ${s.nRestarts} restarts`}`,
          },
        ];
      }
      case 'postgres': {
        const p = await deps.postgres.ping(pgConnection(t), name);
        return [
          { check: 'postgres', ok: p.ok, detail: p.ok ? 'accepting connections' : (p.error ?? 'not answering'), latencyMs: p.latencyMs },
        ];
      }
      case 'mysql': {
        const p = await deps.mysql.ping(mysqlConnection(t), name);
        return [
          { check: 'mysql', ok: p.ok, detail: p.ok ? 'accepting connections' : (p.error ?? 'not answering'), latencyMs: p.latencyMs },
        ];
      }
      case 'redis': {
        const p = await deps.redis.ping(redisConnection(t), name);
        return [{ check: 'redis', ok: p.ok, detail: p.ok ? 'PONG' : (p.error ?? 'not answering'), latencyMs: p.latencyMs }];
      }
      case 'http':
        return [];
    }
  }

  async function healthCheck(name: string, t: Target): Promise<Check[]> {
    if (!t.health) return [];
    const h = await deps.http.checkHealth({
      url: t.health.url,
      expectStatus: t.health.expectStatus,
      timeoutMs: parseDuration(t.health.timeout),
      headers: headersOf(`health check of target '${name}'`, t.health.headers),
    });
    return [
      {
        check: 'http',
        ok: h.ok,
        detail: h.ok ? `HTTP ${h.status}` : (h.error ?? `HTTP ${h.status}`),
        latencyMs: h.latencyMs,
        ...(h.refused ? { refused: true as const } : {}),
      },
    ];
  }

  async function verifyTarget(name: string): Promise<Verification> {
    const t = resolve('verification', name);
    const [own, health] = await Promise.all([ownChecks(name, t), healthCheck(name, t)]);
    const checks = [...own, ...health];
    if (checks.length === 0) throw badInput(`verification of target '${name}'`, 'the target has no health check configured');
    return { target: name, healthy: checks.every((c) => c.ok), checks };
  }

  async function restartTarget(name: string, ctx: ActionContext): Promise<ActionResult> {
    const t = resolve('restart', name);
    let result: ActionResult;
    switch (t.kind) {
      case 'container': {
        const r = await deps.docker.restartContainer(
          { endpoint: t.docker, container: t.container },
          { stopTimeoutS: Math.ceil(parseDuration(t.stopTimeout) / 1_000), dryRun: dryRun(ctx) },
        );
        result = { target: name, action: 'restart', dryRun: r.dryRun, summary: r.summary, before: r.before.state, after: r.after?.state };
        break;
      }
      case 'systemd': {
        const r = await systemd('restart', name).restartUnit(t.unit, { dryRun: dryRun(ctx) });
        result = {
          target: name,
          action: 'restart',
          dryRun: r.dryRun,
          summary: r.summary,
          before: r.before.activeState,
          after: r.after?.activeState,
        };
        break;
      }
      default: {
        if (!t.restartVia) throw badInput(`restart of ${t.kind} target '${name}'`, 'no restartVia container or unit is configured for it');
        const via = await restartTarget(t.restartVia, ctx);
        result = { ...via, target: name, summary: `${via.summary} (the ${t.kind} server of '${name}')` };
      }
    }
    audit('restart', name, ctx, result.summary);
    return result;
  }

  async function section(title: string, work: () => Promise<string>): Promise<DiagnosticSection> {
    try {
      return { title, ok: true, text: capText(redact(await work(), secrets), sectionBytes) };
    } catch (err) {
      return { title, ok: false, text: capText(redact(`unavailable: ${(err as Error).message}`, secrets), sectionBytes) };
    }
  }

  /**
   * The line of a section a page shows. For logs that is the end (where the crash is), not the first
   * line of the tail; for the rest, the first line (the state, the first counter).
   */
  function headline(s: DiagnosticSection): string {
    const text = s.text.split('\n').filter((l) => l.trim() !== '' && !/^(stdout|stderr):$/.test(l.trim()));
    const picked = /\b(logs|journal)\b/.test(s.title) ? text.slice(-3).join(' | ') : (text[0] ?? '');
    return picked.slice(0, 240);
  }

  const lines = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join('\n');

  function sectionsFor(name: string, t: Target): Array<Promise<DiagnosticSection>> {
    const out: Array<Promise<DiagnosticSection>> = [];
    const logLines = config.limits.logLines;
    switch (t.kind) {
      case 'container': {
        const ref = { endpoint: t.docker, container: t.container };
        out.push(section(`container ${t.container} state`, async () => lines({ ...(await deps.docker.containerStatus(ref)) })));
        out.push(
          section(`container ${t.container} logs (last ${logLines} lines)`, async () => {
            const l = await deps.docker.containerLogs(ref, { tail: logLines, maxBytes: sectionBytes });
            return [l.stdout && `stdout:\n${l.stdout}`, l.stderr && `stderr:\n${l.stderr}`].filter(Boolean).join('\n') || '(no output)';
          }),
        );
        out.push(section(`container ${t.container} resources`, async () => lines({ ...(await deps.docker.containerStats(ref)) })));
        break;
      }
      case 'systemd': {
        const sd = systemd('diagnosis', name);
        out.push(section(`unit ${t.unit} status`, async () => lines({ ...(await sd.unitStatus(t.unit)) })));
        out.push(
          section(
            `unit ${t.unit} journal (last ${logLines} lines)`,
            async () => (await sd.journalTail(t.unit, { lines: logLines, maxBytes: sectionBytes })).text,
          ),
        );
        break;
      }
      case 'postgres': {
        const c = pgConnection(t);
        out.push(section('postgres connections', async () => lines({ ...(await deps.postgres.connections(c, name)) })));
        out.push(section('postgres database stats', async () => lines({ ...(await deps.postgres.databaseStats(c, name)) })));
        out.push(
          section(`postgres queries running over ${slowQuerySeconds}s`, async () => {
            const q = await deps.postgres.longQueries(c, name, slowQuerySeconds);
            return q.length === 0 ? 'none' : q.map((x) => `pid ${x.pid} ${x.durationS}s ${x.state} ${x.user}: ${x.query}`).join('\n');
          }),
        );
        break;
      }
      case 'mysql': {
        const c = mysqlConnection(t);
        out.push(section('mysql threads', async () => lines({ ...(await deps.mysql.threads(c, name)) })));
        out.push(
          section('mysql processlist', async () => {
            const p = await deps.mysql.processlist(c, name, slowQuerySeconds);
            const long = p.long.map(
              (x) => `id ${x.id} ${x.timeS}s ${x.user}@${x.db ?? '-'} ${x.command} ${x.state ?? ''}: ${x.info ?? ''}`,
            );
            return [`total ${p.total}`, `by command ${JSON.stringify(p.byCommand)}`, `by user ${JSON.stringify(p.byUser)}`, ...long].join(
              '\n',
            );
          }),
        );
        out.push(
          section('mysql latest deadlock', async () => {
            const d = await deps.mysql.latestDeadlock(c, name);
            return d.found ? (d.text ?? '') : 'none recorded';
          }),
        );
        break;
      }
      case 'redis': {
        const info = deps.redis.info(redisConnection(t), name, ['clients', 'memory', 'stats']);
        out.push(section('redis clients', async () => lines((await info).clients ?? {})));
        out.push(section('redis memory', async () => lines((await info).memory ?? {})));
        out.push(section('redis stats', async () => lines((await info).stats ?? {})));
        break;
      }
      case 'http':
        break;
    }
    if (t.health) {
      const health = t.health;
      // Titles reach pages, the timeline and Temporal's history: no user info, no query string.
      const headers = () => headersOf(`health check of target '${name}'`, health.headers);
      out.push(
        section(`health ${safeUrl(health.url)}`, async () =>
          lines({
            ...(await deps.http.checkHealth({
              url: health.url,
              expectStatus: health.expectStatus,
              timeoutMs: parseDuration(health.timeout),
              headers: headers(),
            })),
          }),
        ),
      );
      if (health.detailedUrl) {
        const url = health.detailedUrl;
        out.push(
          section(`detailed health ${safeUrl(url)}`, async () => {
            const d = await deps.http.readDetailedHealth({ url, timeoutMs: parseDuration(health.timeout), headers: headers() });
            return d.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`).join('\n') || (d.ok ? 'ok' : 'not ok');
          }),
        );
      }
    }
    return out;
  }

  async function diagnoseTarget(name: string): Promise<Diagnostics> {
    const t = resolve('diagnosis', name);
    const own = sectionsFor(name, t);
    // The server behind a database or service (its container or unit) says why it is struggling.
    const via =
      'restartVia' in t && t.restartVia && config.targets[t.restartVia] ? sectionsFor(t.restartVia, config.targets[t.restartVia]!) : [];
    const sections = await Promise.all([...own, ...via]);
    const summary = sections.map((s) => `${s.ok ? 'ok' : 'FAILED'}: ${s.title}: ${headline(s)}`).join('\n');
    return { target: name, sections, summary };
  }

  /**
   * The same across the retries of one action, another for the next: the run and the activity, not
   * the workflow id alone, which the next incident on the target reuses (an endpoint that honours
   * Idempotency-Key would answer it with the first incident's result and do nothing).
   */
  function actionKey(ctx: ActionContext): string {
    const info = activityInfo();
    const runId = info?.workflowExecution?.runId;
    return runId ? `${ctx.incidentId}:${runId}:${info!.activityId}:action` : `${ctx.incidentId}:action`;
  }

  async function runTargetAction(name: string, ctx: ActionContext): Promise<ActionResult> {
    const t = resolve('action', name);
    if (t.kind !== 'http' || !t.action) throw badInput(`action on target '${name}'`, 'the target has no configured HTTP action');
    const r = await deps.http.runHttpAction({
      method: t.action.method,
      url: t.action.url,
      timeoutMs: 30_000,
      dryRun: dryRun(ctx),
      idempotencyKey: actionKey(ctx),
      headers: headersOf(`action on target '${name}'`, t.action.headers),
      secrets,
    });
    audit('action', name, ctx, r.summary);
    return { target: name, action: 'http-action', dryRun: r.dryRun, summary: r.summary };
  }

  async function backupTarget(name: string, ctx: ActionContext): Promise<BackupResult> {
    const t = resolve('backup', name);
    if (t.kind !== 'postgres' && t.kind !== 'mysql') {
      return { target: name, action: 'backup', dryRun: dryRun(ctx), summary: `no backup step for ${t.kind} targets; skipped` };
    }
    const r =
      t.kind === 'postgres'
        ? await deps.postgres.backup(pgConnection(t), name, { dryRun: dryRun(ctx) })
        : await deps.mysql.backup(mysqlConnection(t), name, { dryRun: dryRun(ctx) });
    audit('backup', name, ctx, r.summary);
    return { target: name, action: 'backup', dryRun: dryRun(ctx), summary: r.summary, file: r.file, bytes: r.bytes, sha256: r.sha256 };
  }

  async function maintainTarget(name: string, ctx: ActionContext, opts: MaintainOptions = {}): Promise<ActionResult> {
    const t = resolve('maintenance', name);
    const analyzeOnly = opts.analyzeOnly === true;
    let summary: string;
    if (t.kind === 'postgres') {
      const maintain = analyzeOnly ? deps.postgres.analyze : deps.postgres.vacuum;
      summary = (await maintain(pgConnection(t), name, t.maintenanceTables, { dryRun: dryRun(ctx) })).summary;
    } else if (t.kind === 'mysql') {
      // No maintenanceTables: every base table of the configured database (mysqlcheck --optimize / --analyze of it).
      const c = mysqlConnection(t);
      const opt = analyzeOnly ? undefined : await deps.mysql.optimize(c, name, t.maintenanceTables, { dryRun: dryRun(ctx) });
      const ana = await deps.mysql.analyze(c, name, t.maintenanceTables, { dryRun: dryRun(ctx) });
      summary = opt ? `${opt.summary}; ${ana.summary}` : ana.summary;
    } else {
      summary = `no maintenance step for ${t.kind} targets; skipped`;
    }
    audit('maintenance', name, ctx, summary);
    return { target: name, action: 'maintenance', dryRun: dryRun(ctx), summary };
  }

  return {
    verifyTarget,
    diagnoseTarget,
    targetLogs: logsOf(
      createTargetLogs({ config, docker: deps.docker, systemd: deps.systemd }),
      createLogFiles({ config, dockerExec: deps.dockerExec, hostRunner: deps.hostRunner, owner: deps.owner }),
    ),
    ...createHousekeeping({ config, logger, hostRunner: deps.hostRunner, owner: deps.owner }),
    runTargetCommand: createTargetCommands({ config, logger, dockerExec: deps.dockerExec, hostRunner: deps.hostRunner, owner: deps.owner }),
    hostDiagnostics: createHostDiagnostics({
      config,
      dockerExec: deps.dockerExec,
      hostRunner: deps.hostRunner,
      tcpHosts: deps.tcpHosts ?? configuredHosts(config),
      owner: deps.owner,
    }),
    // Heartbeats for the whole call (the stop of a slow container takes its stop timeout), so a
    // worker that dies mid-restart is noticed within the heartbeat timeout, not the 3-minute limit.
    restartTarget: (name: string, ctx: ActionContext) => heartbeating(restartTarget(name, ctx), { op: 'restart', target: name }),
    runTargetAction: (name: string, ctx: ActionContext) => heartbeating(runTargetAction(name, ctx), { op: 'action', target: name }),
    backupTarget,
    maintainTarget,
  };
}

/** A `logs` step reads a configured log file when it names one, else the container's log or the unit's journal. */
function logsOf(stream: TargetActivities['targetLogs'], file: TargetActivities['targetLogs']): TargetActivities['targetLogs'] {
  return (name, req) => (req?.file !== undefined ? file(name, req) : stream(name, req));
}
