// Resource pressure (memory, disk, connections near their limit): diagnose, then restart only
// with an operator's approval, and verify.
import type { RunbookInput, RunbookResult } from './messages.js';
import { diagnose } from './steps/diagnose.js';
import { endResolvedExternally, endIfSuppressed, openRunbook, remediateOnApproval, runRunbook } from './steps/runbook.js';

export async function resourcePressure(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await endIfSuppressed(rb);
    if (suppressed) return suppressed;

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: true });
    if (incident.resolved) return endResolvedExternally(rb);

    return remediateOnApproval(rb, {
      kind: 'restart',
      ask: `restart '${input.target}' to relieve resource pressure`,
      timeoutReason: `nobody approved restarting '${input.target}' in time`,
      diagnostics,
    });
  });
}
