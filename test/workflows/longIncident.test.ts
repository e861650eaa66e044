// Incidents that live long or hear a lot, run by the interpreter on the real dev server: a storm of
// repeated alerts keeps history short (the run continues as new at its waiting point, carrying its
// state), a worker restart afterwards changes nothing, pages go out once per level, and an incident
// holding several alerts is resolved only when every one of them is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { loadRunbookDir, parseRunbook } from '../../config/runbookLoad.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import {
  alertFiringSignal,
  alertResolvedSignal,
  approveSignal,
  cancelRequestedSignal,
  incidentWorkflowId,
  maintenanceWorkflowId,
  statusQuery,
  type RunbookResult,
  type RunbookRunInput,
} from '../../workflows/messages.js';
import { historyLimit } from '../../workflows/steps/continuation.js';
import { runbookInput, startHarness, uniqueTarget, waitForStatus, type Harness } from './harness.js';

let h: Harness;
let shipped: Record<string, RunbookDefinition>;

beforeAll(async () => {
  h = await startHarness('long-incident');
  shipped = loadRunbookDir('runbooks');
});
afterAll(async () => h?.close());

function input(name: string, target: string, overrides: Partial<RunbookRunInput> = {}): RunbookRunInput {
  const base = runbookInput(h, target, {
    runbook: name,
    // On-call at once, senior an hour later: the run sits waiting between them.
    escalation: {
      policy: 'p',
      levels: [
        { name: 'on-call', afterMs: 0, channels: ['ops'] },
        { name: 'senior', afterMs: 3_600_000, channels: ['lead'] },
      ],
    },
    guardrails: { restartAttempts: 1, approvalTimeoutMs: 3_600_000 } as never,
  });
  return {
    ...base,
    definition: shipped[name]!,
    targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target } }],
    startedBy: 'alertmanager',
    ...overrides,
  };
}

function fire(name: string, target: string, fingerprint: string, overrides: Partial<RunbookRunInput> = {}): Promise<WorkflowHandle> {
  return h.client.workflow.signalWithStart('runbook', {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId(name, target),
    args: [input(name, target, overrides)],
    signal: alertFiringSignal,
    signalArgs: [{ fingerprint, at: new Date().toISOString() }],
  });
}

/**
 * Sends `n` repeats of one firing alert in bursts, as Alertmanager delivers them (a group's alerts
 * every group interval), waiting after each burst until the run has folded it. A signal the server
 * turns away while the run is continuing as new is sent again, as the webhook's retry would.
 */
async function repeat(handle: WorkflowHandle, fingerprint: string, n: number, burst = 1_000, parallel = 32): Promise<void> {
  const before = (await handle.query(statusQuery)).alertsFolded;
  for (let sent = 0; sent < n;) {
    const size = Math.min(burst, n - sent);
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < size) {
          next += 1;
          for (let tries = 0; ; tries++) {
            try {
              await handle.signal(alertFiringSignal, { fingerprint, at: 'repeat' });
              break;
            } catch (err) {
              if (tries > 50) throw err;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        }
      }),
    );
    sent += size;
    await waitForStatus(handle, (s) => s.alertsFolded === before + sent, 60_000);
  }
}

describe('an incident that hears a lot', () => {
  it('folds 20,000 repeats of its alert without growing history past the limit, survives a worker restart, and still resolves and pages once per level', async () => {
    const target = uniqueTarget('storm');
    h.script(target, { healthy: () => false });
    const started = await fire('serviceDown', target, 'fp-a');
    const handle = h.client.workflow.getHandle(started.workflowId);
    await waitForStatus(handle, (s) => s.escalationLevel === 'on-call');
    const firstRunId = (await handle.describe()).runId;

    await repeat(handle, 'fp-a', 20_000);
    const status = await handle.query(statusQuery);
    expect(status.alertsFolded).toBe(20_000);
    const now = await handle.describe();
    expect(now.runId).not.toBe(firstRunId);
    expect(now.historyLength).toBeLessThan(historyLimit + 1_000);
    expect(status.timeline.filter((e) => e.event === 'continued').length).toBeGreaterThan(0);
    // The storm shows as a handful of lines, not 20,000.
    expect(status.timeline.filter((e) => e.event === 'alert repeated').map((e) => e.detail)).toEqual(
      ['1 repeat', '10 repeats', '100 repeats', '1000 repeats', '10000 repeats'].map((r) => `${r} folded into this run so far`),
    );
    expect(status.escalationLevel).toBe('on-call');

    // An engine restart: the new worker replays the current (short) run from scratch.
    await h.restartWorker();
    await h.client.workflow
      .getHandle(started.workflowId)
      .signal(alertResolvedSignal, { fingerprint: 'fp-a', at: new Date().toISOString() });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('resolved-externally');

    const pages = h.notifications.filter((n) => n.incidentKey === started.workflowId);
    expect(pages.filter((n) => n.event === 'trigger').map((n) => n.idempotencyKey)).toEqual([
      `${started.workflowId}:${firstRunId}:on-call`,
    ]);
    expect(pages.filter((n) => n.event === 'resolve')).toHaveLength(1);
    // One PagerDuty key from the first page to the resolve, across every run continued as new.
    expect(new Set(pages.map((n) => n.incidentRun))).toEqual(new Set([firstRunId]));
  }, 180_000);

  it('keeps a pending approval across runs continued as new: no second request, and the approval still restarts', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: (s) => s.restarts > 0 });
    const started = await fire('databaseConnection', target, 'fp-db', {
      targets: [{ name: target, kind: 'postgres', queue: h.queue, labels: {} }],
    });
    const handle = h.client.workflow.getHandle(started.workflowId);
    const waiting = await waitForStatus(handle, (s) => s.pendingApproval?.step === 'approve-restart');
    const firstRunId = (await handle.describe()).runId;

    await repeat(handle, 'fp-db', 3_000);
    expect((await handle.describe()).runId).not.toBe(firstRunId);
    const carried = await handle.query(statusQuery);
    expect(carried.pendingApproval).toEqual(waiting.pendingApproval);

    await handle.signal(approveSignal, { operator: 'alice', reason: 'go' });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the restart approved by alice');
    const requests = h.notifications.filter(
      (n) => n.incidentKey === started.workflowId && n.idempotencyKey.endsWith(':approval:approve-restart'),
    );
    expect(requests).toHaveLength(1);
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  }, 120_000);

  it('carries who asked for a cancel into the run continued as new, so the cancellation that lands there still names them', async () => {
    const target = uniqueTarget('cancel');
    h.script(target, { healthy: () => false });
    const started = await fire('serviceDown', target, 'fp-c');
    const handle = h.client.workflow.getHandle(started.workflowId);
    await waitForStatus(handle, (s) => s.escalationLevel === 'on-call');
    const firstRunId = (await handle.describe()).runId;
    // The door's signal lands in one run; its cancel, sent next, in the run after it.
    await handle.signal(cancelRequestedSignal, { operator: 'bob', reason: 'taking it by hand', via: 'api' });
    await repeat(handle, 'fp-c', 2_500);
    expect((await handle.describe()).runId).not.toBe(firstRunId);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow();
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('cancelled');
    expect(status.timeline.at(-1)).toMatchObject({ event: 'cancelled', detail: 'cancelled by bob: taking it by hand' });
  }, 120_000);
});

describe('a maintenance run with its window open', () => {
  it('does not continue as new while it holds the window, so its finally still expires the silence and closes the window', async () => {
    const target = uniqueTarget('pg');
    h.script(target, { healthy: () => true });
    const schedule = uniqueTarget('weekly');
    const definition = parseRunbook(
      [
        'name: windowedApproval',
        'description: a window held open while an operator decides',
        'kind: maintenance',
        'appliesTo: [postgres]',
        'steps:',
        '  - { id: open-window, uses: openWindow }',
        '  - { id: go-on, uses: approval, with: { action: "go on with the maintenance" } }',
        'finally:',
        '  - { id: close-window, uses: closeWindow }',
      ].join('\n'),
      'windowedApproval.yaml',
    );
    const handle = await h.client.workflow.start('runbook', {
      taskQueue: h.queue,
      workflowId: maintenanceWorkflowId(schedule),
      args: [
        {
          ...input('windowedApproval', schedule, {
            definition,
            targets: [{ name: target, kind: 'postgres', queue: h.queue, labels: { service: target } }],
            startedBy: 'schedule',
          }),
          targetKind: 'postgres',
          maintenance: {
            schedule,
            targets: [target],
            windowMs: 600_000,
            silence: [{ name: 'service', value: target, isRegex: false, isEqual: true }],
            channels: ['ops'],
          },
        },
      ],
    });
    await waitForStatus(handle, (s) => s.pendingApproval?.step === 'go-on');
    const firstRunId = (await handle.describe()).runId;
    // Past the history a run continues as new at (a top-level approval is where it would): an
    // alert, then its repeats, each an event.
    await handle.signal(alertFiringSignal, { fingerprint: 'fp-noise', at: new Date().toISOString() });
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.detail?.includes('fp-noise')));
    await repeat(handle, 'fp-noise', historyLimit + 500);
    expect((await handle.describe()).runId).toBe(firstRunId);
    await handle.signal(approveSignal, { operator: 'alice', reason: 'go' });
    const result = (await handle.result()) as RunbookResult;
    const silenceId = result.timeline.find((e) => e.event === 'window opened')!.detail!.split(' ')[1];
    expect(h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg)).toContain(silenceId);
    expect(result.timeline.map((e) => e.event)).toContain('window closed');
    expect((await h.guard.maintenanceWindowFor(target)).suppressed).toBe(false);
  }, 120_000);
});

describe('an incident holding several alerts', () => {
  it('takes an opening alert from its input (the eager start) as it takes the first signal: the same alert again is a repeat', async () => {
    const target = uniqueTarget('eager');
    h.script(target, { healthy: () => false });
    const handle = await h.client.workflow.start('runbook', {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId('serviceDown', target),
      args: [{ ...input('serviceDown', target), openingAlert: { fingerprint: 'fp-open', at: new Date().toISOString() } }],
    });
    await waitForStatus(handle, (s) => s.escalationLevel === 'on-call');
    await handle.signal(alertFiringSignal, { fingerprint: 'fp-open', at: 'repeat' });
    const status = await waitForStatus(handle, (s) => s.alertsFolded === 1);
    expect(status.timeline.filter((e) => e.event === 'alert firing').map((e) => e.detail)).toEqual(['fp-open']);
    // First on the timeline, as the signal that came with signal-with-start was.
    expect(status.timeline[0]).toMatchObject({ event: 'alert firing' });
    // Held like a signalled alert: its resolution resolves the incident.
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-open', at: new Date().toISOString() });
    expect(((await handle.result()) as RunbookResult).outcome).toBe('resolved-externally');
  });

  it('carries on while one of two alerts is still firing, and is resolved once both are', async () => {
    const target = uniqueTarget('two');
    h.script(target, { healthy: () => false });
    await fire('serviceDown', target, 'fp-1');
    const handle = h.client.workflow.getHandle(incidentWorkflowId('serviceDown', target));
    await waitForStatus(handle, (s) => s.escalationLevel === 'on-call');
    await fire('serviceDown', target, 'fp-2');
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'alert firing' && /fp-2/.test(e.detail ?? '')));

    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-1', at: new Date().toISOString() });
    const partly = await waitForStatus(handle, (s) => s.timeline.some((e) => /1 still firing/.test(e.detail ?? '')));
    expect(partly.outcome).toBeUndefined();
    expect(h.notifications.filter((n) => n.incidentKey === handle.workflowId && n.event === 'resolve')).toHaveLength(0);

    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-2', at: new Date().toISOString() });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('resolved-externally');
    expect(h.notifications.filter((n) => n.incidentKey === handle.workflowId && n.event === 'resolve')).toHaveLength(1);
  });

  it('ignores a resolution for an alert it does not hold, and opens again when a resolved alert fires again', async () => {
    const target = uniqueTarget('refire');
    h.script(target, { healthy: () => false });
    await fire('serviceDown', target, 'fp-x');
    const handle = h.client.workflow.getHandle(incidentWorkflowId('serviceDown', target));
    await waitForStatus(handle, (s) => s.escalationLevel === 'on-call');
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-other', at: new Date().toISOString() });
    await waitForStatus(handle, (s) => s.timeline.some((e) => /fp-other is not one this incident holds/.test(e.detail ?? '')));
    await handle.signal(alertFiringSignal, { fingerprint: 'fp-x', at: 'again' });
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-x', at: new Date().toISOString() });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('resolved-externally');
  });

  it('opens again when a new alert fires after every alert it held resolved, and pages for it', async () => {
    const target = uniqueTarget('reopen');
    h.script(target, { healthy: () => false });
    // A step that does not watch resolution: the run only sees it at the next step boundary.
    const definition = parseRunbook(
      [
        'name: reopen',
        'description: a wait, then a page',
        'appliesTo: [container]',
        'steps:',
        '  - id: hold',
        '    uses: sleep',
        '    with: { duration: 8s }',
        '  - id: escalate',
        '    uses: escalate',
        '    with: { reason: "an alert fires" }',
        '  - id: escalated',
        '    uses: end',
        '    with: { outcome: escalated, detail: "${{ steps.escalate.end }}" }',
      ].join('\n'),
      'reopen.yaml',
    );
    const handle = await fire('reopen', target, 'fp-a', { definition });
    await waitForStatus(handle, (s) => s.step === 'hold');
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-a', at: new Date().toISOString() });
    await waitForStatus(handle, (s) => s.timeline.some((e) => /every alert of this incident resolved/.test(e.detail ?? '')));
    await fire('reopen', target, 'fp-b', { definition });
    const reopened = await waitForStatus(handle, (s) => s.timeline.some((e) => /fp-b/.test(e.detail ?? '')));
    // All of it while the run still sleeps: otherwise the test shows nothing.
    expect(reopened.step).toBe('hold');
    expect(reopened.timeline.at(-1)).toMatchObject({
      event: 'alert firing',
      detail: 'another alert (fingerprint fp-b): the incident is open again',
    });

    const paging = await waitForStatus(handle, (s) => s.escalationLevel !== undefined || s.outcome !== undefined, 30_000);
    expect(paging.outcome, paging.outcomeDetail).toBeUndefined();
    expect(paging.escalationLevel).toBe('on-call');
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-b', at: new Date().toISOString() });
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('resolved-externally');
    const pages = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(pages.map((n) => n.event)).toEqual(['trigger', 'resolve']);
  }, 60_000);
});
