// `remediate run`: an incident runbook started by hand, by a configured operator, on a configured
// target of a kind it applies to. The run is what an alert would start (the same input, id and
// search attributes), with an alert named "manual" and the operator recorded as who started it.
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy } from '@temporalio/client';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import type { Binding, EngineConfig } from '../../config/schema.js';
import { incidentWorkflowId, interpreterWorkflowType, type RunbookRunInput } from '../../workflows/messages.js';
import type { BindingMatch } from '../alerts/binding.js';
import { CommandError, type Temporal } from '../operators/operatorTemporal.js';
import { incidentSearchAttributes, planRunbook, type IncomingAlert, type PlanOptions } from '../plan.js';
import { definitionNamed, printable } from './runbookCommands.js';

type Matched = Extract<BindingMatch, { matched: true }>;

export interface ManualRun {
  runbook: string;
  target: string;
  operator: string;
  reason?: string;
  severity: string;
  dryRun: boolean;
}

export interface StartedRun {
  workflowId: string;
  runId: string;
  runbook: string;
  target: string;
  startedBy: string;
  dryRun: boolean;
}

/**
 * The input a run by hand gets: the same plan an alert would, with an alert named "manual" and the
 * operator as the one who started it.
 */
export function planManualRun(config: EngineConfig, run: ManualRun): RunbookRunInput {
  if (!config.operators.some((o) => o.name === run.operator)) {
    const known = config.operators.map((o) => o.name).join(', ') || 'none configured';
    throw new CommandError(1, `'${printable(run.operator)}' is not a configured operator and cannot start a runbook (operators: ${known})`);
  }
  const def = definitionNamed(config, run.runbook);
  if (def.kind !== 'incident')
    throw new CommandError(1, `'${def.name}' is a ${def.kind} runbook: schedules start it (remediate maintenance run <schedule>)`);
  const target = checkedTarget(config, def, run.target);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(run.severity))
    throw new CommandError(1, `--severity ${JSON.stringify(printable(run.severity))}: expected a word such as warning or critical`);
  return planFileRun(
    config,
    manualMatch(config, def, target),
    manualAlert(run.severity, run.reason ?? `started by hand by ${run.operator}`),
    {
      startedBy: run.operator,
      dryRun: run.dryRun,
    },
  );
}

export function manualAlert(severity: string, summary?: string): IncomingAlert {
  return { labels: { alertname: 'manual', severity }, ...(summary ? { annotations: { summary } } : {}) };
}

/**
 * What a run without an alert stands on: the binding that would start this runbook on this target
 * when there is one (its escalation policy applies), else one of its own.
 */
export function manualMatch(config: EngineConfig, def: RunbookDefinition, target: string): Matched {
  const bound = config.bindings.find((b) => b.runbook === def.name && (b.target === target || b.targets.includes(target)));
  const binding = { ...(bound ?? { alert: 'manual', matchers: [], targets: [] }), runbook: def.name, target } as Binding;
  return { matched: true, binding, bindingIndex: bound ? config.bindings.indexOf(bound) : -1, runbook: def.name, target };
}

/** The interpreter's input for the runbook file, even where a binding pins the compiled workflow. */
export function planFileRun(config: EngineConfig, match: Matched, alert: IncomingAlert, options: PlanOptions): RunbookRunInput {
  const input = planRunbook(config, { ...match, binding: { ...match.binding, compiled: false } as Binding }, alert, options);
  if (!('definition' in input)) throw new Error(`planning '${match.runbook}' on '${match.target}' gave no runbook definition`);
  return input;
}

/** A configured target of a kind the runbook applies to. */
export function checkedTarget(config: EngineConfig, def: RunbookDefinition, name: string): string {
  const target = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
  if (!target) {
    const known = Object.keys(config.targets).join(', ') || 'none';
    throw new CommandError(2, `no target ${JSON.stringify(printable(name.slice(0, 80)))} in the configuration (known: ${known})`);
  }
  if (!def.appliesTo.includes(target.kind))
    throw new CommandError(1, `runbook '${def.name}' applies to ${def.appliesTo.join(', ')}, and '${name}' is a ${target.kind}`);
  return name;
}

export async function startRunbookByHand(t: Temporal, config: EngineConfig, run: ManualRun): Promise<StartedRun> {
  const input = planManualRun(config, run);
  const workflowId = incidentWorkflowId(input.runbook, input.target);
  try {
    const handle = await t.call(() =>
      t.client.workflow.start(interpreterWorkflowType, {
        workflowId,
        taskQueue: config.temporal.taskQueue,
        args: [input],
        // One incident per runbook and target: a run by hand never joins or replaces a running one.
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        // The attributes the webhook sets, so `remediate incidents` and reports find it.
        typedSearchAttributes: incidentSearchAttributes(input),
      }),
    );
    return {
      workflowId,
      runId: handle.firstExecutionRunId,
      runbook: input.runbook,
      target: input.target,
      startedBy: input.startedBy,
      dryRun: input.dryRun,
    };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new CommandError(
        1,
        `runbook '${input.runbook}' on '${input.target}' is already running (workflow ${workflowId}); see remediate show ${workflowId}`,
      );
    throw err;
  }
}

export function startedText(s: StartedRun): string {
  return [
    `started ${s.runbook} on '${s.target}' as ${s.startedBy}${s.dryRun ? ' (dry-run: mutating steps only report what they would do)' : ''}`,
    `workflow ${s.workflowId} (run ${s.runId})`,
    `follow it: remediate show ${s.workflowId}`,
    '',
  ].join('\n');
}
