// The group commit the guard's claims go through (activities/groupCommit.ts), and the way the
// guardrail activities fall back to one update per request when a guard predates guardBatch, and
// read a maintenance window from the answer of the claim batch beside it.
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { groupCommit } from '../../activities/groupCommit.js';
import { createGuardrailActivities } from '../../activities/guardrails.js';
import { inFlightLimit } from '../../activities/limits.js';
import type { RestartClaim } from '../../activities/contract.js';

/** A client whose connection passes every call straight through, with `workflow` for its workflow client. */
function stubClient(workflow: object): Client {
  return {
    connection: {
      withDeadline: (_: number, fn: () => Promise<unknown>) => fn(),
      withAbortSignal: (_: AbortSignal, fn: () => Promise<unknown>) => fn(),
    },
    workflow,
  } as unknown as Client;
}

/** A restart claim of `target` with request id `id`. */
function claim(id: string, target = 'api'): RestartClaim {
  return { target, holder: 'h', requestId: id, max: 3, windowMs: 60_000, enforce: true, dryRun: false, maxConcurrent: 5, leaseMs: 60_000 };
}

/** A send that answers when told to, recording what it was given. */
function heldSend() {
  const calls: Array<{ ops: number[]; answer: (r: string[]) => void; fail: (e: unknown) => void }> = [];
  const send = (ops: number[]) =>
    new Promise<string[]>((answer, fail) => {
      calls.push({ ops, answer, fail });
    });
  return { calls, send };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('group commit', () => {
  it('sends a lone request at once and alone', async () => {
    const { calls, send } = heldSend();
    const ask = groupCommit(send, inFlightLimit(1), 10);
    const answer = ask(7);
    expect(calls.map((c) => c.ops)).toEqual([[7]]);
    calls[0]!.answer(['seven']);
    await expect(answer).resolves.toBe('seven');
  });

  it('gathers what arrives while a call waits for its turn into one call, at most max at a time, answered in order', async () => {
    const { calls, send } = heldSend();
    const ask = groupCommit(send, inFlightLimit(1), 3);
    const answers = [1, 2, 3, 4, 5, 6].map((n) => ask(n));
    expect(calls.map((c) => c.ops)).toEqual([[1]]);
    calls[0]!.answer(['a1']);
    await tick();
    expect(calls.map((c) => c.ops)).toEqual([[1], [2, 3, 4]]);
    calls[1]!.answer(['a2', 'a3', 'a4']);
    await tick();
    expect(calls.map((c) => c.ops)).toEqual([[1], [2, 3, 4], [5, 6]]);
    calls[2]!.answer(['a5', 'a6']);
    await expect(Promise.all(answers)).resolves.toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6']);
  });

  it('fails every request of a call that fails, and only those', async () => {
    const { calls, send } = heldSend();
    const ask = groupCommit(send, inFlightLimit(1), 10);
    const first = ask(1);
    const [second, third] = [ask(2), ask(3)];
    calls[0]!.fail(new Error('unavailable'));
    await expect(first).rejects.toThrow('unavailable');
    await tick();
    calls[1]!.answer(['b', 'c']);
    await expect(Promise.all([second, third])).resolves.toEqual(['b', 'c']);
  });

  it('rejects a call that answers a different number of results', async () => {
    const ask = groupCommit(async (ops: number[]) => ops.slice(1).map(String), inFlightLimit(1), 10);
    await expect(ask(1)).rejects.toThrow('expected 1 answers, got 0');
  });

  it('drops a cancelled request before it is sent, and stops waiting for one already sent', async () => {
    const { calls, send } = heldSend();
    const ask = groupCommit(send, inFlightLimit(1), 10);
    const sent = new AbortController();
    const queued = new AbortController();
    const first = ask(1, sent.signal);
    const second = ask(2, queued.signal);
    const third = ask(3);
    queued.abort(new Error('activity cancelled'));
    await expect(second).rejects.toThrow('activity cancelled');
    sent.abort(new Error('cancelled too'));
    await expect(first).rejects.toThrow('cancelled too');
    calls[0]!.answer(['ignored']);
    await tick();
    expect(calls.map((c) => c.ops)).toEqual([[1], [3]]);
    calls[1]!.answer(['c']);
    await expect(third).resolves.toBe('c');
    const aborted = new AbortController();
    aborted.abort(new Error('before'));
    await expect(ask(4, aborted.signal)).rejects.toThrow('before');
  });
});

describe('guardrail activities against a guard that predates guardBatch', () => {
  it('ask each request on its own, one at a time, and keep a refusal to the request it concerns', async () => {
    const asked: string[] = [];
    let inFlight = 0;
    let most = 0;
    const client = stubClient({
      async executeUpdateWithStart(def: { name: string }, opts: { args: unknown[] }) {
        asked.push(def.name);
        if (def.name === 'guardBatch') {
          throw new WorkflowUpdateFailedError(
            'Workflow Update failed',
            ApplicationFailure.nonRetryable('No registered handler for update: guardBatch'),
          );
        }
        inFlight++;
        most = Math.max(most, inFlight);
        await tick();
        inFlight--;
        const req = opts.args[0] as RestartClaim;
        if (!req.target)
          throw new WorkflowUpdateFailedError(
            'Workflow Update failed',
            ApplicationFailure.nonRetryable('guardrails request has no target'),
          );
        return { allowed: true, acquired: true, leaseId: req.requestId, recent: 1, reason: 'ok', inUse: 1, holders: [] };
      },
    });
    const guard = createGuardrailActivities({ client, taskQueue: 'q' });
    const answers = await Promise.allSettled(
      ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => guard.claimRestart(claim(id, id === 'g' ? '' : 'api'))),
    );
    expect(answers.slice(0, 6).map((a) => (a as PromiseFulfilledResult<{ leaseId: string }>).value.leaseId)).toEqual([
      'a',
      'b',
      'c',
      'd',
      'e',
      'f',
    ]);
    expect((answers[6] as PromiseRejectedResult).reason).toMatchObject({ type: 'BadInput', nonRetryable: true });
    // The batch was refused once; the fallback then asks one claim at a time per turn.
    expect(asked.filter((n) => n === 'guardBatch').length).toBeGreaterThanOrEqual(1);
    expect(asked.filter((n) => n === 'claimRestart')).toHaveLength(7);
    expect(most).toBeLessThanOrEqual(5);
    // Within the minute after a refusal no batch is tried again.
    const before = asked.length;
    await guard.claimRestart(claim('h'));
    expect(asked.slice(before)).toEqual(['claimRestart']);
  });
});

describe('a maintenance-window read asked beside a restart claim', () => {
  function guardAnswering(windowsAnswered: boolean) {
    const asked: unknown[][] = [];
    let queries = 0;
    const client = stubClient({
      async executeUpdateWithStart(_: { name: string }, opts: { args: unknown[] }) {
        asked.push(opts.args);
        await tick();
        const [ops, ask] = opts.args as [Array<{ req: RestartClaim }>, { windowsFor: string[] } | undefined];
        const answers = ops.map((op) => ({
          ok: { allowed: true, acquired: true, leaseId: op.req.requestId, recent: 1, reason: 'ok', inUse: 1, holders: [] },
        }));
        // A guard from before answers the bare list whatever it is asked.
        if (!windowsAnswered || !ask) return answers;
        return { answers, windows: [{ holder: 'm', schedule: 'weekly', target: 'db', until: Date.now() + 60_000 }] };
      },
      getHandle: () => ({
        async query() {
          queries++;
          return { restarts: {}, leases: [], windows: [], retainMs: 0, now: Date.now(), runId: 'r' };
        },
      }),
    });
    return { guard: createGuardrailActivities({ client, taskQueue: 'q' }), asked, queries: () => queries };
  }

  it("takes the windows the claim's batch answered, with no query of its own", async () => {
    const { guard, asked, queries } = guardAnswering(true);
    const claimed = guard.claimRestart(claim('a', 'db'));
    expect(await guard.maintenanceWindowFor('db')).toMatchObject({ suppressed: true, reason: expect.stringContaining("'weekly'") });
    expect(queries()).toBe(0);
    expect(asked[0]![1]).toEqual({ windowsFor: ['db'] });
    // The claim's answer carries the window too, for a run that reads it from there.
    expect(await claimed).toMatchObject({ acquired: true, window: { suppressed: true, reason: expect.stringContaining("'weekly'") } });
    // A target no claim was asked for is read by a query.
    expect(await guard.maintenanceWindowFor('cache')).toEqual({ suppressed: false });
    expect(queries()).toBe(1);
  });

  it('queries when the guard answered no windows (served by an engine from before)', async () => {
    const { guard, queries } = guardAnswering(false);
    const claimed = guard.claimRestart(claim('a', 'db'));
    expect(await guard.maintenanceWindowFor('db')).toEqual({ suppressed: false });
    expect(queries()).toBe(1);
    const answer = await claimed;
    expect(answer.acquired).toBe(true);
    expect(answer).not.toHaveProperty('window');
  });
});
