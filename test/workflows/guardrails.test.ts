import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createGuardrailActivities } from '../../activities/guardrails.js';
import type { RestartClaim, RestartReservation } from '../../activities/contract.js';
import {
  acquireSlot,
  applyOp,
  batchAnswer,
  claimRestart,
  guardStateQuery,
  guardrails,
  maxSettledKept,
  prune,
  releaseSlot,
  restartsPruneEveryMs,
  reserveRestart,
  withdrawClaim,
  type GuardState,
} from '../../workflows/guardrails.js';
import { holdersOf } from '../../workflows/steps/destructiveSlot.js';
import { stack } from '../support/stack.js';
import { quietRuntime, temporalClient, temporalConnectOptions, uniqueQueue } from '../support/temporal.js';
import { startHarness, uniqueTarget, type Harness } from './harness.js';

const hour = 3_600_000;

function reservation(target: string, requestId: string, extra: Partial<RestartReservation> = {}): RestartReservation {
  return { target, holder: 'incident:serviceDown:api', requestId, max: 3, windowMs: hour, enforce: true, dryRun: false, ...extra };
}

function empty(): GuardState {
  return { restarts: {}, leases: [], windows: [], retainMs: hour };
}

describe('guard rules', () => {
  it('refuses a fourth automatic restart within the window and allows it once the first ages out', () => {
    const state = empty();
    const t0 = 1_000_000_000;
    expect([0, 1, 2].map((i) => reserveRestart(state, reservation('api', `r${i}`), t0 + i * 60_000).allowed)).toEqual([true, true, true]);
    const refused = reserveRestart(state, reservation('api', 'r3'), t0 + 10 * 60_000);
    expect(refused).toMatchObject({ allowed: false, recent: 3 });
    expect(refused.reason).toBe("anti-flap: 3 restarts of 'api' in the last 1h (at most 3 automatic)");
    expect(reserveRestart(state, reservation('api', 'r4'), t0 + hour + 1).allowed).toBe(true);
  });

  it('counts restarts per target', () => {
    const state = empty();
    for (let i = 0; i < 3; i++) reserveRestart(state, reservation('api', `a${i}`), 1_000 + i);
    expect(reserveRestart(state, reservation('worker', 'w0'), 2_000).allowed).toBe(true);
  });

  it('records but never refuses an operator-approved restart, and records nothing in a dry run', () => {
    const state = empty();
    for (let i = 0; i < 3; i++) reserveRestart(state, reservation('api', `a${i}`), 1_000 + i);
    expect(reserveRestart(state, reservation('api', 'approved', { enforce: false }), 2_000)).toMatchObject({ allowed: true, recent: 4 });
    expect(reserveRestart(state, reservation('db', 'dry', { dryRun: true }), 2_000)).toMatchObject({ allowed: true, recent: 0 });
    expect(state.restarts['db']).toBeUndefined();
  });

  it('lets a lease lapse so a dead holder cannot keep a slot forever', () => {
    const state = empty();
    const req = { holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: 1_000 };
    expect(acquireSlot(state, { ...req, requestId: 'a' }, 0).acquired).toBe(true);
    expect(acquireSlot(state, { ...req, requestId: 'b' }, 500)).toMatchObject({ acquired: false, inUse: 1, holders: ['h restart api'] });
    expect(acquireSlot(state, { ...req, requestId: 'b' }, 1_001).acquired).toBe(true);
  });

  it('names at most ten holders in an answer, and counts them all', () => {
    const state = empty();
    const req = { holder: 'h', target: 'api', action: 'restart', max: 12, leaseMs: 1_000 };
    for (let i = 0; i < 12; i++) acquireSlot(state, { ...req, holder: `h${i}`, requestId: `a${i}` }, 0);
    const full = acquireSlot(state, { ...req, requestId: 'late' }, 1);
    expect(full).toMatchObject({ acquired: false, inUse: 12 });
    expect(full.holders).toEqual(Array.from({ length: 10 }, (_, i) => `h${i} restart api`));
    expect(holdersOf(full)).toBe(`${full.holders.join(', ')} and 2 more`);
    expect(holdersOf({ acquired: false, inUse: 1, holders: ['h restart api'] })).toBe('h restart api');
  });

  it('returns the same lease when the same request asks again', () => {
    const state = empty();
    const req = { requestId: 'a', holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: 1_000 };
    expect(acquireSlot(state, req, 0).leaseId).toBe('a');
    expect(acquireSlot(state, req, 1).leaseId).toBe('a');
    expect(state.leases).toHaveLength(1);
  });
});

describe('restart claims (anti-flap and a slot in one call)', () => {
  const claim = (target: string, requestId: string, extra: Partial<RestartClaim> = {}): RestartClaim => ({
    ...reservation(target, requestId),
    maxConcurrent: 1,
    leaseMs: 60_000,
    ...extra,
  });

  it('records the restart only with the slot: told to wait, nothing is used up', () => {
    const state = empty();
    expect(claimRestart(state, claim('api', 'a'), 0)).toMatchObject({ allowed: true, acquired: true, leaseId: 'a', recent: 1 });
    const waiting = claimRestart(state, claim('db', 'b'), 1);
    expect(waiting).toMatchObject({ allowed: true, acquired: false, inUse: 1, holders: ['incident:serviceDown:api restart api'] });
    expect(state.restarts['db']).toBeUndefined();
    state.leases = [];
    expect(claimRestart(state, claim('db', 'b2'), 2)).toMatchObject({ allowed: true, acquired: true, recent: 1 });
  });

  it('refuses a flapping target at once, even with every slot taken', () => {
    const state = empty();
    for (let i = 0; i < 3; i++) reserveRestart(state, reservation('api', `r${i}`), i);
    acquireSlot(state, { requestId: 'other', holder: 'h', target: 'db', action: 'restart', max: 1, leaseMs: 60_000 }, 3);
    const refused = claimRestart(state, claim('api', 'r3'), 4);
    expect(refused).toMatchObject({ allowed: false, acquired: false, recent: 3 });
    expect(refused.reason).toContain('anti-flap: 3 restarts');
  });

  it('answers a retried claim with the lease it holds, counting the restart once', () => {
    const state = empty();
    claimRestart(state, claim('api', 'a'), 0);
    expect(claimRestart(state, claim('api', 'a'), 5)).toMatchObject({ acquired: true, leaseId: 'a', recent: 1 });
    expect(state.restarts['api']).toHaveLength(1);
    expect(state.leases).toHaveLength(1);
  });

  it('takes no lease and records nothing in a dry run, but still says whether anti-flap would refuse', () => {
    const state = empty();
    expect(claimRestart(state, claim('api', 'dry', { dryRun: true }), 0)).toMatchObject({ allowed: true, acquired: true, recent: 0 });
    expect(state.leases).toHaveLength(0);
    expect(state.restarts['api']).toBeUndefined();
    for (let i = 0; i < 3; i++) reserveRestart(state, reservation('api', `r${i}`), i);
    expect(claimRestart(state, claim('api', 'dry2', { dryRun: true }), 5)).toMatchObject({ allowed: false });
  });

  it('takes back a withdrawn claim: its slot frees and its restart no longer counts, the others still do', () => {
    const state = empty();
    claimRestart(state, claim('api', 'a', { maxConcurrent: 2 }), 0);
    claimRestart(state, claim('api', 'b', { maxConcurrent: 2 }), 10);
    expect(withdrawClaim(state, 'b')).toBe(true);
    expect(state.leases.map((l) => l.id)).toEqual(['a']);
    expect(state.restarts['api']).toEqual([0]);
    // Withdrawn twice, or never granted: nothing more to take back.
    expect(withdrawClaim(state, 'b')).toBe(false);
    expect(withdrawClaim(state, 'never')).toBe(false);
    expect(withdrawClaim(state, 'a')).toBe(true);
    expect(state.restarts['api']).toBeUndefined();
    // Three claims withdrawn leave the whole anti-flap budget.
    for (const id of ['x', 'y', 'z']) {
      claimRestart(state, claim('api', id), 20);
      withdrawClaim(state, id);
    }
    expect(claimRestart(state, claim('api', 'w'), 30)).toMatchObject({ allowed: true, acquired: true, recent: 1 });
  });

  it('refuses a once claim asked again after its lease was released or withdrawn: a late duplicate holds nothing and counts nothing', () => {
    const state = empty();
    const once = { once: true as const, maxConcurrent: 1 };
    claimRestart(state, claim('api', 'released', once), 0);
    expect(releaseSlot(state, 'released', 100)).toBe(true);
    claimRestart(state, claim('api', 'withdrawn', once), 200);
    expect(withdrawClaim(state, 'withdrawn', 300)).toBe(true);
    expect(state.restarts['api']).toEqual([0]);
    // A stalled worker's queued claims, sent after the run went on elsewhere and settled them.
    for (const id of ['released', 'withdrawn']) {
      const late = claimRestart(state, claim('api', id, once), 400);
      expect(late).toMatchObject({ allowed: false, acquired: false, recent: 1 });
      expect(late.reason).toMatch(new RegExp(`^a late duplicate: request ${id} was granted and then settled .* not granted again$`));
    }
    expect(state.leases).toHaveLength(0);
    expect(state.restarts['api']).toEqual([0]);
    // The one slot is free for everybody else, and a late plain slot request is told to wait.
    expect(claimRestart(state, claim('api', 'next', once), 500)).toMatchObject({ allowed: true, acquired: true, recent: 2 });
    expect(releaseSlot(state, 'next', 600)).toBe(true);
    const slot = { requestId: 'released', holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: 1_000, once: true as const };
    expect(acquireSlot(state, slot, 700)).toMatchObject({ acquired: false });
  });

  it("grants a settled once lease's id again to a request without once: an old engine's run, whose first claim a new engine's door asked", () => {
    const state = empty();
    // The new door claims for the run with once; the run's task lands on an old engine, which asks
    // the same id without once and is answered with the door's lease.
    expect(claimRestart(state, claim('api', 'run/1/1', { once: true }), 0)).toMatchObject({ allowed: true, acquired: true });
    expect(claimRestart(state, claim('api', 'run/1/1'), 5)).toMatchObject({ allowed: true, acquired: true, recent: 1 });
    expect(releaseSlot(state, 'run/1/1', 100)).toBe(true);
    // The old run retries its restart step with the same id, as old runs do: granted and counted.
    expect(claimRestart(state, claim('api', 'run/1/1'), 200)).toMatchObject({ allowed: true, acquired: true, recent: 2 });
    expect(releaseSlot(state, 'run/1/1', 300)).toBe(true);
    expect(
      acquireSlot(state, { requestId: 'run/1/1', holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: hour }, 400),
    ).toMatchObject({
      acquired: true,
    });
    // The same id asked with once is still a late duplicate.
    releaseSlot(state, 'run/1/1', 500);
    expect(claimRestart(state, claim('api', 'run/1/1', { once: true }), 600)).toMatchObject({ allowed: false, acquired: false });
  });

  it('grants a settled id again when it was asked without once (runs recorded before), and forgets settled ids after the retention', () => {
    const state = empty();
    claimRestart(state, claim('api', 'old'), 0);
    releaseSlot(state, 'old', 10);
    expect(claimRestart(state, claim('api', 'old'), 20)).toMatchObject({ allowed: true, acquired: true });
    expect(state.settled ?? []).toEqual([]);
    releaseSlot(state, 'old', 25);
    expect(claimRestart(state, claim('api', 'new', { once: true }), 30).acquired).toBe(true);
    expect(releaseSlot(state, 'new', 40)).toBe(true);
    expect(state.settled).toEqual([['new', 40]]);
    expect(claimRestart(state, claim('api', 'new', { once: true }), 40 + hour - 1).acquired).toBe(false);
    expect(claimRestart(state, claim('api', 'new', { once: true }), 40 + hour)).toMatchObject({ allowed: true, acquired: true });
    expect(state.settled).toEqual([]);
  });

  it('keeps the newest settled ids only, so the state a guard carries across continue-as-new stays bounded', () => {
    const state = empty();
    for (let i = 0; i < maxSettledKept + 5; i++) {
      const id = `r${i}`;
      acquireSlot(state, { requestId: id, holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: hour, once: true }, i);
      releaseSlot(state, id, i);
    }
    const kept = state.settled!.map(([id]) => id);
    expect(kept).toHaveLength(maxSettledKept);
    expect(kept[0]).toBe('r5');
    expect(
      acquireSlot(state, { requestId: 'r4', holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: hour, once: true }, 9_999),
    ).toMatchObject({
      acquired: true,
    });
    expect(
      acquireSlot(state, { requestId: 'r5', holder: 'h', target: 'api', action: 'restart', max: 2, leaseMs: hour, once: true }, 9_999),
    ).toMatchObject({
      acquired: false,
    });
  });
});

describe('a batch of guard operations (guardBatch)', () => {
  const claim = (target: string, requestId: string): RestartClaim => ({
    ...reservation(target, requestId),
    maxConcurrent: 5,
    leaseMs: 60_000,
  });

  it('decides each operation as its own update would, in order', () => {
    const state = empty();
    const ops = [
      { op: 'claimRestart', req: claim('api', 'a') },
      { op: 'claimRestart', req: claim('api', 'b') },
      { op: 'withdrawClaim', requestId: 'b' },
      { op: 'releaseSlot', leaseId: 'a' },
      { op: 'releaseSlot', leaseId: 'a' },
    ] as const;
    const answers = ops.map((op) => applyOp(state, op, 100));
    expect(answers[0]).toMatchObject({ ok: { acquired: true, leaseId: 'a', recent: 1 } });
    expect(answers[1]).toMatchObject({ ok: { acquired: true, leaseId: 'b', recent: 2 } });
    expect(answers.slice(2)).toEqual([{ ok: true }, { ok: true }, { ok: false }]);
    // The withdrawn claim is uncounted; the released one still counts.
    expect(state.restarts['api']).toEqual([100]);
    expect(state.leases).toEqual([]);
  });

  it('answers, when asked, the open windows of the targets named after its operations, and the bare list when not', () => {
    const state = empty();
    state.windows = [
      { holder: 'maintenance:weekly', schedule: 'weekly', target: 'db', until: 500 },
      { holder: 'maintenance:weekly', schedule: 'weekly', target: 'api', until: 500 },
      { holder: 'maintenance:old', schedule: 'old', target: 'db', until: 100 },
    ];
    const ops = [{ op: 'claimRestart', req: claim('db', 'a') }] as const;
    expect(batchAnswer(state, [...ops], { windowsFor: ['db', 'cache'] }, 200)).toEqual({
      answers: [expect.objectContaining({ ok: expect.objectContaining({ acquired: true, leaseId: 'a' }) })],
      // Another target's window and one that lapsed are left out.
      windows: [{ holder: 'maintenance:weekly', schedule: 'weekly', target: 'db', until: 500 }],
    });
    // Asked as before (one argument): the bare list, as an engine from before reads it.
    const answers = batchAnswer(empty(), [...ops], undefined, 200);
    expect(Array.isArray(answers)).toBe(true);
  });

  it('refuses a malformed operation alone and changes nothing for it', () => {
    const state = empty();
    const answers = [
      applyOp(state, { op: 'claimRestart', req: { ...claim('api', 'a'), target: '' } }, 1),
      applyOp(state, { op: 'releaseSlot', leaseId: '' }, 1),
      applyOp(state, { op: 'launchMissiles' } as never, 1),
      applyOp(state, { op: 'claimRestart', req: claim('db', 'd') }, 1),
    ];
    expect(answers[0]).toEqual({ refused: 'guardrails request has no target' });
    expect(answers[1]).toEqual({ refused: 'guardrails request has no leaseId' });
    expect(answers[2]).toEqual({ refused: 'guardrails has no operation "launchMissiles"' });
    expect(answers[3]).toMatchObject({ ok: { acquired: true, leaseId: 'd' } });
    expect(Object.keys(state.restarts)).toEqual(['db']);
  });
});

describe('guard workflow', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness('wf-guard');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is created by the first request and counts a retried request once', async () => {
    const target = uniqueTarget('api');
    const first = await h.guard.reserveRestart(reservation(target, 'run-1/restart/1'));
    const retried = await h.guard.reserveRestart(reservation(target, 'run-1/restart/1'));
    expect(first).toMatchObject({ allowed: true, recent: 1 });
    expect(retried).toEqual(first);
    const state = await h.client.workflow.getHandle(h.guardId).query(guardStateQuery);
    expect(state.restarts[target]).toHaveLength(1);
  });

  it('answers a storm of concurrent claims in a few batched updates, anti-flap exact across them', async () => {
    const target = uniqueTarget('api');
    const claims = Array.from({ length: 40 }, (_, i) => ({
      ...reservation(target, `storm/${i}`, { max: 10 }),
      holder: `incident:serviceDown:${target}-${i}`,
      maxConcurrent: 100,
      leaseMs: 60_000,
    }));
    // One malformed among them: refused alone, as bad input.
    const bad = { ...claims[0]!, requestId: 'storm/bad', target: '' };
    const answers = await Promise.allSettled([...claims, bad].map((c) => h.guard.claimRestart(c)));
    const granted = answers.filter((a) => a.status === 'fulfilled' && a.value.acquired);
    const refused = answers.filter((a) => a.status === 'fulfilled' && !a.value.allowed);
    expect(granted).toHaveLength(10);
    expect(refused).toHaveLength(30);
    for (const r of refused) expect((r as PromiseFulfilledResult<{ reason: string }>).value.reason).toContain('anti-flap: 10 restarts');
    const failed = answers.at(-1)!;
    expect(failed.status).toBe('rejected');
    expect((failed as PromiseRejectedResult).reason).toMatchObject({ type: 'BadInput', nonRetryable: true });
    // The guard's history: far fewer updates than requests, and every request in one of them.
    const { events } = await h.client.workflow.getHandle(h.guardId).fetchHistory();
    const mine = (events ?? []).filter((e) => {
      const input = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
      return (
        input?.name === 'guardBatch' &&
        Buffer.from(input.args?.payloads?.[0]?.data ?? [])
          .toString()
          .includes(target)
      );
    });
    const ops = mine.map((e) => {
      const data = e.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest!.input!.args!.payloads![0]!.data!;
      return (JSON.parse(Buffer.from(data).toString()) as unknown[]).length;
    });
    expect(ops.reduce((a, b) => a + b, 0)).toBe(41);
    expect(mine.length).toBeLessThan(41 / 2);
    const state = await h.client.workflow.getHandle(h.guardId).query(guardStateQuery);
    expect(state.restarts[target]).toHaveLength(10);
    for (const g of granted) await h.guard.releaseSlot((g as PromiseFulfilledResult<{ leaseId: string }>).value.leaseId);
    const after = await h.client.workflow.getHandle(h.guardId).query(guardStateQuery);
    expect(after.leases.filter((l) => l.target === target)).toEqual([]);
  });

  it('refuses a malformed request as bad input that no retry can fix', async () => {
    const err = await h.guard.reserveRestart(reservation('', 'x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('BadInput');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toContain('has no target');
  });

  it('reports an open maintenance window for the targets it covers, until it is closed', async () => {
    const [a, b] = [uniqueTarget('db'), uniqueTarget('db')];
    await h.guard.openWindow({ holder: 'maintenance:weekly', schedule: 'weekly', targets: [a], untilMs: Date.now() + 60_000 });
    expect(await h.guard.maintenanceWindowFor(a)).toMatchObject({ suppressed: true });
    expect(await h.guard.maintenanceWindowFor(b)).toEqual({ suppressed: false });
    expect(await h.guard.closeWindow('maintenance:weekly')).toBe(1);
    expect(await h.guard.maintenanceWindowFor(a)).toEqual({ suppressed: false });
  });

  it("answers a window read asked beside a restart claim from the claim's batch, with no query of its own", async () => {
    // The guard's activities on a client that counts its queries of the guard.
    let queries = 0;
    const counting = new Proxy(h.client.workflow, {
      get(workflows, key) {
        if (key !== 'getHandle') return Reflect.get(workflows, key, workflows);
        return (...args: Parameters<typeof workflows.getHandle>) => {
          const handle = workflows.getHandle(...args);
          const query: typeof handle.query = (...q) => {
            queries++;
            return handle.query(...q);
          };
          return { ...handle, query };
        };
      },
    });
    const client = { connection: h.client.connection, workflow: counting } as unknown as typeof h.client;
    const guard = createGuardrailActivities({ client, taskQueue: h.queue, workflowId: h.guardId });
    const [a, b] = [uniqueTarget('db'), uniqueTarget('db')];
    const claim = (target: string, requestId: string): RestartClaim => ({
      ...reservation(target, requestId),
      holder: `incident:serviceDown:${target}`,
      maxConcurrent: 100,
      leaseMs: 60_000,
    });
    await guard.openWindow({ holder: 'maintenance:beside', schedule: 'beside', targets: [a], untilMs: Date.now() + 60_000 });
    const claimed = guard.claimRestart(claim(a, `${a}/1`));
    expect(await guard.maintenanceWindowFor(a)).toMatchObject({
      suppressed: true,
      reason: expect.stringContaining("maintenance window 'beside'"),
    });
    expect(queries).toBe(0);
    // No claim of b was at the guard: read by a query.
    expect(await guard.maintenanceWindowFor(b)).toEqual({ suppressed: false });
    expect(queries).toBe(1);
    expect((await claimed).acquired).toBe(true);
    // The batch asked the windows of the target it claimed for.
    const { events } = await h.client.workflow.getHandle(h.guardId).fetchHistory();
    const asked = (events ?? []).flatMap((e) => {
      const input = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
      const payloads = input?.name === 'guardBatch' ? (input.args?.payloads ?? []) : [];
      const ops = payloads[0] ? Buffer.from(payloads[0].data ?? []).toString() : '';
      return ops.includes(`${a}/1`) && payloads[1] ? [JSON.parse(Buffer.from(payloads[1].data ?? []).toString()) as unknown] : [];
    });
    expect(asked).toEqual([{ windowsFor: [a] }]);
    // Closed by this engine: the answer beside the claim is dropped, and the next read sees it closed.
    expect(await guard.closeWindow('maintenance:beside')).toBe(1);
    expect(await guard.maintenanceWindowFor(a)).toEqual({ suppressed: false });
  });

  it("refuses a second run's window of the same schedule while the first holds it, as bad input naming the holder", async () => {
    const [db, cache] = [uniqueTarget('db'), uniqueTarget('cache')];
    const schedule = uniqueTarget('weekly');
    const byHand = { holder: `maintenance:${schedule}`, schedule, targets: [db], untilMs: Date.now() + 60_000 };
    await h.guard.openWindow(byHand);
    // The same run asking again (a retried activity) is fine.
    await h.guard.openWindow(byHand);
    const fired = { holder: `maintenance:${schedule}-2026-12-06T02:00:00Z`, schedule, targets: [db, cache], untilMs: Date.now() + 60_000 };
    const err = await h.guard.openWindow(fired).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'BadInput', nonRetryable: true });
    expect((err as Error).message).toContain(
      `maintenance '${schedule}' is already running: maintenance:${schedule} holds its window on '${db}'`,
    );
    // Nothing of the refused run was opened.
    expect((await h.guard.maintenanceWindowFor(cache)).suppressed).toBe(false);
    // Another schedule on the same target is not this rule's business.
    await h.guard.openWindow({
      holder: 'maintenance:monthly',
      schedule: `${schedule}-monthly`,
      targets: [db],
      untilMs: Date.now() + 60_000,
    });
    // Once the first run closed its window, the next may open it.
    expect(await h.guard.closeWindow(byHand.holder)).toBe(1);
    await h.guard.openWindow(fired);
    expect((await h.guard.maintenanceWindowFor(cache)).suppressed).toBe(true);
    await h.guard.closeWindow(fired.holder);
    await h.guard.closeWindow('maintenance:monthly');
  });

  it('drops old restarts once a minute and before continue-as-new, not on every request', () => {
    const state = empty();
    const t0 = 10 * hour;
    reserveRestart(state, reservation('api', 'a'), t0);
    state.restarts['old'] = [t0 - 2 * hour];
    expect(prune(state, t0 + 1_000).restarts['old']).toEqual([t0 - 2 * hour]);
    expect(prune(state, t0 + restartsPruneEveryMs).restarts['old']).toBeUndefined();
    state.restarts['old'] = [t0 - 2 * hour];
    expect(prune(state, t0 + restartsPruneEveryMs + 1_000).restarts['old']).toEqual([t0 - 2 * hour]);
    expect(prune(state, t0 + restartsPruneEveryMs + 1_000, true).restarts['old']).toBeUndefined();
    // Decisions never depend on it: a check counts only its own window.
    expect(reserveRestart(state, reservation('api', 'b', { max: 2 }), t0 + 2 * restartsPruneEveryMs).recent).toBe(2);
  });

  it('takes settled ids carried as an object (the first build that kept them) and still refuses them', async () => {
    const guardId = `${h.guardId}-settled-object`;
    const { createGuardrailActivities } = await import('../../activities/guardrails.js');
    const guard = createGuardrailActivities({ client: h.client, taskQueue: h.queue, workflowId: guardId });
    const carried = { restarts: {}, leases: [], windows: [], retainMs: hour, settled: { 'settled-before': Date.now() } };
    await h.client.workflow.start(guardrails, { taskQueue: h.queue, workflowId: guardId, args: [{ state: carried as never }] });
    try {
      const target = uniqueTarget('api');
      const claim = (requestId: string): RestartClaim => ({
        ...reservation(target, requestId),
        maxConcurrent: 5,
        leaseMs: 60_000,
        once: true,
      });
      expect(await guard.claimRestart(claim('settled-before'))).toMatchObject({ allowed: false, acquired: false });
      expect(await guard.claimRestart(claim('new'))).toMatchObject({ allowed: true, acquired: true });
      expect((await h.client.workflow.getHandle(guardId).query(guardStateQuery)).settledKept).toBe(1);
    } finally {
      await h.client.workflow
        .getHandle(guardId)
        .terminate('test finished')
        .catch(() => undefined);
    }
  });

  it('keeps its restart history and leases across continue-as-new', async () => {
    // A guard of its own, with a tiny history limit, so it continues as new within the test.
    const guardId = `${h.guardId}-can`;
    const { createGuardrailActivities } = await import('../../activities/guardrails.js');
    const guard = createGuardrailActivities({ client: h.client, taskQueue: h.queue, workflowId: guardId });
    const handle = await h.client.workflow.start(guardrails, { taskQueue: h.queue, workflowId: guardId, args: [{ historyLimit: 25 }] });
    try {
      const target = uniqueTarget('api');
      const lease = await guard.acquireSlot({ requestId: 'lease-1', holder: 'h', target, action: 'restart', max: 1, leaseMs: 600_000 });
      for (let i = 0; i < 12; i++) {
        expect((await guard.reserveRestart(reservation(target, `r${i}`, { max: 12 }))).allowed).toBe(true);
      }
      const state = await h.client.workflow.getHandle(guardId).query(guardStateQuery);
      expect(state.runId).not.toBe(handle.firstExecutionRunId);
      expect(state.restarts[target]).toHaveLength(12);
      expect(state.leases.map((l) => l.id)).toEqual([lease.leaseId]);
      expect((await guard.reserveRestart(reservation(target, 'r12', { max: 12 }))).allowed).toBe(false);
    } finally {
      await h.client.workflow
        .getHandle(guardId)
        .terminate('test finished')
        .catch(() => undefined);
    }
  });
});

describe('guardrail activities against a guard served by an engine from before guardBatch', () => {
  it('ask each request on its own, keep a refusal to the request it concerns, and decide as before', async () => {
    quietRuntime();
    const taskQueue = uniqueQueue('guard-before-batch');
    const connection = await NativeConnection.connect(temporalConnectOptions('engine'));
    const worker = await Worker.create({
      connection,
      namespace: stack().temporalNamespace,
      taskQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: fileURLToPath(new URL('./guardBeforeBatch.ts', import.meta.url)),
        logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
      }),
    });
    const running = worker.run();
    const { client, connection: clientConnection } = await temporalClient();
    const workflowId = `${taskQueue}-guard`;
    try {
      const guard = createGuardrailActivities({ client, taskQueue, workflowId });
      const target = uniqueTarget('api');
      const claim = (i: number): RestartClaim => ({
        ...reservation(target, `old/${i}`, { max: 2 }),
        holder: `incident:serviceDown:${target}-${i}`,
        maxConcurrent: 10,
        leaseMs: 60_000,
      });
      const answers = await Promise.allSettled(
        [0, 1, 2, 3].map((i) => guard.claimRestart(claim(i))).concat(guard.claimRestart({ ...claim(4), target: '' })),
      );
      const values = answers.slice(0, 4).map((a) => (a as PromiseFulfilledResult<{ allowed: boolean }>).value.allowed);
      expect(values.filter((v) => v)).toHaveLength(2);
      expect(values.filter((v) => !v)).toHaveLength(2);
      expect((answers[4] as PromiseRejectedResult).reason).toMatchObject({ type: 'BadInput', nonRetryable: true });
      // Every request reached the old guard as its own update; its guardBatch was refused, never accepted.
      const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      const accepted = events.flatMap((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ?? []);
      expect(accepted.filter((n) => n === 'claimRestart')).toHaveLength(4);
      expect(accepted).not.toContain('guardBatch');
      const granted = answers.slice(0, 4).flatMap((a) => {
        const v = (a as PromiseFulfilledResult<{ acquired: boolean; leaseId?: string }>).value;
        return v.acquired && v.leaseId ? [v.leaseId] : [];
      });
      expect(granted).toHaveLength(2);
      for (const leaseId of granted) expect(await guard.releaseSlot(leaseId)).toBe(true);
    } finally {
      await client.workflow
        .getHandle(workflowId)
        .terminate('test finished')
        .catch(() => undefined);
      worker.shutdown();
      await running;
      await connection.close();
      await clientConnection.close();
    }
  });
});
