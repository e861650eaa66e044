// `remediate runbooks plan`: which steps of a runbook would run for an alert (or on a target, or
// for a schedule), in order, on which target and queue, with the parameters rendered as far as
// they can be before the run. Nothing is started and Temporal is not needed. What only the run
// can know (what earlier steps found) is shown as such, never guessed.
import { ZodEffects, type ZodObject, type ZodRawShape } from 'zod';
import { evaluateCondition, renderTemplate, type ExpressionContext } from '../../config/expressions.js';
import { expressionContext } from '../../workflows/steps/expressionContext.js';
import { configMutatingSteps, mutatingSteps, stepCatalog, type ActionStep, type Step, type StepType } from '../../config/runbookSchema.js';
import type { EngineConfig } from '../../config/schema.js';
import { incidentWorkflowId, maintenanceWorkflowId, type RunbookRunInput, type TargetRef } from '../../workflows/messages.js';
import { matchBinding } from '../alerts/binding.js';
import { CommandError } from '../operators/operatorTemporal.js';
import { planMaintenanceRun } from '../plan.js';
import { definitionNamed, onFailureText, paramText, printable } from './runbookCommands.js';
import { checkedTarget, manualAlert, manualMatch, planFileRun } from './runbookRun.js';

export interface PlanRequest {
  runbook: string;
  /** Alert labels: the binding they match must name this runbook. */
  labels: Record<string, string>;
  /** Or a target directly (an alert named "manual"). */
  target?: string;
  /** Or, for a maintenance runbook, the schedule that runs it. */
  schedule?: string;
  dryRun: boolean;
}

export type Decision = 'runs' | 'skipped' | 'depends' | 'not-reached';

export interface PlannedStep {
  id: string;
  kind: Step['kind'];
  uses?: string;
  /** forEach: the target this pass acts on. */
  item?: string;
  decision: Decision;
  /** Why skipped, depends or not reached. */
  because?: string;
  when?: string;
  onFailure: string;
  /** The target the step acts on, and the queue of the worker that runs its activities (none: the workflow alone). */
  target?: string;
  queue?: string;
  with?: Record<string, unknown>;
  mutating: boolean;
  steps?: PlannedStep[];
}

export type RunbookPlan =
  | { matched: false; code: string; reason: string }
  | {
      matched: true;
      runbook: string;
      kind: 'incident' | 'maintenance';
      target: string;
      workflowId: string;
      binding?: number;
      alert: { name: string; severity: string; labels: Record<string, string> };
      escalation: string;
      dryRun: boolean;
      steps: PlannedStep[];
      finally: PlannedStep[];
    };

export function planRunbookSteps(config: EngineConfig, req: PlanRequest): RunbookPlan {
  const def = definitionNamed(config, req.runbook);
  const hasLabels = Object.keys(req.labels).length > 0;
  let input: RunbookRunInput;
  let workflowId: string;
  let binding: number | undefined;

  if (def.kind === 'maintenance') {
    if (hasLabels || req.target)
      throw new CommandError(1, `'${def.name}' is a maintenance runbook: name its schedule with --schedule, not an alert or a target`);
    const schedules = config.maintenance.filter((m) => m.runbook === def.name);
    const schedule = req.schedule
      ? config.maintenance.find((m) => m.name === req.schedule)
      : schedules.length === 1
        ? schedules[0]
        : undefined;
    if (!schedule) {
      const known = schedules.map((m) => m.name).join(', ') || 'none in this config';
      throw new CommandError(
        req.schedule ? 2 : 1,
        `${req.schedule ? `no maintenance schedule ${JSON.stringify(printable(req.schedule))}` : 'which schedule? pass --schedule'} (schedules running '${def.name}': ${known})`,
      );
    }
    if (schedule.runbook !== def.name)
      return { matched: false, code: 'other-runbook', reason: `schedule '${schedule.name}' runs '${schedule.runbook}', not '${def.name}'` };
    input = planMaintenanceRun(config, schedule, { dryRun: req.dryRun });
    workflowId = maintenanceWorkflowId(schedule.name);
  } else {
    if (req.schedule)
      throw new CommandError(1, `'${def.name}' is an incident runbook: give alert labels (--label) or --target, not a schedule`);
    if (!hasLabels && !req.target)
      throw new CommandError(1, `give the alert's labels (--label alertname=... --label ...) or a target (--target)`);
    let match;
    if (hasLabels) {
      match = matchBinding(config, { labels: req.labels });
      if (!match.matched) return { matched: false, code: match.code, reason: match.reason };
      if (match.runbook !== def.name)
        return {
          matched: false,
          code: 'other-runbook',
          reason: `this alert would start '${match.runbook}' on '${match.target}', not '${def.name}'`,
        };
      if (req.target !== undefined && req.target !== match.target)
        return {
          matched: false,
          code: 'other-target',
          reason: `this alert selects target '${match.target}', not ${JSON.stringify(printable(req.target))}`,
        };
      binding = match.bindingIndex;
    } else {
      match = manualMatch(config, def, checkedTarget(config, def, req.target!));
    }
    // The file's steps, even where a binding pins the compiled workflow: that is what is asked about.
    input = planFileRun(config, match, hasLabels ? { labels: req.labels } : manualAlert('warning'), { dryRun: req.dryRun });
    workflowId = incidentWorkflowId(def.name, match.target);
  }

  const engineQueue = config.temporal.taskQueue;
  const walk = (list: Step[], item?: TargetRef) => walkSteps(list, { input, workflowId, engineQueue, item });
  return {
    matched: true,
    runbook: def.name,
    kind: def.kind,
    target: input.target,
    workflowId,
    ...(binding !== undefined ? { binding } : {}),
    alert: { name: input.alert.name, severity: input.alert.severity, labels: input.alert.labels },
    escalation: input.escalation.policy,
    dryRun: input.dryRun,
    steps: walk(def.steps),
    finally: walk(def.finally),
  };
}

interface Walk {
  input: RunbookRunInput;
  workflowId: string;
  engineQueue: string;
  item?: TargetRef;
}

function walkSteps(list: Step[], w: Walk): PlannedStep[] {
  const out: PlannedStep[] = [];
  let endsAt: string | undefined;
  for (const step of list) {
    const planned = planStep(step, w);
    if (endsAt) {
      planned.decision = 'not-reached';
      planned.because = `the run has ended at ${endsAt}`;
    } else if (planned.decision === 'runs' && step.kind === 'action' && step.uses === 'end') {
      endsAt = step.id;
    }
    out.push(planned);
  }
  return out;
}

function planStep(step: Step, w: Walk): PlannedStep {
  const ctx = startContext(w);
  const condition = decide(step.when, ctx);
  const base = {
    id: step.id,
    kind: step.kind,
    ...(w.item ? { item: w.item.name } : {}),
    ...condition,
    ...(step.when !== undefined ? { when: step.when } : {}),
    onFailure: onFailureText(step.onFailure),
  };
  if (step.kind !== 'action') {
    // parallel: every step once; forEach: the steps once per target of the run, each pass its own item.
    const items =
      step.kind === 'parallel'
        ? [w.item]
        : (w.input.maintenance?.targets ?? [w.input.target]).map((name) => w.input.targets.find((t) => t.name === name));
    const steps = items.flatMap((item) => walkSteps(step.steps, { ...w, item }));
    return { ...base, mutating: steps.some((s) => s.mutating), steps };
  }
  const target = actsOn(step.uses) ? ((step.with.target as string | undefined) ?? w.item?.name ?? w.input.target) : undefined;
  const ref = target === undefined ? undefined : w.input.targets.find((t) => t.name === target);
  return {
    ...base,
    uses: step.uses,
    ...(target !== undefined ? { target } : {}),
    ...(inWorkflow.has(step.uses) ? {} : { queue: queueOf(step, ref, w) }),
    with: Object.fromEntries(Object.entries(step.with).map(([k, v]) => [k, renderKnown(v, ctx)])),
    mutating:
      mutatingSteps.has(step.uses) || (configMutatingSteps.has(step.uses) && !ref?.readOnlyCommands?.includes(step.with.command as string)),
  };
}

/** Step types with a `target` parameter act on a target (their own, the forEach one, or the run's). */
function actsOn(uses: StepType): boolean {
  const schema: unknown = stepCatalog[uses];
  const object = (schema instanceof ZodEffects ? schema.innerType() : schema) as ZodObject<ZodRawShape>;
  return 'target' in object.shape;
}

/** Where a step's activities run: the target's queue, each dependency's (a dependencies step), or the engine's. */
function queueOf(step: ActionStep, ref: TargetRef | undefined, w: Walk): string {
  if (step.uses === 'waitUntil' && step.with.check === 'metric') return w.engineQueue;
  if (step.uses === 'groupRestart') {
    const queues = (step.with.targets as string[]).map((t) => w.input.targets.find((r) => r.name === t)?.queue ?? w.engineQueue);
    return [...new Set(queues)].join(', ');
  }
  if (step.uses === 'dependencies' && ref) {
    const queues = (ref.dependsOn ?? []).map((d) => w.input.targets.find((t) => t.name === d)?.queue ?? w.engineQueue);
    return [...new Set(queues)].join(', ') || w.engineQueue;
  }
  return ref && onTargetQueue.has(step.uses) ? ref.queue : w.engineQueue;
}

// The steps whose activities run on the target's own queue (a host agent's, for systemd units);
// the rest run on the engine's queue (workflows/steps/catalog.ts, `on()`).
// A metric (and a waitUntil on one) asks Prometheus from the engine; a waitUntil that verifies runs on the target's.
const onTargetQueue: ReadonlySet<StepType> = new Set<StepType>([
  'verify',
  'restart',
  'diagnose',
  'logs',
  'runAction',
  'backup',
  'maintain',
  'waitUntil',
  'command',
  'hostDiagnostics',
  'housekeeping',
  'logrotate',
]);
// The steps the workflow does by itself: no activity, no queue.
const inWorkflow: ReadonlySet<StepType> = new Set<StepType>(['end', 'assert', 'sleep']);

/** An expression that reads what steps found can only be decided by the run. */
function needsRun(expr: string): boolean {
  return /\b(steps|check)\s*[.[]/.test(expr);
}

function decide(when: string | undefined, ctx: ExpressionContext): { decision: Decision; because?: string } {
  if (when === undefined) return { decision: 'runs' };
  if (needsRun(when)) return { decision: 'depends', because: `depends on earlier steps: ${when}` };
  try {
    return evaluateCondition(when, ctx) ? { decision: 'runs' } : { decision: 'skipped', because: `${when} is false` };
  } catch (err) {
    return { decision: 'depends', because: `depends on earlier steps: ${when} (${(err as Error).message})` };
  }
}

const templatePart = /\$\{\{([\s\S]*?)\}\}/g;

/** Renders each `${{ }}` part that can be rendered now; the others stay as written. */
function renderKnown(value: unknown, ctx: ExpressionContext): unknown {
  if (typeof value !== 'string') return value;
  return value.replace(templatePart, (part: string, expr: string) => {
    if (needsRun(expr)) return part;
    try {
      return renderTemplate(part, ctx);
    } catch {
      return part;
    }
  });
}

/** What expressions see when the run starts: no step run yet, nothing resolved, acknowledged or approved. */
function startContext(w: Walk): ExpressionContext {
  return expressionContext(w.input, { workflowId: w.workflowId, steps: {}, resolved: false, restartAttempts: 0 }, w.item);
}

export function planText(p: RunbookPlan, runbook: string): string {
  if (!p.matched) return `${printable(runbook)} would not run: ${printable(p.reason)}\n`;
  const head = [
    `runbook:     ${p.runbook} (${p.kind}) on '${p.target}'`,
    `workflow id: ${p.workflowId}`,
    p.kind === 'incident'
      ? `alert:       ${p.alert.name} (${p.alert.severity})${p.binding !== undefined ? ` via binding #${p.binding}` : ''}; escalation ${p.escalation}`
      : `schedule:    ${p.target}`,
    ...(Object.keys(p.alert.labels).length > 0
      ? [
          `labels:      ${Object.entries(p.alert.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}`,
        ]
      : []),
    `dry run:     ${p.dryRun ? 'yes: mutating steps only report what they would do' : 'no: mutating steps act'}`,
    '',
    'steps, in order (what earlier steps find is known only during the run):',
  ];
  const lines = [...head, ...stepsText(p.steps, '  ')];
  if (p.finally.length > 0) lines.push('', 'finally (however the run ends):', ...stepsText(p.finally, '  '));
  return `${lines.map(printable).join('\n')}\n`;
}

const decisionText: Record<Decision, string> = { runs: 'runs', skipped: 'skipped', depends: 'maybe', 'not-reached': 'not reached' };

function stepsText(steps: PlannedStep[], indent: string): string[] {
  const lines: string[] = [];
  let item: string | undefined;
  let n = 0;
  for (const s of steps) {
    if (s.item !== undefined && s.item !== item) {
      lines.push(`${indent}for '${s.item}':`);
      n = 0;
    }
    item = s.item;
    n++;
    const pad = s.item !== undefined ? `${indent}  ` : indent;
    const what =
      s.kind === 'action'
        ? `${s.uses}${s.target !== undefined ? ` on '${s.target}'` : ''}${s.queue !== undefined ? ` (queue ${s.queue})` : ''}`
        : s.kind === 'forEach'
          ? 'for each target'
          : 'in parallel';
    lines.push(`${pad}${String(n).padStart(2)}. ${s.id}: ${what}${s.mutating ? '  [mutating]' : ''}  ${decisionText[s.decision]}`);
    const detail = `${pad}      `;
    if (s.because)
      lines.push(`${detail}${s.decision === 'skipped' ? 'skipped: ' : s.decision === 'not-reached' ? 'not reached: ' : ''}${s.because}`);
    if (s.onFailure !== 'fail') lines.push(`${detail}on failure: ${s.onFailure}`);
    for (const [key, value] of Object.entries(s.with ?? {})) lines.push(`${detail}${key}: ${paramText(value)}`);
    if (s.steps) lines.push(...stepsText(s.steps, `${pad}      `));
  }
  return lines;
}
