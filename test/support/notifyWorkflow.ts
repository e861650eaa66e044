// Test-only workflow: runs the notify activity with a fast retry policy, so tests can watch
// Temporal retry it for real (the exactly-once-per-channel proof needs a real retry, with the
// heartbeat details the worker reports alongside the failure).
import { proxyActivities } from '@temporalio/workflow';
import type { NotificationRequest, NotificationResult } from '../../activities/contract.js';

const { notify } = proxyActivities<{ notify(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> }>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumInterval: '200ms', maximumAttempts: 4 },
});

export async function notifyWithRetries(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> {
  return notify(req);
}

/**
 * notify on another queue (an engine's), each attempt cut off after 10 s: a test can kill the process
 * running an attempt and watch the next one run elsewhere with what the first recorded.
 */
export async function notifyOnQueue(taskQueue: string, req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> {
  const onQueue = proxyActivities<{ notify(r: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> }>({
    taskQueue,
    startToCloseTimeout: '10s',
    retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumInterval: '200ms', maximumAttempts: 3 },
  });
  return onQueue.notify(req);
}
