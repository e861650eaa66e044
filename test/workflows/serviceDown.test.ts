import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertFiringSignal, alertResolvedSignal, acknowledgeSignal, incidentWorkflowId, statusQuery } from '../../workflows/messages.js';
import type { RunbookInput } from '../../workflows/messages.js';
import { serviceDown } from '../../workflows/serviceDown.js';
import {
  cancelWhileFirstReadsOut,
  events,
  gate,
  guardHolds,
  permanentFailure,
  runbookInput,
  startHarness,
  uniqueTarget,
  waitForStatus,
  type Harness,
} from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-service-down');
});
afterAll(async () => {
  await h?.close();
});

/** Levels far enough apart that a signal sent after the first lands well before the second. */
const slowLevels = {
  policy: 'slow',
  levels: [
    { name: 'primary', afterMs: 0, channels: ['ops'] },
    { name: 'secondary', afterMs: 10_000, channels: ['lead'] },
  ],
};

function start(input: RunbookInput) {
  return h.client.workflow.start(serviceDown, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId('serviceDown', input.target),
    args: [input],
  });
}

/** The guard holds no lease for the target and counts no restart of it. */
async function expectNothingClaimed(target: string) {
  expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
}

describe('serviceDown', () => {
  it('ends as a false alarm without restarting when the target is healthy on the first check', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => true });
    const result = await (await start(runbookInput(h, target))).result();
    expect(result.outcome, result.detail).toBe('false-alarm');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    // The first restart's claim, asked beside the check, was withdrawn: no slot held, nothing counted.
    await expectNothingClaimed(target);
  });

  it('withdraws the claim asked beside its first reads when it is cancelled while they are out', async () => {
    const target = uniqueTarget('svc');
    // The first restart's claim went out beside the silence check, which has not answered yet.
    const { error } = await cancelWhileFirstReadsOut(h, target, () => start(runbookInput(h, target)));
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    // Not left holding a slot until its lease lapses, and not counted against anti-flap.
    await expectNothingClaimed(target);
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
  });

  it('counts nothing against anti-flap for false alarms, however many', async () => {
    const target = uniqueTarget('svc');
    let down = false;
    h.script(target, { healthy: (s) => !down || s.restarts >= 1 });
    const limited = { guardrails: { restartsPerWindow: { max: 1, windowMs: 600_000 } } as never };
    for (let i = 0; i < 3; i++) expect((await (await start(runbookInput(h, target, limited))).result()).outcome).toBe('false-alarm');
    // Were any of the three counted, anti-flap (at most 1 in 10 minutes) would refuse this restart.
    down = true;
    const result = await (await start(runbookInput(h, target, limited))).result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  });

  it('recovers on the first restart and pages nobody', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start(runbookInput(h, target));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
    expect(h.callsFor(target, 'restartTarget')[0]!.ctx).toMatchObject({ actor: 'engine', dryRun: false, incidentId: handle.workflowId });
    expect(h.notifications.filter((n) => n.incidentKey === handle.workflowId)).toHaveLength(0);
    expect((await handle.query(statusQuery)).restartAttempts).toBe(1);
    const reported = h.outcomes.filter((o) => o.workflowId === handle.workflowId);
    expect(reported).toEqual([
      { workflowId: handle.workflowId, runbook: 'serviceDown', outcome: 'recovered', durationMs: expect.any(Number) },
    ]);
    expect(reported[0]!.durationMs).toBeGreaterThan(0);
  });

  it('recovers on the third restart, backing off between attempts, and counts a restart only once verified', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 3 });
    const handle = await start(runbookInput(h, target, { guardrails: { restartBackoffMs: 200 } as never }));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toContain('restart 3');
    const restarts = h.callsFor(target, 'restartTarget');
    expect(restarts).toHaveLength(3);
    // Each failed restart was polled for the whole verification deadline before the next one.
    expect(restarts[1]!.at - restarts[0]!.at).toBeGreaterThanOrEqual(300 + 200);
    expect(restarts[2]!.at - restarts[1]!.at).toBeGreaterThanOrEqual(300 + 400);
    expect(events(result.timeline).filter((e) => e === 'backing off')).toHaveLength(2);
  });

  it('diagnoses and then pages every escalation level in order when restarts do not help', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await start(runbookInput(h, target));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toContain('not healthy after 3 restarts');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(3);
    const diagnosedAt = h.callsFor(target, 'diagnoseTarget')[0]!.at;
    expect(diagnosedAt).toBeGreaterThan(h.callsFor(target, 'restartTarget')[2]!.at);

    const pages = h.notifications.filter((n) => n.incidentKey === handle.workflowId && n.event === 'trigger');
    expect(pages.map((p) => p.idempotencyKey.split(':').pop())).toEqual(['primary', 'secondary', 'manager']);
    expect(pages.map((p) => p.channels)).toEqual([['ops'], ['ops', 'lead'], ['manager']]);
    expect(pages[0]!.at).toBeGreaterThanOrEqual(diagnosedAt);
    // Each level fires its delay after escalation began (workflow time, from the timeline).
    const at = (event: string) => Date.parse(result.timeline.find((e) => e.event === event)!.at);
    expect(at('paged primary') - at('escalating')).toBeLessThan(1_000);
    expect(at('paged secondary') - at('escalating')).toBeGreaterThanOrEqual(1_000);
    expect(at('paged manager') - at('escalating')).toBeGreaterThanOrEqual(2_000);
    expect(pages[0]!.text).toContain('panic: out of cheese');
    expect(pages[0]!.idempotencyKey).toBe(`${handle.workflowId}:${(await handle.describe()).runId}:primary`);

    const status = await handle.query(statusQuery);
    expect(status.diagnosticsSummary).toContain('out of cheese');
    expect(status.escalationLevel).toBe('manager');
  });

  it('stops escalating when an operator acknowledges, and tells the paged channels', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await start(runbookInput(h, target, { escalation: slowLevels, guardrails: { restartAttempts: 1 } as never }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'looking' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toContain('acknowledged by alice');
    const mine = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(mine.map((n) => n.event)).toEqual(['trigger', 'acknowledge']);
    expect(mine[1]!.channels).toEqual(['ops']);
    expect((await handle.query(statusQuery)).acknowledgedBy).toBe('alice');
  });

  it('gives a single level paged at once the plan’s time to answer (before, it gave up as it paged)', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const oneLevel = { policy: 'mail', levels: [{ name: 'team', afterMs: 0, channels: ['ops'] }] };
    const handle = await start(
      runbookInput(h, target, { escalation: { ...oneLevel, lastAnswerMs: 60_000 }, guardrails: { restartAttempts: 1 } as never }),
    );
    await waitForStatus(handle, (s) => s.escalationLevel === 'team');
    await handle.signal(acknowledgeSignal, { operator: 'bob', reason: 'mine' });
    const result = await handle.result();
    expect(result.detail).toContain('acknowledged by bob');
    // Planned before the plan carried the time: it ends as it pages, as it ran then.
    const earlier = uniqueTarget('svc');
    h.script(earlier, { healthy: () => false });
    const before = await start(runbookInput(h, earlier, { escalation: oneLevel, guardrails: { restartAttempts: 1 } as never }));
    expect((await before.result()).detail).toContain('nobody acknowledged after 1 level(s)');
  });

  it('ignores an acknowledgement from someone who is not an operator, recording the name', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await start(runbookInput(h, target, { guardrails: { restartAttempts: 1 } as never }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(acknowledgeSignal, { operator: 'mallory', reason: 'me' });
    const result = await handle.result();
    expect(result.detail).toContain('nobody acknowledged');
    expect(result.timeline).toContainEqual(expect.objectContaining({ event: 'acknowledgement ignored', actor: 'mallory' }));
    expect(h.notifications.filter((n) => n.incidentKey === handle.workflowId && n.event === 'trigger')).toHaveLength(3);
  });

  it('ends as resolved-externally when the alert resolves during escalation, resolving what it paged', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await start(runbookInput(h, target, { escalation: slowLevels, guardrails: { restartAttempts: 1 } as never }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(alertResolvedSignal, { at: new Date().toISOString() });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('resolved-externally');
    const mine = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(mine.map((n) => n.event)).toEqual(['trigger', 'resolve']);
  });

  it('lets an in-flight restart finish when the alert resolves, then stops before the next one', async () => {
    const target = uniqueTarget('svc');
    const restartRunning = gate();
    const release = gate();
    h.script(target, {
      healthy: () => false,
      restart: async () => {
        restartRunning.open();
        await release.wait;
      },
    });
    const handle = await start(runbookInput(h, target));
    await restartRunning.wait;
    await handle.signal(alertResolvedSignal, { at: new Date().toISOString() });
    release.open();
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('resolved-externally');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
    // The restart it did start was still verified.
    expect(events(result.timeline)).toContain('restarted');
    expect(h.callsFor(target, 'verifyTarget').length).toBeGreaterThan(1);
  });

  it('folds a repeated alert into the running incident instead of starting another', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const input = runbookInput(h, target, { guardrails: { restartBackoffMs: 3_000 } as never });
    const options = {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId('serviceDown', target),
      args: [input] as [RunbookInput],
      signal: alertFiringSignal,
      signalArgs: [{ fingerprint: 'abc', at: new Date().toISOString() }] as [{ fingerprint: string; at: string }],
    };
    const first = await h.client.workflow.signalWithStart(serviceDown, options);
    await waitForStatus(first, (s) => s.restartAttempts === 1);
    const second = await h.client.workflow.signalWithStart(serviceDown, options);
    expect(second.signaledRunId).toBe(first.signaledRunId);
    const status = await waitForStatus(first, (s) => s.alertsFolded === 1);
    expect(events(status.timeline)).toContain('alert firing');
    await first.signal(alertResolvedSignal, { at: new Date().toISOString() });
    expect((await first.result()).outcome).toBe('resolved-externally');
  });

  it('takes an opening alert from its input (the eager start) as the alert that opened it, not a repeat', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const input = runbookInput(h, target, { guardrails: { restartBackoffMs: 3_000 } as never });
    const alert = { fingerprint: 'abc', at: new Date().toISOString() };
    const handle = await h.client.workflow.start(serviceDown, {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId('serviceDown', target),
      args: [{ ...input, openingAlert: alert }],
    });
    await waitForStatus(handle, (s) => s.restartAttempts === 1);
    expect((await handle.query(statusQuery)).alertsFolded).toBe(0);
    await handle.signal(alertFiringSignal, alert);
    const status = await waitForStatus(handle, (s) => s.alertsFolded === 1);
    expect(events(status.timeline).filter((e) => e === 'alert firing')).toHaveLength(1);
    expect(events(status.timeline)[0]).toBe('alert firing');
    await handle.signal(alertResolvedSignal, { at: new Date().toISOString() });
    expect((await handle.result()).outcome).toBe('resolved-externally');
  });

  it('takes no automatic action under a matching silence', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false, silencedBy: '3f2a by alice' });
    const handle = await start(runbookInput(h, target));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('suppressed');
    expect(result.detail).toContain('3f2a by alice');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    const mine = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.title).toContain('suppressed');
    await expectNothingClaimed(target);
  });

  it('takes no automatic action while a maintenance window covers the target', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    await h.guard.openWindow({ holder: 'maintenance:test', schedule: 'weekly-db', targets: [target], untilMs: Date.now() + 60_000 });
    try {
      const result = await (await start(runbookInput(h, target))).result();
      expect(result.outcome, result.detail).toBe('suppressed');
      expect(result.detail).toContain("maintenance window 'weekly-db'");
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    } finally {
      await h.guard.closeWindow('maintenance:test');
    }
  });

  it('stops retrying and escalates when the restart can never work', async () => {
    const target = uniqueTarget('svc');
    h.script(target, {
      restart: () => {
        throw permanentFailure(`restart of container '${target}' failed: no such container`);
      },
    });
    const result = await (
      await start(runbookInput(h, target, { escalation: { policy: 'p', levels: [{ name: 'only', afterMs: 0, channels: ['ops'] }] } }))
    ).result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toContain('no such container');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  });

  it('refuses the fourth automatic restart within the window across successive incidents', async () => {
    const target = uniqueTarget('svc');
    let incidents = 0;
    // Each incident finds the target down and one restart brings it back.
    h.script(target, { healthy: (s) => s.restarts >= incidents });
    const oneLevel = { policy: 'p', levels: [{ name: 'only', afterMs: 0, channels: ['ops'] }] };
    const outcomes: string[] = [];
    let last;
    for (incidents = 1; incidents <= 4; incidents++) {
      last = await (
        await start(
          runbookInput(h, target, { escalation: oneLevel, guardrails: { restartsPerWindow: { max: 3, windowMs: 600_000 } } as never }),
        )
      ).result();
      outcomes.push(last.outcome);
    }
    expect(outcomes).toEqual(['recovered', 'recovered', 'recovered', 'escalated']);
    expect(last!.detail).toContain('anti-flap');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(3);
    expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
  });

  it('refuses restarts past the anti-flap limit within a single incident', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const result = await (
      await start(
        runbookInput(h, target, {
          escalation: { policy: 'p', levels: [{ name: 'only', afterMs: 0, channels: ['ops'] }] },
          guardrails: { restartAttempts: 5, restartsPerWindow: { max: 3, windowMs: 600_000 } } as never,
        }),
      )
    ).result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toMatch(/anti-flap: 3 restarts of '.*' in the last 10m/);
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(3);
  });

  it('holds a restart while the concurrency cap is reached and runs it once a slot frees', async () => {
    const a = uniqueTarget('svc-a');
    const b = uniqueTarget('svc-b');
    const aRestarting = gate();
    const releaseA = gate();
    h.script(a, {
      healthy: (s) => s.restarts >= 1,
      restart: async () => {
        aRestarting.open();
        await releaseA.wait;
      },
    });
    h.script(b, { healthy: (s) => s.restarts >= 1 });
    const capped = { maxConcurrentDestructive: 1, slotWaitMs: 30_000 } as never;
    const ha = await start(runbookInput(h, a, { guardrails: capped }));
    await aRestarting.wait;
    const hb = await start(runbookInput(h, b, { guardrails: capped }));
    await waitForStatus(hb, (s) => events(s.timeline).includes('waiting for a slot'));
    expect(h.callsFor(b, 'restartTarget')).toHaveLength(0);
    releaseA.open();
    const ra = await ha.result();
    expect(ra.outcome, JSON.stringify(ra.timeline)).toBe('recovered');
    const rb = await hb.result();
    expect(rb.outcome, JSON.stringify(rb.timeline)).toBe('recovered');
    expect(h.callsFor(b, 'restartTarget')[0]!.at).toBeGreaterThan(h.callsFor(a, 'restartTarget')[0]!.at);
  });

  it('passes dryRun to every mutating activity in a dry run', async () => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await start(
      runbookInput(h, target, {
        dryRun: true,
        escalation: { policy: 'p', levels: [{ name: 'only', afterMs: 0, channels: ['ops'] }] },
      }),
    );
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    const restarts = h.callsFor(target, 'restartTarget');
    expect(restarts).toHaveLength(3);
    expect(restarts.every((c) => c.ctx?.dryRun === true)).toBe(true);
    const pages = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.every((n) => n.dryRun)).toBe(true);
    // Nothing was really restarted, so nothing was counted against the anti-flap budget.
    const guard = await h.client.workflow.getHandle(h.guardId).query<{ restarts: Record<string, number[]> }>('guardState');
    expect(guard.restarts[target]).toBeUndefined();
  });

  it('ends failed, with the reason, when the workflow cannot page or act', async () => {
    // A guard refusing a bad request is permanent; the run must end with an outcome, not hang.
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await start(runbookInput(h, target, { guardrails: { restartsPerWindow: { max: 3, windowMs: 0 } } as never }));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('failed');
    expect(result.detail).toContain('claimRestart failed');
    expect(result.detail).toContain('windowMs');
  });
});
