// The incidents worker's workflow task slots, fewer while a storm's alerts are still being started.
//
// The dev server starts ~200 runs a second on this machine kind when nothing else asks it for work
// (bench's `2s` row), yet a 1,000-alert storm had every run started only after 8–15 s: the runs
// already started had their first workflow tasks polled, run and completed on the same server (and
// the same two cores) between the starts still to make. With 2 slots while the webhook has a storm's
// alerts waiting (triggers/alerts/alertmanager.ts startsFirst: more than a forwarding wave in the
// spool, or without one more than a batch's calls at once), the same storm had every run started
// after ~6 s, and without a spool Alertmanager's batches were answered twice as fast; then the worker
// has its usual slots back. (Slots handed out before a hold, to pollers waiting for work, are each
// used once more: a hold refuses new slots, it takes none back.) The hold puts every alert of a
// storm on record as its run before the engine spends the server on acting, and it is bounded
// (`maxHoldMs`) so alerts that keep waiting (Temporal refusing one runbook's starts, say) never
// starve the runs already started.
import type { CustomSlotSupplier, SlotPermit, SlotReserveContext, WorkflowSlotInfo } from '@temporalio/worker';

export interface WorkflowTaskSlotsOptions {
  /** Slots outside a hold: the SDK's own default is 40. */
  slots: number;
  /** Slots while held (the SDK wants at least 2 with a workflow cache). */
  heldTo: number;
  /** Whether starts are waiting that the hold is for (read at each reservation and every `recheckMs`). */
  startsWaiting: () => boolean;
  /** A hold ends after this long even if starts still wait; the next one needs the backlog gone first. */
  maxHoldMs: number;
  /** How often, during a hold, a reservation kept waiting reads `startsWaiting` again. */
  recheckMs?: number;
  /** Told when a hold begins (true) and when it ends (false). */
  onHold?: (held: boolean) => void;
  now?: () => number;
}

export interface WorkflowTaskSlots extends CustomSlotSupplier<WorkflowSlotInfo> {
  /** Permits issued and not yet released. */
  issued(): number;
  /** The slots allowed now. */
  limit(): number;
}

export function workflowTaskSlots(opts: WorkflowTaskSlotsOptions): WorkflowTaskSlots {
  const now = opts.now ?? Date.now;
  const recheckMs = opts.recheckMs ?? 25;
  let issued = 0;
  /** When the hold under way began; undefined outside one. */
  let heldSince: number | undefined;
  /** The last hold ran out while starts still waited: no new one until they are gone. */
  let spent = false;
  const waiters = new Set<() => boolean>();
  let timer: NodeJS.Timeout | undefined;

  const setHeld = (held: boolean) => {
    if (held === (heldSince !== undefined)) return;
    heldSince = held ? now() : undefined;
    opts.onHold?.(held);
  };
  /** A question that fails is no storm: a hold is an optimisation, and must never stop the worker. */
  const waiting = () => {
    try {
      return opts.startsWaiting();
    } catch {
      return false;
    }
  };
  const limit = () => {
    if (!waiting()) {
      spent = false;
      setHeld(false);
      return opts.slots;
    }
    if (spent) return opts.slots;
    setHeld(true);
    if (now() - heldSince! < opts.maxHoldMs) return opts.heldTo;
    spent = true;
    setHeld(false);
    return opts.slots;
  };
  const grant = (): SlotPermit | null => {
    if (issued >= limit()) return null;
    issued += 1;
    return {};
  };
  /**
   * Grants waiting reservations in turn until one finds no free slot. During a hold a slot can come
   * free without a release (the hold ends), so only then it looks again on a timer.
   */
  const wake = () => {
    for (const waiter of waiters) if (!waiter()) break;
    if (waiters.size > 0 && heldSince !== undefined) timer ??= setTimeout(() => ((timer = undefined), wake()), recheckMs).unref();
  };

  return {
    type: 'custom',
    issued: () => issued,
    limit,
    reserveSlot(_ctx: SlotReserveContext, abortSignal: AbortSignal): Promise<SlotPermit> {
      const permit = grant();
      if (permit) return Promise.resolve(permit);
      return new Promise((resolve, reject) => {
        /** True once granted. */
        const waiter = () => {
          const granted = grant();
          if (!granted) return false;
          waiters.delete(waiter);
          abortSignal.removeEventListener('abort', aborted);
          resolve(granted);
          return true;
        };
        const aborted = () => {
          waiters.delete(waiter);
          reject(abortSignal.reason);
        };
        if (abortSignal.aborted) return reject(abortSignal.reason);
        abortSignal.addEventListener('abort', aborted, { once: true });
        waiters.add(waiter);
        wake();
      });
    },
    // Eager tasks (a start's first task, an activity handed back) only when a slot is free now.
    tryReserveSlot: () => grant(),
    markSlotUsed: () => {},
    releaseSlot: () => {
      issued = Math.max(0, issued - 1);
      wake();
    },
  };
}
