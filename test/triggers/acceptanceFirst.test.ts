// The webhook's acceptance gate on a clock of the test's own: when a spooled alert's delivery
// starts, relative to the batches still arriving.
import { describe, expect, it } from 'vitest';
import { acceptanceGate } from '../../triggers/alerts/acceptanceFirst.js';

function clock() {
  let t = 1_000;
  const slept: number[] = [];
  return {
    now: () => t,
    advance: (ms: number) => (t += ms),
    slept,
    /** Each wait advances the clock by its length, running `meanwhile` halfway (batches arriving). */
    sleeper:
      (meanwhile: () => void = () => {}) =>
      async (ms: number) => {
        slept.push(ms);
        t += ms / 2;
        meanwhile();
        t += ms / 2;
      },
  };
}

/** `count` batches, each answered at once, `apartMs` from one to the next. */
function batches(gate: ReturnType<typeof acceptanceGate>, c: ReturnType<typeof clock>, count: number, apartMs: number) {
  for (let i = 0; i < count; i++) {
    gate.arrived();
    gate.answered();
    c.advance(apartMs);
  }
}

describe('acceptance before forwarding', () => {
  it('forwards a lone alert at once, even while its own request is still being answered', async () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper() });
    gate.arrived();
    await gate.quiet();
    gate.answered();
    expect(c.slept).toEqual([]);
  });

  it('in a storm, waits until no batch has arrived for the quiet period, then forwards', async () => {
    const c = clock();
    let more = 5;
    // Five more batches, one at each wait, each answered within it: then the storm stops.
    const gate = acceptanceGate({
      now: c.now,
      sleep: c.sleeper(() => {
        if (more-- > 0) {
          gate.arrived();
          gate.answered();
        }
      }),
    });
    batches(gate, c, 8, 1);
    const t0 = c.now();
    await gate.quiet();
    // Five waits while batches kept arriving, and one more until the last of them is 10 ms old.
    expect(c.slept).toEqual([10, 10, 10, 10, 10, 10]);
    expect(c.now() - t0).toBe(60);
  });

  it('in a storm that never pauses, forwards anyway once it has waited its longest', async () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper(() => gate.arrived()), deferMaxMs: 500 });
    for (let i = 0; i < 8; i++) gate.arrived();
    const t0 = c.now();
    await gate.quiet();
    expect(c.now() - t0).toBe(500);
  });

  it("holds a storm's deliveries for at most its longest from the storm's start, not from each delivery's", async () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper(() => gate.arrived()), deferMaxMs: 500 });
    for (let i = 0; i < 8; i++) gate.arrived();
    const began = c.now();
    // A delivery asked 300 ms into the storm waits out what is left of the 500 ms, not 500 more
    // (each delivery's own 500 ms let a flat-out storm's first deliveries go while it was posted).
    c.advance(300);
    for (let i = 0; i < 8; i++) gate.arrived();
    await gate.quiet();
    expect(c.now() - began).toBe(500);
    // Past it, the storm's deliveries go at once while it lasts (fewer at once: alertmanager.ts).
    const t1 = c.now();
    await gate.quiet();
    expect(c.now() - t1).toBe(0);
    // A calm ends the storm; the next one holds its deliveries again, for its own 500 ms.
    c.advance(1_000);
    expect(gate.storming()).toBe(false);
    for (let i = 0; i < 8; i++) gate.arrived();
    const t2 = c.now();
    await gate.quiet();
    expect(c.now() - t2).toBe(500);
  });

  it('says a storm is on from a quick run of batches until a second passes without one', () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper() });
    // Batches 15 ms apart are no storm, however many.
    batches(gate, c, 10, 15);
    expect(gate.storming()).toBe(false);
    batches(gate, c, 8, 1);
    expect(gate.storming()).toBe(true);
    // The engine's loop held for 300 ms: still the storm, and the arrivals it hears of at once then
    // carry it on.
    c.advance(300);
    expect(gate.storming()).toBe(true);
    for (let i = 0; i < 8; i++) gate.arrived();
    c.advance(999);
    expect(gate.storming()).toBe(true);
    c.advance(1);
    expect(gate.storming()).toBe(false);
  });

  it('takes a burst of three batches for a storm from its start, before its rate says so', async () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper() });
    // Two at once are no storm: the second is forwarded at once, as a lone alert is.
    batches(gate, c, 2, 1);
    await gate.quiet();
    expect(c.slept).toEqual([]);
    expect(gate.storming()).toBe(false);
    // A third within 20 ms: the storm is on, and its deliveries wait for a quiet moment. By rate
    // alone (eight within 100 ms) a flat-out storm's first batches were each forwarded at once.
    gate.arrived();
    gate.answered();
    expect(gate.storming()).toBe(true);
    await gate.quiet();
    expect(c.slept).toEqual([10]);
    // Three spread over more than 20 ms (and fewer than eight in 100 ms) are no burst.
    c.advance(2_000);
    batches(gate, c, 3, 11);
    expect(gate.storming()).toBe(false);
    await gate.quiet();
    expect(c.slept).toEqual([10]);
  });

  it("waits for arrivals held up by a busy event loop before it calls a storm quiet (the engine's own timers)", async () => {
    const gate = acceptanceGate({ quietMs: 50, deferMaxMs: 10_000 });
    for (let i = 0; i < 8; i++) {
      gate.arrived();
      gate.answered();
    }
    // An arrival as the webhook's thread sends it: a message, read when the loop polls.
    const { port1, port2 } = new MessageChannel();
    let arrivalTakenAt = Infinity;
    port1.on('message', () => {
      gate.arrived();
      gate.answered();
      arrivalTakenAt = performance.now();
    });
    const quietAt = gate.quiet().then(() => performance.now());
    // The loop is held 150 ms outside its timers (a message's handler, a run's work) while the
    // storm goes on: its next turn runs the wait's expired timer before it reads those batches.
    setImmediate(() => {
      for (let i = 0; i < 8; i++) port2.postMessage('arrived');
      const until = performance.now() + 150;
      while (performance.now() < until);
    });
    const at = await quietAt;
    port1.close();
    // Not quiet on a view from before the loop read those arrivals: quiet only 50 ms after them.
    expect(arrivalTakenAt).toBeLessThan(Infinity);
    expect(at - arrivalTakenAt).toBeGreaterThanOrEqual(49);
  });

  it('is no storm when the last eight batches took longer than 100 ms to arrive', async () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper() });
    batches(gate, c, 8, 15);
    gate.arrived();
    await gate.quiet();
    expect(c.slept).toEqual([]);
  });

  it('is a storm when eight batches are being answered at once, however slowly they came, and not with seven', async () => {
    const c = clock();
    const gate = acceptanceGate({ now: c.now, sleep: c.sleeper() });
    // Seven callers, each waiting for its answer, arriving 200 ms apart: no storm, forwarded at once.
    for (let i = 0; i < 7; i++) {
      gate.arrived();
      c.advance(200);
    }
    expect(gate.storming()).toBe(false);
    await gate.quiet();
    expect(c.slept).toEqual([]);
    // The eighth unanswered one makes it a storm: deliveries wait (2 s at most from its start).
    gate.arrived();
    expect(gate.storming()).toBe(true);
    const t0 = c.now();
    await gate.quiet();
    expect(c.now() - t0).toBe(2_000);
    // Answered, and fewer at once than eight: calm again once the storm is a second old.
    for (let i = 0; i < 8; i++) gate.answered();
    c.advance(1_000);
    expect(gate.storming()).toBe(false);
  });
});
