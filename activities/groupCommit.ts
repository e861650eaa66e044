// Many callers' requests sent as one call (a group commit): while a call waits for its turn, what
// arrives meanwhile joins it. A lone request when nothing waits is sent at once, alone.

/** A call's turn, as inFlightLimit (limits.ts) gives it. */
export type Turns = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * Returns `ask(op, signal)`: resolves with `send`'s answer for that op. `send` gets at most `max`
 * ops at a time and must answer one result per op, in order; when it throws, every op it was given
 * rejects with that error. A caller whose signal aborts stops waiting at once with the signal's
 * reason; an op not sent yet is then never sent.
 */
export function groupCommit<Op, Res>(
  send: (ops: Op[]) => Promise<Res[]>,
  turns: Turns,
  max: number,
): (op: Op, signal?: AbortSignal) => Promise<Res> {
  interface Entry {
    op: Op;
    settle: (outcome: { value: Res } | { error: unknown }) => void;
  }
  const queue: Entry[] = [];
  let waiting = false;

  function pump(): void {
    if (waiting || queue.length === 0) return;
    waiting = true;
    void turns(async () => {
      waiting = false;
      const batch = queue.splice(0, max);
      // What is left, and what comes meanwhile, waits for the next turn.
      pump();
      if (batch.length === 0) return;
      try {
        const results = await send(batch.map((e) => e.op));
        if (results.length !== batch.length) throw new Error(`expected ${batch.length} answers, got ${results.length}`);
        batch.forEach((e, i) => e.settle({ value: results[i]! }));
      } catch (error) {
        for (const e of batch) e.settle({ error });
      }
    });
  }

  return (op, signal) =>
    new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const entry: Entry = {
        op,
        settle(outcome) {
          signal?.removeEventListener('abort', onAbort);
          if ('value' in outcome) resolve(outcome.value);
          else reject(outcome.error);
        },
      };
      function onAbort(): void {
        const at = queue.indexOf(entry);
        if (at >= 0) queue.splice(at, 1);
        entry.settle({ error: signal!.reason });
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(entry);
      pump();
    });
}
