// The Alertmanager webhook: where alerts enter the engine.
//
// Contract with Alertmanager: 200 only after Temporal has accepted every start and signal of the
// batch. Any failure to reach Temporal answers 503, at once (the batch's other calls would each
// wait out the same deadline), and Alertmanager retries the whole batch; because starts are
// SignalWithStart on a deterministic workflow id, a retried batch folds into the runs the first
// attempt started, so nothing is lost and nothing runs twice.
//
// With a spool, 200 once the batch is fsynced there; the spool's forwarder hands it to Temporal.
// The engine's spool is kept by the webhook's own thread (webhookThread.ts), which also answers.
// With the intake (webhook.intake), 200 once the batch's alerts are in Temporal's intake workflow,
// whose activity hands them back here to be started (intake.ts, workflows/intake.ts).
//
// Whatever reaches the port is untrusted: the sender is authorised before its body is read, every
// field of the payload is bounded (webhookDoor.ts), and a large batch is checked and decided in
// slices that leave the event loop turns for probes and other batches (slices.ts).
import type { ServerResponse } from 'node:http';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { EngineConfig } from '../../config/schema.js';
import { matchBinding } from './binding.js';
import { planRunbook } from '../plan.js';
import { createIncidentSignaller, isTemporalUnavailable } from './incidents.js';
import { countUnmatched, type EngineMetrics } from '../metrics/metrics.js';
import { webhookAlert, webhookLimits, type WebhookAlert } from './alertmanagerPayload.js';
import type { IntakeDeliverer } from '../../activities/intake.js';
import { IntakeFullError, intakeDoor, type IntakeDoor } from './intake.js';
import { acceptanceGate, type AcceptanceGate } from './acceptanceFirst.js';
import { inFlightLimit } from '../../activities/limits.js';
import { timeSlices } from './slices.js';
import type { Spool, SpoolEntry, SpoolLimits } from './spool.js';
import { startForwarder } from './spoolForwarder.js';
import { doorServer, errorText, spoolBatch, tokenDigest, type CheckedBatch, type DoorCounts } from './webhookDoor.js';
import { closeListener, HttpError, listenOn } from './webhookHttp.js';
import type { WebhookThread } from './webhookThread.js';
import { writeAnswer, type Answer, type ThreadSettings } from './webhookThreadMessages.js';
import type { OpenDoorReads } from './doorReads.js';

export interface WebhookDeps {
  config: EngineConfig;
  client: Client;
  /** A client on the engine worker's own connection: new incidents start eagerly (triggers/alerts/incidents.ts). */
  eagerClient?: Client;
  /** Reads a new run asks first, taken beside its eager start (doorReads.ts): only with eagerClient. */
  doorReads?: OpenDoorReads;
  /** The engine's task queue: incident workflows run there. */
  taskQueue: string;
  metrics: EngineMetrics;
  logger: Logger;
  /** Whether the engine can start and signal workflows now; a reason says why not (shown in the 503). */
  ready: () => Promise<boolean | { ready: boolean; reason?: string }>;
  /** Deadline for each Temporal call (default 5 s): below Alertmanager's own webhook timeout. */
  temporalTimeoutMs?: number;
  /**
   * Deadline for deciding a whole batch without a spool (default 30 s): past it the batch is
   * answered 503 and the alerts not yet begun are left to Alertmanager's retry.
   */
  batchTimeoutMs?: number;
  /**
   * Set: a batch is answered 200 once it is on disk here, and forwarded to Temporal after (alerts
   * spooled by an earlier process are forwarded first). Unset: 200 only once Temporal took it.
   */
  spool?: Spool;
  /**
   * The webhook's own thread, which keeps the spool and answers on the port (instead of `spool`):
   * a batch is answered once fsynced, whatever this event loop is busy with.
   */
  thread?: WebhookThread;
  /** Waits between forwarding tries of a spooled alert (default 0.5 s doubling to 30 s). */
  spoolBackoffMs?: { first: number; max: number };
  /**
   * Past this many bytes of alerts waiting in the spool, batches are refused (503) and Alertmanager
   * holds them. Default: webhook.spoolMaxBytes, else 256 MiB.
   */
  spoolMaxBytes?: number;
  /** Batches are refused (503) while the spool's filesystem has less free. Default: webhook.spoolMinFreeBytes, else 256 MiB. */
  spoolMinFreeBytes?: number;
  /** How spooled deliveries give way to arriving batches; a test may watch it. */
  acceptance?: AcceptanceGate;
  /** With intake 'storms': how long the intake waits with nothing taken before it ends (default 30 s; tests shorten it). */
  intakeQuietForMs?: number;
}

export interface WebhookServer {
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
  /** With a spool: resolves once every spooled alert reached Temporal. */
  drained(): Promise<void>;
  /** The intake's activity hands its alerts to Temporal through this (whatever this webhook's mode now). */
  deliverer: IntakeDeliverer;
  /**
   * Alerts taken and not yet handed to Temporal: the spool's; with the intake, those being put in it
   * and those its activity is forwarding here; otherwise those of the batches still being answered.
   */
  waitingToStart(): number;
  /**
   * A storm's alerts wait to be started: more than a forwarding wave (48) in the spool or going
   * through the intake, or without either, more than a batch's calls at once (8). The engine's
   * worker then starts them before it acts (worker/workflowTaskSlots.ts).
   */
  startsFirst(): boolean;
}

type Decision =
  | { decision: 'started' | 'folded' | 'coalesced'; runbook: string; target: string; workflowId: string }
  | { decision: 'resolved' | 'resolved-without-run'; runbook: string; target: string }
  | { decision: 'unmatched'; reason: string };

type Outcome = (Decision & { alertname: string; fingerprint: string }) | { error: unknown };

/** Why a batch was given up before all its alerts were decided. */
type BatchStop = 'temporal-unavailable' | 'deadline' | 'sender-gone';

const firedMessage = {
  started: 'runbook started',
  folded: 'alert folded into running incident',
  coalesced: 'identical delivery of an alert accepted moments ago',
};

// Alertmanager groups can hold hundreds of alerts; a few Temporal calls at a time keeps the
// batch fast without stampeding the frontend.
const temporalConcurrency = 8;

// With intake 'storms': more alerts than this answered synchronously at once is a storm. A lone
// alert, or a few groups firing together, keep the synchronous answer (the fast path); 11 to 29
// alerts answered synchronously before a storm began with 8 held 20 in-flight posts for 100–400 ms
// each while the server took the first starts.
const stormBeyond = 4;

// Room for a thousand alerts at ~200 ms a call. A batch Temporal cannot take at all is stopped by
// its first unreachable call long before; this bounds one it takes too slowly, when nothing tells
// us the sender left (a proxy that keeps the connection open after Alertmanager gave up).
const defaultBatchTimeoutMs = 30_000;

const defaultSpoolMaxBytes = 256 * 1_048_576;
const defaultSpoolMinFreeBytes = 256 * 1_048_576;

/** When the spool refuses a batch (503): past this many bytes waiting, or this little free space. */
export function webhookSpoolLimits(
  config: EngineConfig,
  given: Pick<WebhookDeps, 'spoolMaxBytes' | 'spoolMinFreeBytes'> = {},
): SpoolLimits {
  return {
    maxBytes: given.spoolMaxBytes ?? config.webhook.spoolMaxBytes ?? defaultSpoolMaxBytes,
    minFreeBytes: given.spoolMinFreeBytes ?? config.webhook.spoolMinFreeBytes ?? defaultSpoolMinFreeBytes,
  };
}

/** What the webhook's thread is started with: the token's digest, never the token. */
export function webhookThreadSettings(config: EngineConfig, spoolDir: string): Omit<ThreadSettings, 'logLevels'> {
  return {
    dir: spoolDir,
    listen: config.webhook.listen,
    tokenDigest: tokenDigest(config.webhook.token.reveal()),
    maxBodyBytes: config.webhook.maxBodyBytes,
    limits: webhookSpoolLimits(config),
    nice: config.webhook.threadNice,
  };
}

/**
 * Spooled alerts forwarded at once while a storm's batches are arriving (and for a second after the
 * last, acceptanceFirst.ts storming()): their answers come first.
 */
export const forwardingInAStorm = 16;

/**
 * Spooled alerts forwarded at once otherwise. The server takes more starts at once than 16 kept it
 * busy with (its CPU up, the engine's down while they are made), and past the worker's 40 workflow
 * task slots a start is not eager, so its first task waits in the server's queue instead of taking
 * the engine's CPU from the starts still to make. 1,000 distinct alerts, spooled, all started after
 * 15.8–17.8 s flat out and 18.4–18.6 s paced at 200/s with 48, where 16 took 23.7–29.3 s and
 * 24.0–27.7 s in the same alternating runs (README, Evidence, Session 21); 96 started sooner still
 * but answered the storm slower.
 */
export const forwardingAfterwards = 48;

export function createWebhookServer(deps: WebhookDeps): WebhookServer {
  const { config, metrics, logger } = deps;
  const incidents = createIncidentSignaller(deps.client, {
    timeoutMs: deps.temporalTimeoutMs ?? 5_000,
    ...(deps.eagerClient ? { eagerClient: deps.eagerClient } : {}),
    ...(deps.doorReads ? { doorReads: deps.doorReads } : {}),
  });
  const batchTimeoutMs = deps.batchTimeoutMs ?? defaultBatchTimeoutMs;
  const spoolLimits = webhookSpoolLimits(config, deps);
  // Shared by everything this server does in bulk (checking a batch, deciding about its alerts).
  const slices = timeSlices();
  const spool = deps.thread?.spool ?? deps.spool;
  const intakeMode = spool ? 'off' : config.webhook.intake;
  const intake =
    intakeMode === 'off'
      ? undefined
      : intakeDoor({
          client: deps.client,
          taskQueue: deps.taskQueue,
          timeoutMs: deps.temporalTimeoutMs ?? 5_000,
          // Used for storms only, it ends soon after one, and the door answers synchronously again.
          ...(intakeMode === 'storms' ? { quietForMs: deps.intakeQuietForMs ?? 30_000 } : {}),
        });
  /** With intake 'storms': batches go to the intake, from a storm's start until the intake has ended. */
  let storming = false;
  /** Batches sent to the intake and not yet answered: a storm cannot end under them. */
  let toIntakeNow = 0;
  /** With intake 'storms': alerts of the batches being answered synchronously. */
  let answeringNow = 0;
  /** Alerts the intake's activity is forwarding through this engine and has not handed on yet. */
  let forwardingFromIntake = 0;
  if (spool && spool.pendingBatches() > 0) {
    logger.info(
      { batches: spool.pendingBatches(), alerts: spool.pendingAlerts(), bytes: spool.pendingBytes() },
      'forwarding alerts spooled before this start',
    );
  }
  const spoolGauges = () => {
    metrics.spoolPending.set(spool!.pendingAlerts());
    metrics.spoolPendingBytes.set(spool!.pendingBytes());
  };
  // A storm's deliveries wait for its batches to be answered first (acceptanceFirst.ts), and fewer
  // run at once while they arrive.
  const acceptance = deps.acceptance ?? acceptanceGate();
  /** Alerts the spool or the intake hands to Temporal at once now: fewer while a storm arrives. */
  const forwardingNow = () => (acceptance.storming() ? forwardingInAStorm : forwardingAfterwards);
  // Starts with whatever an earlier process left in the spool.
  const forwarder = spool
    ? startForwarder({
        spool,
        deliver: async (alert) => {
          await acceptance.quiet();
          const outcome = await decide(alert, { quiet: true });
          if ('error' in outcome) throw outcome.error;
        },
        logger,
        onPending: spoolGauges,
        onStuck: (n) => metrics.spoolStuck.set(n),
        backoffMs: deps.spoolBackoffMs,
        concurrency: forwardingNow,
        slices,
      })
    : undefined;
  if (spool) spoolGauges();

  const counts: DoorCounts = {
    received: (status) => metrics.alertsReceived.inc({ status }),
    invalid: (alerts) => metrics.alertsInvalid.inc(alerts),
    spoolRefused: (reason) => metrics.spoolRefused.inc({ reason }),
    request() {
      const stopTimer = metrics.webhookRequestDuration.startTimer();
      return (code) => stopTimer({ code });
    },
  };
  const server = deps.thread
    ? undefined
    : doorServer({
        tokenDigest: tokenDigest(config.webhook.token.reveal()),
        maxBodyBytes: config.webhook.maxBodyBytes,
        logger,
        counts,
        slices,
        acceptance,
        take: async (batch, res) => {
          if (intake) return intakeOrDecide(batch, res, intake);
          if (!spool) return decideAll(batch, res);
          const { entry, answer } = await spoolBatch(spool, batch, spoolLimits, counts);
          accepted(entry);
          return answer;
        },
        other: async (req, res, path) => writeAnswer(res, await answerOther(req.method ?? 'GET', path)),
      });

  function waitingToStart(): number {
    if (spool) return spool.pendingAlerts();
    return deciding + forwardingFromIntake + (intake?.sending() ?? 0);
  }

  /**
   * With the intake: through it always, or (intake 'storms') while a storm lasts, synchronously
   * otherwise. A storm begins when the batch would make more than 4 alerts answered synchronously at
   * once (batches side by side, or one batch of more); it lasts until the intake, which hands on its
   * alerts in the order they came, has ended: a resolution answered synchronously never overtakes
   * its firing still in the intake. Each batch is counted (toIntakeNow, answeringNow) from its
   * decision, with no turn of the loop in between, to its answer.
   */
  async function intakeOrDecide(batch: CheckedBatch, res: ServerResponse, door: IntakeDoor): Promise<object> {
    if (storming) await endStormIfOver(door);
    if (intakeMode === 'always' || storming || beginsStorm(batch)) {
      toIntakeNow++;
      try {
        return await intakeAll(batch, door);
      } finally {
        toIntakeNow--;
      }
    }
    answeringNow += batch.alerts.length;
    try {
      return await decideAll(batch, res);
    } finally {
      answeringNow -= batch.alerts.length;
    }
  }

  function beginsStorm(batch: CheckedBatch): boolean {
    if (intakeMode !== 'storms' || answeringNow + batch.alerts.length <= stormBeyond) return false;
    storming = true;
    logger.info(
      { answering: answeringNow, batch: batch.alerts.length },
      'a storm: batches go to the intake in Temporal until it has handed them all on',
    );
    return true;
  }

  async function endStormIfOver(door: IntakeDoor): Promise<void> {
    if (toIntakeNow > 0 || !(await door.ended())) return;
    // Batches may have gone to the intake, or another batch ended the storm, while Temporal was asked.
    if (toIntakeNow > 0 || !storming) return;
    storming = false;
    logger.info('the intake handed on every alert and ended: batches are answered synchronously again');
  }

  /**
   * With the intake: 200 once the batch's matching alerts are in it. An alert no binding matches
   * is decided here (logged and counted; nothing in Temporal), so it never reaches the intake.
   */
  async function intakeAll(batch: CheckedBatch, door: IntakeDoor): Promise<object> {
    const taken: WebhookAlert[] = [];
    const unmatched: Array<{ alertname: string; fingerprint: string; reason: string }> = [];
    for (const alert of batch.alerts) {
      if (!matchBinding(config, alert).matched) {
        const outcome = await decide(alert);
        if ('decision' in outcome && outcome.decision === 'unmatched')
          unmatched.push({ alertname: outcome.alertname, fingerprint: outcome.fingerprint, reason: outcome.reason });
      } else taken.push(alert);
    }
    try {
      const taking = door.take(taken);
      intakeGauge();
      await taking;
    } catch (err) {
      if (err instanceof IntakeFullError) throw new HttpError(503, `${err.message}; try again later`, { 'Retry-After': '30' });
      const unavailable = isTemporalUnavailable(err);
      throw new HttpError(
        unavailable ? 503 : 500,
        `Temporal did not take ${taken.length} alert(s) into the intake: ${errorText(err)}`,
        unavailable ? { 'Retry-After': '10' } : {},
      );
    } finally {
      intakeGauge();
    }
    return {
      status: 'queued',
      alerts: batch.alerts.length,
      intake: taken.length,
      truncatedAlerts: batch.truncatedAlerts,
      ...batch.invalid,
      unmatched,
    };
  }

  const intakeGauge = () => metrics.intakePending.set(forwardingFromIntake + (intake?.sending() ?? 0));

  // The intake's deliveries at once, whatever calls they come from: fewer while a storm's batches
  // are still arriving, as the spool's are, and more so since the answers wait on the same Temporal
  // that the starts keep busy. With 48 at once from the storm's second 2 on, a cluster's answers
  // slowed to 80–235 alerts a second (docs/performance-history.md, Session 31).
  const intakeTurn = inFlightLimit(forwardingNow);
  const deliverer: IntakeDeliverer = {
    async deliver(raw) {
      // Checked at the door already; checked again, as anything read back from history is.
      const parsed = webhookAlert.safeParse(raw);
      if (!parsed.success) {
        logger.warn({ error: errorText(parsed.error.issues[0]?.message ?? 'invalid') }, 'an alert in the intake is not an alert; left out');
        return;
      }
      // Waits for the storm's batches inside its turn, as the spool's forwarder does: the deliveries
      // past the turn's limit queue without asking the gate every 10 ms.
      const outcome = await intakeTurn(async () => {
        await acceptance.quiet();
        return decide(parsed.data, { quiet: true });
      });
      if ('error' in outcome) throw outcome.error;
    },
    forwarding(delta) {
      forwardingFromIntake = Math.max(0, forwardingFromIntake + delta);
      intakeGauge();
    },
  };

  function accepted(entry: SpoolEntry): void {
    forwarder!.enqueue(entry);
  }

  /** Health, readiness and metrics: the engine's own to say, wherever the port is. */
  async function answerOther(method: string, path: string): Promise<Answer> {
    if (!['/healthz', '/readyz', '/metrics'].includes(path))
      return { status: 404, json: { error: `no such path ${path.slice(0, 100)}` }, headers: {} };
    if (method !== 'GET') return { status: 405, json: { error: `use GET on ${path}` }, headers: { Allow: 'GET' } };
    if (path === '/healthz') return { status: 200, json: { status: 'ok' }, headers: {} };
    if (path === '/readyz') {
      const answer = await deps.ready().catch(() => false);
      const { ready, reason } = typeof answer === 'boolean' ? { ready: answer, reason: undefined } : answer;
      const json = { status: ready ? 'ready' : 'not ready', ...(reason ? { reason: reason.slice(0, 300) } : {}) };
      return { status: ready ? 200 : 503, json, headers: {} };
    }
    return { status: 200, text: await metrics.registry.metrics(), headers: { 'Content-Type': metrics.registry.contentType } };
  }

  /** Without a spool: the alerts of the batches being decided that are not decided yet. */
  let deciding = 0;

  /** Without a spool: 200 only once Temporal took every alert of the batch. */
  async function decideAll(batch: CheckedBatch, res: ServerResponse): Promise<object> {
    const { outcomes, stoppedBy } = await decideBatch(batch.alerts, res);
    const total = batch.alerts.length;
    const notAccepted = outcomes.filter((d) => d === undefined || 'error' in d).length;
    const failures = outcomes.filter((d): d is { error: unknown } => d !== undefined && 'error' in d);
    // Every 503 leaves the batch to Alertmanager's retry; what this attempt delivered folds into the
    // runs it reached (incidents.ts), so the retry repeats nothing.
    const retryLater = { 'Retry-After': '10' };
    const notAcceptedText = `Temporal did not accept ${notAccepted} of ${total} alert(s)`;
    if (stoppedBy === 'deadline')
      throw new HttpError(503, `${notAcceptedText} within the batch deadline of ${batchTimeoutMs} ms`, retryLater);
    if (stoppedBy === 'sender-gone')
      throw new HttpError(503, `the sender closed the connection before the answer: ${notAccepted} of ${total} alert(s) left to its retry`);
    if (failures.length > 0) {
      const first = failures[0]!.error;
      const unavailable = stoppedBy === 'temporal-unavailable' || failures.some((f) => isTemporalUnavailable(f.error));
      throw new HttpError(unavailable ? 503 : 500, `${notAcceptedText}: ${errorText(first)}`, unavailable ? retryLater : {});
    }
    const ok = outcomes as Array<Decision & { alertname: string; fingerprint: string }>;
    const count = (d: Decision['decision']) => ok.filter((x) => x.decision === d).length;
    return {
      status: 'accepted',
      alerts: ok.length,
      truncatedAlerts: batch.truncatedAlerts,
      ...batch.invalid,
      started: count('started'),
      folded: count('folded'),
      coalesced: count('coalesced'),
      resolved: count('resolved'),
      resolvedWithoutRun: count('resolved-without-run'),
      unmatched: ok.flatMap((x) =>
        x.decision === 'unmatched' ? [{ alertname: x.alertname, fingerprint: x.fingerprint, reason: x.reason }] : [],
      ),
    };
  }

  /**
   * Decides a batch's alerts, a few Temporal calls at a time, until all are decided or the batch is
   * given up: when a call finds Temporal unreachable (every other call would wait out its deadline
   * too), at the batch deadline, or when the sender hangs up. Then it returns at once: the calls in
   * flight end by their own deadline, the alerts not begun stay undefined, and none is begun after.
   */
  async function decideBatch(
    alerts: WebhookAlert[],
    res: ServerResponse,
  ): Promise<{ outcomes: Array<Outcome | undefined>; stoppedBy?: BatchStop }> {
    const outcomes = new Array<Outcome | undefined>(alerts.length);
    const stopped = new AbortController();
    const stop = (why: BatchStop) => stopped.signal.aborted || stopped.abort(why);
    const given = new Promise<void>((resolve) => stopped.signal.addEventListener('abort', () => resolve(), { once: true }));
    const deadline = setTimeout(() => stop('deadline'), batchTimeoutMs);
    // Before the answer is written, a closed response means the connection went: nobody will read it.
    const onClose = () => res.writableEnded || stop('sender-gone');
    res.once('close', onClose);
    if (res.destroyed) stop('sender-gone');
    let next = 0;
    deciding += alerts.length;
    const worker = async () => {
      while (next < alerts.length && !stopped.signal.aborted) {
        const i = next++;
        await slices.turn();
        if (stopped.signal.aborted) {
          deciding -= 1;
          return;
        }
        const outcome = await decide(alerts[i]!);
        deciding -= 1;
        outcomes[i] = outcome;
        if ('error' in outcome && isTemporalUnavailable(outcome.error)) stop('temporal-unavailable');
      }
    };
    try {
      await Promise.race([Promise.all(Array.from({ length: Math.min(temporalConcurrency, alerts.length) }, worker)), given]);
    } finally {
      clearTimeout(deadline);
      res.off('close', onClose);
      // Those never begun: the ones in flight count themselves down when they end.
      deciding -= alerts.length - next;
    }
    // A copy: calls still in flight must not change the answer being written.
    return { outcomes: [...outcomes], ...(stopped.signal.aborted ? { stoppedBy: stopped.signal.reason as BatchStop } : {}) };
  }

  async function decide(alert: WebhookAlert, options: { quiet?: boolean } = {}): Promise<Outcome> {
    // Bounded at the door; sliced again for batches spooled before the bounds existed.
    const base = {
      alertname: (alert.labels.alertname ?? '').slice(0, 200),
      fingerprint: String(alert.fingerprint).slice(0, webhookLimits.fingerprint),
    };
    const log = { alert: base.alertname, fingerprint: base.fingerprint, status: alert.status };
    const match = matchBinding(config, alert);
    if (!match.matched) {
      countUnmatched(metrics, match.code);
      logger.info({ ...log, decision: 'unmatched', reason: match.reason }, 'alert matched no runbook');
      return { ...base, decision: 'unmatched', reason: match.reason };
    }
    const where = { runbook: match.runbook, target: match.target };
    try {
      if (alert.status === 'firing') {
        const input = planRunbook(config, match, alert, { engineQueue: deps.taskQueue });
        const r = await incidents.fire(input, { fingerprint: alert.fingerprint, at: eventTime(alert.startsAt) }, deps.taskQueue);
        const decision = r.coalesced ? 'coalesced' : r.started ? 'started' : 'folded';
        const counter = { started: metrics.runbooksStarted, folded: metrics.alertsFolded, coalesced: metrics.alertsCoalesced }[decision];
        counter.inc({ runbook: match.runbook });
        logger.info({ ...log, ...where, decision, workflowId: r.workflowId, runId: r.runId }, firedMessage[decision]);
        return { ...base, decision, ...where, workflowId: r.workflowId };
      }
      const signaled = await incidents.resolve(match.runbook, match.target, {
        fingerprint: alert.fingerprint,
        at: eventTime(alert.endsAt),
      });
      if (!signaled) metrics.alertsResolvedWithoutRun.inc({ runbook: match.runbook });
      const decision = signaled ? 'resolved' : 'resolved-without-run';
      logger.info({ ...log, ...where, decision }, signaled ? 'resolution signalled to incident' : 'resolved alert has no running incident');
      return { ...base, decision, ...where };
    } catch (err) {
      // The spool's forwarder retries and reports stalls itself.
      logger[options.quiet ? 'debug' : 'warn']({ ...log, ...where, error: errorText(err) }, 'Temporal did not accept the alert');
      return { error: err };
    }
  }

  return {
    async listen() {
      const { host, port } = deps.thread
        ? await deps.thread.listen({ accepted, other: answerOther, acceptance })
        : await listenOn(server!, config.webhook.listen);
      logger.info({ host, port, ...(deps.thread ? { thread: true } : {}) }, 'Alertmanager webhook listening');
      return { host, port };
    },
    async close() {
      await (deps.thread ? deps.thread.closeServer() : closeListener(server!));
      // Undelivered alerts stay in the spool; the next start forwards them.
      await forwarder?.stop();
    },
    drained: () => forwarder?.drained() ?? Promise.resolve(),
    deliverer,
    waitingToStart,
    // With the spool or the intake, more than a forwarding wave waiting; otherwise more alerts
    // waiting than one batch calls Temporal with at once: batches arriving side by side, or one too
    // big to start in a single round.
    startsFirst: () => waitingToStart() > (spool || intake ? forwardingAfterwards : temporalConcurrency),
  };
}

/** Alertmanager's zero time ("0001-01-01T00:00:00Z") and unparsable times become "now". */
function eventTime(text: string): string {
  const t = Date.parse(text);
  return Number.isFinite(t) && t > Date.UTC(2000, 0, 1) ? new Date(t).toISOString() : new Date().toISOString();
}
