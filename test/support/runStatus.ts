// Waiting on a live run through its status query: what it is doing now, as the CLI's `show` sees it.
import type { WorkflowHandle } from '@temporalio/client';
import { statusQuery, type RunbookStatus } from '../../workflows/messages.js';
import { until } from './wait.js';

/** Polls the run's status until `ok` holds, and returns that status. */
export function statusWhen(handle: WorkflowHandle, what: string, ms: number, ok: (s: RunbookStatus) => boolean): Promise<RunbookStatus> {
  return until(what, ms, async () => {
    const s = await handle.query(statusQuery);
    return ok(s) ? s : undefined;
  });
}

/** The run's status once it waits for an operator's approval (and has not ended). */
export function pendingApproval(handle: WorkflowHandle): Promise<RunbookStatus> {
  return statusWhen(handle, 'the runbook to ask for approval', 45_000, (s) => !!s.pendingApproval && !s.outcome);
}
