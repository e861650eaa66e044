// What a step of the catalog is handed and gives back: the shape every step module shares, so a step
// type can live in a module of its own (groupRestart, hostUpkeep) and the catalog only lists them.
import type { ExpressionContext } from '../../config/expressions.js';
import type { ActionStep, StepParams, StepType } from '../../config/runbookSchema.js';
import type { Outcome, TargetRef } from '../messages.js';
import type { RunState } from '../runbook.js';
import type { TargetSteps } from './activities.js';

export interface Ending {
  outcome: Outcome;
  detail: string;
}

/** A step's result: outputs for later steps, or the end of the run. */
export interface StepRun {
  outputs?: Record<string, unknown>;
  ending?: Ending;
}

/** A step that failed for a reason of its own (not an activity's): the run's onFailure decides. */
export class StepFailed extends Error {}

export interface StepCall<T extends StepType> {
  run: RunState;
  step: ActionStep;
  params: StepParams<T>;
  target: TargetRef;
  /** Target activities on the target's queue; long ones get `longRunMs`, and end by `untilMs` when given. */
  on: (longRunMs?: number, untilMs?: number) => TargetSteps;
  text: (template: string) => string;
  ctx: () => ExpressionContext;
  /** Set for top-level steps: a long wait may stop when this holds, to continue the run as new. */
  interruptWhen?: () => boolean;
}

export type Impl<T extends StepType> = (call: StepCall<T>) => Promise<StepRun>;

/** Output text that later steps and pages read stays small: it lives in workflow history. */
export const maxOutputText = 4_000;

export const outputs = (o: Record<string, unknown>): StepRun => ({ outputs: o });

/** The operator who approved the named approval step; a step acting for them needs that approval. */
export function approver(run: RunState, approvalStep: string): string {
  const s = run.steps[approvalStep];
  if (s?.decision !== 'approved')
    throw new StepFailed(`needs the approval of step ${approvalStep}, which is ${String(s?.decision ?? s?.status ?? 'not run')}`);
  return String(s.by);
}
