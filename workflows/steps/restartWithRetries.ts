// Restarting a target: a restart only counts once verification passes within the deadline, and
// every restart first asks the guard (anti-flap across incidents, the concurrency cap).
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { formatDuration } from '../../config/duration.js';
import type { GuardrailPlan } from '../messages.js';
import type { RestartClaimed, Suppression } from '../../activities/contract.js';
import type { EngineSteps, TargetSteps } from './activities.js';
import { defaultSlotWaitMs, restartClaim, markSettled, withDestructiveSlot, type SlotPlan, type Slotted } from './destructiveSlot.js';
import { describeFailure, isPermanent, waitFor, type Incident } from './incident.js';
import { asksReadsTogether, isPatched, oneGuardCallPerRestart, takesLaterChanges } from './patchesFirst.js';
import { verifyWithin } from './verify.js';

export interface RestartPlan {
  target: string;
  guardrails: GuardrailPlan;
  reason: string;
  dryRun: boolean;
  /**
   * Tells this target's restarts from the run's others in the guard (a group restart's targets):
   * their slot requests would otherwise share ids. Unset: the attempt number, as runs before it had.
   */
  slotKey?: string;
  /** The first restart's claim, asked ahead of the checks (claimAhead): the first attempt takes it. */
  ahead?: ClaimAhead;
}

/**
 * The slot key of a runbook file's `restart` step on `target`: steps side by side in a parallel
 * group would otherwise ask the guard with one request id, and the second would be handed the
 * first's lease, with no anti-flap check and no restart counted. Runs started before keyed by the
 * attempt alone.
 */
export function restartStepKey(step: string, target: string): Pick<RestartPlan, 'slotKey'> {
  return takesLaterChanges() ? { slotKey: stepSlotKey(step, target) } : {};
}

/** The slot key of a `restart` step on `target`, in the runs that key by step (restartStepKey). */
export function stepSlotKey(step: string, target: string): string {
  return `${step}/${target}`;
}

/**
 * The first restart's guard claim, asked at once, beside the reads that decide whether a restart is
 * needed at all: the claim (a guard update, ~20 ms) is then off the path from alert to restart. The
 * run hands it to restartWithRetries, or withdraws it when it ends without that restart (silenced,
 * healthy, resolved), and the guard takes back both its lease and its count: a false alarm costs no
 * anti-flap budget. Until then the claim holds a slot and counts, for the few milliseconds the reads take.
 */
export interface ClaimAhead {
  /** The target claimed for. */
  readonly target: string;
  take(): Promise<RestartClaimed>;
  withdraw(): Promise<void>;
  /**
   * The target's maintenance window as the guard answered it with the claim (resolving undefined
   * when it did not), handed out once: undefined when asked again, so a retried check reads its own.
   */
  window(): Promise<Suppression | undefined> | undefined;
}

export function claimAhead(incident: Incident, engine: EngineSteps, plan: RestartPlan): ClaimAhead {
  const slot = restartClaimSlot(plan, true);
  const request = restartClaim(incident, slot, slot.restart!, 1);
  const claimed = engine.claimRestart(request);
  // Awaited later by whichever way the run goes; a failure then is that way's to handle.
  claimed.catch(() => undefined);
  let settled = false;
  let windowGiven = false;
  return {
    target: plan.target,
    take() {
      settled = true;
      return claimed;
    },
    // A claim the guard refused leaves the window to a read of its own; one that failed after its
    // retries (the guard unreachable) fails the window check too, rather than a second read
    // spending its own retries on the same guard before the run can stand down or go on.
    window() {
      if (windowGiven) return undefined;
      windowGiven = true;
      return claimed.then(
        (c) => c.window,
        (err: unknown) => (isPermanent(err) && !isCancellation(err) ? undefined : Promise.reject(err as Error)),
      );
    },
    async withdraw() {
      if (settled) return;
      settled = true;
      const leaseId = await claimed.then(
        (claim) => (claim.acquired ? claim.leaseId : undefined),
        // Asked together with reads the run's cancellation cut off, its answer never reached the run,
        // but the guard may have granted it: its lease, if any, has the request's id (the guard
        // answers false when it holds none).
        (err: unknown) => (asksReadsTogether() && isCancellation(err) ? request.requestId : undefined),
      );
      if (leaseId === undefined) return;
      markSettled(incident, leaseId);
      await CancellationScope.nonCancellable(() => engine.withdrawClaim(leaseId)).catch((err) =>
        incident.record(
          'restart claim withdrawal failed',
          `${describeFailure(err)}; its lease lapses by itself, the restart stays counted`,
        ),
      );
    },
  };
}

export type RestartAttempt =
  | { kind: 'recovered'; detail: string }
  | { kind: 'unhealthy'; detail: string }
  /** The guard said no (anti-flap, concurrency cap) or the alert resolved first. */
  | { kind: 'refused'; detail: string }
  | { kind: 'failed'; detail: string; permanent: boolean };

/** Which attempt, on whose behalf, and whether anti-flap may refuse it (automatic restarts only). */
export interface RestartHow {
  attempt: number;
  actor: string;
  automatic: boolean;
}

export interface RestartOutcome {
  recovered: boolean;
  attempts: number;
  detail: string;
}

/** Longest a restart backoff grows to, however many attempts are configured. */
const maxBackoffMs = 600_000;

/** Automatic restarts, backing off between attempts, until one verifies or a guardrail stops them. */
export async function restartWithRetries(
  incident: Incident,
  target: TargetSteps,
  engine: EngineSteps,
  plan: RestartPlan,
): Promise<RestartOutcome> {
  incident.enter('restart');
  const attempts = Math.max(1, plan.guardrails.restartAttempts);
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (incident.resolved) {
      await plan.ahead?.withdraw();
      return { recovered: false, attempts: attempt - 1, detail: 'the alert resolved before the next restart' };
    }
    const result = await restartOnce(incident, target, engine, plan, { attempt, actor: 'engine', automatic: true });
    if (result.kind === 'recovered') return { recovered: true, attempts: attempt, detail: `healthy after restart ${attempt}` };
    if (result.kind === 'refused') return { recovered: false, attempts: attempt - 1, detail: result.detail };
    if (result.kind === 'failed' && result.permanent) {
      return { recovered: false, attempts: attempt, detail: `restart cannot succeed: ${result.detail}` };
    }
    last = result.detail;
    if (attempt < attempts) {
      const backoff = Math.min(maxBackoffMs, plan.guardrails.restartBackoffMs * 2 ** (attempt - 1));
      incident.record('backing off', `${formatDuration(backoff)} before restart ${attempt + 1} of ${attempts}`);
      await waitFor(() => incident.resolved, backoff);
    }
  }
  return { recovered: false, attempts, detail: `not healthy after ${attempts} restart${attempts === 1 ? '' : 's'}: ${last}` };
}

/**
 * One restart and its verification. One guard call claims both the anti-flap reservation and a
 * destructive slot, so a target that is flapping is escalated at once rather than after a wait.
 */
export async function restartOnce(
  incident: Incident,
  target: TargetSteps,
  engine: EngineSteps,
  plan: RestartPlan,
  how: RestartHow,
): Promise<RestartAttempt> {
  // Runs started before the single claim asked the guard twice; their histories replay that way.
  if (!isPatched(oneGuardCallPerRestart)) return restartOnceReservedFirst(incident, target, engine, plan, how);
  const slot = restartClaimSlot(plan, how.automatic, how.attempt);
  if (how.attempt === 1 && how.automatic && plan.ahead) slot.claimed = plan.ahead.take();
  const slotted = await withDestructiveSlot(incident, engine, slot, (allowance) =>
    restartAndVerify(incident, target, plan, how, allowance),
  );
  return refusedOr(incident, slotted);
}

export function restartClaimSlot(plan: RestartPlan, automatic: boolean, attempt = 1): SlotPlan {
  const g = plan.guardrails;
  return {
    ...restartSlot(plan, attempt),
    restart: { max: g.restartsPerWindow.max, windowMs: g.restartsPerWindow.windowMs, enforce: automatic },
  };
}

function refusedOr(incident: Incident, slotted: Slotted<RestartAttempt>): RestartAttempt {
  if (slotted.ran) return slotted.value;
  incident.record('restart refused', slotted.reason);
  return { kind: 'refused', detail: slotted.reason };
}

function restartSlot(plan: RestartPlan, attempt: number): SlotPlan {
  const g = plan.guardrails;
  return {
    target: plan.target,
    action: 'restart',
    key: plan.slotKey === undefined ? String(attempt) : `${plan.slotKey}/${attempt}`,
    max: g.maxConcurrentDestructive,
    // Two restart tries of up to 3 minutes, the verification deadline, and slack.
    leaseMs: 2 * 180_000 + g.verifyDeadlineMs + 120_000,
    waitMs: g.slotWaitMs ?? defaultSlotWaitMs,
    dryRun: plan.dryRun,
  };
}

async function restartAndVerify(
  incident: Incident,
  target: TargetSteps,
  plan: RestartPlan,
  how: Pick<RestartHow, 'attempt' | 'actor'>,
  allowance: string,
): Promise<RestartAttempt> {
  incident.status.restartAttempts += 1;
  incident.record('restarting', `attempt ${how.attempt}; ${allowance}`, how.actor);
  try {
    const done = await target.restartTarget(plan.target, {
      incidentId: incident.workflowId,
      reason: plan.reason,
      actor: how.actor,
      dryRun: plan.dryRun,
    });
    incident.record('restarted', done.summary, how.actor);
  } catch (err) {
    const detail = describeFailure(err);
    incident.record('restart failed', detail, how.actor);
    if (isPermanent(err)) return { kind: 'failed', detail, permanent: true };
    // A restart that timed out may still have happened: verification decides.
  }
  const verified = await verifyWithin(incident, target, plan.target, {
    deadlineMs: plan.guardrails.verifyDeadlineMs,
    intervalMs: plan.guardrails.verifyIntervalMs,
  });
  return { kind: verified.healthy ? 'recovered' : 'unhealthy', detail: verified.detail };
}

/** The unpatched restart: the reservation and the slot as two guard calls. */
async function restartOnceReservedFirst(
  incident: Incident,
  target: TargetSteps,
  engine: EngineSteps,
  plan: RestartPlan,
  how: RestartHow,
): Promise<RestartAttempt> {
  const g = plan.guardrails;
  const reservation = await engine.reserveRestart({
    target: plan.target,
    holder: incident.workflowId,
    requestId: `${incident.workflowId}/${incident.runId}/restart/${how.attempt}`,
    max: g.restartsPerWindow.max,
    windowMs: g.restartsPerWindow.windowMs,
    enforce: how.automatic,
    dryRun: plan.dryRun,
  });
  if (!reservation.allowed) {
    incident.record('restart refused', reservation.reason);
    return { kind: 'refused', detail: reservation.reason };
  }
  const slotted = await withDestructiveSlot(incident, engine, restartSlot(plan, how.attempt), () =>
    restartAndVerify(incident, target, plan, how, reservation.reason),
  );
  return refusedOr(incident, slotted);
}
