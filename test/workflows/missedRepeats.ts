// An escalation whose repeats fall due while no worker runs: serviceDown gives up on a target that
// never recovers and pages one level every second; the worker is stopped for `downMs`, then a new
// one takes over. Shared by the behaviour test and the replay scenario that records it.
import type { WorkflowHandle } from '@temporalio/client';
import { loadRunbookDir } from '../../config/runbookLoad.js';
import {
  acknowledgeSignal,
  interpreterWorkflowType,
  incidentWorkflowId,
  type RunbookResult,
  type RunbookRunInput,
} from '../../workflows/messages.js';
import { runbookInput, uniqueTarget, waitForStatus, type Harness } from './harness.js';

export const repeatEveryMs = 1_000;

export async function escalationThroughOutage(h: Harness, downMs: number): Promise<{ handle: WorkflowHandle; result: RunbookResult }> {
  const serviceDown = loadRunbookDir('runbooks').serviceDown!;
  const target = uniqueTarget('outage');
  h.script(target, { healthy: () => false });
  const escalation = { policy: 'p', levels: [{ name: 'primary', afterMs: 0, channels: ['ops'], repeatMs: repeatEveryMs }] };
  const input: RunbookRunInput = {
    ...runbookInput(h, target, {
      runbook: 'serviceDown',
      escalation,
      guardrails: { ...runbookInput(h, target).guardrails, restartAttempts: 1 },
    }),
    definition: serviceDown,
    targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target } }],
    startedBy: 'alertmanager',
  };
  const handle = await h.client.workflow.start<(i: RunbookRunInput) => Promise<RunbookResult>>(interpreterWorkflowType, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId('serviceDown', target),
    args: [input],
  });
  await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'paged primary'));
  await h.restartWorker(() => new Promise((r) => setTimeout(r, downMs)));
  // The page sent for what was missed, and then one more on time.
  await waitForStatus(handle, (s) => s.timeline.filter((e) => e.event.startsWith('paged primary (repeat')).length >= 2, 20_000);
  await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
  return { handle, result: (await handle.result()) as RunbookResult };
}
