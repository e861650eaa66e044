// Database connection failure: confirm the database does not answer, gather what it is doing
// (connections, processlist, long queries), and restart it only when an operator approves.
import type { RunbookInput, RunbookResult } from './messages.js';
import { awaitApproval } from './steps/awaitApproval.js';
import { diagnose } from './steps/diagnose.js';
import { suppression } from './steps/maintenanceWindow.js';
import {
  endResolvedExternally,
  endSuppressed,
  escalateAndEnd,
  openRunbook,
  pageText,
  remediateApproved,
  runRunbook,
} from './steps/runbook.js';
import { verify } from './steps/verify.js';

export async function databaseConnection(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target, engine } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await suppression(incident, engine, input.target);
    if (suppressed.suppressed) return endSuppressed(rb, suppressed.reason ?? 'suppressed');

    const ping = await verify(incident, target, input.target);
    if (ping.healthy) return incident.finish('false-alarm', `'${input.target}' answers: ${ping.detail}`);
    if (incident.resolved) return endResolvedExternally(rb);

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: false });
    if (incident.resolved) return endResolvedExternally(rb);

    const approval = await awaitApproval(incident, engine, {
      step: 'approve-restart',
      action: `restart database '${input.target}'`,
      timeoutMs: input.guardrails.approvalTimeoutMs,
      channels: input.escalation.levels[0]?.channels ?? [],
      severity: input.alert.severity,
      text: `'${input.target}' does not answer: ${ping.detail}\n\n${pageText(rb, diagnostics)}`,
      dryRun: input.dryRun,
    });
    switch (approval.kind) {
      case 'resolved':
        return endResolvedExternally(rb);
      case 'rejected':
        return incident.finish('rejected', `restart rejected by ${approval.by}${approval.reason ? `: ${approval.reason}` : ''}`);
      case 'timeout':
        return escalateAndEnd(rb, `nobody approved restarting '${input.target}' in time`, diagnostics);
      case 'approved':
        return remediateApproved(rb, approval.by, 'restart', diagnostics);
    }
  });
}
