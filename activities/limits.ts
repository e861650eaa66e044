// Output that ends up in workflow history, notifications and terminals is always capped:
// a runaway log must not fill Temporal's history or a pager.
import { Context } from '@temporalio/activity';

export function capText(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  const marker = `\n[... ${buf.length - maxBytes} bytes cut]`;
  // Keep the end: the newest log lines are the ones that explain an outage.
  return `${marker.trimStart()}\n${buf
    .subarray(buf.length - maxBytes)
    .toString('utf8')
    .replace(/^\uFFFD+/, '')}`;
}

export function capLines(lines: string[], maxLines: number): string[] {
  return lines.length <= maxLines ? lines : lines.slice(lines.length - maxLines);
}

/** Heartbeats while a long call runs, when called from inside an activity; a no-op elsewhere (tests). */
export async function heartbeating<T>(work: Promise<T>, details?: unknown, everyMs = 5_000): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return work;
  }
  ctx.heartbeat(details);
  const timer = setInterval(() => ctx!.heartbeat(details), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** Heartbeats `details` at once, as progress a retry may read (the SDK still throttles what reaches the server). */
export function heartbeatNow(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Not in an activity (a direct call): nothing to record.
  }
}

/** The abort signal of the running activity (cancelled or timed out), if there is one. */
export function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/** The running activity's info, if there is one (undefined outside an activity). */
export function activityInfo(): ReturnType<typeof Context.current>['info'] | undefined {
  try {
    return Context.current().info;
  } catch {
    return undefined;
  }
}

/**
 * On a retry of the running activity, the time its first attempt began at the earliest: the
 * activity's scheduled time (which Temporal keeps from the first attempt). Undefined on a first
 * attempt, and outside an activity, which is one.
 */
export function firstAttemptBegan(): number | undefined {
  const info = activityInfo();
  return info && info.attempt > 1 ? info.scheduledTimestampMs : undefined;
}

/**
 * At most `limit` calls at a time; the rest wait their turn in arrival order. A finishing call hands
 * its place straight to the next in line, so a newcomer can never slip in between. A waiter whose
 * signal aborts leaves the line with the signal's reason. A limit that changes (a function, asked at
 * each arrival and each finish) is followed from then on: raised, as many waiters go in at the next
 * finish as it allows; lowered, the calls already running finish, and nobody goes in until below it.
 */
export function inFlightLimit(limit: number | (() => number)): <T>(fn: () => Promise<T>, signal?: AbortSignal) => Promise<T> {
  const max = typeof limit === 'number' ? () => limit : limit;
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (fn, signal) => {
    if (running < max()) running++;
    else {
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const leave = () => {
          waiting.splice(waiting.indexOf(go), 1);
          reject(signal!.reason);
        };
        const go = () => {
          signal?.removeEventListener('abort', leave);
          resolve();
        };
        waiting.push(go);
        signal?.addEventListener('abort', leave, { once: true });
      });
    }
    try {
      return await fn();
    } finally {
      running--;
      while (waiting.length > 0 && running < max()) {
        running++;
        waiting.shift()!();
      }
    }
  };
}

/** `work`'s outcome, or the signal's reason as soon as it aborts. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
