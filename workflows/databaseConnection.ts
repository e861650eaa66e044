// Database connection failure: confirm the database does not answer, gather what it is doing
// (connections, processlist, long queries), and restart it only when an operator approves.
import type { RunbookInput, RunbookResult } from './messages.js';
import { diagnose } from './steps/diagnose.js';
import { endResolvedExternally, endIfSuppressed, openRunbook, remediateOnApproval, runRunbook } from './steps/runbook.js';
import { verify } from './steps/verify.js';

export async function databaseConnection(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await endIfSuppressed(rb);
    if (suppressed) return suppressed;

    const ping = await verify(incident, target, input.target);
    if (ping.healthy) return incident.finish('false-alarm', `'${input.target}' answers: ${ping.detail}`);
    if (incident.resolved) return endResolvedExternally(rb);

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: false });
    if (incident.resolved) return endResolvedExternally(rb);

    return remediateOnApproval(rb, {
      kind: 'restart',
      ask: `restart database '${input.target}'`,
      timeoutReason: `nobody approved restarting '${input.target}' in time`,
      lead: `'${input.target}' does not answer: ${ping.detail}`,
      diagnostics,
    });
  });
}
