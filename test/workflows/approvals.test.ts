import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { databaseConnection } from '../../workflows/databaseConnection.js';
import { highErrorRate } from '../../workflows/highErrorRate.js';
import {
  acknowledgeSignal,
  decisionUpdate,
  alertResolvedSignal,
  approveSignal,
  incidentWorkflowId,
  rejectSignal,
  statusQuery,
  type RunbookInput,
  type RunbookStatus,
} from '../../workflows/messages.js';
import { resourcePressure } from '../../workflows/resourcePressure.js';
import { events, runbookInput, startHarness, uniqueTarget, waitForStatus, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-approvals');
});
afterAll(async () => {
  await h?.close();
});

const workflows = { databaseConnection, highErrorRate, resourcePressure };
type Name = keyof typeof workflows;

function start(name: Name, target: string, overrides: Partial<RunbookInput> = {}) {
  const input = runbookInput(h, target, {
    runbook: name,
    targetKind: 'postgres',
    alert: { name: 'DatabaseDown', severity: 'critical', labels: {} },
    ...overrides,
  });
  return h.client.workflow.start(workflows[name] as typeof databaseConnection, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId(name, target),
    args: [input],
  });
}

/** Approval pending and its page sent (the status shows it pending just before the page goes out). */
const pending = (s: RunbookStatus) => s.pendingApproval !== undefined && s.timeline.some((e) => e.event.startsWith('paged approval'));

describe('databaseConnection', () => {
  it('ends as a false alarm when the database answers', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => true });
    const result = await (await start('databaseConnection', target)).result();
    expect(result.outcome, result.detail).toBe('false-alarm');
    expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(0);
  });

  it('diagnoses, asks for approval, and restarts only once an operator approves', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start('databaseConnection', target);
    const waiting = await waitForStatus(handle, pending);
    expect(waiting.pendingApproval?.step).toBe('approve-restart');
    expect(waiting.diagnosticsSummary).toContain('out of cheese');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    const request = h.notifications.find((n) => n.incidentKey === handle.workflowId);
    expect(request?.title).toContain('Approval needed');

    await handle.signal(approveSignal, { operator: 'alice', reason: 'go' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toContain('approved by alice');
    expect(h.callsFor(target, 'restartTarget')[0]!.ctx).toMatchObject({ actor: 'alice', dryRun: false });
    expect((await handle.query(statusQuery)).approvedBy).toBe('alice');
    // The approval request was a page, so the recovery resolves it.
    expect(h.notifications.filter((n) => n.incidentKey === handle.workflowId).map((n) => n.event)).toEqual(['trigger', 'resolve']);
  });

  it('ends as rejected without touching the database when an operator rejects', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target);
    await waitForStatus(handle, pending);
    await handle.signal(rejectSignal, { operator: 'bob', reason: 'failover in progress' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('rejected');
    expect(result.detail).toBe('restart rejected by bob: failover in progress');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    // The decision closes the approval page: nothing stays open on the channel.
    expect(h.notifications.filter((n) => n.incidentKey === handle.workflowId).map((n) => n.event)).toEqual(['trigger', 'resolve']);
  });

  it('escalates when nobody decides before the approval timeout', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target, {
      guardrails: { approvalTimeoutMs: 1_000 } as never,
      escalation: { policy: 'p', levels: [{ name: 'dba', afterMs: 0, channels: ['dba'] }] },
    });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toContain('nobody approved');
    expect(events(result.timeline)).toContain('approval timed out');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    const keys = h.notifications.filter((n) => n.incidentKey === handle.workflowId).map((n) => n.idempotencyKey.split(':').pop());
    expect(keys).toEqual(['approve-restart', 'dba']);
  });

  it('ignores an approval from someone not listed as an operator', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target);
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'mallory', reason: 'trust me' });
    const status = await waitForStatus(handle, (s) => events(s.timeline).includes('approval ignored'));
    expect(status.pendingApproval).toBeDefined();
    expect(status.timeline).toContainEqual(
      expect.objectContaining({ event: 'approval ignored', actor: 'mallory', detail: "'mallory' is not an operator" }),
    );
    await handle.signal(rejectSignal, { operator: 'alice', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('rejected');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
  });

  it('keeps the timeline short when flooded with signals that change nothing, and keeps who decided', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target, { guardrails: { approvalTimeoutMs: 120_000 } as never });
    await waitForStatus(handle, pending);
    await Promise.all(Array.from({ length: 230 }, (_, i) => handle.signal(approveSignal, { operator: `bot-${i}`, reason: '' })));
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
    // A stuck button, or a script: three hundred acknowledgements more.
    for (let i = 0; i < 3; i++)
      await Promise.all(Array.from({ length: 100 }, () => handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' })));
    // Handled in order: once this one is on the timeline, all before it were handled.
    await handle.signal(rejectSignal, { operator: 'mallory', reason: 'last' });
    const status = await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'rejection ignored'));
    const noise = (event: string) => status.timeline.filter((e) => e.event === event).map((e) => e.detail);
    // The first five of each, then the 10th and the 100th: not 230 and 300 entries.
    expect(noise('approval ignored')).toHaveLength(7);
    expect(noise('approval ignored').at(-1)).toMatch(/^'bot-\d+' is not an operator \(100 so far\)$/);
    expect(noise('acknowledgement repeated')).toHaveLength(7);
    expect(noise('acknowledgement repeated').at(-1)).toMatch(/^on it.* \(100 so far\)$/);
    expect(status.timeline.length).toBeLessThan(40);
    expect(status.timeline[0]!.event).toBe('opened');
    expect(status.timeline.filter((e) => e.event === 'acknowledged')).toEqual([expect.objectContaining({ actor: 'alice' })]);
    await handle.signal(rejectSignal, { operator: 'alice', reason: '' });
    const result = await handle.result();
    expect(result.outcome).toBe('rejected');
    expect(events(result.timeline)).toContain('rejected');
  });

  it('takes one of two decisions sent at once as updates, and refuses the other with the reason, recording nothing for it', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target, { guardrails: { approvalTimeoutMs: 120_000 } as never });
    await waitForStatus(handle, pending);
    // One acknowledgement taken, a second refused: neither floods the timeline.
    await handle.executeUpdate(decisionUpdate, { args: [{ kind: 'acknowledge', operator: 'alice', reason: 'mine' }] });
    const again = await handle
      .executeUpdate(decisionUpdate, { args: [{ kind: 'acknowledge', operator: 'bob', reason: 'mine' }] })
      .catch((err: unknown) => err);
    expect(again).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((again as WorkflowUpdateFailedError).cause?.message).toBe('already acknowledged by alice');
    const [a, b] = await Promise.allSettled([
      handle.executeUpdate(decisionUpdate, { args: [{ kind: 'approve', operator: 'alice', reason: 'go', via: 'api' }] }),
      handle.executeUpdate(decisionUpdate, { args: [{ kind: 'reject', operator: 'bob', reason: 'no', via: 'chat' }] }),
    ]);
    const refused = [a, b].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect([a, b].filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(WorkflowUpdateFailedError);
    // Refused as decided already, or, once the winner closed the approval, as nothing pending.
    expect((refused[0]!.reason as WorkflowUpdateFailedError).cause?.message).toMatch(
      /^(already (approved by alice|rejected by bob)|nothing to (approve|reject): the run is not waiting for an approval .*)$/,
    );
    const decided = (e: { event: string; actor: string }) => (e.event === 'approved' || e.event === 'rejected') && e.actor !== 'engine';
    const status = await waitForStatus(handle, (s) => s.timeline.some(decided));
    const seen = events(status.timeline);
    // One decision, by an operator (a run ending 'rejected' records that outcome too, as the engine).
    expect(status.timeline.filter(decided)).toHaveLength(1);
    expect(seen.filter((e) => e === 'acknowledged')).toHaveLength(1);
    expect(seen.filter((e) => e.endsWith(' ignored') || e === 'acknowledgement repeated')).toEqual([]);
    await handle.terminate('test done').catch(() => undefined);
  });

  it('ends a pending approval when the alert resolves', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target);
    await waitForStatus(handle, pending);
    await handle.signal(alertResolvedSignal, { at: new Date().toISOString() });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('resolved-externally');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    expect((await handle.query(statusQuery)).pendingApproval).toBeUndefined();
  });

  it('escalates when the approved restart does not bring the database back', async () => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await start('databaseConnection', target, {
      escalation: { policy: 'p', levels: [{ name: 'dba', afterMs: 0, channels: ['dba'] }] },
    });
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'alice', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toContain('approved restart did not recover');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  });
});

describe('highErrorRate', () => {
  it('runs the configured action after approval when the target has one, and verifies', async () => {
    const target = uniqueTarget('api');
    let cleared = false;
    h.script(target, { healthy: () => cleared, action: () => void (cleared = true) });
    const handle = await start('highErrorRate', target, { hasAction: true, targetKind: 'http' });
    const waiting = await waitForStatus(handle, pending);
    expect(waiting.pendingApproval?.step).toBe('approve-action');
    // Detailed health ran alongside the diagnosis.
    expect(waiting.diagnosticsSummary).toContain('health:');
    await handle.signal(approveSignal, { operator: 'bob', reason: 'clear it' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(h.callsFor(target, 'runTargetAction')[0]!.ctx).toMatchObject({ actor: 'bob' });
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
  });

  it('passes dryRun to the action and every notification in a dry run', async () => {
    const target = uniqueTarget('api');
    h.script(target, { healthy: () => false });
    const handle = await start('highErrorRate', target, {
      hasAction: true,
      dryRun: true,
      escalation: { policy: 'p', levels: [{ name: 'only', afterMs: 0, channels: ['ops'] }] },
    });
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'bob', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(h.callsFor(target, 'runTargetAction').map((c) => c.ctx?.dryRun)).toEqual([true]);
    const told = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(told.length).toBeGreaterThanOrEqual(2);
    expect(told.every((n) => n.dryRun)).toBe(true);
  });

  it('restarts after approval when the target has no action', async () => {
    const target = uniqueTarget('api');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start('highErrorRate', target, { hasAction: false });
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'alice', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
    expect(h.callsFor(target, 'runTargetAction')).toHaveLength(0);
  });
});

describe('resourcePressure', () => {
  it('diagnoses, waits for approval, restarts and verifies', async () => {
    const target = uniqueTarget('cache');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start('resourcePressure', target);
    await waitForStatus(handle, pending);
    expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    await handle.signal(approveSignal, { operator: 'alice', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  });

  it('records an approved restart for anti-flap but never refuses it', async () => {
    const target = uniqueTarget('cache');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start('resourcePressure', target, { guardrails: { restartsPerWindow: { max: 0, windowMs: 600_000 } } as never });
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'alice', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    const guard = await h.client.workflow.getHandle(h.guardId).query<{ restarts: Record<string, number[]> }>('guardState');
    expect(guard.restarts[target]).toHaveLength(1);
  });
});
