// Wires every activity module to real clients from the config: the engine registers all of them,
// a host agent registers the target facade for its own systemd units and nothing else.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { parseDuration } from '../config/duration.js';
import type { EngineConfig } from '../config/schema.js';
import type { EngineActivities, Suppression } from './contract.js';
import { createAlertmanagerActivities } from './alertmanager.js';
import { createDockerActivities, dockerClient, type DockerActivities } from './docker.js';
import { badInput } from './failures.js';
import { createGuardrailActivities } from './guardrails.js';
import { createHttpActivities } from './http.js';
import { createHttpStep } from './httpStep.js';
import { createMysqlActivities, type MysqlActivities } from './mysql.js';
import { createNotifyActivities, type NotifyDeps } from './notify.js';
import { createPostgresActivities, type PostgresActivities } from './postgres.js';
import { createRedisActivities, type RedisActivities } from './redis.js';
import { createSystemdActivities, localRunner, type CommandRunner } from './systemd.js';
import { createTargetActivities } from './targets.js';
import { createDockerExec } from './dockerExec.js';
import { createPrometheusActivities } from './prometheus.js';
import { configSecrets } from './redaction.js';
import { fromTheDoor, type DoorReads } from './readAhead.js';
import { readsTogetherOver } from './readsTogether.js';
import { configuredHosts } from '../config/runbookReferences.js';
import type Docker from 'dockerode';

function systemClients(config: EngineConfig) {
  const clients = new Map<string, Docker>();
  const docker = (endpoint: string) => {
    let c = clients.get(endpoint);
    if (!c) {
      const e = config.docker[endpoint];
      if (!e) throw badInput(`docker endpoint '${endpoint}'`, 'not in the config');
      c = dockerClient(e);
      clients.set(endpoint, c);
    }
    return c;
  };
  const outputBytes = config.limits.outputBytes;
  return {
    docker: createDockerActivities({
      docker,
      outputBytes,
      timeoutMs: (endpoint) => parseDuration(config.docker[endpoint]?.timeout ?? '15s'),
    }),
    http: createHttpActivities({ outputBytes }),
    postgres: createPostgresActivities({ outputBytes, backupDir: config.backupDir }),
    mysql: createMysqlActivities({ outputBytes, backupDir: config.backupDir }),
    redis: createRedisActivities(),
    dockerExec: createDockerExec({ docker, apiTimeoutMs: (endpoint) => parseDuration(config.docker[endpoint]?.timeout ?? '15s') }),
  };
}

export interface EngineActivityDeps {
  client: Client;
  logger: Logger;
  /** Overrides the guard workflow id (tests isolate their guard). */
  guardWorkflowId?: string;
  /** The task queue the guard workflow runs on, when the engine serves it apart. */
  guardQueue?: string;
  /** The engine's notification_failures_total: each channel's failed deliveries. */
  notificationFailures?: NotifyDeps['failures'];
  /** Reads the webhook took for runs it started (readAhead.ts): their first reads answer with them. */
  doorReads?: DoorReads;
}

export function createEngineActivities(config: EngineConfig, deps: EngineActivityDeps) {
  const targets = createTargetActivities({ config, logger: deps.logger, ...systemClients(config) });
  const alertmanager = config.alertmanager
    ? createAlertmanagerActivities({ url: config.alertmanager.url, timeoutMs: parseDuration(config.alertmanager.timeout) })
    : undefined;
  const notifier = createNotifyActivities({
    channels: config.channels,
    timeoutMs: 10_000,
    dryRun: config.dryRun,
    log: (message, fields) => deps.logger.warn({ notification: fields }, message),
    ...(deps.notificationFailures ? { failures: deps.notificationFailures } : {}),
  });
  const guard = createGuardrailActivities({
    client: deps.client,
    taskQueue: config.temporal.taskQueue,
    guardQueue: deps.guardQueue,
    workflowId: deps.guardWorkflowId,
  });
  const needAlertmanager = (what: string) => {
    if (!alertmanager) throw badInput(what, 'no alertmanager.url in the config');
    return alertmanager;
  };

  const httpStep = createHttpStep({ config, logger: deps.logger });
  const prometheus = config.prometheus
    ? createPrometheusActivities({
        url: config.prometheus.url,
        timeoutMs: parseDuration(config.prometheus.timeout),
        targets: config.targets,
        secrets: configSecrets(config),
      })
    : undefined;

  const engine: EngineActivities = {
    httpRequest: (req) => httpStep.httpRequest(req),
    async queryMetric(req) {
      if (!prometheus)
        throw badInput(`metric query${req?.target ? ` for target '${String(req.target)}'` : ''}`, 'no prometheus.url in the config');
      return prometheus.queryMetric(req);
    },
    // A read: asked of Alertmanager even in a dry run.
    firingAlerts: (req) => needAlertmanager('listing of firing alerts').firingAlerts(req),
    notify: (req) => notifier.notify(req),
    createSilence: (req) => needAlertmanager('silence creation').createSilence({ ...req, dryRun: req.dryRun || config.dryRun }),
    expireSilence: (id, dryRun) => needAlertmanager(`expiry of silence ${id}`).expireSilence(id, dryRun || config.dryRun),
    // No automatic action on a target that somebody silenced on purpose. (Open maintenance windows
    // are the guard's to answer: the workflow asks maintenanceWindowFor alongside this.)
    async checkSuppression(target: string, alertLabels?: Record<string, string>): Promise<Suppression> {
      // A silence on the target's own labels stands its runs down as before; one on the alert's labels
      // (alertname="…", or severity!="critical" that a critical alert escapes) too, as Alertmanager
      // matches it: covered under either reading, the alert's over the target's or the target's over
      // the alert's (a binding may pick the target by a label value the target's labels do not carry).
      const own = config.targets[target]?.labels ?? {};
      const alert = boundedLabels(alertLabels);
      const labels = { ...own, ...alert };
      const override = config.alertmanager?.override ?? [];
      if (!alertmanager || (Object.keys(labels).length === 0 && override.length === 0)) return { suppressed: false };
      // No labels: only the override can cover the target (an empty label set matches no silence).
      const sets = Object.keys(alert).length ? [labels, { ...alert, ...own }] : [labels];
      const silences = (await alertmanager.findActiveSilences(sets, override)).filter((s) => s.override || Object.keys(labels).length > 0);
      const s = silences[0];
      if (!s) return { suppressed: false };
      const what = s.override ? `manual override: silence ${s.id}` : `silence ${s.id}`;
      return { suppressed: true, reason: `${what} by ${s.createdBy} until ${s.endsAt}: ${s.comment}` };
    },
  };
  const doors = deps.doorReads;
  const firstReads = {
    verifyTarget: fromTheDoor(doors, 'verifyTarget', targets.verifyTarget),
    checkSuppression: fromTheDoor(doors, 'checkSuppression', engine.checkSuppression),
    claimRestart: fromTheDoor(doors, 'claimRestart', guard.claimRestart),
  };
  return {
    ...targets,
    ...engine,
    ...guard,
    ...firstReads,
    ...readsTogetherOver(firstReads),
  };
}

/** At most 64 labels of at most 1,024 characters each: an alert's labels are untrusted input. */
function boundedLabels(labels: Record<string, string> | undefined): Record<string, string> {
  if (!labels || typeof labels !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels).slice(0, 64)) if (typeof v === 'string') out[k.slice(0, 1_024)] = v.slice(0, 1_024);
  return out;
}

/**
 * The activities a host agent serves: the target facade for its own units (systemctl and journalctl
 * run locally, the units' health URLs checked from here), and nothing else. Containers, databases and
 * the other hosts' units are the engine's and their agents': named here, they are refused, and this
 * process holds no client for them (nor their secrets: the loader did not read those).
 */
export function createHostActivities(config: EngineConfig, host: string, deps: { logger: Logger; run?: CommandRunner }) {
  const mine = Object.fromEntries(Object.entries(config.targets).filter(([, t]) => t.kind === 'systemd' && t.host === host));
  const outputBytes = config.limits.outputBytes;
  return createTargetActivities({
    config: { ...config, targets: mine },
    logger: deps.logger,
    owner: `the host agent of '${host}', which acts only on that host's systemd units`,
    docker: notOnThisHost<DockerActivities>('container'),
    http: createHttpActivities({ outputBytes }),
    postgres: notOnThisHost<PostgresActivities>('postgres'),
    mysql: notOnThisHost<MysqlActivities>('mysql'),
    redis: notOnThisHost<RedisActivities>('redis'),
    systemd: createSystemdActivities({ run: deps.run ?? localRunner, timeoutMs: 90_000, outputBytes }),
    // Commands and host diagnostics of its units run here too; TCP checks may reach any host the whole config names.
    hostRunner: deps.run ?? localRunner,
    tcpHosts: configuredHosts(config),
  });
}

/** Stands in for a system a host agent never touches: its config holds no target of that kind. */
function notOnThisHost<T extends object>(kind: string): T {
  return new Proxy({} as T, {
    get: (_, op) => () => {
      throw badInput(`${String(op)} of a ${kind} target`, 'a host agent acts only on its own systemd units');
    },
  });
}
