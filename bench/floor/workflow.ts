// The least a Temporal-based remediation can cost: a signal-with-start, one workflow task that waits
// for one local activity (where the engine asks its reads and its guard), then one activity that
// starts the container through the Engine API. No webhook, no spool, no runbook, no guard, no timeline.
import { defineSignal, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type * as activities from './activities.js';

export const alertSignal = defineSignal<[unknown]>('alertFiring');

const { look } = proxyLocalActivities<typeof activities>({ startToCloseTimeout: '5s' });
const { startContainer } = proxyActivities<typeof activities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 1 } });

export async function floorRestart(container: string): Promise<void> {
  setHandler(alertSignal, () => {});
  await look();
  await startContainer(container);
}
