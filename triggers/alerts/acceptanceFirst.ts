// Acceptance first. During a storm, every delivery started is a Temporal call, a workflow start
// and its activities competing with the next request's answer for the machine (the CPU, and the
// disk the spool's fsync waits on). Spooled alerts are already safe, so in a storm (told by its
// rate or its first burst, below) deliveries wait while batches are arriving (until none has for
// `quietMs`), for at most `deferMaxMs` from the storm's start: a storm
// that never ends slows forwarding down (fewer at once, alertmanager.ts), it does not stop it. A
// lone alert is forwarded at once: its recovery does not wait for a quiet that is already there.
//
// The longest wait was each delivery's own (500 ms from when it began to wait): in a storm that
// kept arriving, every delivery waited its 500 ms, so 16 at once forwarded ~32 alerts a second
// however long the storm lasted, and a flat-out storm's first deliveries all went 500 ms in. The
// storm now holds deliveries for 2 s from its start, after which they go at the storm's pace. Paced
// at 200 alerts/s for 5 s (4 runs each, alternating): 252–304 runs started while the alerts were
// posted (142–210 before), every run started after 10.9–11.9 s (11.9–14.5), the answers no slower
// (94.7–98.4 % within 10 ms by the engine's clock, 95.1–96.6 % before; docs/performance-history.md,
// Session 26).
//
// A storm is told by its rate (the last `stormArrivals` batches within `stormWindowMs`) and, at its
// very start, by a burst (the last `burstArrivals` within `burstWindowMs`). By rate alone, the
// first batches of a flat-out storm were forwarded at once until the eighth had arrived: 18–38 runs
// started while it was still being posted, stalling the engine's loop 200–300 ms. With the burst,
// 1,000 distinct alerts flat out (6 runs each, alternating) were accepted at 1,465–1,948 alerts/s,
// no run started while posting in 5 of 6, against 971–1,312/s (docs/performance-history.md, Session 27).
// A storm is also told by 8 batches being answered at once, whatever their rate (below).
// A lone alert, or two at once, is still no storm.

export interface AcceptanceGate {
  /** A batch arrived at the webhook. */
  arrived(): void;
  /** Its answer was sent (or it was refused). */
  answered(): void;
  /**
   * A storm's batches arrived within the last `stormOverMs`: fewer deliveries run at once. A second,
   * not the gaps between batches, since the engine hears of arrivals only when its event loop turns
   * (every 100–300 ms in a storm on 2 cores).
   */
  storming(): boolean;
  /**
   * Resolves when a delivery may start: at once outside a storm, else at a quiet moment, or once
   * the storm has held deliveries for `deferMaxMs` since it began.
   */
  quiet(): Promise<void>;
}

export interface AcceptanceGateOptions {
  quietMs?: number;
  deferMaxMs?: number;
  stormArrivals?: number;
  stormWindowMs?: number;
  /** A burst of this many batches within `burstWindowMs` is a storm before its rate says so (at most `stormArrivals`). */
  burstArrivals?: number;
  burstWindowMs?: number;
  stormOverMs?: number;
  /** Injected by tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function acceptanceGate(options: AcceptanceGateOptions = {}): AcceptanceGate {
  const quietMs = options.quietMs ?? 10;
  const deferMaxMs = options.deferMaxMs ?? 2_000;
  const stormArrivals = options.stormArrivals ?? 8;
  const stormWindowMs = options.stormWindowMs ?? 100;
  const burstArrivals = Math.min(options.burstArrivals ?? 3, stormArrivals);
  const burstWindowMs = options.burstWindowMs ?? 20;
  const stormOverMs = options.stormOverMs ?? 1_000;
  const now = options.now ?? (() => performance.now());
  // A wait ends only after the event loop has taken in the messages that came meanwhile: when the
  // loop was held up (a collection, a run's work), its timers run before the webhook thread's
  // queued arrivals are read, and a check then would take a storm still arriving for a quiet one.
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(() => setImmediate(resolve), ms)));
  let receiving = 0;
  let lastActivity = -Infinity;
  // The times of the last few arrivals, oldest at `next`.
  const arrivals = new Array<number>(stormArrivals).fill(-Infinity);
  let next = 0;
  /** How long ago the `k`th newest arrival came (1: the newest; stormArrivals: the oldest kept). */
  const ago = (k: number) => now() - arrivals[(next - k + stormArrivals) % stormArrivals]!;
  // Or by the batches being answered at once: a sender that waits for each answer (Alertmanager's
  // per-receiver calls, a load test's callers) arrives only as fast as it is answered, so when the
  // answers are slow (a cluster, the intake) its rate never looks like a storm, the deliveries went
  // at once, and the answers slowed further: 62–235 alerts a second (Session 31).
  const inStorm = () => receiving >= stormArrivals || ago(stormArrivals) < stormWindowMs || ago(burstArrivals) < burstWindowMs;
  let stormArrival = -Infinity;
  /** When the storm under way began (its first storm-grade arrival after a calm). */
  let stormBegan = -Infinity;
  const storming = () => now() - stormArrival < stormOverMs;
  return {
    arrived() {
      receiving++;
      lastActivity = now();
      arrivals[next] = lastActivity;
      next = (next + 1) % stormArrivals;
      if (inStorm()) {
        if (!storming()) stormBegan = lastActivity;
        stormArrival = lastActivity;
      }
    },
    answered() {
      receiving--;
      lastActivity = now();
    },
    storming,
    async quiet() {
      while (inStorm() && (receiving > 0 || now() - lastActivity < quietMs) && now() - stormBegan < deferMaxMs) await sleep(quietMs);
    },
  };
}
