// The concurrency cap on destructive actions (restarts, maintenance) across all targets: a bad
// deploy that takes down ten services must not become ten simultaneous restarts.
import { CancellationScope } from '@temporalio/workflow';
import { formatDuration } from '../../config/duration.js';
import type { RestartClaim, RestartClaimed, SlotGrant } from '../../activities/contract.js';
import type { EngineSteps } from './activities.js';
import { describeFailure, waitFor, type Incident } from './incident.js';
import { settlesOnce } from './patchesFirst.js';

export interface SlotPlan {
  target: string;
  /** "restart", "maintenance", "action". */
  action: string;
  /** Distinguishes slots taken by one run (the attempt number, the maintenance target). */
  key: string;
  max: number;
  /** How long the lease may live if this workflow dies holding it. */
  leaseMs: number;
  waitMs: number;
  dryRun: boolean;
  /** For a restart: the anti-flap reservation, asked of the guard in the same call as the slot. */
  restart?: { max: number; windowMs: number; enforce: boolean };
  /** For a restart: its first claim, already asked (claimAhead), taken as the answer to the first ask. */
  claimed?: Promise<RestartClaimed>;
}

/**
 * The run a guard request is made for, and the request ids it settled (released or withdrew), which
 * it never asks again (settlesOnce).
 */
type RunIds = Pick<Incident, 'workflowId' | 'runId'> & { readonly settledRequests?: ReadonlySet<string> };

export type Slotted<T> = { ran: true; value: T } | { ran: false; reason: string };

export const defaultSlotWaitMs = 600_000;

/**
 * Runs `work` holding one of the destructive slots, waiting for one if all are taken. Gives up
 * when the wait runs out or the alert resolves meanwhile. A dry run changes nothing, so it takes
 * no slot from real work. With `restart`, anti-flap can refuse it outright, and `work` is given
 * the guard's count ("restart 2 of 'api' in the last 1h").
 */
export async function withDestructiveSlot<T>(
  incident: Incident,
  engine: EngineSteps,
  plan: SlotPlan,
  work: (allowance: string) => Promise<T>,
): Promise<Slotted<T>> {
  if (plan.dryRun && !plan.restart) return { ran: true, value: await work('') };
  let polls = 1;
  const request = slotRequest(incident, plan);
  const giveUpAt = Date.now() + plan.waitMs;
  const pollMs = Math.min(15_000, Math.max(250, Math.floor(plan.waitMs / 20)));
  let allowance = '';
  const ask = async (): Promise<SlotGrant & { refused?: string }> => {
    const poll = polls++;
    const requestId = requestIdOf(incident, plan, poll);
    if (!plan.restart) return engine.acquireSlot({ ...request, requestId });
    const claim = await (poll === 1 && plan.claimed ? plan.claimed : engine.claimRestart(restartClaim(incident, plan, plan.restart, poll)));
    allowance = claim.reason;
    return claim.allowed ? claim : { ...claim, refused: claim.reason };
  };
  let grant = await ask();
  if (!grant.acquired && !grant.refused) {
    incident.record('waiting for a slot', `${grant.inUse} of ${plan.max} destructive actions in flight: ${holdersOf(grant)}`);
  }
  while (!grant.acquired) {
    if (grant.refused) return { ran: false, reason: grant.refused };
    const remaining = giveUpAt - Date.now();
    if (remaining <= 0) {
      return {
        ran: false,
        reason: `concurrency cap: ${grant.inUse} of ${plan.max} destructive actions in flight for ${formatDuration(plan.waitMs)} (${holdersOf(grant)})`,
      };
    }
    if (await waitFor(() => incident.resolved, Math.min(pollMs, remaining))) {
      return { ran: false, reason: 'the alert resolved while waiting for a slot' };
    }
    grant = await ask();
  }
  const leaseId = grant.leaseId;
  // A dry run's claim takes no lease: nothing to release.
  if (leaseId === undefined) return { ran: true, value: await work(allowance) };
  try {
    return { ran: true, value: await work(allowance) };
  } finally {
    markSettled(incident, leaseId);
    // Released even when the run is being cancelled; if this fails the lease lapses on its own.
    await CancellationScope.nonCancellable(() => engine.releaseSlot(leaseId)).catch((err) =>
      incident.record('slot release failed', `${describeFailure(err)}; the lease lapses by itself`),
    );
  }
}

/** Who holds the slots: the guard names the first few of them. */
export function holdersOf(grant: SlotGrant): string {
  const more = grant.inUse - grant.holders.length;
  return `${grant.holders.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

function slotRequest(incident: RunIds, plan: SlotPlan, once = settlesOnce()) {
  return {
    holder: incident.workflowId,
    target: plan.target,
    action: plan.action,
    max: plan.max,
    leaseMs: plan.leaseMs,
    ...(once ? { once: true as const } : {}),
  };
}

/**
 * A request id this run released or withdrew (or is about to): with settlesOnce it is never asked
 * again, since the guard would take that for a late duplicate and refuse it.
 */
export function markSettled(incident: Incident, requestId: string): void {
  if (settlesOnce()) incident.settledRequests.add(requestId);
}

/**
 * The run id keeps a later incident on the same workflow id from reusing this lease; the poll
 * number makes each ask a new request (a repeated request id returns the first answer). A later
 * pass of the same step (its retry) would make the same ids: one this run settled gets `#2`, `#3`…
 */
function requestIdOf(incident: RunIds, plan: SlotPlan, poll: number): string {
  const id = `${incident.workflowId}/${incident.runId}/${plan.action}/${plan.key}/${poll}`;
  const done = incident.settledRequests;
  if (!done?.has(id)) return id;
  let pass = 2;
  while (done.has(`${id}#${pass}`)) pass++;
  return `${id}#${pass}`;
}

/**
 * The guard request of a restart's `poll`th ask: anti-flap and a slot in one. `once` as the run
 * decided (settlesOnce); the door, which asks a new run's first claim for it, passes true.
 */
export function restartClaim(
  incident: RunIds,
  plan: SlotPlan,
  restart: NonNullable<SlotPlan['restart']>,
  poll: number,
  once = settlesOnce(),
): RestartClaim {
  return {
    ...slotRequest(incident, plan, once),
    ...restart,
    maxConcurrent: plan.max,
    requestId: requestIdOf(incident, plan, poll),
    dryRun: plan.dryRun,
  };
}
