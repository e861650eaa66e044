// The incidents worker's workflow task slots: the usual number, fewer while a storm's alerts wait to
// be started, and never held for longer than the cap. The SDK calls these functions from its core;
// here they are called as it calls them (reserve, try, release, abort).
import { describe, expect, it } from 'vitest';
import type { SlotReserveContext } from '@temporalio/worker';
import { workflowTaskSlots, type WorkflowTaskSlotsOptions } from '../../worker/workflowTaskSlots.js';

const ctx = { slotType: 'workflow', taskQueue: 'q', workerIdentity: 'w', workerBuildId: '', isSticky: false } as SlotReserveContext;

function slotsFor(options: Partial<WorkflowTaskSlotsOptions> & { waiting?: () => boolean } = {}) {
  let clock = 0;
  let waiting = false;
  const holds: boolean[] = [];
  const slots = workflowTaskSlots({
    slots: 4,
    heldTo: 2,
    startsWaiting: options.waiting ?? (() => waiting),
    maxHoldMs: 1_000,
    recheckMs: 5,
    onHold: (held) => holds.push(held),
    now: () => clock,
    ...options,
  });
  return {
    slots,
    holds,
    setWaiting: (w: boolean) => (waiting = w),
    advance: (ms: number) => (clock += ms),
  };
}

/** Settles after `ms` of real time (the recheck timer is real). */
const after = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A reservation and whether it has been granted yet. */
function reserve(slots: ReturnType<typeof workflowTaskSlots>, signal = new AbortController().signal) {
  const state = { granted: false, rejected: undefined as unknown };
  const done = slots.reserveSlot(ctx, signal).then(
    () => (state.granted = true),
    (err: unknown) => (state.rejected = err),
  );
  return { state, done };
}

describe('workflow task slots', () => {
  it('grants the usual slots and makes the next reservation wait for a release', async () => {
    const { slots } = slotsFor();
    const first = Array.from({ length: 4 }, () => reserve(slots));
    await Promise.all(first.map((r) => r.done));
    expect(first.every((r) => r.state.granted)).toBe(true);
    const fifth = reserve(slots);
    await after(20);
    expect(fifth.state.granted).toBe(false);
    expect(slots.tryReserveSlot(ctx)).toBeNull();
    slots.releaseSlot({ permit: {}, slotInfo: undefined as never });
    await fifth.done;
    expect(fifth.state.granted).toBe(true);
    expect(slots.issued()).toBe(4);
  });

  it('holds to 2 slots while starts wait, and hands the rest out as soon as they are started', async () => {
    const { slots, holds, setWaiting } = slotsFor();
    setWaiting(true);
    const four = Array.from({ length: 4 }, () => reserve(slots));
    await after(20);
    expect(four.filter((r) => r.state.granted)).toHaveLength(2);
    expect(slots.limit()).toBe(2);
    // Eager tasks are refused too: a start made now leaves its first task in the server's queue.
    expect(slots.tryReserveSlot(ctx)).toBeNull();
    expect(holds).toEqual([true]);
    // The spool drained: no release needed, the waiting reservations are granted by the recheck.
    setWaiting(false);
    await Promise.all(four.map((r) => r.done));
    expect(four.every((r) => r.state.granted)).toBe(true);
    expect(holds).toEqual([true, false]);
    expect(slots.issued()).toBe(4);
  });

  it('lets a hold last at most maxHoldMs, and holds again only after the backlog was gone', async () => {
    const { slots, holds, setWaiting, advance } = slotsFor();
    setWaiting(true);
    expect(slots.limit()).toBe(2);
    advance(999);
    expect(slots.limit()).toBe(2);
    advance(2);
    // Starts still wait (Temporal refusing some, say): the runs already started are not starved.
    expect(slots.limit()).toBe(4);
    advance(60_000);
    expect(slots.limit()).toBe(4);
    expect(holds).toEqual([true, false]);
    setWaiting(false);
    expect(slots.limit()).toBe(4);
    setWaiting(true);
    expect(slots.limit()).toBe(2);
    expect(holds).toEqual([true, false, true]);
  });

  it('grants eager tasks only from free slots, counted like any other', () => {
    const { slots } = slotsFor();
    const permits = Array.from({ length: 5 }, () => slots.tryReserveSlot(ctx));
    expect(permits.filter((p) => p !== null)).toHaveLength(4);
    expect(slots.issued()).toBe(4);
    slots.releaseSlot({ permit: permits[0]!, slotInfo: undefined as never });
    expect(slots.tryReserveSlot(ctx)).not.toBeNull();
  });

  it('drops an aborted reservation with the signal’s reason, and it takes no slot', async () => {
    const { slots, setWaiting } = slotsFor();
    setWaiting(true);
    await Promise.all([reserve(slots).done, reserve(slots).done]);
    const abort = new AbortController();
    const waiting = reserve(slots, abort.signal);
    const reason = new Error('poller no longer needed');
    abort.abort(reason);
    await waiting.done;
    expect(waiting.state.rejected).toBe(reason);
    setWaiting(false);
    await after(20);
    expect(slots.issued()).toBe(2);
    // Already aborted before asking: rejected at once.
    const gone = new AbortController();
    gone.abort(reason);
    setWaiting(true);
    const late = reserve(slots, gone.signal);
    await late.done;
    expect(late.state.rejected).toBe(reason);
    expect(slots.issued()).toBe(2);
  });

  it('takes a failing question about waiting starts for no storm, and keeps handing out slots', () => {
    const { slots, holds } = slotsFor({
      waiting: () => {
        throw new Error('the spool is closed');
      },
    });
    expect(slots.limit()).toBe(4);
    expect(Array.from({ length: 4 }, () => slots.tryReserveSlot(ctx)).every((p) => p !== null)).toBe(true);
    expect(holds).toEqual([]);
  });

  it('never counts below zero when the SDK releases more than it reserved', () => {
    const { slots } = slotsFor();
    slots.releaseSlot({ permit: {}, slotInfo: undefined as never });
    expect(slots.issued()).toBe(0);
    expect(slots.tryReserveSlot(ctx)).not.toBeNull();
    expect(slots.issued()).toBe(1);
  });
});
