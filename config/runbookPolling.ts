// How many checks a runbook's polling steps (`verify` with `within`, `waitUntil`) may make. Every
// check and the wait after it are written to the run's workflow history: about 6 events for a local
// read, about 11 for an activity or a metric query. Temporal terminates a run at 51,200 events, and
// a terminated run runs no `finally` (no closeWindow, no silence expiry, no page that it failed); a
// run continues as new only at a top-level escalate or approval. So the checks are bounded at load,
// per step and per run, far below that limit (as groupRestart's restarts are, in runbookSchema.ts).
import { formatDuration } from './duration.js';
import type { ActionStep, Step } from './runbookSchema.js';

/** One step's checks, retries included: at most ~11,000 history events. */
export const maxChecksPerStep = 1_000;
/** Every polling step of a runbook together, as if each ran: at most ~22,000 history events. */
export const maxChecksPerRun = 2_000;

/**
 * `verify` without `every` polls at the config's guardrails.verifyInterval: counted at its default.
 * `within: deadline` is the config's verifyDeadline: counted at the longest the config allows.
 */
const verifyIntervalDefaultMs = 2_000;
const verifyDeadlineMaxMs = 3_600_000;

export interface PollingPlan {
  /** Checks of one attempt: one at the start, then one after each wait until the deadline. */
  checks: number;
  /** Checks of the step with its retries. */
  total: number;
  /** Where the count is reported: the key of the time polled. */
  key: 'deadline' | 'within';
  /** How the count was reached, in the runbook's words: `deadline 2h / every 1s`. */
  reckoning: string;
}

/** What the count may know once the config is loaded. */
export interface PollingContext {
  /** The shortest guardrails.verifyInterval a run of it may poll at (the default's 2 s unknown). */
  verifyIntervalMs?: number;
  /** How many targets a forEach may run its steps for (1 unknown). */
  forEachRuns?: number;
}

/** The most checks a step can make, or undefined for a step that checks once or does not poll. */
export function pollingPlan(step: ActionStep, context: PollingContext = {}): PollingPlan | undefined {
  const verifyIntervalMs = context.verifyIntervalMs ?? verifyIntervalDefaultMs;
  const p = step.with;
  let windowMs: number;
  let intervalMs: number;
  let reckoning: string;
  let key: PollingPlan['key'];
  if (step.uses === 'waitUntil') {
    windowMs = p.deadline as number;
    intervalMs = p.every as number;
    key = 'deadline';
    reckoning = `deadline ${formatDuration(windowMs)} / every ${formatDuration(intervalMs)}`;
  } else if (step.uses === 'verify' && p.within !== undefined) {
    key = 'within';
    const every = p.every as number | undefined;
    // The config's deadline at its own interval is the config's to bound.
    if (p.within === 'deadline' && every === undefined) return undefined;
    windowMs = p.within === 'deadline' ? verifyDeadlineMaxMs : (p.within as number);
    intervalMs = every ?? verifyIntervalMs;
    const within =
      p.within === 'deadline'
        ? `within: deadline (guardrails.verifyDeadline, up to ${formatDuration(windowMs)})`
        : `within ${formatDuration(windowMs)}`;
    const interval =
      every === undefined
        ? `every unset (guardrails.verifyInterval, ${formatDuration(intervalMs)}${context.verifyIntervalMs === undefined ? ' by default' : ''})`
        : `every ${formatDuration(intervalMs)}`;
    reckoning = `${within} / ${interval}`;
  } else {
    return undefined;
  }
  const checks = 1 + Math.ceil(windowMs / Math.max(1, intervalMs));
  const attempts = step.retry?.attempts ?? 1;
  return {
    checks,
    total: checks * attempts,
    key,
    reckoning: attempts > 1 ? `retry.attempts ${attempts} × (${reckoning})` : reckoning,
  };
}

const cost = "each check is written to the run's history, and a run Temporal terminates at 51,200 events runs no finally";

export interface PollingProblem {
  /** Where, from the step: `with.deadline`, `with.within` or `retry.attempts`. */
  key: string;
  message: string;
}

/** A step that could check more than a step may. */
export function stepPollingProblem(step: ActionStep): PollingProblem | undefined {
  const plan = pollingPlan(step);
  if (!plan || plan.total <= maxChecksPerStep) return undefined;
  // Past the bound by its retries alone: the retry is what to change.
  const retries = plan.checks <= maxChecksPerStep;
  return {
    key: retries ? 'retry.attempts' : `with.${plan.key}`,
    message: `${plan.reckoning} is ${plan.total} checks; a step may check at most ${maxChecksPerStep} times (${cost}): ${retries ? 'fewer attempts, ' : ''}a longer every or a shorter ${plan.key}`,
  };
}

/**
 * A runbook whose polling steps together could check more than a run may, counted as if every one
 * ran once (a forEach's steps run once per target): the problem is the step that passes the bound.
 */
export function runPollingProblem(list: Step[], context: PollingContext = {}): (PollingProblem & { step: ActionStep }) | undefined {
  const polling: Array<[ActionStep, PollingPlan]> = [];
  const walk = (steps: Step[], times: number) =>
    steps.forEach((s) => {
      if (s.kind !== 'action') return walk(s.steps, s.kind === 'forEach' ? times * (context.forEachRuns ?? 1) : times);
      const plan = pollingPlan(s, context);
      if (plan)
        polling.push([s, times === 1 ? plan : { ...plan, total: plan.total * times, reckoning: `${times} targets × (${plan.reckoning})` }]);
    });
  walk(list, 1);
  const all = polling.reduce((n, [, p]) => n + p.total, 0);
  if (all <= maxChecksPerRun) return undefined;
  let sum = 0;
  const [step, plan] = polling.find(([, p]) => (sum += p.total) > maxChecksPerRun)!;
  const each = polling.map(([s, p]) => `${s.id} ${p.total}`).join(', ');
  return {
    step,
    key: `with.${plan.key}`,
    message: `the runbook's polling steps could check ${all} times in all (${each}); a run may check at most ${maxChecksPerRun} times (${cost})`,
  };
}
