// A team's engine for the end-to-end tests of runbooks/examples/<team>: the team's own config.yaml
// and runbook folder, loaded by the engine's loader, with only what ties it to this test run changed:
// the stack's Temporal and webhook port (where the stack's Alertmanager posts), a task queue of its
// own, its data and backups in a temporary folder, the channels pointed at a local receiver (tests
// never reach Slack or PagerDuty) and the anti-flap allowance lifted (other test files restart the
// same demo service within the hour). Everything else (targets, bindings, escalation, schedules,
// runbooks) is the file as shipped.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { pino } from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../config/load.js';
import type { EngineConfig } from '../../config/schema.js';
import { maintenanceScheduleId } from '../../triggers/schedules/schedules.js';
import { startEngine, type RunningEngine } from '../../worker/engine.js';
import type { RunbookResult } from '../../workflows/messages.js';
import { repoRoot } from '../support/engineProcess.js';
import { bundlePath } from '../support/globalSetup.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { holdAlertLoop } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { quietRuntime, temporalConfigInput, terminateRunning, uniqueQueue, type TemporalIdentity } from '../support/temporal.js';
import { until, untilHttpOk } from '../support/wait.js';

export type TeamName = 'halcytone' | 'claude-code-manager' | 'codexos' | 'codementor' | 'genesis';

export interface TeamEngine {
  engine: RunningEngine;
  config: EngineConfig;
  queue: string;
  /** Where its backups go. */
  backupDir: string;
  stop(): Promise<void>;
}

/** The team's config.yaml as written. */
export function teamConfigRaw(team: TeamName): Record<string, any> {
  return parseYaml(readFileSync(join(repoRoot, 'runbooks', 'examples', team, 'config.yaml'), 'utf8')) as Record<string, any>;
}

/**
 * The team's config as this test run uses it. `identity` and `runbooksDir` let the same config serve
 * a host agent inside the systemd host, which sees the repository under /opt/engine.
 */
export function teamConfigFor(
  team: TeamName,
  opts: { queue: string; receiver: Receiver; dir: string; identity?: TemporalIdentity; runbooksDir?: string },
): Record<string, any> {
  const s = stack();
  const raw = teamConfigRaw(team);
  const channels: Record<string, unknown> = {};
  for (const [name, ch] of Object.entries(raw.channels as Record<string, { type: string }>))
    channels[name] =
      ch.type === 'pagerduty'
        ? { type: 'pagerduty', routingKey: `routing-key-${name}`, url: `${opts.receiver.url}/${name}` }
        : { type: ch.type, url: `${opts.receiver.url}/${name}` };
  return {
    ...raw,
    temporal: { ...temporalConfigInput(opts.identity ?? 'engine'), taskQueue: opts.queue },
    webhook: { ...raw.webhook, listen: `127.0.0.1:${s.webhookPort}` },
    alertmanager: { ...raw.alertmanager, url: s.alertmanagerUrl },
    prometheus: { url: s.prometheusUrl },
    runbooks: opts.runbooksDir ?? resolve(repoRoot, 'runbooks', 'examples', team, 'runbooks'),
    dataDir: join(opts.dir, 'data'),
    backupDir: join(opts.dir, 'backups'),
    channels,
    guardrails: { ...raw.guardrails, restarts: { max: 1_000, window: '1h' } },
  };
}

/** The stack's secrets under the names the snippets read them by; stand-ins for the rest (never sent anywhere). */
export function setTeamSecrets(team: TeamName): void {
  const s = stack();
  const known: Record<string, string> = {
    WEBHOOK_TOKEN: s.webhookToken,
    PG_PASSWORD: s.pg.password,
    MYSQL_PASSWORD: s.mysql.password,
    REDIS_PASSWORD: s.redis.password,
  };
  const names = (v: unknown): string[] =>
    typeof v !== 'object' || v === null
      ? []
      : typeof (v as { env?: unknown }).env === 'string'
        ? [(v as { env: string }).env]
        : Object.values(v).flatMap(names);
  for (const name of names(teamConfigRaw(team))) process.env[name] = known[name] ?? `stand-in-${name.toLowerCase()}`;
}

export async function startTeamEngine(team: TeamName, receiver: Receiver, queue = uniqueQueue(`e2e-${team}`)): Promise<TeamEngine> {
  quietRuntime();
  setTeamSecrets(team);
  const dir = mkdtempSync(join(tmpdir(), `remediation-e2e-${team}-`));
  const raw = teamConfigFor(team, { queue, receiver, dir });
  const config = parseConfig(raw, `${team} config`, join(repoRoot, 'runbooks', 'examples', team));
  const engine = await startEngine({ config, logger: pino({ level: 'warn' }), workflowBundlePath: bundlePath });
  return {
    engine,
    config,
    queue,
    backupDir: raw.backupDir as string,
    async stop() {
      for (const m of config.maintenance)
        await engine.client.schedule
          .getHandle(maintenanceScheduleId(m.name))
          .delete()
          .catch(() => {});
      await terminateRunning(engine.client, queue, 'end-to-end test finished').catch(() => 0);
      await engine.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a config (JSON is YAML) where the systemd host can read it: the stack directory is mounted there. */
export function writeAgentConfig(config: Record<string, any>, name: string): string {
  const dir = join(stack().dir, name);
  const file = join(dir, 'config.json');
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o644 });
  return file;
}

/**
 * The schedule the engine synced from the team's config, fired now (as Temporal fires it at its
 * time), and the result of the maintenance run it started.
 */
export async function runSchedule(
  client: Client,
  schedule: string,
  whileRunning?: (run: WorkflowHandle) => Promise<void>,
): Promise<RunbookResult> {
  const handle = client.schedule.getHandle(maintenanceScheduleId(schedule));
  const before = new Set((await handle.describe()).info.recentActions.map((a) => a.action.workflow.firstExecutionRunId));
  await handle.trigger();
  const run = await until(`schedule ${schedule} to start its run`, 30_000, async () => {
    const d = await handle.describe();
    return [...d.info.runningActions, ...d.info.recentActions.map((a) => a.action)]
      .map((a) => a.workflow)
      .find((w) => !before.has(w.firstExecutionRunId));
  });
  const started = client.workflow.getHandle(run.workflowId, undefined, { firstExecutionRunId: run.firstExecutionRunId });
  await whileRunning?.(started);
  return (await started.result()) as RunbookResult;
}

/** When Temporal will next fire a schedule, as it computes it from the cron string. */
export async function nextFirings(client: Client, schedule: string): Promise<Date[]> {
  return (await client.schedule.getHandle(maintenanceScheduleId(schedule)).describe()).info.nextActionTimes;
}

/** The receiver's requests to one channel whose body's text mentions `part` (webhook `text`/`title`, Slack `text`, PagerDuty summary). */
export function sentTo(receiver: Receiver, channel: string, part: string): ReceivedRequest[] {
  return receiver.requestsTo(`/${channel}`).filter((r) => JSON.stringify(r.body).includes(part));
}

/** The timeline's events, for assertions that read like the run. */
export function events(result: RunbookResult): string[] {
  return result.timeline.map((e) => `${e.step}: ${e.event}`);
}

export function expectOutcome(result: RunbookResult, outcome: RunbookResult['outcome']): void {
  expect(result.outcome, `${result.detail}\n${events(result).join('\n')}`).toBe(outcome);
}

/** Terminates runs left by an interrupted earlier test run (on a queue nobody polls any more), so the next alert starts afresh. */
export async function cleanSlate(client: Client, workflowIds: string[]): Promise<void> {
  for (const id of workflowIds)
    await client.workflow
      .getHandle(id)
      .terminate('clean slate for the end-to-end test')
      .catch(() => {});
}

/**
 * A test file's team engine whose ServiceDown target is the stack's demo container: the alert loop
 * held for the file, a receiver for the team's channels, the demo up and seen up by Prometheus, and
 * the runs the file asserts on cleared of any earlier test's. Read `team` and `receiver` in tests.
 */
export function demoTeamFixture(name: TeamName, workflowIds: string[]): { readonly team: TeamEngine; readonly receiver: Receiver } {
  let team: TeamEngine | undefined;
  let receiver: Receiver | undefined;
  let release: (() => void) | undefined;
  beforeAll(async () => {
    release = await holdAlertLoop();
    receiver = await startReceiver();
    team = await startTeamEngine(name, receiver);
    dockerSync('start', stack().demoContainer);
    await untilHttpOk(`${stack().demoUrl}/health`, 'demo healthy');
    await untilPromSeesUp('demo');
    await cleanSlate(team.engine.client, workflowIds);
  }, 600_000);
  afterAll(async () => {
    dockerSync('start', stack().demoContainer);
    await team?.stop();
    await receiver?.close();
    release?.();
  });
  return {
    get team() {
      return team!;
    },
    get receiver() {
      return receiver!;
    },
  };
}
