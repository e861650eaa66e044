// The least a Temporal-based remediation can cost: a run started eagerly with the alert in its input
// (as the engine starts an incident), one workflow task that waits for one local activity (where the
// engine asks its reads), then one activity that starts the container through the Engine API. No
// webhook, no spool, no runbook, no timeline.
// floorRestartGuarded adds what a guard across engines costs: its local activity also claims on a
// guard workflow (an update-with-start, on a worker of its own), as the engine's restart claim does.
import { condition, defineUpdate, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { floorActivities } from './activities.js';

type FloorActivities = ReturnType<typeof floorActivities>;

export const claimUpdate = defineUpdate<number, [number]>('claim');

const { look, claim } = proxyLocalActivities<FloorActivities>({ startToCloseTimeout: '5s' });
const { startContainer } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 1 } });

export async function floorRestart(container: string): Promise<void> {
  await look();
  await startContainer(container);
}

export async function floorRestartGuarded(container: string, guardId: string): Promise<void> {
  await Promise.all([look(), claim(guardId)]);
  await startContainer(container);
}

/** Counts claims, validating each as the engine's guard does; runs until the bench terminates it. */
export async function floorGuard(): Promise<void> {
  let claims = 0;
  setHandler(claimUpdate, (n) => (claims += n), {
    validator: (n) => {
      if (!Number.isInteger(n)) throw new Error('a claim is a whole number');
    },
  });
  await condition(() => false);
}
