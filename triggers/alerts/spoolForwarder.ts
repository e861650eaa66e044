// Hands spooled alerts to Temporal: in the order they arrived for any one alert (a resolution never
// overtakes its firing), many alerts at once otherwise, and again and again while Temporal is
// unreachable. Each alert delivered is marked in the spool, and a batch is marked done once every
// alert in it was: a restart forwards only what was not delivered, so a firing whose resolution
// went out after it is never sent again (the marks before a resolution are fsynced first).
//
// Batches are taken from the spool oldest first, a window of them at a time (by their size on
// disk): a backlog left by a long outage is read back from disk as the window moves, never held
// whole in memory.
import type { Logger } from 'pino';
import { inFlightLimit } from '../../activities/limits.js';
import type { WebhookAlert } from './alertmanagerPayload.js';
import { timeSlices, type TimeSlices } from './slices.js';
import type { Spool, SpoolEntry } from './spool.js';

export interface ForwarderOptions {
  spool: Spool;
  /**
   * Resolves once Temporal took the alert. A rejection is tried again, however long it takes: a
   * refusal that is not Temporal being down (a search attribute missing, a namespace renamed) is a
   * setup to fix, and the alert waits in the spool until it is.
   */
  deliver: (alert: WebhookAlert) => Promise<unknown>;
  /** Told once when deliveries start failing and once when they succeed again, not at every try. */
  logger: Pick<Logger, 'warn' | 'info'>;
  /** Deliveries in flight at once. */
  concurrency?: number | (() => number);
  /** Told after every change of what is pending (for the gauge). */
  onPending?: (alerts: number) => void;
  /** Waits between tries of one alert: doubling from the first to the last. */
  backoffMs?: { first: number; max: number };
  /** Batches held in memory at once, by their size on disk (default 16 MiB; one batch at least). */
  windowBytes?: number;
  /** Shared with the webhook, so deliveries that need no I/O still leave the event loop turns. */
  slices?: TimeSlices;
  /**
   * A batch still held this long (an alert of it Temporal keeps refusing) gives its room in the
   * window back; only its undelivered alerts stay in memory, in their turn (default 60 s).
   */
  stuckAfterMs?: number;
  /** Told how many alerts have been refused for longer than stuckAfterMs (for the gauge). */
  onStuck?: (alerts: number) => void;
}

export interface Forwarder {
  /**
   * A batch just spooled: forwarded after every batch before it. Kept in memory until then if the
   * window has room, read back from disk otherwise.
   */
  enqueue(entry: SpoolEntry): void;
  /** Resolves when nothing spooled is left to deliver, or once stopped (tests, shutdown reports). */
  drained(): Promise<void>;
  /** Stops retrying; what was not delivered stays in the spool for the next start. */
  stop(): Promise<void>;
}

/**
 * Starts forwarding at once, beginning with whatever an earlier process left in the spool.
 *
 * A batch whose alert Temporal keeps refusing stays pending in the spool, and so does every later
 * batch with the same alert (they wait for it, in order). After stuckAfterMs such a batch gives its
 * room in the window back, so the other alerts behind it move on; the refused alert is named in
 * the log once, and counted in the stuck gauge while it waits.
 */
export function startForwarder(opts: ForwarderOptions): Forwarder {
  const { spool, logger } = opts;
  const backoff = opts.backoffMs ?? { first: 500, max: 30_000 };
  const stuckAfterMs = opts.stuckAfterMs ?? 60_000;
  /** Alerts refused for longer than stuckAfterMs, by their key: named once each in the log. */
  const stuck = new Set<string>();
  const windowBytes = opts.windowBytes ?? 16 * 1_048_576;
  const slices = opts.slices ?? timeSlices();
  const inTurn = inFlightLimit(opts.concurrency ?? 16);
  let stopped = false;
  const wakeOnStop = new Set<() => void>();
  // One chain per alert: its next event waits for the one before it.
  const chains = new Map<string, Promise<void>>();
  const entries = new Set<Promise<void>>();
  let stalledSince: number | undefined;
  /** The next batch to take is the oldest pending one numbered this or later. */
  let cursor = 0;
  /** Bytes of the batches taken and not yet delivered. */
  let held = 0;
  /** Batches just spooled and not yet taken: spared a read from disk while they fit. */
  const fresh = new Map<number, SpoolEntry>();
  let freshBytes = 0;
  let pumping: Promise<void> | undefined;
  let pumpAgain = false;
  /** Resolves at the next batch delivered, pump finished or stop: drained() looks again then. */
  let changed!: Promise<void>;
  let fireChanged!: () => void;
  const renewChanged = (): void => {
    changed = new Promise<void>((resolve) => (fireChanged = resolve));
  };
  renewChanged();
  const announceChange = () => {
    const fire = fireChanged;
    renewChanged();
    fire();
  };

  /** True once Temporal took it; false when it did not (yet). */
  async function tryOnce(alert: WebhookAlert, refused: (err: unknown) => void = () => {}): Promise<boolean> {
    try {
      // Alerts queued for a delivery slot when the forwarder stops are not tried at all.
      const tried = await inTurn(async () => {
        if (stopped) return false;
        await slices.turn();
        await opts.deliver(alert);
        return true;
      });
      if (!tried) return false;
    } catch (err) {
      refused(err);
      if (stalledSince === undefined) {
        stalledSince = Date.now();
        logger.warn(
          { error: errorText(err), waiting: spool.pendingAlerts() },
          'Temporal did not take spooled alerts; retrying until it does',
        );
      }
      return false;
    }
    if (stalledSince !== undefined) {
      logger.info({ stalledMs: Date.now() - stalledSince, waiting: spool.pendingAlerts() }, 'Temporal takes spooled alerts again');
      stalledSince = undefined;
    }
    return true;
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakeOnStop.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      wakeOnStop.add(done);
    });
  }

  /** True once Temporal took it; false when stopped first. */
  async function deliverUntilTaken(alert: WebhookAlert, key: string): Promise<boolean> {
    const since = Date.now();
    let lastError: unknown;
    try {
      for (let wait = backoff.first; !stopped; wait = Math.min(backoff.max, wait * 2)) {
        if (await tryOnce(alert, (err) => (lastError = err))) return true;
        if (!stuck.has(key) && Date.now() - since >= stuckAfterMs) {
          stuck.add(key);
          opts.onStuck?.(stuck.size);
          logger.warn(
            {
              alert: String(alert.labels?.alertname ?? '').slice(0, 200),
              fingerprint: String(alert.fingerprint ?? '').slice(0, 128),
              refusedForMs: Date.now() - since,
              error: errorText(lastError),
            },
            'Temporal keeps refusing a spooled alert; it stays in the spool and is tried again, and the alerts behind it move on',
          );
        }
        await pause(wait);
      }
      return false;
    } finally {
      if (stuck.delete(key)) opts.onStuck?.(stuck.size);
    }
  }

  function forward(entry: SpoolEntry & { sent?: ReadonlySet<number> }, bytes: number): void {
    // Closures below keep the batch's number and their own alert, not the batch: once its room in
    // the window is given back, what was delivered of it can be let go.
    const seq = entry.seq;
    // A batch of one is done when its alert is: its done mark says it, with one write less.
    const markEach = entry.alerts.length > 1;
    let holding = true;
    const release = () => {
      if (!holding) return;
      holding = false;
      held -= bytes;
    };
    const giveRoomBack = setTimeout(() => {
      release();
      pump();
    }, stuckAfterMs);
    giveRoomBack.unref?.();
    const settled = entry.alerts.map((alert, i) => {
      // Delivered before a restart: not again.
      if (entry.sent?.has(i)) return Promise.resolve(true);
      const key = alert.fingerprint || JSON.stringify(alert.labels);
      const previous = chains.get(key) ?? Promise.resolve();
      let ok = false;
      const mine = previous.then(async () => {
        if (stopped) return;
        // What was delivered before this resolution (its firing, above all) must not come back after a crash.
        if (alert.status === 'resolved') await spool.syncMarks().catch(() => undefined);
        ok = await deliverUntilTaken(alert, key);
        if (ok && markEach) spool.delivered(seq, i);
      });
      chains.set(key, mine);
      void mine.then(() => {
        if (chains.get(key) === mine) chains.delete(key);
      });
      return mine.then(() => ok);
    });
    const whole = Promise.all(settled).then((oks) => {
      clearTimeout(giveRoomBack);
      if (oks.every(Boolean)) spool.done(seq);
      release();
      opts.onPending?.(spool.pendingAlerts());
      announceChange();
      pump();
    });
    entries.add(whole);
    void whole.finally(() => entries.delete(whole));
  }

  /** Takes batches, oldest first, while the window has room. One pump at a time. */
  function pump(): void {
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumpAgain = false;
    pumping = takeWhileRoom()
      .catch((err: unknown) =>
        logger.warn({ error: errorText(err) }, 'a spooled batch could not be forwarded; it stays in the spool for the next start'),
      )
      .finally(() => {
        pumping = undefined;
        opts.onPending?.(spool.pendingAlerts());
        announceChange();
        if (pumpAgain && !stopped) pump();
      });
  }

  async function takeWhileRoom(): Promise<void> {
    while (!stopped) {
      const next = spool.nextPending(cursor);
      if (!next || (held > 0 && held + next.bytes > windowBytes)) return;
      cursor = next.seq + 1;
      held += next.bytes;
      let entry = fresh.get(next.seq);
      if (entry) {
        fresh.delete(next.seq);
        freshBytes -= entry.bytes;
      }
      try {
        entry ??= await spool.read(next.seq);
      } catch (err) {
        // The disk failed us: take it again later, in its turn.
        held -= next.bytes;
        cursor = next.seq;
        logger.warn({ seq: next.seq, error: errorText(err) }, 'could not read a spooled batch; trying again');
        await pause(backoff.max);
        continue;
      }
      if (!entry) {
        // Done meanwhile, or a line that does not parse (the file was edited): nothing to send.
        held -= next.bytes;
        if (spool.nextPending(next.seq)?.seq === next.seq) {
          logger.warn({ seq: next.seq }, 'a spooled batch could not be read back; dropped');
          spool.done(next.seq);
        }
        continue;
      }
      forward(entry, next.bytes);
      await slices.turn();
    }
  }

  pump();

  return {
    enqueue(entry) {
      if (entry.seq >= cursor && freshBytes + entry.bytes <= windowBytes) {
        fresh.set(entry.seq, entry);
        freshBytes += entry.bytes;
      }
      opts.onPending?.(spool.pendingAlerts());
      pump();
    },
    async drained() {
      for (;;) {
        const waiting = changed;
        if (stopped || (spool.pendingBatches() === 0 && entries.size === 0 && !pumping)) return;
        await waiting;
      }
    },
    async stop() {
      stopped = true;
      for (const wake of [...wakeOnStop]) wake();
      announceChange();
      await pumping;
      while (entries.size > 0) await Promise.all([...entries]);
      fresh.clear();
    },
  };
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 500);
}
