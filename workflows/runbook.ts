// The runbook interpreter: one durable workflow that runs any runbook file. The definition arrives
// in the input (validated when it was loaded), so a run replays against the runbook it started with.
// Steps run in order; `when` skips, `onFailure` continues, fails or jumps forward; groups run in
// parallel or once per scheduled target; `end` closes the run with an outcome; `finally` steps run
// however the run ends, cancellation included.
import { CancellationScope, continueAsNew, isCancellation, sleep } from '@temporalio/workflow';
import { formatDuration } from '../config/duration.js';
import { evaluateCondition, type ExpressionContext } from '../config/expressions.js';
import type { ActionStep, GroupStep, Step } from '../config/runbookSchema.js';
import type { Diagnostics } from '../activities/contract.js';
import type { Outcome, RunbookResult, RunbookResume, RunbookRunInput, TargetRef } from './messages.js';
import { runStepType, StepFailed, type Ending, type StepRun } from './steps/catalog.js';
import { settleAhead, withdrawPassedClaim, type ChecksAhead } from './steps/checksAhead.js';
import { ContinueRun, historyTooLong } from './steps/continuation.js';
import { expressionContext } from './steps/expressionContext.js';
import { resolve, trigger } from './steps/escalate.js';
import { describeFailure } from './steps/incident.js';
import type { MaintenanceWindow } from './steps/maintenanceWindow.js';
import { cleansUpCutSteps, decidePatchesFirst, takesLaterChanges } from './steps/patchesFirst.js';
import { openRunbook, pageText, title, type Runbook } from './steps/runbook.js';

/** What one step left for later steps: `steps.<id>.status`, `.error` and its outputs. */
export type StepState = { status: 'ok' | 'failed' | 'skipped'; error?: string } & Record<string, unknown>;

/** Outcomes truer than "the alert resolved meanwhile": a run about to end with one keeps it. */
const truerThanResolution: ReadonlySet<Outcome> = new Set(['recovered', 'false-alarm', 'suppressed']);

export interface RunState {
  rb: Runbook;
  input: RunbookRunInput;
  steps: Record<string, StepState>;
  /** The newest diagnosis: every page after it carries its summary. */
  diagnostics?: Diagnostics;
  window?: MaintenanceWindow;
  /** Set while finally steps run: the outcome the run is about to end with. */
  ending?: Ending;
  /** A run continued as new: the waiting step picks up where the run before it stood, once. */
  resume?: RunbookResume;
  /** The checks asked ahead by a suppression check, for the steps after it (steps/checksAhead.ts). */
  ahead?: ChecksAhead;
  /** Targets whose last one-off check could not run for good, and why: no automatic restart is blind. */
  uncheckable?: Record<string, string>;
}

export async function runbook(input: RunbookRunInput): Promise<RunbookResult> {
  decidePatchesFirst();
  const rb = openRunbook(input, { perAlert: true, ...(input.resume ? { resumed: input.resume.incident } : {}) });
  const def = input.definition;
  const run: RunState = { rb, input, steps: (input.resume?.steps as Record<string, StepState>) ?? {} };
  if (input.resume) {
    run.resume = input.resume;
    if (input.resume.diagnostics) run.diagnostics = input.resume.diagnostics;
  } else {
    rb.incident.record(
      'definition',
      `${def.source} (sha256 ${def.sha256.slice(0, 12)}), started by ${input.startedBy}${input.dryRun ? ', dry-run' : ''}`,
      input.startedBy,
    );
  }
  let ending: Ending;
  let cancelled: unknown;
  try {
    ending =
      (await runList(run, def.steps, undefined, input.resume?.at)) ??
      (rb.incident.resolved && def.kind === 'incident' ? resolvedExternally(run) : { outcome: 'completed', detail: 'every step ran' });
    await settleAhead(run);
  } catch (err) {
    await settleAhead(run);
    if (err instanceof ContinueRun) {
      const resume: RunbookResume = {
        ...err.carry,
        incident: rb.incident.snapshot(),
        steps: run.steps,
        ...(run.diagnostics ? { diagnostics: run.diagnostics } : {}),
        continued: (input.resume?.continued ?? 0) + 1,
      };
      return continueAsNew<typeof runbook>({ ...input, resume });
    }
    if (!isCancellation(err)) throw err;
    cancelled = err;
    ending = { outcome: 'cancelled', detail: rb.incident.cancelledDetail() };
  }
  // However the run ended: cleanup first, then the notification that closes the loop, then the outcome.
  const result = await CancellationScope.nonCancellable(async () => {
    run.ending = ending;
    // Every finally step runs, whatever the one before it did: a failed silence expiry must not
    // keep the window from closing. A failure turns an otherwise good ending into 'failed'.
    for (const step of def.finally) {
      const cleanup = await runList(run, [step], undefined).catch((err: unknown) => ({
        outcome: 'failed' as Outcome,
        detail: describeFailure(err),
      }));
      if (cleanup?.outcome === 'failed' && ending.outcome !== 'failed' && ending.outcome !== 'cancelled')
        ending = { outcome: 'failed', detail: `${ending.detail}; then a finally step failed: ${cleanup.detail}` };
    }
    await closeLoop(run, ending);
    return rb.incident.finish(ending.outcome, ending.detail);
  });
  if (cancelled) throw cancelled;
  return result;
}

/** Runs a list of steps; an Ending when a step ended the run, undefined when the list ran out. */
async function runList(run: RunState, list: Step[], item: TargetRef | undefined, from?: string): Promise<Ending | undefined> {
  const position = new Map(list.map((s, i) => [s.id, i]));
  const topLevel = list === run.input.definition.steps;
  for (let i = from === undefined ? 0 : (position.get(from) ?? 0); i < list.length; i++) {
    if (topLevel && cleansUpCutSteps()) await withdrawPassedClaim(run, i);
    const step = list[i]!;
    let outcome: Ending | { goto: string } | undefined;
    try {
      const resuming = run.resume?.at === step.id && i === position.get(step.id) && item === undefined;
      if (!resuming && !(await shouldRun(run, step, item))) continue;
      const early = resolutionEnding(run, step);
      if (early) return early;
      outcome = await runStep(run, step, item, list);
    } catch (err) {
      if (isCancellation(err) || err instanceof ContinueRun) throw err;
      outcome = failed(run, step, err, item);
    }
    if (outcome && 'goto' in outcome) {
      i = position.get(outcome.goto)! - 1;
      continue;
    }
    if (outcome) return outcome;
  }
  return undefined;
}

async function shouldRun(run: RunState, step: Step, item: TargetRef | undefined): Promise<boolean> {
  if (step.when === undefined) return true;
  let holds: boolean;
  try {
    holds = evaluateCondition(step.when, context(run, item));
  } catch (err) {
    throw new StepFailed(`its condition could not be evaluated: ${describeFailure(err)}`);
  }
  if (!holds) run.steps[step.id] = { status: 'skipped' };
  return holds;
}

/**
 * An incident whose alerts all resolved stops at the next step boundary: nothing is left to fix,
 * and acting on a healthy service is how remediation causes outages.
 */
function resolutionEnding(run: RunState, step: Step): Ending | undefined {
  if (run.ending || run.input.definition.kind !== 'incident' || !run.rb.incident.resolved) return undefined;
  if (step.kind === 'action' && step.uses === 'end' && truerThanResolution.has(step.with.outcome as Outcome)) return undefined;
  return resolvedExternally(run);
}

function resolvedExternally(run: RunState): Ending {
  return { outcome: 'resolved-externally', detail: `the alert resolved during ${run.rb.incident.status.step}` };
}

/** One step with its timeout and retries: its state for later steps, or how the run ends. */
async function runStep(
  run: RunState,
  step: Step,
  item: TargetRef | undefined,
  list: Step[] = [],
): Promise<Ending | { goto: string } | undefined> {
  const label = item ? `${step.id}:${item.name}` : step.id;
  run.rb.incident.enter(label);
  const attempts = step.kind === 'action' ? (step.retry?.attempts ?? 1) : 1;
  for (let attempt = 1; ; attempt++) {
    try {
      const work = () => (step.kind === 'action' ? runAction(run, step, item, list === run.input.definition.steps) : runGroup(run, step));
      const done = step.timeoutMs === undefined ? await work() : await withStepTimeout(step.timeoutMs, work);
      if (done.ending) return done.ending;
      run.steps[step.id] = { status: 'ok', ...done.outputs };
      return undefined;
    } catch (err) {
      if (isCancellation(err) || err instanceof ContinueRun || attempt >= attempts || step.kind !== 'action') throw err;
      run.rb.incident.record('step failed, retrying', `${step.id} attempt ${attempt} of ${attempts}: ${describeFailure(err)}`);
      await sleep(step.retry!.backoffMs);
      run.rb.incident.enter(label);
    }
  }
}

/**
 * Runs a step within its timeout. A diagnosis or a check takes a call that could not run for a
 * finding and returns normally, swallowing the cancellation: such a step still timed out.
 */
async function withStepTimeout<T>(ms: number, work: () => Promise<T>): Promise<T> {
  const scope = new CancellationScope({ cancellable: true, timeout: ms });
  // The step's own scope cancelled while the workflow's is not: that is the timeout, whether the
  // step let the cancellation through or swallowed it.
  const timedOut = () => scope.consideredCancelled && !CancellationScope.current().consideredCancelled;
  let done: T;
  try {
    done = await scope.run(work);
  } catch (err) {
    if (isCancellation(err) && timedOut()) throw new StepFailed(`timed out after ${formatDuration(ms)}`);
    throw err;
  }
  if (timedOut()) throw new StepFailed(`timed out after ${formatDuration(ms)}`);
  return done;
}

function failed(run: RunState, step: Step, err: unknown, item: TargetRef | undefined): Ending | { goto: string } | undefined {
  const message = describeFailure(err);
  run.steps[step.id] = { status: 'failed', error: message };
  const where = item ? ` for '${item.name}'` : '';
  run.rb.incident.record('step failed', `${step.id}${where}: ${message}`);
  if (step.onFailure === 'continue') return undefined;
  if (typeof step.onFailure === 'object') {
    run.rb.incident.record('jumping', `to ${step.onFailure.goto} after ${step.id} failed`);
    return { goto: step.onFailure.goto };
  }
  return { outcome: 'failed', detail: `step ${step.id}${where} failed: ${message}` };
}

async function runAction(run: RunState, step: ActionStep, item: TargetRef | undefined, topLevel: boolean): Promise<StepRun> {
  // Resolved when the step asks: a maintenance run's window and notify steps act on no target.
  // Only a top-level step can be resumed by name, so only it may stop to continue as new.
  return runStepType(
    run,
    step,
    () => targetFor(run, step, item),
    () => context(run, item),
    // Not while a maintenance window is open: the run after it would not know the window, and its
    // finally could not close it (the silence and the guard's window would last to their end).
    topLevel && !(run.window?.holdsSomething && takesLaterChanges()) ? historyTooLong : undefined,
  );
}

/** Parallel: every step at once (diagnostics). forEach: the steps once per scheduled target, in order. */
async function runGroup(run: RunState, group: GroupStep): Promise<StepRun> {
  if (group.kind === 'parallel') {
    const ran = await Promise.all(
      group.steps.map(async (child) => {
        const lane = inLane(run, child.id);
        try {
          if (!(await shouldRun(lane, child, undefined))) return undefined;
          const r = await runStep(lane, child, undefined);
          return r && 'goto' in r ? undefined : r;
        } catch (err) {
          if (isCancellation(err)) throw err;
          return failed(lane, child, err, undefined);
        }
      }),
    );
    const failure = ran.find((r): r is Ending => r !== undefined && 'outcome' in r && r.outcome === 'failed');
    if (failure) throw new StepFailed(failure.detail);
    return { outputs: { failed: group.steps.filter((c) => run.steps[c.id]?.status === 'failed').map((c) => c.id) } };
  }
  const names = run.input.maintenance?.targets ?? [run.input.target];
  const done: string[] = [];
  for (const name of names) {
    const item = run.input.targets.find((t) => t.name === name);
    if (!item) throw new StepFailed(`target '${name}' was not planned for this run`);
    if (run.window && Date.now() >= run.window.endsAt) throw new StepFailed(`the window ended before '${name}' was done${finished(done)}`);
    const ending = await runList(run, group.steps, item);
    if (ending?.outcome === 'failed') throw new StepFailed(`${ending.detail}${finished(done)}`);
    if (ending) return { ending };
    done.push(name);
  }
  return { outputs: { done } };
}

/** The run as a step of a parallel group sees it: the same state, its own timeline label (Incident.lane). */
function inLane(run: RunState, step: string): RunState {
  const rb = { ...run.rb, incident: run.rb.incident.lane(step) };
  return new Proxy(run, { get: (state, key, receiver) => (key === 'rb' ? rb : (Reflect.get(state, key, receiver) as unknown)) });
}

function finished(done: string[]): string {
  return done.length ? ` (finished: ${done.join(', ')})` : '';
}

/** A step acts on its literal `target`, else the forEach target, else the run's own. */
function targetFor(run: RunState, step: ActionStep, item: TargetRef | undefined): TargetRef {
  const name = (step.with.target as string | undefined) ?? item?.name ?? run.input.target;
  const ref = run.input.targets.find((t) => t.name === name);
  if (!ref)
    throw new StepFailed(
      run.input.maintenance && name === run.input.target
        ? `${step.uses} acts on a target: put it inside the forEach group or name one with \`target:\``
        : `target '${name}' was not planned for this run`,
    );
  return ref;
}

/** What expressions see. Built fresh for each evaluation from workflow state only. */
export function context(run: RunState, item: TargetRef | undefined, check: Record<string, unknown> = {}): ExpressionContext {
  const { incident } = run.rb;
  const s = incident.status;
  return expressionContext(
    run.input,
    {
      workflowId: incident.workflowId,
      steps: run.steps,
      resolved: incident.resolved,
      ...(s.acknowledgedBy ? { acknowledgedBy: s.acknowledgedBy } : {}),
      ...(s.approvedBy ? { approvedBy: s.approvedBy } : {}),
      restartAttempts: s.restartAttempts,
      ...(run.ending ? { ending: run.ending } : {}),
    },
    item,
    check,
  );
}

/** The notification that goes with an outcome: resolve what was paged, tell of a stand-down, page a failure. */
async function closeLoop(run: RunState, ending: Ending): Promise<void> {
  const { rb, input } = run;
  const firstLevel = input.escalation.levels[0]?.channels ?? [];
  try {
    switch (ending.outcome) {
      case 'escalated':
      case 'cancelled':
        return;
      case 'suppressed':
        // Told, not paged: someone chose to silence this target, and no automatic action was taken.
        await trigger(rb.incident, rb.engine, {
          channels: firstLevel,
          key: 'suppressed',
          severity: 'info',
          title: `${title(rb)}: no automatic action (suppressed)`,
          text: `${ending.detail}\n\n${pageText(rb)}`,
          dryRun: input.dryRun,
        });
        return;
      case 'failed':
        await trigger(rb.incident, rb.engine, {
          channels: firstLevel,
          key: 'failed',
          severity: input.definition.kind === 'maintenance' ? 'critical' : input.alert.severity,
          title: input.definition.kind === 'maintenance' ? `maintenance '${input.target}' failed` : `${title(rb)}: the runbook failed`,
          text: input.definition.kind === 'maintenance' ? ending.detail : `${ending.detail}\n\n${pageText(rb, run.diagnostics)}`,
          dryRun: input.dryRun,
        });
        return;
      default: {
        const text =
          input.definition.kind === 'maintenance' ? `maintenance '${input.target}' ${ending.outcome}: ${ending.detail}` : ending.detail;
        await resolve(rb.incident, rb.engine, text, input.dryRun);
      }
    }
  } catch (err) {
    rb.incident.record('notification failed', describeFailure(err));
  }
}
