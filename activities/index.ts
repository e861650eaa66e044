// Wires every activity module to real clients from the config: the engine registers all of them,
// a host agent registers the target facade with systemd added for its own units.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { parseDuration } from '../config/duration.js';
import type { EngineConfig } from '../config/schema.js';
import type { EngineActivities, Suppression } from './contract.js';
import { createAlertmanagerActivities } from './alertmanager.js';
import { createDockerActivities, dockerClient } from './docker.js';
import { badInput } from './failures.js';
import { createGuardrailActivities } from './guardrails.js';
import { createHttpActivities } from './http.js';
import { createHttpStep } from './httpStep.js';
import { createMysqlActivities } from './mysql.js';
import { createNotifyActivities } from './notify.js';
import { createPostgresActivities } from './postgres.js';
import { createRedisActivities } from './redis.js';
import { createSystemdActivities, localRunner, type CommandRunner } from './systemd.js';
import { createTargetActivities } from './targets.js';
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
    mysql: createMysqlActivities({ outputBytes }),
    redis: createRedisActivities(),
  };
}

export interface EngineActivityDeps {
  client: Client;
  logger: Logger;
  /** Overrides the guard workflow id (tests isolate their guard). */
  guardWorkflowId?: string;
  /** The task queue the guard workflow runs on, when the engine serves it apart. */
  guardQueue?: string;
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

  const engine: EngineActivities = {
    httpRequest: (req) => httpStep.httpRequest(req),
    notify: (req) => notifier.notify(req),
    createSilence: (req) => needAlertmanager('silence creation').createSilence({ ...req, dryRun: req.dryRun || config.dryRun }),
    expireSilence: (id, dryRun) => needAlertmanager(`expiry of silence ${id}`).expireSilence(id, dryRun || config.dryRun),
    // No automatic action on a target that somebody silenced on purpose. (Open maintenance windows
    // are the guard's to answer: the workflow asks maintenanceWindowFor alongside this.)
    async checkSuppression(target: string): Promise<Suppression> {
      const labels = config.targets[target]?.labels ?? {};
      if (!alertmanager || Object.keys(labels).length === 0) return { suppressed: false };
      const silences = await alertmanager.findActiveSilences(labels);
      const s = silences[0];
      if (!s) return { suppressed: false };
      return { suppressed: true, reason: `silence ${s.id} by ${s.createdBy} until ${s.endsAt}: ${s.comment}` };
    },
  };
  return { ...targets, ...engine, ...guard };
}

/** The activities a host agent serves: the target facade for its own units, systemd run locally. */
export function createHostActivities(config: EngineConfig, host: string, deps: { logger: Logger; run?: CommandRunner }) {
  const mine = Object.fromEntries(
    Object.entries(config.targets).filter(([, t]) => (t.kind === 'systemd' ? t.host === host : true)),
  );
  return createTargetActivities({
    config: { ...config, targets: mine },
    logger: deps.logger,
    ...systemClients(config),
    systemd: createSystemdActivities({ run: deps.run ?? localRunner, timeoutMs: 90_000, outputBytes: config.limits.outputBytes }),
  });
}
