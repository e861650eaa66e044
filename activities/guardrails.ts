// The way workflows reach the guard workflow. Each call is an update-with-start, so the guard
// comes into being on first use and nobody has to remember to start it before the first incident.
import { Client, WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { GuardrailActivities, Suppression } from './contract.js';
import { badInput, classify, operation } from './failures.js';
import {
  acquireSlotUpdate,
  claimRestartUpdate,
  closeWindowUpdate,
  guardrailsWorkflowId,
  guardrailsWorkflowType,
  guardStateQuery,
  openWindowUpdate,
  releaseSlotUpdate,
  withdrawClaimUpdate,
  reserveRestartUpdate,
  type WindowLease,
} from './guardMessages.js';
import { activitySignal, inFlightLimit } from './limits.js';
import { formatDuration } from '../config/duration.js';

export interface GuardrailDeps {
  client: Client;
  /** The engine's task queue: it names the guard (one per queue). */
  taskQueue: string;
  /** Where the guard runs when it has to be started (default: taskQueue). The engine gives it a
   * queue and worker of its own, so its tasks never wait behind hundreds of incidents' tasks. */
  guardQueue?: string;
  /** Overrides the per-queue guard id (tests isolate a guard of their own). */
  workflowId?: string;
}

/** How long one read of the open maintenance windows answers every incident asking. */
const windowCacheMs = 1_000;

/** One call to the guard: at most this long, and abandoned when the activity is cancelled. */
const guardCallMs = 20_000;

/**
 * Updates in flight to the guard from this process. The server admits 10 per workflow
 * (history.maxInFlightUpdates) and refuses the rest with RESOURCE_EXHAUSTED, which the client
 * retries after 1, 2, 4, 5 s: under an alert storm every restart claim took seconds. Two engines
 * sharing a queue stay within the server's limit.
 */
const guardUpdatesInFlight = 5;

export function createGuardrailActivities(deps: GuardrailDeps): GuardrailActivities {
  const workflowId = deps.workflowId ?? guardrailsWorkflowId(deps.taskQueue);
  const inTurn = inFlightLimit(guardUpdatesInFlight);

  // The guard answers each query with a workflow task of its own, in line behind its updates: when
  // an alert storm opens hundreds of incidents, one query per incident starves them all. So one
  // read of the open windows at a time, shared by every incident asking within windowCacheMs. A
  // window opened in that second is seen a second late, which the silence created with it covers.
  let windows: { at: number; read: Promise<WindowLease[]> } | undefined;
  const openWindows = (): Promise<WindowLease[]> => {
    if (!windows || Date.now() - windows.at > windowCacheMs) {
      const read = call(() => deps.client.workflow.getHandle(workflowId).query(guardStateQuery)).then((s) => s.windows);
      windows = { at: Date.now(), read };
      // A failed read is not shared: the next incident asks again.
      read.catch(() => {
        if (windows?.read === read) windows = undefined;
      });
    }
    return windows.read;
  };

  /** Bounded in time, and given up when the activity is cancelled (worker shutdown, timeout). */
  function call<T>(fn: () => Promise<T>, signal = activitySignal()): Promise<T> {
    const bounded = () => deps.client.connection.withDeadline(Date.now() + guardCallMs, fn);
    return signal ? deps.client.connection.withAbortSignal(signal, bounded) : bounded();
  }

  async function update<Ret, Args extends unknown[]>(
    def: UpdateDefinition<Ret, Args>,
    what: string,
    args: Args,
    updateId?: string,
  ): Promise<Ret> {
    // A start operation can be used once, so every call builds its own.
    const startWorkflowOperation = new WithStartWorkflowOperation(guardrailsWorkflowType, {
      workflowId,
      taskQueue: deps.guardQueue ?? deps.taskQueue,
      args: [{}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    try {
      // Update ids are unique across all of a workflow's updates, whatever their name.
      const signal = activitySignal();
      const ask = () =>
        deps.client.workflow.executeUpdateWithStart(def, {
          args,
          updateId: updateId === undefined ? undefined : `${def.name}:${updateId}`,
          startWorkflowOperation,
        });
      // Waiting for a turn and the call itself are both given up when the activity is.
      return await inTurn(() => call(ask, signal), signal);
    } catch (err) {
      // The guard refused the request itself (validator): asking again cannot help.
      if (err instanceof WorkflowUpdateFailedError) throw badInput(what, err.cause?.message ?? err.message);
      throw classify(what, err);
    }
  }

  return {
    reserveRestart: (req) => update(reserveRestartUpdate, operation('restart reservation', 'target', req.target), [req], req.requestId),

    acquireSlot: (req) => update(acquireSlotUpdate, operation('destructive slot request', 'target', req.target), [req], req.requestId),

    claimRestart: (req) => update(claimRestartUpdate, operation('restart claim', 'target', req.target), [req], req.requestId),

    releaseSlot: (leaseId) => update(releaseSlotUpdate, `release of destructive slot '${leaseId}'`, [leaseId]),

    withdrawClaim: (requestId) => update(withdrawClaimUpdate, `withdrawal of restart claim '${requestId}'`, [requestId], requestId),

    // This engine's own incidents see a window it opened or closed at once, not a second later.
    openWindow: (req) =>
      update(openWindowUpdate, `opening of maintenance window '${req.schedule}'`, [req]).finally(() => (windows = undefined)),

    closeWindow: (holder) =>
      update(closeWindowUpdate, `closing of maintenance windows held by '${holder}'`, [holder]).finally(() => (windows = undefined)),

    async maintenanceWindowFor(target: string): Promise<Suppression> {
      try {
        const now = Date.now();
        const window = (await openWindows()).find((w) => w.target === target && w.until > now);
        if (!window) return { suppressed: false };
        return {
          suppressed: true,
          reason: `maintenance window '${window.schedule}' until ${new Date(window.until).toISOString()} (${formatDuration(
            Math.max(0, window.until - Date.now()),
          )} left)`,
        };
      } catch (err) {
        // No guard yet means nothing was ever opened.
        if (err instanceof WorkflowNotFoundError) return { suppressed: false };
        throw classify(operation('maintenance window lookup', 'target', target), err);
      }
    },
  };
}
