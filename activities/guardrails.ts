// The way workflows reach the guard workflow. Each call is an update-with-start, so the guard
// comes into being on first use and nobody has to remember to start it before the first incident.
import { Client, WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { GuardrailActivities, RestartClaimed, Suppression } from './contract.js';
import { badInput, classify, operation } from './failures.js';
import {
  acquireSlotUpdate,
  claimRestartUpdate,
  closeWindowUpdate,
  guardBatchUpdate,
  guardrailsWorkflowId,
  guardrailsWorkflowType,
  guardStateQuery,
  openWindowUpdate,
  releaseSlotUpdate,
  withdrawClaimUpdate,
  reserveRestartUpdate,
  maxGuardBatch,
  type GuardBatchAnswer,
  type GuardOp,
  type GuardOpResult,
  type WindowLease,
} from './guardMessages.js';
import { groupCommit } from './groupCommit.js';
import { activitySignal, inFlightLimit, untilAborted } from './limits.js';
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

/** After a guard refused guardBatch (an older engine serves it), how long to ask one by one before trying again. */
const batchRetryMs = 60_000;

/** A single update's refusal by the guard (its validator) as an answer; anything else stays an error. */
function refusedOrThrow(err: unknown): GuardOpResult {
  if (err instanceof WorkflowUpdateFailedError) return { refused: err.cause?.message ?? err.message };
  throw err;
}

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

  // The open windows of the targets a batch's claims restart, as the guard answered them with the
  // batch. An incident asks its target's window beside its restart claim: a read asked while that
  // batch is at the guard takes its answer instead of a query, which the guard would answer in a
  // workflow task ahead of the batch's, holding up the claim on the path from alert to restart.
  // Resolves undefined when the guard answered no windows (one from before) or the batch failed:
  // the read then queries. An answer is as fresh as the batch, within windowCacheMs like a query's;
  // a window this engine opens or closes drops them all, as it drops the shared read.
  const windowsWithClaims = new Map<string, { at: number; read: Promise<WindowLease[] | undefined> }>();
  const besideClaim = (target: string, now: number): Promise<WindowLease[] | undefined> | undefined => {
    if (windows && now - windows.at <= windowCacheMs) return undefined;
    const asked = windowsWithClaims.get(target);
    return asked && now - asked.at <= windowCacheMs ? asked.read : undefined;
  };
  const windowsChanged = () => {
    windows = undefined;
    windowsWithClaims.clear();
  };
  /** Registers the batch's window answer for `targets` before it is sent; settle it with what the guard answered. */
  const awaitWindows = (targets: string[]): ((answer: WindowLease[] | undefined) => void) => {
    let settle: (answer: WindowLease[] | undefined) => void = () => undefined;
    const read = new Promise<WindowLease[] | undefined>((resolve) => (settle = resolve));
    const at = Date.now();
    for (const [target, asked] of windowsWithClaims) if (at - asked.at > windowCacheMs) windowsWithClaims.delete(target);
    for (const target of targets) windowsWithClaims.set(target, { at, read });
    return settle;
  };

  /** The guard started if it is not running yet. A start operation can be used once: every call builds its own. */
  const startGuard = () =>
    new WithStartWorkflowOperation(guardrailsWorkflowType, {
      workflowId,
      taskQueue: deps.guardQueue ?? deps.taskQueue,
      args: [{}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });

  /** Bounded in time, and given up when the activity is cancelled (worker shutdown, timeout). */
  function call<T>(fn: () => Promise<T>, signal = activitySignal()): Promise<T> {
    return signal ? deps.client.connection.withAbortSignal(signal, () => bounded(fn)) : bounded(fn);
  }
  /** Bounded in time only: a batch serves many activities, so no one of them can call it off. */
  function bounded<T>(fn: () => Promise<T>): Promise<T> {
    return deps.client.connection.withDeadline(Date.now() + guardCallMs, fn);
  }

  /** One update to the guard, starting it if need be. Update ids are unique across all of a workflow's updates, whatever their name. */
  function ask<Ret, Args extends unknown[]>(def: UpdateDefinition<Ret, Args>, args: Args, updateId?: string): Promise<Ret> {
    return deps.client.workflow.executeUpdateWithStart(def, {
      args,
      updateId: updateId === undefined ? undefined : `${def.name}:${updateId}`,
      startWorkflowOperation: startGuard(),
    });
  }

  async function update<Ret, Args extends unknown[]>(
    def: UpdateDefinition<Ret, Args>,
    what: string,
    args: Args,
    updateId?: string,
  ): Promise<Ret> {
    try {
      // Waiting for a turn and the call itself are both given up when the activity is.
      const signal = activitySignal();
      return await inTurn(() => call(() => ask(def, args, updateId), signal), signal);
    } catch (err) {
      // The guard refused the request itself (validator): asking again cannot help.
      if (err instanceof WorkflowUpdateFailedError) throw badInput(what, err.cause?.message ?? err.message);
      throw classify(what, err);
    }
  }

  // Claims, releases and withdrawals from every incident of this process, as few updates as the
  // guard's turns allow: each update carries whatever queued while the one before waited. A guard
  // served by an engine from before guardBatch refuses it: then each is asked on its own again.
  let batchRefusedAt: number | undefined;
  const sendBatch = async (ops: GuardOp[]): Promise<GuardOpResult[]> => {
    if (batchRefusedAt === undefined || Date.now() - batchRefusedAt > batchRetryMs) {
      const targets = [
        ...new Set(ops.flatMap((o) => (o.op === 'claimRestart' && typeof o.req?.target === 'string' ? [o.req.target] : []))),
      ];
      const settleWindows = awaitWindows(targets);
      try {
        const answer: GuardOpResult[] | GuardBatchAnswer = await bounded(() =>
          ask(guardBatchUpdate, targets.length > 0 ? [ops, { windowsFor: targets }] : [ops]),
        );
        if (Array.isArray(answer)) {
          settleWindows(undefined);
          return answer;
        }
        settleWindows(answer.windows);
        return withWindows(ops, answer);
      } catch (err) {
        settleWindows(undefined);
        if (!(err instanceof WorkflowUpdateFailedError && /No registered handler for update/.test(err.cause?.message ?? ''))) throw err;
        batchRefusedAt = Date.now();
      }
    }
    // One at a time: the server admits only a few updates in flight per workflow.
    const answers: GuardOpResult[] = [];
    for (const op of ops) answers.push(await bounded(() => single(op)).then((ok) => ({ ok }), refusedOrThrow));
    return answers;
  };
  // Not update(): the batch already holds a turn, and waiting for another would deadlock.
  const single = (op: GuardOp): Promise<RestartClaimed | boolean> => {
    switch (op.op) {
      case 'claimRestart':
        return ask(claimRestartUpdate, [op.req], op.req.requestId);
      case 'releaseSlot':
        return ask(releaseSlotUpdate, [op.leaseId]);
      case 'withdrawClaim':
        return ask(withdrawClaimUpdate, [op.requestId], op.requestId);
    }
  };
  const batched = groupCommit(sendBatch, inTurn, maxGuardBatch);
  async function viaBatch<T extends RestartClaimed | boolean>(op: GuardOp, what: string): Promise<T> {
    let answer: GuardOpResult;
    try {
      answer = await batched(op, activitySignal());
    } catch (err) {
      throw classify(what, err);
    }
    if ('refused' in answer) throw badInput(what, answer.refused);
    return answer.ok as T;
  }

  return {
    reserveRestart: (req) => update(reserveRestartUpdate, operation('restart reservation', 'target', req.target), [req], req.requestId),

    acquireSlot: (req) => update(acquireSlotUpdate, operation('destructive slot request', 'target', req.target), [req], req.requestId),

    claimRestart: (req) => viaBatch<RestartClaimed>({ op: 'claimRestart', req }, operation('restart claim', 'target', req.target)),

    releaseSlot: (leaseId) => viaBatch<boolean>({ op: 'releaseSlot', leaseId }, `release of destructive slot '${leaseId}'`),

    withdrawClaim: (requestId) => viaBatch<boolean>({ op: 'withdrawClaim', requestId }, `withdrawal of restart claim '${requestId}'`),

    // This engine's own incidents see a window it opened or closed at once, not a second later.
    openWindow: (req) => update(openWindowUpdate, `opening of maintenance window '${req.schedule}'`, [req]).finally(windowsChanged),

    closeWindow: (holder) =>
      update(closeWindowUpdate, `closing of maintenance windows held by '${holder}'`, [holder]).finally(windowsChanged),

    async maintenanceWindowFor(target: string): Promise<Suppression> {
      try {
        // Waiting for the batch is given up with the activity, as a query would be.
        const beside = besideClaim(target, Date.now());
        const leases = (beside && (await untilAborted(beside, activitySignal()))) ?? (await openWindows());
        return windowSuppression(target, leases, Date.now());
      } catch (err) {
        // No guard yet means nothing was ever opened.
        if (err instanceof WorkflowNotFoundError) return { suppressed: false };
        throw classify(operation('maintenance window lookup', 'target', target), err);
      }
    },
  };
}

/** The open window among `leases` that covers `target`, as a suppression. */
function windowSuppression(target: string, leases: WindowLease[], now: number): Suppression {
  const window = leases.find((w) => w.target === target && w.until > now);
  if (!window) return { suppressed: false };
  const left = formatDuration(Math.max(0, window.until - now));
  return {
    suppressed: true,
    reason: `maintenance window '${window.schedule}' until ${new Date(window.until).toISOString()} (${left} left)`,
  };
}

/**
 * A batch's answers, each claim's with its target's window as the guard answered it beside: a run
 * that asked its claim ahead reads the window from it instead of asking again (steps/checksAhead.ts).
 */
function withWindows(ops: GuardOp[], answer: GuardBatchAnswer): GuardOpResult[] {
  const now = Date.now();
  return answer.answers.map((result, i) => {
    const op = ops[i];
    if (op?.op !== 'claimRestart' || !('ok' in result) || typeof result.ok !== 'object') return result;
    return { ok: { ...result.ok, window: windowSuppression(op.req.target, answer.windows, now) } };
  });
}
