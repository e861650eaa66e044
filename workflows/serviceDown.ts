// Service down: check it is not silenced, confirm it is down, restart it (each restart verified),
// and if it will not come back, diagnose and page until someone owns it.
import type { RunbookInput, RunbookResult } from './messages.js';
import { diagnose } from './steps/diagnose.js';
import { checksAndClaimTogether, decidePatchesFirst, isPatched } from './steps/patchesFirst.js';
import { suppression } from './steps/maintenanceWindow.js';
import { claimAhead, restartWithRetries, type RestartPlan } from './steps/restartWithRetries.js';
import {
  endRecovered,
  endResolvedExternally,
  endIfSuppressed,
  endSuppressed,
  escalateAndEnd,
  openRunbook,
  runRunbook,
} from './steps/runbook.js';
import { checkOnce, verify, verifyFrom } from './steps/verify.js';
import { firstReadsTogether } from './steps/readsTogether.js';

export async function serviceDown(input: RunbookInput): Promise<RunbookResult> {
  decidePatchesFirst();
  const rb = openRunbook(input);
  const { incident, target, engine } = rb;
  const plan: RestartPlan = {
    target: input.target,
    guardrails: input.guardrails,
    reason: `${input.alert.name}: '${input.target}' is down`,
    dryRun: input.dryRun,
  };
  return runRunbook(rb, async () => {
    // The first check and the first restart's guard claim start with the suppression check: one
    // wait for all the reads instead of three in a row. Runs started before waited for each.
    if (isPatched(checksAndClaimTogether)) {
      const [check, ahead, suppressing] = firstReadsTogether(
        () => [checkOnce(target, input.target), claimAhead(incident, engine, plan), suppression(incident, engine, input.target)] as const,
      );
      let suppressed: Awaited<ReturnType<typeof suppression>>;
      let first: Awaited<typeof check>;
      try {
        suppressed = await suppressing;
        first = await check;
      } catch (err) {
        // Cancelled while reading: the claim is not left holding a slot until its lease lapses.
        await ahead.withdraw();
        throw err;
      }
      if (suppressed.suppressed || first.healthy || incident.resolved) await ahead.withdraw();
      if (suppressed.suppressed) return endSuppressed(rb, suppressed.reason ?? 'suppressed');
      await verifyFrom(incident, check);
      if (first.healthy) return incident.finish('false-alarm', `'${input.target}' is healthy: ${first.detail}`);
      if (incident.resolved) return endResolvedExternally(rb);
      return restartAndAfter({ ...plan, ahead });
    }
    const suppressed = await endIfSuppressed(rb);
    if (suppressed) return suppressed;

    const first = await verify(incident, target, input.target);
    if (first.healthy) return incident.finish('false-alarm', `'${input.target}' is healthy: ${first.detail}`);
    if (incident.resolved) return endResolvedExternally(rb);
    return restartAndAfter(plan);
  });

  async function restartAndAfter(restartPlan: RestartPlan): Promise<RunbookResult> {
    const restart = await restartWithRetries(incident, target, engine, restartPlan);
    if (restart.recovered) return endRecovered(rb, restart.detail);
    if (incident.resolved) return endResolvedExternally(rb);

    const diagnostics = await diagnose(incident, target, input.target, { withHealth: false });
    if (incident.resolved) return endResolvedExternally(rb);

    return escalateAndEnd(rb, restart.detail, diagnostics);
  }
}
