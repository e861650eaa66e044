// Test-only workflow: asks a host agent's task queue, as runbooks do, to verify and diagnose a unit
// and to act on targets that are not the agent's, and reports each answer or refusal.
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { TargetActivities, Verification } from '../../activities/contract.js';

export interface ProbeResult {
  verified: Verification;
  diagnosed: string[];
  /** Per target name: "Type: message" of the refusal, or "accepted". */
  refusals: Record<string, string>;
}

export async function probeHostAgent(queue: string, own: string, others: string[]): Promise<ProbeResult> {
  const agent = proxyActivities<TargetActivities>({ taskQueue: queue, startToCloseTimeout: '30s', retry: { maximumAttempts: 1 } });
  const verified = await agent.verifyTarget(own);
  const diagnosed = (await agent.diagnoseTarget(own)).sections.map((s) => s.title);
  const refusals: Record<string, string> = {};
  for (const other of others) {
    try {
      // A dry run even if it were accepted: nothing is touched either way.
      await agent.restartTarget(other, { incidentId: 'probe', reason: 'host agent test', actor: 'test', dryRun: true });
      refusals[other] = 'accepted';
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      refusals[other] = cause instanceof ApplicationFailure ? `${cause.type}: ${cause.message}` : String(cause);
    }
  }
  return { verified, diagnosed, refusals };
}
