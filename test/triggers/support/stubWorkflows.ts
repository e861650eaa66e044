// Test-only stand-ins for the runbooks, registered under the real workflow type names, so the
// trigger tests exercise real Temporal (ids, signals, queries, search attributes) without
// depending on the runbooks' activities. Each incident waits until it is resolved, approved,
// rejected or cancelled, and reports the way the real runbooks do.
import { condition, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import {
  alertFiringSignal,
  alertResolvedSignal,
  approveSignal,
  outcomeAttribute,
  rejectSignal,
  statusQuery,
  acknowledgeSignal,
  type MaintenanceInput,
  type Outcome,
  type RunbookInput,
  type RunbookResult,
  type RunbookRunInput,
  type TimelineEntry,
} from '../../../workflows/messages.js';

async function incident(input: RunbookInput): Promise<RunbookResult> {
  const startedAt = new Date().toISOString();
  const timeline: TimelineEntry[] = [];
  const record = (step: string, event: string, actor: string, detail?: string) =>
    timeline.push({ at: new Date().toISOString(), step, event, actor, ...(detail ? { detail } : {}) });
  let alerts = 0;
  let resolved = false;
  let approvedBy: string | undefined;
  let rejectedBy: string | undefined;
  let acknowledgedBy: string | undefined;

  setHandler(alertFiringSignal, (e) => {
    alerts++;
    record('alert', 'firing', 'alertmanager', e.fingerprint);
  });
  // An eager start brings the opening alert in the input instead of as the first signal.
  if (input.openingAlert) {
    alerts++;
    record('alert', 'firing', 'alertmanager', input.openingAlert.fingerprint);
  }
  setHandler(alertResolvedSignal, (e) => {
    resolved = true;
    record('alert', 'resolved', 'alertmanager', e.fingerprint);
  });
  setHandler(approveSignal, (d) => {
    if (!input.operators.includes(d.operator)) {
      record('approval', 'ignored', d.operator, 'not an operator');
      return;
    }
    approvedBy = d.operator;
    record('approval', 'approved', d.operator, d.reason);
  });
  setHandler(rejectSignal, (d) => {
    if (!input.operators.includes(d.operator)) {
      record('approval', 'ignored', d.operator, 'not an operator');
      return;
    }
    rejectedBy = d.operator;
    record('approval', 'rejected', d.operator, d.reason);
  });
  setHandler(acknowledgeSignal, (d) => {
    acknowledgedBy = d.operator;
    record('escalation', 'acknowledged', d.operator, d.reason);
  });
  setHandler(statusQuery, () => ({
    runbook: input.runbook,
    target: input.target,
    step: 'awaiting approval',
    restartAttempts: 0,
    ...(approvedBy || rejectedBy ? {} : { pendingApproval: { step: 'restart', since: startedAt, timeoutAt: startedAt } }),
    ...(approvedBy ? { approvedBy } : {}),
    ...(acknowledgedBy ? { acknowledgedBy } : {}),
    alertsFolded: Math.max(0, alerts - 1),
    timeline,
  }));

  await condition(() => resolved || approvedBy !== undefined || rejectedBy !== undefined);
  const outcome: Outcome = approvedBy ? 'recovered' : rejectedBy ? 'rejected' : 'resolved-externally';
  upsertSearchAttributes([{ key: outcomeAttribute, value: outcome }]);
  return {
    outcome,
    detail: `stub ${input.runbook} on ${input.target}: ${alerts} alert(s)`,
    startedAt,
    endedAt: new Date().toISOString(),
    timeline,
  };
}

export const serviceDown = incident;
export const databaseConnection = incident;
export const highErrorRate = incident;
export const resourcePressure = incident;

/** The interpreter's stand-in: a maintenance run, or an incident like the compiled ones. */
export async function runbook(input: RunbookRunInput): Promise<RunbookResult> {
  if (!input.maintenance) return incident(input);
  return stubMaintenance(input.maintenance.schedule, input.maintenance.targets);
}

export async function maintenance(input: MaintenanceInput): Promise<RunbookResult> {
  return stubMaintenance(
    input.schedule,
    input.targets.map((t) => t.name),
  );
}

async function stubMaintenance(schedule: string, targets: string[]): Promise<RunbookResult> {
  const at = new Date().toISOString();
  return {
    outcome: 'completed',
    detail: `stub maintenance '${schedule}' of ${targets.join(', ')}`,
    startedAt: at,
    endedAt: at,
    timeline: [],
  };
}
