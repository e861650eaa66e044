// High error rate: the service answers but fails too often. Gather detailed health, error logs and
// slow queries, then, with approval, run the target's configured action (a cache clear, say) or,
// when it has none, restart it.
import type { RunbookInput, RunbookResult } from './messages.js';
import { diagnose } from './steps/diagnose.js';
import { endResolvedExternally, endIfSuppressed, openRunbook, remediateOnApproval, runRunbook } from './steps/runbook.js';

export async function highErrorRate(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await endIfSuppressed(rb);
    if (suppressed) return suppressed;

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: true });
    if (incident.resolved) return endResolvedExternally(rb);

    const kind = input.hasAction ? 'action' : 'restart';
    return remediateOnApproval(rb, {
      kind,
      ask: input.hasAction ? `run the configured action of '${input.target}'` : `restart '${input.target}'`,
      timeoutReason: `nobody approved the ${kind} for '${input.target}' in time`,
      diagnostics,
    });
  });
}
