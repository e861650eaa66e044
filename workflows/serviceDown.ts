// Service down: check it is not silenced, confirm it is down, restart it (each restart verified),
// and if it will not come back, diagnose and page until someone owns it.
import type { RunbookInput, RunbookResult } from './messages.js';
import { diagnose } from './steps/diagnose.js';
import { restartWithRetries } from './steps/restartWithRetries.js';
import { endRecovered, endResolvedExternally, endIfSuppressed, escalateAndEnd, openRunbook, runRunbook } from './steps/runbook.js';
import { verify } from './steps/verify.js';

export async function serviceDown(input: RunbookInput): Promise<RunbookResult> {
  const rb = openRunbook(input);
  const { incident, target, engine } = rb;
  return runRunbook(rb, async () => {
    const suppressed = await endIfSuppressed(rb);
    if (suppressed) return suppressed;

    const first = await verify(incident, target, input.target);
    if (first.healthy) return incident.finish('false-alarm', `'${input.target}' is healthy: ${first.detail}`);
    if (incident.resolved) return endResolvedExternally(rb);

    const restart = await restartWithRetries(incident, target, engine, {
      target: input.target,
      guardrails: input.guardrails,
      reason: `${input.alert.name}: '${input.target}' is down`,
      dryRun: input.dryRun,
    });
    if (restart.recovered) return endRecovered(rb, restart.detail);
    if (incident.resolved) return endResolvedExternally(rb);

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: false });
    if (incident.resolved) return endResolvedExternally(rb);

    return escalateAndEnd(rb, restart.detail, diagnostics);
  });
}
