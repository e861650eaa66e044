// The guard as engines before guardBatch ran it: the same decisions, one update per request, and no
// guardBatch handler. A newer engine's activities meet it while an older engine still serves the guard.
import { condition, setHandler } from '@temporalio/workflow';
import { claimRestartUpdate, releaseSlotUpdate, withdrawClaimUpdate, type GuardState } from '../../activities/guardMessages.js';
import { checkClaim, claimRestart, releaseSlot, withdrawClaim } from '../../workflows/guardrails.js';

export async function guardrails(): Promise<void> {
  const state: GuardState = { restarts: {}, leases: [], windows: [], retainMs: 3_600_000 };
  setHandler(claimRestartUpdate, (req) => claimRestart(state, req, Date.now()), { validator: checkClaim });
  setHandler(releaseSlotUpdate, (leaseId) => releaseSlot(state, leaseId));
  setHandler(withdrawClaimUpdate, (requestId) => withdrawClaim(state, requestId));
  await condition(() => false);
}
