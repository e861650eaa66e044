// Hands spooled alerts to Temporal: in the order they arrived for any one alert (a resolution never
// overtakes its firing), many alerts at once otherwise, and again and again while Temporal is
// unreachable. A batch is marked done in the spool once every alert in it was delivered.
import type { Logger } from 'pino';
import { inFlightLimit } from '../activities/limits.js';
import type { WebhookAlert } from './alertmanagerPayload.js';
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
  concurrency?: number;
  /** Told after every change of what is pending (for the gauge). */
  onPending?: (alerts: number) => void;
  /** Waits between tries of one alert: doubling from the first to the last. */
  backoffMs?: { first: number; max: number };
}

export interface Forwarder {
  enqueue(entry: SpoolEntry): void;
  /** Resolves when nothing enqueued is left to deliver (tests, shutdown reports). */
  drained(): Promise<void>;
  /** Stops retrying; what was not delivered stays in the spool for the next start. */
  stop(): Promise<void>;
}

export function startForwarder(opts: ForwarderOptions): Forwarder {
  const { spool, logger } = opts;
  const backoff = opts.backoffMs ?? { first: 500, max: 30_000 };
  const inTurn = inFlightLimit(opts.concurrency ?? 16);
  let stopped = false;
  const wakeOnStop = new Set<() => void>();
  // One chain per alert: its next event waits for the one before it.
  const chains = new Map<string, Promise<void>>();
  const entries = new Set<Promise<void>>();
  let stalledSince: number | undefined;

  /** True once Temporal took it; false when it did not (yet). */
  async function tryOnce(alert: WebhookAlert): Promise<boolean> {
    try {
      await inTurn(() => opts.deliver(alert));
    } catch (err) {
      if (stalledSince === undefined) {
        stalledSince = Date.now();
        logger.warn({ error: err instanceof Error ? err.message : String(err), waiting: spool.pendingAlerts() }, 'Temporal did not take spooled alerts; retrying until it does');
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
  async function deliverUntilTaken(alert: WebhookAlert): Promise<boolean> {
    for (let wait = backoff.first; !stopped; wait = Math.min(backoff.max, wait * 2)) {
      if (await tryOnce(alert)) return true;
      await pause(wait);
    }
    return false;
  }

  function enqueue(entry: SpoolEntry): void {
    const settled = entry.alerts.map((alert) => {
      const key = alert.fingerprint || JSON.stringify(alert.labels);
      const previous = chains.get(key) ?? Promise.resolve();
      let ok = false;
      const mine = previous.then(async () => {
        if (!stopped) ok = await deliverUntilTaken(alert);
      });
      chains.set(key, mine);
      void mine.then(() => {
        if (chains.get(key) === mine) chains.delete(key);
      });
      return mine.then(() => ok);
    });
    const whole = Promise.all(settled).then((oks) => {
      if (oks.every(Boolean)) spool.done(entry.seq);
      opts.onPending?.(spool.pendingAlerts());
    });
    entries.add(whole);
    void whole.finally(() => entries.delete(whole));
    opts.onPending?.(spool.pendingAlerts());
  }

  return {
    enqueue,
    async drained() {
      while (entries.size > 0) await Promise.all([...entries]);
    },
    async stop() {
      stopped = true;
      for (const wake of [...wakeOnStop]) wake();
      await Promise.all([...entries]);
    },
  };
}
