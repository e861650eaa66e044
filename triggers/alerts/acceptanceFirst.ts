// Acceptance first. The webhook shares its event loop with the spool's forwarder and the worker;
// during a storm, every delivery started is a Temporal call, a workflow start and its activities
// competing with the next request's answer. Spooled alerts are already safe, so in a storm (the
// last `stormArrivals` batches arrived within `stormWindowMs`) a delivery waits while batches are
// arriving (until none has for `quietMs`), but never longer than `deferMaxMs`: a storm that never
// ends slows forwarding down, it does not stop it. A lone alert is forwarded at once: its recovery
// does not wait for a quiet that is already there.

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
  /** Resolves when a delivery may start: at once outside a storm, else at a quiet or the cap. */
  quiet(): Promise<void>;
}

export interface AcceptanceGateOptions {
  quietMs?: number;
  deferMaxMs?: number;
  stormArrivals?: number;
  stormWindowMs?: number;
  stormOverMs?: number;
  /** Injected by tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function acceptanceGate(options: AcceptanceGateOptions = {}): AcceptanceGate {
  const quietMs = options.quietMs ?? 10;
  const deferMaxMs = options.deferMaxMs ?? 500;
  const stormArrivals = options.stormArrivals ?? 8;
  const stormWindowMs = options.stormWindowMs ?? 100;
  const stormOverMs = options.stormOverMs ?? 1_000;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let receiving = 0;
  let lastActivity = -Infinity;
  // The times of the last few arrivals, oldest at `next`.
  const arrivals = new Array<number>(stormArrivals).fill(-Infinity);
  let next = 0;
  const inStorm = () => now() - arrivals[next]! < stormWindowMs;
  let stormArrival = -Infinity;
  return {
    arrived() {
      receiving++;
      lastActivity = now();
      arrivals[next] = lastActivity;
      next = (next + 1) % stormArrivals;
      if (inStorm()) stormArrival = lastActivity;
    },
    answered() {
      receiving--;
      lastActivity = now();
    },
    storming: () => now() - stormArrival < stormOverMs,
    async quiet() {
      const until = now() + deferMaxMs;
      while (inStorm() && (receiving > 0 || now() - lastActivity < quietMs) && now() < until) await sleep(quietMs);
    },
  };
}
