// The engine process: one worker for the runbooks and their engine-side activities, the Alertmanager
// webhook, and the maintenance schedules. Any number of engines may run against one Temporal namespace;
// they share the task queue, and Temporal hands each workflow task to exactly one of them.
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { guardrailsTaskQueue } from '../workflows/guardrails.js';
import type { Logger } from 'pino';
import type { EngineConfig } from '../config/schema.js';
import { createEngineActivities } from '../activities/index.js';
import { createWebhookServer } from '../triggers/alertmanager.js';
import { openSpool } from '../triggers/spool.js';
import { createMetrics } from '../triggers/metrics.js';
import { syncSchedules } from '../triggers/schedules.js';
import { connect, temporalEndpoint, workerShutdown } from './temporal.js';

/** The workflows' entry beside this module: index.ts from the sources, index.js from the build. */
export const workflowsPath = join(dirname(fileURLToPath(import.meta.url)), '..', 'workflows', `index${extname(fileURLToPath(import.meta.url))}`);

export interface EngineOptions {
  config: EngineConfig;
  logger: Logger;
  /** A prebuilt workflow bundle (tests and benchmarks bundle once); otherwise bundled at start. */
  workflowBundlePath?: string;
  /** Overrides config.webhook.listen, e.g. port 0 in tests. */
  listen?: string;
}

export interface RunningEngine {
  webhookUrl: string;
  client: Client;
  /** Resolves when the worker stops (after stop(), or on a fatal worker error). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startEngine(opts: EngineOptions): Promise<RunningEngine> {
  const { config, logger } = opts;
  const endpoint = await temporalEndpoint(config, (m) => logger.info(m));
  const { native, client: clientConnection } = await connect(endpoint);
  const client = new Client({ connection: clientConnection, namespace: endpoint.namespace });
  const metrics = createMetrics();
  const taskQueue = config.temporal.taskQueue;

  const guardQueue = guardrailsTaskQueue(taskQueue);
  const workflowBundle = opts.workflowBundlePath ? { workflowBundle: { codePath: opts.workflowBundlePath } } : { workflowsPath };
  logger.info(opts.workflowBundlePath ? { bundle: opts.workflowBundlePath } : { workflows: workflowsPath }, 'workflow code');
  const worker = await Worker.create({
    connection: native,
    namespace: endpoint.namespace,
    taskQueue,
    activities: createEngineActivities(config, { client, logger, guardQueue }),
    ...workflowBundle,
    maxCachedWorkflows: config.temporal.maxCachedWorkflows,
    sinks: metrics.sinks(),
    ...workerShutdown,
  });
  // Every incident asks the guard before it restarts: in an alert storm it must not queue behind
  // the incidents' own workflow tasks, so it runs on its own queue with its own task slots.
  const guardWorker = await Worker.create({ connection: native, namespace: endpoint.namespace, taskQueue: guardQueue, ...workflowBundle, ...workerShutdown });
  const done = Promise.all([worker.run(), guardWorker.run()]).then(() => undefined);
  let workerRunning = true;
  done.then(
    () => (workerRunning = false),
    (err) => {
      workerRunning = false;
      logger.error({ err: String(err) }, 'worker stopped with an error');
    },
  );

  const changes = await syncSchedules({ client, config, taskQueue });
  logger.info({ schedules: changes }, 'maintenance schedules in sync with config');

  // The embedded dev server keeps its state on this disk already: a spool there adds no new way to
  // lose an alert, and takes Temporal's speed out of Alertmanager's answer.
  const spoolDir = (config.webhook.spool ?? endpoint.uiUrl !== undefined) ? resolve(config.dataDir, 'spool') : undefined;
  const spool = spoolDir ? await openSpool(spoolDir) : undefined;
  const webhook = createWebhookServer({
    config: opts.listen ? { ...config, webhook: { ...config.webhook, listen: opts.listen } } : config,
    client,
    taskQueue,
    metrics,
    logger,
    spool,
    // With a spool, alerts are taken while Temporal is away; without one they would only be refused.
    ready: async () => workerRunning && (spool !== undefined || (await temporalReachable(client))),
  });
  const { port } = await webhook.listen();
  const host = (opts.listen ?? config.webhook.listen).split(':')[0];
  const webhookUrl = `http://${host}:${port}`;

  logger.info(
    {
      webhook: `${webhookUrl}/alertmanager`,
      health: `${webhookUrl}/healthz`,
      metrics: `${webhookUrl}/metrics`,
      temporal: endpoint.address,
      namespace: endpoint.namespace,
      temporalUi: endpoint.uiUrl,
      taskQueue,
      dryRun: config.dryRun,
      spool: spoolDir ?? false,
    },
    'engine running',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('stopping: no new alerts accepted, draining the worker');
      await webhook.close();
      await spool?.close();
      for (const w of [worker, guardWorker]) if (w.getState() === 'RUNNING') w.shutdown();
      await done.catch(() => {});
      await clientConnection.close();
      await native.close();
      await endpoint.stop();
      logger.info('stopped');
    })());
  return { webhookUrl, client, done, stop };
}

async function temporalReachable(client: Client): Promise<boolean> {
  try {
    await (client.connection as Connection).healthService.check({});
    return true;
  } catch {
    return false;
  }
}
