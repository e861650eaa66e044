// Polling for a condition in the real world (a container healthy, a workflow started), with a
// deadline that names what never happened.

/** Polls probe until it returns something other than undefined; a probe that throws counts as "not yet". */
export async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? ` (last error: ${String(lastError)})` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Reads until `done` holds or the time is up, and returns the last value either way, for the
 * caller to assert on: a failure then shows what was seen, not only that time ran out.
 */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 15_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * One GET: true if it answers 200. It may take 5 s: in a full CI run a
 * local web server that had just answered the engine's health check was seen not to answer this
 * one within 1 s. A refused connection is false at once.
 */
export async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(5_000) })).status === 200;
  } catch {
    return false;
  }
}

/** Waits until the URL answers 200 (30 s at most by default). */
export async function untilHttpOk(url: string, what: string, ms = 30_000): Promise<void> {
  await until(what, ms, async () => ((await httpOk(url)) ? true : undefined));
}

/** A promise the test resolves by hand: `wait` until somebody calls `open()`. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}
