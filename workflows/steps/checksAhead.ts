// A runbook file that opens the usual way (checkSuppression, then verify, then restart of the same
// target, with only conditional `end` steps between) has the reads that decide whether to restart
// asked all at once when its suppression check runs: the check of the target and the first
// restart's guard claim go out beside the silence and window reads, as compiled serviceDown does.
// One wait for every read instead of three in a row on the path from alert to restart, and, in the
// runs that ask them together (readsTogether.ts), one answer for all three. The steps
// still run in their order and record what they always did; the claim is withdrawn when the run
// ends without its restart.
import type { Suppression } from '../../activities/contract.js';
import type { ActionStep, Step } from '../../config/runbookSchema.js';
import type { RestartClaim } from '../../activities/contract.js';
import type { RunbookRunInput, TargetRef } from '../messages.js';
import type { RunState } from '../runbook.js';
import type { TargetSteps } from './activities.js';
import { restartClaim } from './destructiveSlot.js';
import { claimAhead, restartClaimSlot, restartStepKey, stepSlotKey, type ClaimAhead, type RestartPlan } from './restartWithRetries.js';
import { readsWindowWithClaim } from './patchesFirst.js';
import { checkOnce, type VerifyResult } from './verify.js';

export interface ChecksAhead {
  /** The verify step the check is for, and the check, until that step takes it. */
  verifyStep: string;
  check?: Promise<VerifyResult>;
  /** The restart step the claim is for, and the claim, until that step takes it. */
  restartStep?: string;
  claim?: ClaimAhead;
}

/**
 * Asks ahead what the steps after `step` (a top-level checkSuppression) will ask first, when they
 * are the usual verify (a single check) and restart (automatic) of the same target.
 */
export function askAhead(run: RunState, step: ActionStep, target: TargetRef, on: TargetSteps): void {
  // Once a run (a retried suppression check asks nothing again), and not under a step timeout,
  // whose cancellation would reach the checks asked inside it.
  if (run.ahead || step.timeoutMs !== undefined || run.input.maintenance) return;
  const ahead = aheadSteps(run.input.definition.steps, step);
  if (!ahead) return;
  const { verify, restart } = ahead;
  const claim = () => {
    const rb = run.rb;
    return claimAhead(rb.incident, rb.engine, {
      ...firstClaimPlan(run.input, target.name),
      reason: `${run.input.alert.name}: '${target.name}' is down`,
      // The claim the restart step takes as its first: asked as that step would ask it.
      ...restartStepKey(restart!.id, target.name),
    });
  };
  // The claim is the slowest read (a guard update): asked first, it is on its way sooner. Runs
  // started before asked the check first; they replay that way.
  const first = restart && readsWindowWithClaim() ? claim() : undefined;
  run.ahead = { verifyStep: verify.id, check: checkOnce(on, target.name) };
  if (!restart) return;
  run.ahead.restartStep = restart.id;
  run.ahead.claim = first ?? claim();
}

/**
 * The verify step a top-level checkSuppression `step` asks ahead for, when the next action after it
 * is the usual verify (a single check of the same target), and the restart whose claim it asks too,
 * when the action after that restarts the same target automatically.
 */
export function aheadSteps(steps: Step[], step: ActionStep): { verify: ActionStep; restart?: ActionStep } | undefined {
  const at = steps.indexOf(step);
  if (at < 0) return undefined;
  const verifyAt = nextAction(steps, at);
  const verify = verifyAt >= 0 ? (steps[verifyAt] as ActionStep) : undefined;
  if (!verify || verify.uses !== 'verify' || verify.with.within !== undefined || verify.with.target !== step.with.target) return undefined;
  const restart = steps[nextAction(steps, verifyAt)] as ActionStep | undefined;
  const claims = restart && restart.uses === 'restart' && restart.with.approvedBy === undefined && restart.with.target === step.with.target;
  return claims ? { verify, restart } : { verify };
}

function firstClaimPlan(input: RunbookRunInput, target: string): Omit<RestartPlan, 'reason'> {
  return { target, guardrails: input.guardrails, dryRun: input.dryRun };
}

/**
 * What a new run of `input` asks first, before anything else, when its first step is a suppression
 * check of its own target that asks ahead: the silences (with these arguments), the target's health
 * (a local read unless a host agent checks it) and, once the run has an id, the first restart's
 * claim. The webhook reads them beside the start (activities/readAhead.ts). Undefined for any other
 * opening: such a run reads when its steps come.
 */
export function firstReads(input: RunbookRunInput): FirstReads | undefined {
  const step = input.definition.steps[0];
  if (input.maintenance || input.resume || input.definition.kind !== 'incident') return undefined;
  if (!step || step.kind !== 'action' || step.uses !== 'checkSuppression') return undefined;
  if (step.when !== undefined || step.timeoutMs !== undefined || step.with.target !== undefined) return undefined;
  const ahead = aheadSteps(input.definition.steps, step);
  const ref = input.targets.find((t) => t.name === input.target);
  if (!ahead || !ref) return undefined;
  const target = ref.name;
  const { restart } = ahead;
  const labels = input.alert.labels;
  return {
    // As the suppression check asks a new run's (catalog.ts, activities.ts).
    suppression: Object.keys(labels).length ? [target, labels] : [target],
    verify: ref.kind !== 'systemd' ? [target] : undefined,
    claim: restart
      ? (workflowId, runId) => {
          const plan = { ...firstClaimPlan(input, target), reason: '', slotKey: stepSlotKey(restart.id, target) };
          const slot = restartClaimSlot(plan, true);
          // A new run asks with `once` (all-patches-2026-12-07): the door's claim must be the same request.
          return restartClaim({ workflowId, runId }, slot, slot.restart!, 1, true);
        }
      : undefined,
  };
}

export interface FirstReads {
  /** checkSuppression's arguments. */
  suppression: [string] | [string, Record<string, string>];
  /** verifyTarget's, when the engine checks the target itself. */
  verify?: [string];
  /** claimRestart's, once the run's id is known. */
  claim?: (workflowId: string, runId: string) => RestartClaim;
}

/**
 * The target's maintenance window as the guard answered it with the claim asked ahead for this
 * target, when the run reads it so (readsWindowWithClaim). Undefined: the check reads it itself.
 */
export function windowFromClaim(run: RunState, target: string): Promise<Suppression | undefined> | undefined {
  const claim = run.ahead?.claim;
  return readsWindowWithClaim() && claim?.target === target ? claim.window() : undefined;
}

/** The index of the next action step after `from` that is not an `end`, or -1. */
function nextAction(steps: Step[], from: number): number {
  for (let i = from + 1; i < steps.length; i++) {
    const s = steps[i]!;
    if (s.kind !== 'action') return -1;
    if (s.uses !== 'end') return i;
  }
  return -1;
}

/** The check asked ahead for this verify step, once. */
export function takeCheck(run: RunState, stepId: string): Promise<VerifyResult> | undefined {
  if (run.ahead?.verifyStep !== stepId || !run.ahead.check) return undefined;
  const check = run.ahead.check;
  delete run.ahead.check;
  return check;
}

/** The claim asked ahead for this restart step, once. */
export function takeClaim(run: RunState, stepId: string): ClaimAhead | undefined {
  if (run.ahead?.restartStep !== stepId || !run.ahead.claim) return undefined;
  const claim = run.ahead.claim;
  delete run.ahead.claim;
  return claim;
}

/**
 * The run is at `next` in its top-level steps, past the restart step the claim was for, which did
 * not take it (skipped, jumped over, or not restarting a target it could not check): withdrawn now,
 * so neither the destructive slot nor the anti-flap count is held while the run goes on.
 */
export async function withdrawPassedClaim(run: RunState, next: number): Promise<void> {
  const ahead = run.ahead;
  if (!ahead?.claim || ahead.restartStep === undefined) return;
  const at = run.input.definition.steps.findIndex((s) => s.id === ahead.restartStep);
  if (at < 0 || at >= next) return;
  const claim = ahead.claim;
  delete ahead.claim;
  await claim.withdraw();
}

/** At the end of the run: a claim no restart took is withdrawn, a check nobody read is let finish. */
export async function settleAhead(run: RunState): Promise<void> {
  const ahead = run.ahead;
  if (!ahead) return;
  delete run.ahead;
  await ahead.claim?.withdraw();
  await ahead.check;
}
