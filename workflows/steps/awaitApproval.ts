// Approval: a destructive step that a human must allow. The request is marked pending before the
// page goes out, so an operator who answers the page at once is never told "nothing pending".
import type { EngineSteps } from './activities.js';
import { trigger } from './escalate.js';
import { waitFor, type Incident } from './incident.js';

export interface ApprovalRequest {
  /** Status step name while waiting, e.g. "approve-restart". */
  step: string;
  /** What will happen when approved, in words: "restart 'orders-db' via its container". */
  action: string;
  timeoutMs: number;
  channels: string[];
  severity: string;
  text: string;
  dryRun: boolean;
}

export type ApprovalEnd =
  | { kind: 'approved'; by: string; reason: string }
  | { kind: 'rejected'; by: string; reason: string }
  | { kind: 'timeout' }
  | { kind: 'resolved' }
  /** Runbook-file runs only: the wait stopped so the run can continue as new (see `interruptWhen`). */
  | { kind: 'interrupted'; timeoutAt: number };

/**
 * Runbook-file runs may pass `resumeUntil` (a request an earlier run already made and paged: wait
 * out its timeout, no new page) and `interruptWhen` (end the wait early to continue as new).
 */
export async function awaitApproval(
  incident: Incident,
  engine: EngineSteps,
  req: ApprovalRequest,
  carry: { resumeUntil?: number; interruptWhen?: () => boolean } = {},
): Promise<ApprovalEnd> {
  incident.enter(req.step);
  const timeoutAt = carry.resumeUntil ?? Date.now() + req.timeoutMs;
  const until = new Date(timeoutAt).toISOString();
  if (carry.resumeUntil === undefined) {
    incident.openApproval(req.step, until);
    incident.record('approval requested', `${req.action}; until ${until}`);
    await trigger(incident, engine, {
      channels: req.channels,
      key: `approval:${req.step}`,
      severity: req.severity,
      title: `Approval needed: ${req.action}`,
      text: `${req.text}\n\nAn operator approves or rejects workflow ${incident.workflowId} (signals 'approve' / 'reject').`,
      dryRun: req.dryRun,
      actions: ['approve', 'reject'],
      approvalStep: req.step,
    });
  }
  const decided = () => incident.decided !== undefined || incident.resolved;
  const interrupt = carry.interruptWhen;
  try {
    if (interrupt) {
      if ((await waitFor(() => decided() || interrupt(), timeoutAt - Date.now())) && !decided()) return { kind: 'interrupted', timeoutAt };
    } else {
      await waitFor(decided, timeoutAt - Date.now());
    }
  } catch (err) {
    // Cut off by its step's or group's timeout, or by a cancellation: nothing waits on it any more,
    // so no operator may decide it (a decision now would be recorded and acted on by nobody).
    incident.closeApproval();
    throw err;
  }
  incident.closeApproval();
  // A resolved alert wins over a decision that arrived with it: there is nothing left to fix.
  if (incident.resolved) return { kind: 'resolved' };
  const decision = incident.decided;
  if (decision) return decision.approved ? { kind: 'approved', ...decision } : { kind: 'rejected', ...decision };
  incident.record('approval timed out', `no operator decided within the approval timeout`);
  return { kind: 'timeout' };
}
