// What every incident runbook shares: opening the incident, and the handful of ways one ends
// (suppressed, recovered, resolved externally, escalated), each closing the notification loop.
import type { Diagnostics } from '../../activities/contract.js';
import type { RunbookInput, RunbookResult } from '../messages.js';
import { engineActivities, targetActivities, waitForAgentsAtMost, type EngineSteps, type TargetSteps } from './activities.js';
import { awaitApproval } from './awaitApproval.js';
import { escalate, resolve, trigger } from './escalate.js';
import { describeFailure, Incident, type IncidentOpening } from './incident.js';
import { suppression } from './maintenanceWindow.js';
import { isPatched, resolvePageOnReject } from './patchesFirst.js';
import { restartOnce } from './restartWithRetries.js';
import { verifyWithin } from './verify.js';

export interface Runbook {
  input: RunbookInput;
  incident: Incident;
  target: TargetSteps;
  engine: EngineSteps;
}

export function openRunbook(input: RunbookInput, extra: Pick<IncidentOpening, 'perAlert' | 'resumed'> = {}): Runbook {
  const incident = Incident.open({
    runbook: input.runbook,
    target: input.target,
    operators: input.operators,
    ...(input.responders ? { responders: input.responders } : {}),
    alertName: input.alert?.name,
    severity: input.alert?.severity,
    ...(input.alert?.startsAt ? { alertStartsAt: input.alert.startsAt } : {}),
    ...(input.openingAlert ? { openingAlert: input.openingAlert } : {}),
    ...extra,
  });
  waitForAgentsAtMost(input.guardrails?.agentWaitMs);
  return { input, incident, target: targetActivities(input.targetQueue, undefined, input.targetKind), engine: engineActivities() };
}

/** The body of a runbook, ending 'failed' (with a page to the first level) if a step breaks. */
export function runRunbook(rb: Runbook, body: () => Promise<RunbookResult>): Promise<RunbookResult> {
  return rb.incident.conclude(body, async (detail) => {
    await trigger(rb.incident, rb.engine, {
      channels: rb.input.escalation.levels[0]?.channels ?? [],
      key: 'failed',
      severity: rb.input.alert.severity,
      title: `${title(rb)}: the runbook failed`,
      text: detail,
      dryRun: rb.input.dryRun,
    });
  });
}

export function title(rb: Runbook): string {
  return `[${rb.input.alert.severity}] ${rb.input.alert.name} on '${rb.input.target}'`;
}

/** What every page about this incident says after its reason. */
export function pageText(rb: Runbook, diagnostics?: Diagnostics): string {
  const lines = [
    `runbook ${rb.input.runbook}${rb.input.dryRun ? ' (dry-run)' : ''}, workflow ${rb.incident.workflowId}`,
    rb.input.alert.summary ?? '',
    diagnostics ? `diagnostics:\n${diagnostics.summary}` : '',
    `recent steps:\n${rb.incident.status.timeline
      .slice(-8)
      .map((e) => `${e.at} ${e.step}: ${e.event}${e.detail ? ` (${e.detail.slice(0, 160)})` : ''}`)
      .join('\n')}`,
  ];
  return lines.filter(Boolean).join('\n\n');
}

/**
 * Every incident runbook's first step: no automatic action on a target somebody silenced or that is
 * in a maintenance window. Ends the run (told, not paged) and returns its result when suppressed.
 */
export async function endIfSuppressed(rb: Runbook): Promise<RunbookResult | undefined> {
  const suppressed = await suppression(rb.incident, rb.engine, rb.input.target);
  return suppressed.suppressed ? endSuppressed(rb, suppressed.reason ?? 'suppressed') : undefined;
}

export async function endSuppressed(rb: Runbook, reason: string): Promise<RunbookResult> {
  // Told, not paged: someone chose to silence this target, and no automatic action was taken.
  await trigger(rb.incident, rb.engine, {
    channels: rb.input.escalation.levels[0]?.channels ?? [],
    key: 'suppressed',
    severity: 'info',
    title: `${title(rb)}: no automatic action (suppressed)`,
    text: `${reason}\n\n${pageText(rb)}`,
    dryRun: rb.input.dryRun,
  });
  return rb.incident.finish('suppressed', reason);
}

export async function endRecovered(rb: Runbook, detail: string): Promise<RunbookResult> {
  await resolve(rb.incident, rb.engine, detail, rb.input.dryRun);
  return rb.incident.finish('recovered', detail);
}

export async function endResolvedExternally(rb: Runbook): Promise<RunbookResult> {
  const detail = `the alert resolved during ${rb.incident.status.step}`;
  await resolve(rb.incident, rb.engine, detail, rb.input.dryRun);
  return rb.incident.finish('resolved-externally', detail);
}

/** Escalates and ends with what escalation brought. */
export async function escalateAndEnd(rb: Runbook, reason: string, diagnostics?: Diagnostics): Promise<RunbookResult> {
  const end = await escalate(
    rb.incident,
    rb.engine,
    {
      levels: rb.input.escalation.levels,
      ...(rb.input.escalation.lastAnswerMs !== undefined ? { lastAnswerMs: rb.input.escalation.lastAnswerMs } : {}),
      severity: rb.input.alert.severity,
      title: title(rb),
      text: pageText(rb, diagnostics),
      dryRun: rb.input.dryRun,
    },
    reason,
  );
  if (end === 'resolved') return endResolvedExternally(rb);
  if (end === 'acknowledged') {
    return rb.incident.finish('escalated', `${reason}; acknowledged by ${rb.incident.acknowledgement?.operator}`);
  }
  return rb.incident.finish('escalated', `${reason}; nobody acknowledged after ${rb.input.escalation.levels.length} level(s)`);
}

/**
 * An operator approved: do it (their name on the action), verify, and end recovered or escalate.
 * Approved restarts still take a slot and are recorded for anti-flap, but are never refused by it.
 */
export async function remediateApproved(
  rb: Runbook,
  approver: string,
  action: 'restart' | 'action',
  diagnostics?: Diagnostics,
): Promise<RunbookResult> {
  const { incident, input } = rb;
  const reason = `${input.alert.name}: approved by ${approver}`;
  if (action === 'restart') {
    incident.enter('restart');
    const result = await restartOnce(
      incident,
      rb.target,
      rb.engine,
      { target: input.target, guardrails: input.guardrails, reason, dryRun: input.dryRun },
      { attempt: 1, actor: approver, automatic: false },
    );
    if (result.kind === 'recovered') return endRecovered(rb, `healthy after the restart approved by ${approver}`);
    if (incident.resolved) return endResolvedExternally(rb);
    return escalateAndEnd(rb, `approved restart did not recover '${input.target}': ${result.detail}`, diagnostics);
  }
  incident.enter('action');
  try {
    const done = await rb.target.runTargetAction(input.target, {
      incidentId: incident.workflowId,
      reason,
      actor: approver,
      dryRun: input.dryRun,
    });
    incident.record('action ran', done.summary, approver);
  } catch (err) {
    incident.record('action failed', describeFailure(err), approver);
  }
  incident.enter('verify');
  const verified = await verifyWithin(incident, rb.target, input.target, {
    deadlineMs: input.guardrails.verifyDeadlineMs,
    intervalMs: input.guardrails.verifyIntervalMs,
  });
  if (verified.healthy) return endRecovered(rb, `healthy after the action approved by ${approver}`);
  if (incident.resolved) return endResolvedExternally(rb);
  return escalateAndEnd(rb, `approved action did not recover '${input.target}': ${verified.detail}`, diagnostics);
}

export interface ApprovedRemediation {
  /** What an approval lets the runbook do: restart the target, or run its configured action. */
  kind: 'restart' | 'action';
  /** What the operator is asked to allow, in words: "restart database 'app-db'". */
  ask: string;
  /** The escalation reason when nobody decides in time. */
  timeoutReason: string;
  /** What the page says above the runbook's common page text. */
  lead?: string;
  diagnostics?: Diagnostics;
}

/**
 * The second half of every approval runbook: ask, wait for an operator, then act (approved), stop
 * (rejected), page (nobody decided) or stand down (the alert resolved meanwhile).
 */
export async function remediateOnApproval(rb: Runbook, plan: ApprovedRemediation): Promise<RunbookResult> {
  const { incident, input } = rb;
  const approval = await awaitApproval(incident, rb.engine, {
    step: `approve-${plan.kind}`,
    action: plan.ask,
    timeoutMs: input.guardrails.approvalTimeoutMs,
    channels: input.escalation.levels[0]?.channels ?? [],
    severity: input.alert.severity,
    text: plan.lead ? `${plan.lead}\n\n${pageText(rb, plan.diagnostics)}` : pageText(rb, plan.diagnostics),
    dryRun: input.dryRun,
  });
  switch (approval.kind) {
    case 'resolved':
      return endResolvedExternally(rb);
    case 'rejected': {
      const detail = `${plan.kind} rejected by ${approval.by}${approval.reason ? `: ${approval.reason}` : ''}`;
      // The approval request was a page: a decision closes it, or PagerDuty keeps it open and the
      // next incident on this target folds into it. Runs started before this change did not.
      if (isPatched(resolvePageOnReject)) await resolve(incident, rb.engine, detail, input.dryRun);
      return incident.finish('rejected', detail);
    }
    case 'timeout':
    // Only runbook-file runs ask for interruption; the compiled runbooks never see it.
    case 'interrupted':
      return escalateAndEnd(rb, plan.timeoutReason, plan.diagnostics);
    case 'approved':
      return remediateApproved(rb, approval.by, plan.kind, plan.diagnostics);
  }
}
