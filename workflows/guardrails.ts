// The guard: one long-lived workflow that every incident asks before a destructive action.
// Anti-flap and the concurrency cap only mean something across incidents and workers, so their
// state lives here, in workflow history, rather than in any one worker's memory. Updates (not
// signals) because the caller needs the answer before it acts.
import { allHandlersFinished, condition, continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import type {
  RestartClaim,
  RestartClaimed,
  RestartDecision,
  RestartReservation,
  SettlesOnce,
  SlotGrant,
  SlotRequest,
} from '../activities/contract.js';
import {
  acquireSlotUpdate,
  claimRestartUpdate,
  closeWindowUpdate,
  guardBatchUpdate,
  guardStateQuery,
  maxGuardBatch,
  openWindowUpdate,
  releaseSlotUpdate,
  withdrawClaimUpdate,
  reserveRestartUpdate,
  type GuardBatchAnswer,
  type GuardBatchAsk,
  type GuardOp,
  type GuardOpResult,
  type GuardrailsInput,
  type GuardState,
  type SlotLease,
} from '../activities/guardMessages.js';
import { formatDuration } from '../config/duration.js';

// Those who start, watch or test the guard import its surface from here too.
export * from '../activities/guardMessages.js';

const defaultHistoryLimit = 2_000;

export async function guardrails(input: GuardrailsInput = {}): Promise<void> {
  const state: GuardState = input.state ?? { restarts: {}, leases: [], windows: [], retainMs: 3_600_000 };
  // A guard of the first build that kept settled ids carried them as an object, id → time.
  const carried: unknown = state.settled;
  if (carried && !Array.isArray(carried)) state.settled = Object.entries(carried as Record<string, number>);

  setHandler(reserveRestartUpdate, (req) => reserveRestart(state, req, Date.now()), {
    validator: (req) => {
      need(req?.target, 'target');
      need(req?.requestId, 'requestId');
      if (!(req.max >= 0) || !(req.windowMs > 0)) throw new Error('reserveRestart needs max >= 0 and windowMs > 0');
    },
  });
  setHandler(acquireSlotUpdate, (req) => acquireSlot(state, req, Date.now()), {
    validator: (req) => {
      need(req?.requestId, 'requestId');
      need(req?.target, 'target');
      if (!(req.max >= 1) || !(req.leaseMs > 0)) throw new Error('acquireSlot needs max >= 1 and leaseMs > 0');
    },
  });
  setHandler(claimRestartUpdate, (req) => claimRestart(state, req, Date.now()), { validator: checkClaim });
  setHandler(releaseSlotUpdate, (leaseId) => releaseSlot(state, leaseId));
  setHandler(withdrawClaimUpdate, (requestId) => withdrawClaim(state, requestId));
  setHandler(guardBatchUpdate, (ops, ask?: GuardBatchAsk) => batchAnswer(state, ops, ask, Date.now()), {
    validator: (ops, ask?: GuardBatchAsk) => {
      if (!Array.isArray(ops) || ops.length < 1 || ops.length > maxGuardBatch) {
        throw new Error(`guardBatch needs 1 to ${maxGuardBatch} operations`);
      }
      const targets = ask?.windowsFor;
      if (
        ask !== undefined &&
        (!Array.isArray(targets) || targets.length > maxGuardBatch || !targets.every((t) => typeof t === 'string'))
      ) {
        throw new Error(`guardBatch asks windows for 0 to ${maxGuardBatch} target names`);
      }
    },
  });
  setHandler(
    openWindowUpdate,
    (req) => {
      for (const target of req.targets) {
        state.windows = state.windows.filter((w) => !(w.holder === req.holder && w.target === target));
        state.windows.push({ holder: req.holder, schedule: req.schedule, target, until: req.untilMs });
      }
    },
    {
      validator: (req) => {
        need(req?.holder, 'holder');
        if (!Array.isArray(req.targets) || !(req.untilMs > 0)) throw new Error('openWindow needs targets and untilMs');
        // The schedule's own runs never overlap (Temporal skips a firing while one runs), and a run
        // by hand is refused while the schedule's runs; but a firing while a run by hand holds the
        // window would back up and VACUUM the same targets side by side. Refused here, where every
        // run of the schedule opens its window. (A validator's refusal is not in the history.)
        const other = state.windows.find((w) => w.schedule === req.schedule && w.holder !== req.holder && w.until > Date.now());
        if (other) {
          throw new Error(
            `maintenance '${req.schedule}' is already running: ${other.holder} holds its window on '${other.target}' until ${new Date(other.until).toISOString()}`,
          );
        }
      },
    },
  );
  setHandler(closeWindowUpdate, (holder) => {
    const before = state.windows.length;
    state.windows = state.windows.filter((w) => w.holder !== holder);
    return before - state.windows.length;
  });
  // A query must not change state (nothing it does is in history), so it prunes a copy. The settled
  // ids (up to maxSettledKept) are only counted: the gauges ask this every few seconds.
  setHandler(guardStateQuery, () => {
    const { settled, ...rest } = state;
    const now = Date.now();
    const copy = prune(JSON.parse(JSON.stringify(rest)) as GuardState, now, true);
    return {
      ...copy,
      settledKept: (settled ?? []).filter(([, at]) => at > now - state.retainMs).length,
      now,
      runId: workflowInfo().runId,
    };
  });

  const limit = input.historyLimit ?? defaultHistoryLimit;
  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= limit);
  // Updates accepted in this run must complete here: an update cut off by continue-as-new is lost.
  await condition(allHandlersFinished);
  await continueAsNew<typeof guardrails>({ state: prune(state, Date.now(), true), historyLimit: input.historyLimit });
}

export function checkClaim(req: RestartClaim): void {
  need(req?.target, 'target');
  need(req?.requestId, 'requestId');
  need(req?.holder, 'holder');
  if (!(req.max >= 0) || !(req.windowMs > 0)) throw new Error('claimRestart needs max >= 0 and windowMs > 0');
  if (!(req.maxConcurrent >= 1) || !(req.leaseMs > 0)) throw new Error('claimRestart needs maxConcurrent >= 1 and leaseMs > 0');
}

/**
 * A guardBatch's answer: each operation decided in order, and when asked, the open maintenance
 * windows of the targets named (read after the operations, which never change a window).
 */
export function batchAnswer(
  state: GuardState,
  ops: GuardOp[],
  ask: GuardBatchAsk | undefined,
  now: number,
): GuardOpResult[] | GuardBatchAnswer {
  const answers = ops.map((op) => applyOp(state, op, now));
  if (!ask) return answers;
  const targets = new Set(ask.windowsFor);
  return { answers, windows: state.windows.filter((w) => targets.has(w.target) && w.until > now) };
}

/**
 * One operation of a guardBatch, decided as its own update would be. A request the guard refuses
 * (what a validator rejects) is answered as refused and changes nothing: the batch's other
 * operations, other incidents' requests, go on.
 */
export function applyOp(state: GuardState, op: GuardOp, now: number): GuardOpResult {
  try {
    switch (op?.op) {
      case 'claimRestart':
        checkClaim(op.req);
        return { ok: claimRestart(state, op.req, now) };
      case 'releaseSlot':
        need(op.leaseId, 'leaseId');
        return { ok: releaseSlot(state, op.leaseId, now) };
      case 'withdrawClaim':
        need(op.requestId, 'requestId');
        return { ok: withdrawClaim(state, op.requestId, now) };
      default:
        throw new Error(`guardrails has no operation ${JSON.stringify(String((op as { op?: unknown } | undefined)?.op).slice(0, 40))}`);
    }
  } catch (err) {
    return { refused: err instanceof Error ? err.message : String(err) };
  }
}

export function releaseSlot(state: GuardState, leaseId: string, now = Date.now()): boolean {
  const lease = state.leases.find((l) => l.id === leaseId);
  if (!lease) return false;
  state.leases = state.leases.filter((l) => l !== lease);
  settle(state, lease, now);
  return true;
}

/** The most settled request ids remembered: a late duplicate of one forgotten is granted, as before. */
export const maxSettledKept = 2_000;

/**
 * The settled ids by id, for each list of them (state.settled, oldest first): built once per list,
 * so a request is looked up without a pass over the list. Not state: rebuilt from the list after
 * continue-as-new, or on replay.
 */
const settledIndexes = new WeakMap<Array<[string, number]>, Map<string, number>>();

function settledIndex(list: Array<[string, number]>): Map<string, number> {
  let index = settledIndexes.get(list);
  if (!index) settledIndexes.set(list, (index = new Map(list)));
  return index;
}

/** A `once` lease released or withdrawn: its id is not granted again (SettlesOnce). */
function settle(state: GuardState, lease: SlotLease, now: number): void {
  if (!lease.once) return;
  const list = (state.settled ??= []);
  const index = settledIndex(list);
  list.push([lease.id, now]);
  index.set(lease.id, now);
  while (list.length > maxSettledKept) index.delete(list.shift()![0]);
}

/** Forgets settled ids older than the retention: they are at the front of the list. */
function pruneSettled(state: GuardState, now: number): void {
  const list = state.settled;
  if (!list?.length || list[0]![1] > now - state.retainMs) return;
  const index = settledIndex(list);
  let n = 0;
  while (n < list.length && list[n]![1] <= now - state.retainMs) index.delete(list[n++]![0]);
  list.splice(0, n);
}

/**
 * Why a request id is not granted again: its `once` lease was released or withdrawn, so whoever
 * asks it now with `once` is a stalled worker's late duplicate of a claim already settled. Asked
 * without `once`, it is granted anew: only a run recorded before `once` existed asks so, and such a
 * run asks a released id again on its restart step's retry. During a rolling upgrade that run's
 * lease may be the one a new engine's door took for it, with `once`.
 */
function lateDuplicate(state: GuardState, req: { requestId: string } & SettlesOnce): string | undefined {
  const list = state.settled;
  const at = req.once && list?.length ? settledIndex(list).get(req.requestId) : undefined;
  if (at === undefined) return undefined;
  return `a late duplicate: request ${req.requestId} was granted and then settled (released or withdrawn) at ${new Date(at).toISOString()}; not granted again`;
}

export function reserveRestart(state: GuardState, req: RestartReservation, now: number): RestartDecision {
  state.retainMs = Math.max(state.retainMs, req.windowMs);
  prune(state, now);
  const recent = (state.restarts[req.target] ?? []).filter((t) => t > now - req.windowMs);
  const window = formatDuration(req.windowMs);
  if (req.enforce && recent.length >= req.max) {
    return {
      allowed: false,
      recent: recent.length,
      reason: `anti-flap: ${recent.length} restarts of '${req.target}' in the last ${window} (at most ${req.max} automatic)`,
    };
  }
  if (!req.dryRun) (state.restarts[req.target] ??= []).push(now);
  const count = recent.length + (req.dryRun ? 0 : 1);
  return { allowed: true, recent: count, reason: `restart ${count} of '${req.target}' in the last ${window}` };
}

/**
 * Anti-flap first (a flapping target is refused at once, not after a wait for a slot), then a slot;
 * the restart is recorded only with the slot, so a caller told to wait has used up nothing. Asked
 * again with the same request id (a retried activity), it returns the lease it already holds.
 */
export function claimRestart(state: GuardState, req: RestartClaim, now: number): RestartClaimed {
  prune(state, now);
  // A claim asked again after it was granted was recorded then: it is never refused now.
  const held = state.leases.some((l) => l.id === req.requestId);
  // Evaluated without recording: the count and the anti-flap verdict as they stand.
  const check = reserveRestart(state, { ...req, dryRun: true, enforce: req.enforce && !held }, now);
  const late = lateDuplicate(state, req);
  if (late) return { allowed: false, recent: check.recent, reason: late, acquired: false, ...slotsInUse(state) };
  if (held) return { ...check, ...acquireSlot(state, slotOf(req), now) };
  if (!check.allowed) return { ...check, ...slotsInUse(state), acquired: false };
  if (req.dryRun) return { ...check, ...slotsInUse(state), acquired: true };
  const grant = acquireSlot(state, slotOf(req), now);
  return grant.acquired ? { ...reserveRestart(state, req, now), ...grant } : { ...check, ...grant };
}

/**
 * Undoes a granted restart claim whose restart never happened: the lease goes, and so does the
 * restart it recorded (stamped with the lease's own time), so a false alarm costs no anti-flap
 * budget. False when no such claim is held (refused, a dry run, lapsed, or withdrawn already).
 */
export function withdrawClaim(state: GuardState, requestId: string, now = Date.now()): boolean {
  const lease = state.leases.find((l) => l.id === requestId && l.action === 'restart');
  if (!lease) return false;
  state.leases = state.leases.filter((l) => l !== lease);
  settle(state, lease, now);
  const times = state.restarts[lease.target];
  const at = times?.indexOf(lease.acquiredAt) ?? -1;
  if (times && at >= 0) {
    times.splice(at, 1);
    if (times.length === 0) delete state.restarts[lease.target];
  }
  return true;
}

function slotOf(req: RestartClaim): SlotRequest {
  return {
    requestId: req.requestId,
    holder: req.holder,
    target: req.target,
    action: 'restart',
    max: req.maxConcurrent,
    leaseMs: req.leaseMs,
    ...(req.once ? { once: true as const } : {}),
  };
}

/**
 * Holders named in an answer; `inUse` counts them all. Every answer lands in the guard's history,
 * and a batch holds up to maxGuardBatch of them: with a thousand leases held, naming each would
 * make one update's answer megabytes, past what the server takes.
 */
export const maxHoldersNamed = 10;

function slotsInUse(state: GuardState): { inUse: number; holders: string[] } {
  return {
    inUse: state.leases.length,
    holders: state.leases.slice(0, maxHoldersNamed).map((l) => `${l.holder} ${l.action} ${l.target}`),
  };
}

export function acquireSlot(state: GuardState, req: SlotRequest, now: number): SlotGrant {
  prune(state, now);
  const existing = state.leases.find((l) => l.id === req.requestId);
  if (existing) return { acquired: true, leaseId: existing.id, ...slotsInUse(state) };
  // A late duplicate is told to wait, as when every slot is taken: only a stalled worker asks it,
  // and that worker's run has gone on elsewhere; a caller that did wait would ask with a new id.
  if (state.leases.length >= req.max || lateDuplicate(state, req)) return { acquired: false, ...slotsInUse(state) };
  state.leases.push({
    id: req.requestId,
    holder: req.holder,
    target: req.target,
    action: req.action,
    acquiredAt: now,
    expiresAt: now + req.leaseMs,
    ...(req.once ? { once: true as const } : {}),
  });
  return { acquired: true, leaseId: req.requestId, ...slotsInUse(state) };
}

/** Old restarts are dropped at most this often (they only take room: each check reads its own window). */
export const restartsPruneEveryMs = 60_000;

/**
 * Drops what can no longer matter: lapsed leases and windows, settled ids past the retention, and
 * restarts older than any window: those once a minute, and `whole` (before continue-as-new, for a
 * query) always. Every request prunes first, and a pass over every target's restarts on each one
 * cost the guard seconds of CPU in a storm of a thousand targets.
 */
export function prune(state: GuardState, now: number, whole = false): GuardState {
  if (state.leases.some((l) => l.expiresAt <= now)) state.leases = state.leases.filter((l) => l.expiresAt > now);
  if (state.windows.some((w) => w.until <= now)) state.windows = state.windows.filter((w) => w.until > now);
  pruneSettled(state, now);
  if (!whole && state.restartsPrunedAt !== undefined && now - state.restartsPrunedAt < restartsPruneEveryMs) return state;
  state.restartsPrunedAt = now;
  for (const [target, times] of Object.entries(state.restarts)) {
    const kept = times.filter((t) => t > now - state.retainMs);
    if (kept.length) state.restarts[target] = kept;
    else delete state.restarts[target];
  }
  return state;
}

function need(value: unknown, field: string): void {
  if (typeof value !== 'string' || value === '') throw new Error(`guardrails request has no ${field}`);
}
