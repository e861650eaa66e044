// High error rate: the service answers but fails too often. Gather detailed health, error logs and
// slow queries, then, with approval, run the target's configured action (a cache clear, say) or,
// when it has none, restart it.
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

export async function highErrorRate(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target, engine } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await suppression(incident, engine, input.target);
    if (suppressed.suppressed) return endSuppressed(rb, suppressed.reason ?? 'suppressed');

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: true });
    if (incident.resolved) return endResolvedExternally(rb);

    const action = input.hasAction ? 'action' : 'restart';
    const approval = await awaitApproval(incident, engine, {
      step: `approve-${action}`,
      action: input.hasAction ? `run the configured action of '${input.target}'` : `restart '${input.target}'`,
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
        return incident.finish('rejected', `${action} rejected by ${approval.by}${approval.reason ? `: ${approval.reason}` : ''}`);
      case 'timeout':
        return escalateAndEnd(rb, `nobody approved the ${action} for '${input.target}' in time`, diagnostics);
      case 'approved':
        return remediateApproved(rb, approval.by, action, diagnostics);
    }
  });
}
