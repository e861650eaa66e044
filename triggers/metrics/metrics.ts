// The engine's Prometheus metrics, on a registry of its own (not prom-client's global default), so
// two engines or two tests in one process never share or double-register counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InjectedSinks } from '@temporalio/worker';
import { localReadTypes, type Outcome, type RunbookMetricsSinks } from '../../workflows/messages.js';
import type { UnmatchedCode } from '../alerts/binding.js';
import { doorReadKinds, doorReadOutcomes } from '../../activities/readAhead.js';

export interface EngineMetrics {
  registry: Registry;
  alertsReceived: Counter<'status'>;
  alertsInvalid: Counter;
  /** A firing alert that started a new incident workflow. */
  runbooksStarted: Counter<'runbook'>;
  /**
   * A firing alert delivered to an incident workflow that was already running. Counted from the
   * server's own answer to SignalWithStart (its `started` flag), not guessed: see alertmanager.ts.
   */
  alertsFolded: Counter<'runbook'>;
  /** A firing alert identical to one accepted moments before (or in flight): no Temporal call. */
  alertsCoalesced: Counter<'runbook'>;
  alertsUnmatched: Counter<'reason'>;
  /** A resolved alert whose incident had already finished (or never started): nothing to tell. */
  alertsResolvedWithoutRun: Counter<'runbook'>;
  webhookRequestDuration: Histogram<'code'>;
  /** Alerts the webhook accepted into its spool and has not yet handed to Temporal. */
  spoolPending: Gauge;
  /** With webhook.intake: alerts this engine took and has not yet put in the intake, or is forwarding from it. */
  intakePending: Gauge;
  /** Their size in the spool file: what its byte cap (webhook.spoolMaxBytes) is measured against. */
  spoolPendingBytes: Gauge;
  spoolStuck: Gauge;
  /** The nice value the spooled webhook's thread runs at (webhook.threadNice, when it could be set). */
  webhookThreadNice: Gauge;
  /** The incidents' worker's workflow task slots now (worker/workflowTaskSlots.ts: fewer while a storm is started). */
  workflowTaskSlots: Gauge;
  /** Batches answered 503 because the spool was full or its disk low: Alertmanager holds them. */
  spoolRefused: Counter<'reason'>;
  /** Observed by the worker when an incident workflow closes. */
  runbookOutcomes: Counter<'runbook' | 'outcome'>;
  runbookDuration: Histogram<'runbook' | 'outcome'>;
  /** Local reads the worker dropped while evicting a run from its cache, each asked again. */
  localReadsDropped: Counter<'activity'>;
  /** What became of the reads taken at the door (activities/readAhead.ts). */
  doorReads: Counter<'read' | 'outcome'>;
  /**
   * Deliveries of a notification to a channel that failed, one per channel per attempt of the
   * notify activity, by kind (activities/notify.ts: notificationFailureKinds). Given to it as
   * NotifyDeps.failures, which also starts each configured channel's series at zero.
   */
  notificationFailures: Counter<'channel' | 'kind'>;
  /** Convenience for the worker: one call per closed incident. */
  observeOutcome(runbook: string, outcome: Outcome, durationMs: number): void;
  /** For Worker.create({ sinks }): routes RunbookMetricsSinks calls to observeOutcome. */
  sinks(): InjectedSinks<RunbookMetricsSinks>;
}

/** Outcomes whose counters start at zero, so the first one after a start is an increase Prometheus sees. */
const outcomesWatched: readonly Outcome[] = ['recovered', 'escalated', 'failed'];

export function createMetrics(options: { processMetrics?: boolean; runbooks?: readonly string[] } = {}): EngineMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const runbookOutcomes = new Counter({
    name: 'runbook_outcomes_total',
    help: 'Incident and maintenance workflows closed, by runbook and outcome.',
    labelNames: ['runbook', 'outcome'] as const,
    registers,
  });
  const runbookDuration = new Histogram({
    name: 'runbook_duration_seconds',
    help: 'Time from the start of a runbook workflow to its outcome.',
    labelNames: ['runbook', 'outcome'] as const,
    // From a quick verify-and-recover to an escalation nobody acknowledged for hours.
    buckets: [5, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 7_200, 21_600],
    registers,
  });
  // A counter series born at 1 has no earlier sample to rise from: increase() and the
  // RemediationRunbooksFailing alert would miss the first failure after every engine start.
  for (const runbook of options.runbooks ?? []) for (const outcome of outcomesWatched) runbookOutcomes.inc({ runbook, outcome }, 0);

  const localReadsDropped = new Counter({
    name: 'local_reads_dropped_total',
    help: 'Local reads (silence check, window read, health check, restart claim, the first reads of a run asked together) the worker dropped while evicting a run from its cache, each asked again after a pause: runs in progress outnumber temporal.maxCachedWorkflows.',
    labelNames: ['activity'] as const,
    registers,
  });
  for (const activity of localReadTypes) localReadsDropped.inc({ activity }, 0);

  const doorReads = new Counter({
    name: 'door_reads_total',
    help: "Reads the webhook took beside a run's start (its silence check, health check and restart claim) by what became of them: taken by the run as its own, failed (the run asked again), or unused (the run did not ask within 2 s, or did not start).",
    labelNames: ['read', 'outcome'] as const,
    registers,
  });
  for (const read of doorReadKinds) for (const outcome of doorReadOutcomes) doorReads.inc({ read, outcome }, 0);

  const spoolRefused = new Counter({
    name: 'webhook_spool_refused_total',
    help: 'Batches refused with 503 because the spool was at its byte cap (reason="bytes") or its disk low (reason="disk").',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const reason of ['bytes', 'disk']) spoolRefused.inc({ reason }, 0);

  // Channel names come from the config (and, for kind="unknown-channel", from runbooks): bounded.
  const notificationFailures = new Counter({
    name: 'notification_failures_total',
    help: 'Failed deliveries of a notification to a channel, one per channel per attempt of the notify activity, by kind: transient (retried), exhausted (transient at the last attempt: not delivered), permanent (refused for good: 4xx, credentials, recipient), unknown-channel (not in the config).',
    labelNames: ['channel', 'kind'] as const,
    registers,
  });

  const observeOutcome = (runbook: string, outcome: Outcome, durationMs: number) => {
    runbookOutcomes.inc({ runbook, outcome });
    runbookDuration.observe({ runbook, outcome }, Math.max(0, durationMs) / 1_000);
  };

  return {
    registry,
    alertsReceived: new Counter({
      name: 'alerts_received_total',
      help: 'Alerts received on the Alertmanager webhook, by alert status.',
      labelNames: ['status'] as const,
      registers,
    }),
    alertsInvalid: new Counter({
      name: 'alerts_invalid_total',
      help: 'Alerts left out of their webhook batch because their labels or fingerprint break the bounds (the rest of the batch was taken).',
      registers,
    }),
    runbooksStarted: new Counter({
      name: 'runbooks_started_total',
      help: 'Incident workflows started by a firing alert.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    alertsFolded: new Counter({
      name: 'alerts_folded_total',
      help: 'Firing alerts delivered as a signal to an incident workflow that was already running.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    alertsCoalesced: new Counter({
      name: 'alerts_coalesced_total',
      help: 'Firing alerts identical to one accepted in the last few seconds, answered without a Temporal call.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    alertsUnmatched: new Counter({
      name: 'alerts_unmatched_total',
      help: 'Alerts that no binding turned into a runbook, by reason code.',
      labelNames: ['reason'] as const,
      registers,
    }),
    alertsResolvedWithoutRun: new Counter({
      name: 'alerts_resolved_without_run_total',
      help: 'Resolved alerts whose incident workflow was no longer running.',
      labelNames: ['runbook'] as const,
      registers,
    }),
    webhookRequestDuration: new Histogram({
      name: 'webhook_request_duration_seconds',
      help: 'Alertmanager webhook requests, from arrival to response, by HTTP status code.',
      labelNames: ['code'] as const,
      // 20 ms: the storm target's p99 (issue #16), decidable from the histogram alone.
      buckets: [0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    spoolPending: new Gauge({
      name: 'webhook_spool_pending_alerts',
      help: 'Alerts accepted into the webhook spool and not yet handed to Temporal.',
      registers,
    }),
    intakePending: new Gauge({
      name: 'webhook_intake_pending_alerts',
      help: "With webhook.intake: alerts this engine's webhook took and has not yet put in the intake workflow, plus those the intake's activity is handing to Temporal through this engine.",
      registers,
    }),
    spoolPendingBytes: new Gauge({
      name: 'webhook_spool_pending_bytes',
      help: 'Bytes of spool file holding alerts not yet handed to Temporal (capped by webhook.spoolMaxBytes).',
      registers,
    }),
    spoolStuck: new Gauge({
      name: 'webhook_spool_stuck_alerts',
      help: 'Spooled alerts Temporal has refused for over a minute (each named once in the log); they are tried again and the rest move on.',
      registers,
    }),
    webhookThreadNice: new Gauge({
      name: 'webhook_thread_nice',
      help: "The nice value of the spooled webhook's thread (Linux: -20 runs first, 19 last); the engine's other threads keep theirs. Not webhook.threadNice when raising it was not allowed (no CAP_SYS_NICE): the log says why.",
      registers,
    }),
    workflowTaskSlots: new Gauge({
      name: 'worker_workflow_task_slots',
      help: "Workflow task slots the incidents' worker may use now: 2 while a storm's alerts wait to be started (more than 48 in the spool or going through the intake, or without either more than 8 being answered; for at most 15 s at a time), its usual number otherwise.",
      registers,
    }),
    spoolRefused,
    runbookOutcomes,
    runbookDuration,
    localReadsDropped,
    doorReads,
    notificationFailures,
    observeOutcome,
    sinks: () => ({
      metrics: {
        runbookOutcome: {
          fn: (_info, runbook, outcome, durationMs) => observeOutcome(runbook, outcome, durationMs),
          callDuringReplay: false,
        },
        localReadDropped: {
          // The type comes from the workflow code, not from an alert: still, only the known four are series.
          fn: (_info, activityType) => {
            if ((localReadTypes as readonly string[]).includes(activityType)) localReadsDropped.inc({ activity: activityType });
          },
          callDuringReplay: false,
        },
      },
    }),
  };
}

/** Typed helper so callers cannot invent reason values outside the bounded set. */
export function countUnmatched(metrics: EngineMetrics, code: UnmatchedCode): void {
  metrics.alertsUnmatched.inc({ reason: code });
}
