// What an engine does to its task queue's guard when it starts, so that the first incident after the
// start (a deploy, a crash, or the reboot that is why alerts are coming) does not wait on the guard.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { guardrailsWorkflowId, guardStateQuery } from '../activities/guardMessages.js';
import { isWorkflowNotFound } from './readiness.js';

// The client's query says WorkflowNotFoundError; the raw service call, gRPC NOT_FOUND.
const isNotFound = (err: unknown) => err instanceof WorkflowNotFoundError || isWorkflowNotFound(err);

const reasonOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);

/**
 * A workflow's tasks go to the task queue of the worker that ran its last one, as long as that
 * worker seems alive: after a kill -9, an OOM kill or a reboot, Temporal still sends the guard's next
 * task to the dead engine's queue, and moves it to the shared queue only once nobody took it for
 * 10 s (the SDK's sticky schedule-to-start timeout). Every restart claim waits for that task: the
 * first alert after a SIGKILLed engine's restart recovered ~10.2 s after `docker start` would have
 * (bench `1r`), against ~0.2 s after a SIGTERM, whose worker says goodbye. Told to forget the dead
 * queue, Temporal sends the guard's next task to the shared queue, which this engine polls. An engine
 * that is alive and had the guard in its cache loses only that copy: its next task replays the
 * guard's history.
 */
export async function unstickGuard(client: Client, namespace: string, taskQueue: string, timeoutMs = 2_000): Promise<string> {
  try {
    await client.connection.withDeadline(Date.now() + timeoutMs, () =>
      client.workflowService.resetStickyTaskQueue({ namespace, execution: { workflowId: guardrailsWorkflowId(taskQueue) } }),
    );
    return 'reset';
  } catch (err) {
    return isNotFound(err) ? 'no guard yet' : `not reset: ${reasonOf(err)}`;
  }
}

/**
 * The guard's state read once, as every metrics scrape reads it: the guard's first workflow task on
 * a worker since the start (its history replayed, its thread's message codecs written) is then this
 * read's, not the first restart claim's. Bench `1r`: the first alert after a start ~90 ms sooner.
 */
export async function readGuard(client: Client, taskQueue: string, timeoutMs = 10_000): Promise<string> {
  try {
    await client.connection.withDeadline(Date.now() + timeoutMs, () =>
      client.workflow.getHandle(guardrailsWorkflowId(taskQueue)).query(guardStateQuery),
    );
    return 'read';
  } catch (err) {
    return isNotFound(err) ? 'no guard yet' : `not read: ${reasonOf(err)}`;
  }
}
