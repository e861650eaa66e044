// One event loop answers every request: checking and deciding about the alerts of a 1 MiB batch in
// one go held it (and /healthz) for 0.1–0.8 s. Long work is done in bounded slices instead (a few
// milliseconds, or a hundred steps, whichever comes first), giving the loop a turn between them.

export interface TimeSlices {
  /**
   * One step of work is about to start. Resolves at once while the current slice lasts; once it is
   * used up, after the event loop has run what was waiting (setImmediate: after pending I/O, so
   * requests are read and answered).
   */
  turn(): Promise<void>;
}

export function timeSlices(options: { budgetMs?: number; steps?: number } = {}): TimeSlices {
  const budgetMs = options.budgetMs ?? 8;
  const steps = options.steps ?? 100;
  let sliceStart = performance.now();
  let taken = 0;
  // Work running concurrently (deliveries in flight, requests) shares one slice: whoever finds it
  // used up waits for the same turn as everyone else, and the next slice starts once, after it.
  let nextTurn: Promise<void> | undefined;
  return {
    turn() {
      if (nextTurn) return nextTurn;
      if (++taken < steps && performance.now() - sliceStart < budgetMs) return Promise.resolve();
      nextTurn = new Promise<void>((resolve) =>
        setImmediate(() => {
          nextTurn = undefined;
          sliceStart = performance.now();
          taken = 0;
          resolve();
        }),
      );
      return nextTurn;
    },
  };
}
