// The engine process: one worker for the runbooks and their engine-side activities, the Alertmanager
// webhook, and the maintenance schedules. Any number of engines may run against one Temporal namespace;
// they share the task queue, and Temporal hands each workflow task to exactly one of them.
import { resolve } from 'node:path';
import type { Worker as WebhookThreadWorker } from 'node:worker_threads';
import { Client } from '@temporalio/client';
import { Worker, type TunerHolder } from '@temporalio/worker';
import { guardrailsTaskQueue, guardrailsWorkflowId } from '../workflows/guardrails.js';
import type { Logger } from 'pino';
import type { EngineConfig } from '../config/schema.js';
import { hostTaskQueue } from '../config/load.js';
import { createEngineActivities } from '../activities/index.js';
import { createDoorReads } from '../activities/readAhead.js';
import { createIntakeActivities } from '../activities/intake.js';
import { doorReadsFor } from '../triggers/alerts/doorReads.js';
import { createWebhookServer, webhookThreadSettings, type WebhookServer } from '../triggers/alerts/alertmanager.js';
import type { Spool } from '../triggers/alerts/spool.js';
import { startWebhookThread, type WebhookThread } from '../triggers/alerts/webhookThread.js';
import type { ThreadSettings } from '../triggers/alerts/webhookThreadMessages.js';
import { createMetrics, type EngineMetrics } from '../triggers/metrics/metrics.js';
import { registerDurableGauges, runbooksWithApproval } from '../triggers/metrics/durableGauges.js';
import { syncSchedules } from '../triggers/schedules/schedules.js';
import { createOperatorApi, type OperatorApi } from '../triggers/operators/api.js';
import { temporalOf } from '../triggers/operators/operatorTemporal.js';
import { engineReadiness, temporalReadiness } from './readiness.js';
import { connect, shutdownDeadlineMs, temporalEndpoint, workerHeartbeats, workerShutdown } from './temporal.js';
import { bundleWorkflows, prebuiltBundle, workflowsPath } from './bundle.js';
import { workflowTaskSlots } from './workflowTaskSlots.js';
import { warmCodecs, type CodecWarmup } from './codecWarmup.js';
import { readGuard, unstickGuard } from './guardAhead.js';

export { workflowsPath } from './bundle.js';

export interface EngineOptions {
  config: EngineConfig;
  logger: Logger;
  /** A prebuilt workflow bundle (tests and benchmarks bundle once); otherwise bundled at start. */
  workflowBundlePath?: string;
  /** Overrides config.webhook.listen, e.g. port 0 in tests. */
  listen?: string;
  /** Overrides config.api.listen, e.g. port 0 in tests. */
  apiListen?: string;
  /**
   * Given the engine's stop as soon as its workers run, before the rest of start-up (schedules,
   * webhook, operator API): a SIGTERM from then on drains the activities already running.
   */
  stoppable?: (stop: () => Promise<void>) => void;
  /** Starts the spooled webhook's thread (tests keep its handle, to end it as a crash would). */
  spawnWebhookThread?: (settings: ThreadSettings) => WebhookThreadWorker;
}

/** What startEngine throws when stop() was called before start-up finished. */
export class StoppedDuringStart extends Error {
  constructor() {
    super('the engine was stopped during start-up');
    this.name = 'StoppedDuringStart';
  }
}

/**
 * How long one workflow activation may run before the SDK stops it. The SDK stops it by terminating
 * the workflow thread's V8 isolate mid-activation, which leaves Node's async-hooks stack corrupt
 * (the sandbox's promise hooks and AsyncLocalStorage are mid-callback) and aborts the whole process:
 * "async hook stack has become corrupted". Its 5 s default is reached by honest work: an alert storm
 * lands thousands of signals in one workflow task (3,941 seen), each of which the SDK pays a
 * captured stack trace for, on a loaded machine. Temporal bounds a slow task already (the workflow
 * task timeout, then a retry), so this limit only has to catch workflow code that never returns.
 * The SDK honours the option but leaves it out of its WorkerOptions type.
 */
const workflowActivationLimit: object = { isolateExecutionTimeout: '60s' };

export interface RunningEngine {
  webhookUrl: string;
  /** The operator API's base URL, when the config has an api section. */
  apiUrl?: string;
  client: Client;
  /** Resolves when the worker stops (after stop(), or on a fatal worker error). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startEngine(opts: EngineOptions): Promise<RunningEngine> {
  const { config, logger } = opts;
  const endpoint = await temporalEndpoint(config, (m) => logger.info(m));
  // A start that hangs here is waiting on Temporal: the log says where.
  logger.info({ temporal: endpoint.address, namespace: endpoint.namespace }, 'connecting to Temporal');
  const { native, client: clientConnection } = await connect(endpoint);
  const client = new Client({ connection: clientConnection, namespace: endpoint.namespace });
  const metrics = createMetrics({ runbooks: Object.keys(config.runbookDefinitions) });
  const taskQueue = config.temporal.taskQueue;
  registerDurableGauges(metrics.registry, {
    client,
    taskQueue,
    maxConcurrentDestructive: config.guardrails.maxConcurrentDestructive,
    approvalRunbooks: runbooksWithApproval(config.runbookDefinitions),
    agentQueues: Object.keys(config.hosts).map((host) => ({ host, queue: hostTaskQueue(config, host) })),
  });

  const guardQueue = guardrailsTaskQueue(taskQueue);
  // One bundle for both workers: the build's, or one made now (webpack once, not once per worker).
  const bundlePath = opts.workflowBundlePath ?? prebuiltBundle();
  const workflowBundle = bundlePath
    ? { workflowBundle: { codePath: bundlePath } }
    : { workflowBundle: { code: await bundleWorkflows(logger) } };
  logger.info(bundlePath ? { bundle: bundlePath } : { workflows: workflowsPath }, 'workflow code');
  // Reads the webhook takes beside an eager start, for the run's first activities to answer with.
  const doors = createDoorReads({ onOutcome: (read, outcome) => metrics.doorReads.inc({ read, outcome }) });
  const activities = createEngineActivities(config, {
    client,
    logger,
    guardQueue,
    notificationFailures: metrics.notificationFailures,
    doorReads: doors,
  });
  /** The webhook, once it is made: the incidents' task slots ask it whether a storm waits to be started. */
  let webhook: WebhookServer | undefined;
  const worker = await Worker.create({
    connection: native,
    namespace: endpoint.namespace,
    taskQueue,
    // The intake's activity hands its alerts to this engine's webhook once it is listening.
    activities: { ...activities, ...createIntakeActivities(() => webhook?.deliverer) },
    ...workflowBundle,
    maxCachedWorkflows: config.temporal.maxCachedWorkflows,
    tuner: incidentSlots(config, () => webhook, metrics, logger),
    sinks: metrics.sinks(),
    ...workflowActivationLimit,
    ...workerShutdown,
    ...workerHeartbeats,
  });
  // Every incident asks the guard before it restarts: in an alert storm it must not queue behind
  // the incidents' own workflow tasks, so it runs on its own queue with its own task slots.
  const guardWorker = await Worker.create({
    connection: native,
    namespace: endpoint.namespace,
    taskQueue: guardQueue,
    ...workflowBundle,
    ...workflowActivationLimit,
    ...workerShutdown,
    // The guard's tasks go to the worker that ran its last one. When that engine dies, the engines
    // still running wait this long on their next claim before Temporal hands the task to the
    // shared queue (the SDK's default is 10 s). A living guard worker polls without pause (it runs
    // one workflow), so its own tasks never wait that long.
    stickyQueueScheduleToStartTimeout: '2s',
  });
  const done = Promise.all([worker.run(), guardWorker.run()]).then(() => undefined);
  let workerRunning = true;
  done.then(
    () => (workerRunning = false),
    (err) => {
      workerRunning = false;
      logger.error({ err: String(err) }, 'worker stopped with an error');
    },
  );

  // Made before the rest of start-up, so a stop from now on drains the workers; what start-up has
  // not opened yet is not there to close.
  let spool: Spool | undefined;
  let operatorApi: OperatorApi | undefined;
  let codecs: CodecWarmup | undefined;
  /** The webhook's thread died: the engine stops, and says why (its supervisor starts it again). */
  let webhookFailure: Error | undefined;
  // Every step is bounded, so stop() settles within shutdownDeadlineMs whatever Temporal does (down,
  // hung, partitioned): a batch still waiting on it is retried by Alertmanager, a spooled alert is
  // forwarded by the next start, an activity is retried by another engine or after the restart.
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const deadline = Date.now() + shutdownDeadlineMs - 500;
      const step = (what: string, work: () => Promise<unknown>, by: number) => boundedStep(logger, what, work, Math.min(by, deadline));
      const soon = (ms: number) => Date.now() + ms;
      logger.info('stopping: no new alerts accepted, draining the worker');
      codecs?.stop();
      // The workers drain while the webhook closes: running activities get the whole grace period.
      const workers = [worker, guardWorker];
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      // A forwarder still waiting on Temporal keeps the spool: the process exit releases it, and
      // the next start forwards what it holds.
      const [api, hook] = [operatorApi, webhook];
      if (api) await step('closing the operator API', () => api.close(), soon(2_000));
      if (!hook || (await step('closing the webhook', () => hook.close(), soon(5_000))))
        await step('closing the spool', async () => spool?.close(), soon(2_000));
      // A stopped worker has nothing left to run; what follows is its goodbye to Temporal, which
      // waits out an unreachable server's timeouts (30 s seen) and is worth no grace period.
      const stopped = () => workers.every((w) => ['STOPPED', 'FAILED'].includes(w.getState()));
      await step('draining the workers', () => Promise.race([done.catch(() => {}), until(stopped, deadline - 3_000)]), deadline - 3_000);
      await step('telling Temporal the workers stopped', () => done.catch(() => {}), Math.min(soon(1_000), deadline - 2_000));
      await step('closing the Temporal client', () => clientConnection.close(), soon(500));
      await step("closing the workers' Temporal connection", () => native.close(), soon(500));
      await step('stopping the embedded Temporal server', () => endpoint.stop(), deadline);
      logger.info('stopped');
    })());
  opts.stoppable?.(stop);
  const unlessStopping = <T>(value: T): T => {
    if (stopping) throw new StoppedDuringStart();
    return value;
  };

  // Anything failing from here (the webhook's port taken, say) stops what did start, the workers
  // drained, before the error reaches the caller.
  const finishStart = async (): Promise<RunningEngine> => {
    // Even with a spool: an engine that cannot reach Temporal runs no incident, so a load balancer
    // should send Alertmanager to one that can.
    const readiness = engineReadiness({
      workerRunning: () => workerRunning,
      temporal: temporalReadiness(client, { namespace: endpoint.namespace, workflowId: guardrailsWorkflowId(taskQueue) }),
      logger,
    });

    const changes = unlessStopping(await syncSchedules({ client, config, taskQueue, logger }));
    logger.info({ schedules: changes }, 'maintenance schedules in sync with config');
    // Before any alert: a guard left on the queue of an engine that died would hold every restart
    // claim ~10 s (worker/guardAhead.ts).
    const guardStickyQueue = unlessStopping(await unstickGuard(client, endpoint.namespace, taskQueue));

    // The embedded dev server keeps its state on this disk already: a spool there adds no new way to
    // lose an alert, and takes Temporal's speed out of Alertmanager's answer.
    const spooled = config.webhook.spool ?? (endpoint.uiUrl !== undefined && config.webhook.intake === 'off');
    const spoolDir = spooled ? resolve(config.dataDir, 'spool') : undefined;
    const webhookConfig = opts.listen ? { ...config, webhook: { ...config.webhook, listen: opts.listen } } : config;
    // The spool is kept by the webhook's own thread, which answers Alertmanager once a batch is
    // fsynced there, whatever this event loop is busy with (triggers/alerts/webhookThread.ts).
    const opened: WebhookThread | undefined = spoolDir
      ? await startWebhookThread({
          settings: webhookThreadSettings(webhookConfig, spoolDir),
          logger,
          metrics,
          onFailure: (err) => {
            webhookFailure = err;
            void stop();
          },
          ...(opts.spawnWebhookThread ? { spawn: opts.spawnWebhookThread } : {}),
        })
      : undefined;
    if (stopping) await opened?.spool.close();
    spool = unlessStopping(opened)?.spool;
    webhook = createWebhookServer({
      config: webhookConfig,
      client,
      // Eager start hands a new incident's first workflow task to this process's worker in the
      // start call's reply: only a client on the worker's own connection can receive it.
      eagerClient: new Client({ connection: native, namespace: endpoint.namespace }),
      doorReads: doorReadsFor(doors, activities),
      taskQueue,
      metrics,
      logger,
      ...(opened ? { thread: opened } : {}),
      ready: readiness,
    });
    const { port } = unlessStopping(await webhook.listen());
    const host = (opts.listen ?? config.webhook.listen).split(':')[0];
    const webhookUrl = `http://${host}:${port}`;

    // The operators' door: its own listener, so the webhook's network exposure says nothing of it.
    let apiUrl: string | undefined;
    if (config.api) {
      operatorApi = createOperatorApi({
        config,
        temporal: temporalOf(client, clientConnection, endpoint.address),
        logger,
        ...(opts.apiListen ? { listen: opts.apiListen } : {}),
      });
      apiUrl = unlessStopping(await operatorApi.listen()).url;
    }

    logger.info(
      {
        webhook: `${webhookUrl}/alertmanager`,
        health: `${webhookUrl}/healthz`,
        metrics: `${webhookUrl}/metrics`,
        operatorApi: apiUrl ?? false,
        temporal: endpoint.address,
        namespace: endpoint.namespace,
        temporalUi: endpoint.uiUrl,
        taskQueue,
        dryRun: config.dryRun,
        spool: spoolDir ?? false,
        intake: spoolDir ? 'off' : config.webhook.intake,
      },
      'engine running',
    );
    // Ahead of the first incident: this thread's message codecs (worker/codecWarmup.ts) and the
    // guard's first workflow task since the start (worker/guardAhead.ts), each off its path.
    codecs = warmCodecs();
    void Promise.all([codecs.done, readGuard(client, taskQueue)]).then(([{ types, failed, ms, stopped }, guard]) => {
      if (stopped || stopping) return;
      const codecsFailed = failed > 0 ? { codecsFailed: failed } : {};
      logger.info({ codecs: types, ...codecsFailed, codecsMs: Math.round(ms), guardStickyQueue, guard }, 'ready for the first incident');
    });

    // A dead webhook thread fails the engine only once its stop has finished (the embedded server
    // stopped, not killed by the process's exit).
    const doneOrFailed = done.then(async () => {
      if (!webhookFailure) return;
      await stop();
      throw new Error(`the webhook thread failed: ${webhookFailure.message}`);
    });
    return { webhookUrl, ...(apiUrl ? { apiUrl } : {}), client, done: doneOrFailed, stop };
  };
  try {
    return await finishStart();
  } catch (err) {
    // A stop under way fails what start-up still waits on (its connections close): that is the stop.
    if (stopping) throw new StoppedDuringStart();
    logger.error({ err: String(err) }, 'start-up failed; stopping what had started');
    await stop();
    throw err;
  }
}

/**
 * The incidents worker's task slots: the SDK's defaults, except that its workflow task slots drop
 * to 2 while the webhook has a storm's alerts waiting to be started (for at most 15 s at a time;
 * worker/workflowTaskSlots.ts says why). Its slots never exceed its workflow cache.
 */
function incidentSlots(
  config: EngineConfig,
  webhook: () => WebhookServer | undefined,
  metrics: EngineMetrics,
  logger: Logger,
): TunerHolder {
  const fixed = (numSlots: number) => ({ type: 'fixed-size' as const, numSlots });
  const slots = Math.min(40, config.temporal.maxCachedWorkflows);
  const heldTo = 2;
  metrics.workflowTaskSlots.set(slots);
  return {
    workflowTaskSlotSupplier: workflowTaskSlots({
      slots,
      heldTo,
      startsWaiting: () => webhook()?.startsFirst() ?? false,
      maxHoldMs: 15_000,
      onHold: (held) => {
        metrics.workflowTaskSlots.set(held ? heldTo : slots);
        const waiting = webhook()?.waitingToStart();
        if (held) logger.info({ waiting, slots: heldTo }, 'starting waiting alerts first: 2 workflow task slots until they are started');
        else logger.info({ waiting, slots }, 'workflow task slots back to normal');
      },
    }),
    activityTaskSlotSupplier: fixed(100),
    localActivityTaskSlotSupplier: fixed(100),
    nexusTaskSlotSupplier: fixed(100),
  };
}

/**
 * Waits for one shutdown step until `by` (epoch ms); past that, says which step was left behind and
 * moves on. True when the step finished.
 */
async function boundedStep(logger: Logger, what: string, work: () => Promise<unknown>, by: number): Promise<boolean> {
  const ms = Math.max(0, by - Date.now());
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const outcome = await Promise.race([
    work().then(
      () => 'done' as const,
      (err: unknown) => {
        logger.warn({ step: what, err: String(err) }, 'shutdown step failed; carrying on');
        return 'failed' as const;
      },
    ),
    late,
  ]);
  clearTimeout(timer);
  if (outcome === 'late')
    logger.warn({ step: what, waitedMs: ms }, 'shutdown step did not finish in time (Temporal unreachable?); left behind');
  return outcome !== 'late';
}

async function until(done: () => boolean, by: number): Promise<void> {
  while (!done() && Date.now() < by) await new Promise((r) => setTimeout(r, 100));
}
