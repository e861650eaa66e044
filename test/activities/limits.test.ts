import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { heartbeating, inFlightLimit } from '../../activities/limits.js';
import { gate } from '../support/wait.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('inFlightLimit', () => {
  it('runs at most `limit` at once, the rest in arrival order, a late arrival behind them', async () => {
    const inTurn = inFlightLimit(2);
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof gate>>();
    const call = (name: string) =>
      inTurn(async () => {
        started.push(name);
        const g = gate();
        gates.set(name, g);
        await g.wait;
      });
    const calls = ['a', 'b', 'c', 'd'].map(call);
    await tick();
    expect(started).toEqual(['a', 'b']);
    gates.get('a')!.open();
    // Arrives as a's place frees up: c and d were waiting first.
    calls.push(call('e'));
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    for (const name of ['b', 'c', 'd']) {
      gates.get(name)!.open();
      await tick();
    }
    gates.get('e')!.open();
    await Promise.all(calls);
    expect(started).toEqual(['a', 'b', 'c', 'd', 'e']);
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
