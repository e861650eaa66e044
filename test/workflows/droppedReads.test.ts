// A local read that comes back cancelled though nobody cancelled the run: what core does to a run's
// outstanding local activities when it evicts the run from its cache. Under a backlog of 10,000
// incidents (100 cached runs per engine) 58 runs failed that way instead of paging. Such a read is
// asked again; a read dropped every time fails like any read, and the run goes on.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { loadRunbookDir } from '../../config/runbookLoad.js';
import {
  incidentWorkflowId,
  interpreterWorkflowType,
  statusQuery,
  type RunbookResult,
  type RunbookRunInput,
} from '../../workflows/messages.js';
import { serviceDown } from '../../workflows/serviceDown.js';
import { droppedReadRetries } from '../../workflows/steps/activities.js';
import { bundleEngineWorkflows } from '../support/globalSetup.js';
import { historyEvents } from '../support/history.js';
import { cancelWhileFirstReadsOut, events, guardHolds, runbookInput, startHarness, type Harness } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-dropped', { workflowBundle: await bundleEngineWorkflows([join(here, 'droppedReads.ts')]) });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

const serviceDownFile = loadRunbookDir('runbooks').serviceDown!;

type Start = (target: string) => Promise<WorkflowHandle>;
const runs: Array<[string, Start]> = [
  [
    'the runbook interpreter',
    (target) => {
      const input: RunbookRunInput = {
        ...runbookInput(h, target),
        definition: serviceDownFile,
        targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target } }],
        startedBy: 'alertmanager',
      };
      return h.client.workflow.start<(i: RunbookRunInput) => Promise<RunbookResult>>(interpreterWorkflowType, {
        taskQueue: h.queue,
        workflowId: incidentWorkflowId('serviceDown', target),
        args: [input],
      });
    },
  ],
  [
    'compiled serviceDown',
    (target) =>
      h.client.workflow.start(serviceDown, {
        taskQueue: h.queue,
        workflowId: incidentWorkflowId('serviceDown', target),
        args: [runbookInput(h, target)],
      }),
  ],
];

const droppedTarget = (times: number) => `dropped-${times}-${randomUUID().slice(0, 8)}`;
const timers = async (handle: WorkflowHandle) => (await historyEvents(handle)).filter((e) => e.timerStartedEventAttributes).length;

describe.each(runs)('%s, its silence check dropped by the worker', (_name, start) => {
  it('asks the check again, then restarts once and recovers', async () => {
    const target = droppedTarget(2);
    const state = h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start(target);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    // Two pauses (the first reads asked together dropped, then the check asked on its own), then
    // the third ask reached the activity; the run saw no failed check.
    expect(state.suppressionChecks).toBe(1);
    expect(await timers(handle)).toBeGreaterThanOrEqual(2);
    // Each drop is counted for the engine's local_reads_dropped_total.
    expect(h.droppedReads.filter((d) => d.workflowId === handle.workflowId).map((d) => d.activityType)).toEqual([
      'readsTogether',
      'checkSuppression',
    ]);
    expect(events((await handle.query(statusQuery)).timeline)).not.toContain('silence check failed');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
    // The claim asked beside the check was the one the restart used: one restart counted, no lease left.
    expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: [expect.any(Number)] });
  });

  it('treats a check dropped every time as a failed check: recorded, and the run goes on', async () => {
    // Dropped together with the other first reads, then every time it is asked on its own.
    const target = droppedTarget(droppedReadRetries + 2);
    const state = h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start(target);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(state.suppressionChecks).toBe(0);
    const failed = (await handle.query(statusQuery)).timeline.find((e) => e.event === 'silence check failed');
    expect(failed?.detail).toBe(
      `checkSuppression failed: the worker dropped it ${droppedReadRetries + 1} times (evicting the run from its cache) while the run was not cancelled; proceeding as not suppressed`,
    );
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  }, 30_000);

  it('still stops when the run itself is cancelled while its first reads are out', async () => {
    const target = `${randomUUID().slice(0, 8)}-svc`;
    const { error } = await cancelWhileFirstReadsOut(h, target, () => start(target));
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
  });
});
