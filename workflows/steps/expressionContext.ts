// What a runbook's expressions see, built in one place for the interpreter (during a run) and for
// `remediate runbooks plan` (before one). Pure: no Temporal, no Node built-ins.
import type { ExpressionContext } from '../../config/expressions.js';
import type { RunbookRunInput, TargetRef } from '../messages.js';

/** The run's state an expression may read; `remediate runbooks plan` passes what is known before it starts. */
export interface ContextState {
  workflowId: string;
  steps: Record<string, Record<string, unknown>>;
  resolved: boolean;
  acknowledgedBy?: string;
  approvedBy?: string;
  restartAttempts: number;
  ending?: { outcome: string; detail: string };
}

export function expressionContext(
  input: RunbookRunInput,
  state: ContextState,
  item?: TargetRef,
  check: Record<string, unknown> = {},
): ExpressionContext {
  const own = input.targets[0];
  return {
    alert: {
      name: input.alert.name,
      severity: input.alert.severity,
      labels: input.alert.labels,
      summary: input.alert.summary ?? '',
      fingerprint: input.alert.fingerprint ?? '',
    },
    target: { name: input.target, kind: own?.kind ?? input.targetKind, hasAction: input.hasAction, labels: own?.labels ?? {} },
    steps: withAliases(state.steps),
    incident: {
      workflowId: state.workflowId,
      runbook: input.runbook,
      dryRun: input.dryRun,
      resolved: state.resolved,
      acknowledgedBy: state.acknowledgedBy ?? '',
      approvedBy: state.approvedBy ?? '',
      restartAttempts: state.restartAttempts,
      startedBy: input.startedBy,
      outcome: state.ending?.outcome ?? '',
      outcomeDetail: state.ending?.detail ?? '',
      schedule: input.maintenance?.schedule ?? '',
      targets: input.maintenance?.targets ?? [input.target],
    },
    item: item ? { name: item.name, kind: item.kind, labels: item.labels } : {},
    check,
  };
}

/** `steps.approve_restart` for the step `approve-restart`: CEL names cannot hold a "-". */
function withAliases<T>(steps: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = { ...steps };
  for (const [id, state] of Object.entries(steps)) if (id.includes('-')) out[id.replaceAll('-', '_')] = state;
  return out;
}
