// Every activity a runbook may call, with its timeouts and retries chosen by what it does:
// reads retry freely, idempotent writes (notify, expire) retry hard, destructive writes barely.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  proxySinks,
  sleep,
  TemporalFailure,
  TimeoutFailure,
  type ActivityInterfaceFor,
  type ActivityOptions,
  type LocalActivityOptions,
  workflowInfo,
} from '@temporalio/workflow';
import type { EngineActivities, GuardrailActivities, TargetActivities } from '../../activities/contract.js';
import type { TargetKind } from '../../config/schema.js';
import type { localReadTypes, RunbookMetricsSinks } from '../messages.js';
import { dropsAskedAgain, isPatched, localReads, localRestartClaim } from './patchesFirst.js';
import { droppedReadPauseMs, together } from './readsTogether.js';

// Bad input, a missing target and refused credentials are thrown as non-retryable failures by the
// activities themselves (activities/failures.ts), so no list of types is repeated here; that module
// reads files and cannot be bundled into workflow code anyway.

function opts(startToClose: string, maximumAttempts: number, extra: Partial<ActivityOptions> = {}): ActivityOptions {
  return {
    startToCloseTimeout: startToClose,
    ...extra,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts },
  };
}

function localOpts(startToClose: string, maximumAttempts: number): LocalActivityOptions {
  return {
    startToCloseTimeout: startToClose,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts },
  };
}

/**
 * How many times a local read the worker dropped is asked again, and the pause before each. Each
 * time costs the run a workflow task, which under the backlog that causes it may wait minutes.
 */
export const droppedReadRetries = 10;

/**
 * A local activity's failure arrives as its bare cause (an ApplicationFailure), not wrapped in an
 * ActivityFailure as an activity's is: wrapped here, so a failure still names the activity that
 * failed ("claimRestart failed: …") and is judged permanent or not by its cause, whichever way it ran.
 *
 * A local read can also come back cancelled when the run was not: the worker cancels a run's
 * outstanding local activities when it evicts the run from its cache (sdk-core, a full cache under
 * a backlog), and records them so. Such a read is asked again after a pause (the pause lets the
 * task end and the eviction finish; asked at once, the same eviction would cancel it again). It is
 * the same request: a claim carries its request id, and the guard answers a repeated one with the
 * lease it granted. After `droppedReadRetries` it fails as a read that could not be made, which is
 * not a cancellation: the run goes on as it does when a read fails. Runs started before stopped
 * at such a read; they replay that way (patchesFirst.ts, decided in the run's first activation).
 */
function asActivity<A extends unknown[], R>(
  activityType: (typeof localReadTypes)[number],
  call: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args) => {
    const scope = CancellationScope.current();
    for (let retry = 0; ; retry++) {
      try {
        return await call(...args);
      } catch (err) {
        if (!isCancellation(err) || scope.consideredCancelled || !dropsAskedAgain()) throw named(activityType, err);
        if (retry === droppedReadRetries) {
          const cause = ApplicationFailure.retryable(
            `the worker dropped it ${retry + 1} times (evicting the run from its cache) while the run was not cancelled`,
            'LocalReadDropped',
          );
          throw new ActivityFailure(cause.message, activityType, undefined, 'MAXIMUM_ATTEMPTS_REACHED', undefined, cause);
        }
        log.warn('local read dropped by the worker; asking again', { activityType, retry: retry + 1 });
        proxySinks<RunbookMetricsSinks>().metrics.localReadDropped(activityType);
        await sleep(droppedReadPauseMs);
      }
    }
  };
}

function named(activityType: string, err: unknown): unknown {
  if (err instanceof ActivityFailure || isCancellation(err) || !(err instanceof TemporalFailure)) return err;
  const permanent = err instanceof ApplicationFailure && err.nonRetryable;
  return new ActivityFailure(
    err.message,
    activityType,
    undefined,
    permanent ? 'NON_RETRYABLE_FAILURE' : 'MAXIMUM_ATTEMPTS_REACHED',
    undefined,
    err,
  );
}

/**
 * The reads between an alert and its restart (the silence check, the maintenance-window read, a
 * health check of a target on this worker's own queue) run as local activities: in the workflow
 * task that asked for them, with no activity task and no further workflow task per read. Each was
 * a server round trip (activity completed, workflow task scheduled, started, completed) of 10–25 ms
 * on the alert's critical path (bench/timeline.ts). Runs started before asked them as activities
 * and replay that way. A systemd unit is still checked on its host agent's queue: only that worker
 * can reach it (triggers/plan.ts targetQueue). The target's kind decides, not a comparison with
 * workflowInfo().taskQueue: a replaying worker has a queue name of its own.
 */
function readsLocally(): boolean {
  return isPatched(localReads);
}

/**
 * The guard's restart claim, the last step before a restart, as a local activity too: one server
 * round trip less between the claim's answer and the restart. A claim asked again (the workflow
 * task retried) carries the same request id, and the guard answers it with the lease it granted.
 */
const claimsLocally = localRestartClaim;

export type TargetSteps = TargetActivities;
export type EngineSteps = EngineActivities & GuardrailActivities;

// Module state is the run's own: each workflow run has its own module instances.
let agentWaitMs: number | undefined;

/**
 * Host agents' queues this run found no agent on: a step there was not taken within its wait.
 * Later steps on such a queue wait only `agentRecheckMs`, so a run whose first check found the
 * agent dead does not wait the whole guardrails.agentWait again for its diagnosis before it pages.
 * A step an agent takes clears the mark: the agent is back, and the full wait applies again.
 */
const agentsMissing = new Set<string>();

/**
 * How long a step waits on a queue this run already found without an agent: a tenth of the plan's
 * wait, between 1 and 5 s. An agent that came back takes a task within milliseconds of its poll.
 */
function agentRecheckMs(waitMs: number): number {
  return Math.min(5_000, Math.max(1_000, Math.round(waitMs / 10)));
}

/**
 * How long this run's activities on a host agent's queue wait for an agent to take them (the plan's
 * guardrails.agentWait): a dead agent then fails the step ("no host agent took it"), and the run
 * goes on to escalate, instead of waiting without end and paging nobody. Runs planned before carry
 * none and wait as long as it takes, as they did.
 */
export function waitForAgentsAtMost(ms: number | undefined): void {
  agentWaitMs = ms;
  agentsMissing.clear();
}

/** Whether the plan bounds this queue's wait: a host agent's queue, in a run planned with a wait. */
function waitsForAgent(taskQueue: string): boolean {
  return agentWaitMs !== undefined && taskQueue !== workflowInfo().taskQueue;
}

/**
 * The wait for a worker, on a queue this engine does not poll itself: a host agent's. The engine's
 * own queue gets none, so a step asked while every engine is down runs when one is back.
 */
function agentWait(taskQueue: string): Partial<ActivityOptions> {
  if (!waitsForAgent(taskQueue)) return {};
  return { scheduleToStartTimeout: agentsMissing.has(taskQueue) ? agentRecheckMs(agentWaitMs!) : agentWaitMs! };
}

/** The activity waited on its queue for a worker past its schedule-to-start timeout (agentWait). */
export function noWorkerTookIt(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof TimeoutFailure && cause.timeoutType === 'SCHEDULE_TO_START';
}

/**
 * Activities on `taskQueue` with `options`. On a host agent's queue each call takes the wait the
 * queue has when it is asked (agentWait), and its outcome tells whether an agent is there.
 */
function onQueue<T>(taskQueue: string, options: ActivityOptions): ActivityInterfaceFor<T> {
  if (!waitsForAgent(taskQueue)) return proxyActivities<T>({ taskQueue, ...options });
  return new Proxy({} as ActivityInterfaceFor<T>, {
    get: (_, name) =>
      typeof name !== 'string'
        ? undefined
        : async (...args: unknown[]) => {
            const call = proxyActivities<Record<string, (...a: unknown[]) => Promise<unknown>>>({
              taskQueue,
              ...options,
              ...agentWait(taskQueue),
            })[name]!;
            try {
              const result = await call(...args);
              agentsMissing.delete(taskQueue);
              return result;
            } catch (err) {
              if (noWorkerTookIt(err)) agentsMissing.add(taskQueue);
              throw err;
            }
          },
  });
}

/**
 * Activities that act on one target, on the queue of the worker (engine or host agent) that owns it.
 * Given the target's kind, a health check of a target the engine itself reaches is a local activity.
 */
/**
 * `longRunMs`: how long a backup or VACUUM may take. `untilMs`, inside a maintenance window: the
 * window's end, which no attempt of them may pass (the retry included), since the window's silence
 * and guard entry end there.
 */
export function targetActivities(taskQueue: string, longRunMs = 3_600_000, kind?: TargetKind, untilMs?: number): TargetSteps {
  // A verify inside a polling loop must answer quickly; the loop is the retry.
  const checks = onQueue<TargetActivities>(taskQueue, opts('1m', 2));
  const localVerify = together(
    'verifyTarget',
    asActivity('verifyTarget', proxyLocalActivities<TargetActivities>(localOpts('1m', 2)).verifyTarget),
  );
  const diagnosis = onQueue<TargetActivities>(taskQueue, opts('2m', 2));
  // A restart that timed out may still have happened: one retry at most, and verification decides.
  // It heartbeats throughout, so a worker killed mid-restart costs 20 s, not the 3-minute limit.
  const restarts = onQueue<TargetActivities>(taskQueue, opts('3m', 2, { heartbeatTimeout: '20s' }));
  // Backups and VACUUM run long; they heartbeat, so a dead worker is noticed in minutes, not hours.
  const long = onQueue<TargetActivities>(
    taskQueue,
    opts(`${Math.max(60_000, longRunMs)}ms`, 2, {
      heartbeatTimeout: '2m',
      ...(untilMs !== undefined ? { scheduleToCloseTimeout: `${Math.max(1_000, untilMs - Date.now())}ms` } : {}),
    }),
  );
  // Deleting old files again deletes what is left: a second try is harmless. A forced rotation
  // twice rotates twice: once only. Both heartbeat while their program runs.
  const upkeep = onQueue<TargetActivities>(taskQueue, opts('1h', 2, { heartbeatTimeout: '1m' }));
  const rotation = onQueue<TargetActivities>(taskQueue, opts('6m', 1, { heartbeatTimeout: '1m' }));
  return {
    verifyTarget: (name) => (kind !== undefined && kind !== 'systemd' && readsLocally() ? localVerify : checks.verifyTarget)(name),
    diagnoseTarget: diagnosis.diagnoseTarget,
    targetLogs: diagnosis.targetLogs,
    restartTarget: restarts.restartTarget,
    runTargetAction: restarts.runTargetAction,
    backupTarget: long.backupTarget,
    maintainTarget: long.maintainTarget,
    hostDiagnostics: diagnosis.hostDiagnostics,
    runTargetCommand: commandActivity(taskQueue, false),
    housekeepFiles: upkeep.housekeepFiles,
    rotateLogs: rotation.rotateLogs,
  };
}

/**
 * A configured command: one that only reads is tried again on a transient failure; one that may
 * change something is tried once (it may have run). It heartbeats, so a worker that dies is noticed
 * in 30 s; the command's own timeout (at most 10 minutes) ends it before this limit.
 */
export function commandActivity(taskQueue: string, readOnly: boolean): TargetActivities['runTargetCommand'] {
  return onQueue<TargetActivities>(taskQueue, opts('11m', readOnly ? 3 : 1, { heartbeatTimeout: '30s' })).runTargetCommand;
}

/**
 * A page: retried hard, since the idempotency key and the delivery record make a repeat harmless,
 * and a lost page is not. notify heartbeats every 2 s, also while a receiver is slow, so an engine
 * killed mid-page is noticed after 10 s and the page goes out from another (or the next) engine,
 * not after the 30 s limit. Its record reaches the server within a second (the workers'
 * maxHeartbeatThrottleInterval, worker/temporal.ts), not the 8 s the SDK would hold it for with
 * this timeout.
 */
export const notifyOptions: ActivityOptions = opts('30s', 8, { heartbeatTimeout: '10s' });

/** Activities on the engine's own queue: notifications, silences and the guard. */
export function engineActivities(): EngineSteps {
  const notify = proxyActivities<EngineActivities>(notifyOptions);
  const silences = proxyActivities<EngineActivities>(opts('30s', 3));
  // Expiring the silence is the one cleanup that must happen, so it gets many tries.
  const expire = proxyActivities<EngineActivities>(opts('30s', 12));
  const guard = proxyActivities<GuardrailActivities>(opts('30s', 6));
  const localSilences = proxyLocalActivities<EngineActivities>(localOpts('30s', 3));
  const localGuard = proxyLocalActivities<GuardrailActivities>(localOpts('30s', 6));
  const localSuppression = together('checkSuppression', asActivity('checkSuppression', localSilences.checkSuppression));
  const localWindow = asActivity('maintenanceWindowFor', localGuard.maintenanceWindowFor);
  const localClaim = together('claimRestart', asActivity('claimRestart', localGuard.claimRestart));
  // The activity answers within the step's own timeout; 5xx and refused connections are retried.
  const http = proxyActivities<EngineActivities>(opts('2m', 3));
  // A read: a Prometheus restarting is waited out; a query it refuses fails at once (non-retryable).
  const metrics = proxyActivities<EngineActivities>(opts('1m', 3));
  return {
    httpRequest: http.httpRequest,
    queryMetric: metrics.queryMetric,
    // A read like a metric: an Alertmanager restarting is waited out.
    firingAlerts: metrics.firingAlerts,
    notify: notify.notify,
    createSilence: silences.createSilence,
    // Without alert labels, the one argument runs started before asked with.
    checkSuppression: (target, alertLabels) => {
      const check = readsLocally() ? localSuppression : silences.checkSuppression;
      return alertLabels ? check(target, alertLabels) : check(target);
    },
    expireSilence: expire.expireSilence,
    reserveRestart: guard.reserveRestart,
    acquireSlot: guard.acquireSlot,
    claimRestart: (req) => (isPatched(claimsLocally) ? localClaim : guard.claimRestart)(req),
    releaseSlot: guard.releaseSlot,
    withdrawClaim: guard.withdrawClaim,
    openWindow: guard.openWindow,
    closeWindow: guard.closeWindow,
    maintenanceWindowFor: (target) => (readsLocally() ? localWindow : guard.maintenanceWindowFor)(target),
  };
}
