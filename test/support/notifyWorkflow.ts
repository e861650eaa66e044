// Test-only workflow: runs the notify activity with a fast retry policy, so tests can watch
// Temporal retry it for real (the exactly-once-per-channel proof needs a real retry, with the
// heartbeat details the worker reports alongside the failure).
import { proxyActivities } from '@temporalio/workflow';
import type { NotificationRequest, NotificationResult } from '../../activities/contract.js';
import { notifyOptions } from '../../workflows/steps/activities.js';

const { notify } = proxyActivities<{ notify(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> }>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumInterval: '200ms', maximumAttempts: 4 },
});

export async function notifyWithRetries(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> {
  return notify(req);
}

/**
 * notify on another queue (an engine's), with the options the engine's runs page with: a test can
 * kill the process running an attempt and watch the next one run elsewhere with what the first
 * recorded, as soon as the server notices the attempt's heartbeats stopped.
 */
export async function notifyOnQueue(taskQueue: string, req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> {
  const onQueue = proxyActivities<{ notify(r: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> }>({
    ...notifyOptions,
    taskQueue,
  });
  return onQueue.notify(req);
}
