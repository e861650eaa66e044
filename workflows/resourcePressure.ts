// Resource pressure (memory, disk, connections near their limit): diagnose, then restart only
// with an operator's approval, and verify.
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

export async function resourcePressure(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target, engine } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await suppression(incident, engine, input.target);
    if (suppressed.suppressed) return endSuppressed(rb, suppressed.reason ?? 'suppressed');

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: true });
    if (incident.resolved) return endResolvedExternally(rb);

    const approval = await awaitApproval(incident, engine, {
      step: 'approve-restart',
      action: `restart '${input.target}' to relieve resource pressure`,
      timeoutMs: input.guardrails.approvalTimeoutMs,
      channels: input.escalation.levels[0]?.channels ?? [],
      severity: input.alert.severity,
      text: pageText(rb, diagnostics),
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
