import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { heartbeating, inFlightLimit } from '../../activities/limits.js';
import { gate } from '../support/wait.js';

const tick = () => new Promise((r) => setImmediate(r));

/** Calls made through `inTurn`, each named, recorded when it starts, and held until its gate opens. */
function calls(inTurn: ReturnType<typeof inFlightLimit>) {
  const started: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();
  const call = (name: string) =>
    inTurn(async () => {
      started.push(name);
      const g = gate();
      gates.set(name, g);
      await g.wait;
    });
  return { started, gates, call };
}

describe('inFlightLimit', () => {
  it('runs at most `limit` at once, the rest in arrival order, a late arrival behind them', async () => {
    const inTurn = inFlightLimit(2);
    const { started, gates, call } = calls(inTurn);
    const made = ['a', 'b', 'c', 'd'].map(call);
    await tick();
    expect(started).toEqual(['a', 'b']);
    gates.get('a')!.open();
    // Arrives as a's place frees up: c and d were waiting first.
    made.push(call('e'));
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    for (const name of ['b', 'c', 'd']) {
      gates.get(name)!.open();
      await tick();
    }
    gates.get('e')!.open();
    await Promise.all(made);
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('follows a limit that changes: a raised one lets as many waiters in at the next place freed, a lowered one lets none in until below it', async () => {
    let limit = 1;
    const inTurn = inFlightLimit(() => limit);
    const { started, gates, call } = calls(inTurn);
    const made = ['a', 'b', 'c', 'd', 'e', 'f'].map(call);
    await tick();
    expect(started).toEqual(['a']);
    limit = 3;
    gates.get('a')!.open();
    await tick();
    // a's place and two more: three running.
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    // A late arrival queues behind the waiters even with the limit raised.
    made.push(call('g'));
    limit = 1;
    gates.get('b')!.open();
    gates.get('c')!.open();
    await tick();
    // d still runs, alone: nobody else gets in.
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    gates.get('d')!.open();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e']);
    for (const name of ['e', 'f']) {
      gates.get(name)!.open();
      await tick();
    }
    gates.get('g')!.open();
    await Promise.all(made);
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });

  it('lets a waiter whose signal aborts leave the line without taking a place', async () => {
    const inTurn = inFlightLimit(1);
    const first = gate();
    const running = inTurn(() => first.wait);
    const abort = new AbortController();
    const leaving = inTurn(async () => 'ran', abort.signal);
    const after = inTurn(async () => 'after');
    abort.abort(new Error('cancelled'));
    await expect(leaving).rejects.toThrow('cancelled');
    first.open();
    await running;
    expect(await after).toBe('after');
  });
});

describe('heartbeating', () => {
  it('heartbeats at once and then every interval while the work runs, and not after it ends', async () => {
    const env = new MockActivityEnvironment();
    let beats = 0;
    env.on('heartbeat', () => beats++);
    const result = await env.run(() => heartbeating(new Promise((r) => setTimeout(() => r('done'), 250)), { op: 'backup' }, 20));
    expect(result).toBe('done');
    expect(beats).toBeGreaterThanOrEqual(5);
    const after = beats;
    await new Promise((r) => setTimeout(r, 100));
    expect(beats).toBe(after);
  });
});
