// Reads taken at the door. A run that opens the usual way (suppression check, verify, restart) asks
// the same three things first, as local activities, once its first workflow task has run: the
// silences, the target's health and the guard's restart claim. The webhook knows all three when it
// starts the run, so it asks them itself beside the start, and the run's activities answer with
// what came back (or is still on its way) instead of asking again: the ~10 ms of the start and the
// first task are no longer waited out before the reads, and the path from alert to restart is
// shorter by the reads' own time. Each read is still the run's own: recorded in its history as the
// activity's result, asked with the same arguments, for that run only (its run id), once, and only
// while fresh. A read the run never takes is dropped; one that failed is asked again by the activity,
// unless it was refused for good.
import { ApplicationFailure } from '@temporalio/common';
import { activityInfo, activitySignal, untilAborted } from './limits.js';

/** The activities whose first call in a run may be answered by a read taken at the door. */
export const doorReadKinds = ['checkSuppression', 'verifyTarget', 'claimRestart'] as const;
export type DoorReadKind = (typeof doorReadKinds)[number];

/** Older than this, a door read is not taken: the run reads for itself. */
export const doorReadFreshMs = 2_000;

/**
 * Runs (bound or not) holding door reads at once. A run takes its reads within milliseconds of its
 * start; beyond this many, in a storm, a run reads for itself, and the door adds no load of its own.
 */
export const maxDoorRuns = 64;

/**
 * Runs started per second (given door reads or not) past which the engine is in a storm, and no run
 * gets door reads until the last second saw this many or fewer. In a storm the runs' first tasks
 * queue for seconds, so door reads go stale unread, and they would add their load to the webhook's
 * while it has the most to do. A budget of ten runs a second with reads, as before, was spent every
 * second of a storm's 30–45 s of starts (bench: 1,000 distinct alerts paced at 200/s).
 */
export const maxDoorRunsPerSecond = 10;

/**
 * After a door read went stale unread (its run's first task came later than doorReadFreshMs: the
 * worker is behind), no run gets door reads for this long: a backlog is not over in a second.
 */
export const doorBacklogPauseMs = 5_000;

interface DoorRead {
  kind: DoorReadKind;
  args: string;
  answer: Promise<unknown>;
}

interface Held {
  at: number;
  reads: DoorRead[];
  runId?: string;
}

/** The door reads of one run about to start. */
export interface DoorTicket {
  /** Starts `read` now, for the run's first call of `kind` with exactly `args`. */
  read(kind: DoorReadKind, args: unknown[], read: () => Promise<unknown>): void;
  /** The run started: its activities may take what was read. */
  bind(runId: string): void;
  /** No run started (one was running already, or the start failed): nothing is taken. */
  drop(): void;
}

/** What became of a door read: its run took it, took it but it had failed (asked again), or never took it. */
export const doorReadOutcomes = ['taken', 'failed', 'unused'] as const;
export type DoorReadOutcome = (typeof doorReadOutcomes)[number];

export interface DoorReads {
  /** A ticket for a run about to start, or undefined past a cap (runs held, reads out, runs a second). */
  open(): DoorTicket | undefined;
  /** The read taken at the door for this run's call, once; undefined when there is none (or it is stale). */
  take(runId: string, kind: DoorReadKind, args: unknown[]): Promise<unknown> | undefined;
  /** Counts what became of a read (door_reads_total). */
  note(kind: DoorReadKind, outcome: DoorReadOutcome): void;
  /** Runs holding door reads (bound or not). */
  readonly size: number;
}

export function createDoorReads(
  opts: {
    now?: () => number;
    freshMs?: number;
    maxRuns?: number;
    maxPerSecond?: number;
    onOutcome?: (kind: DoorReadKind, outcome: DoorReadOutcome) => void;
  } = {},
): DoorReads {
  // A monotonic clock: a wall clock stepped back would keep a read fresh for longer than freshMs.
  const now = opts.now ?? (() => performance.now());
  const note = opts.onOutcome ?? (() => undefined);
  const freshMs = opts.freshMs ?? doorReadFreshMs;
  const maxRuns = opts.maxRuns ?? maxDoorRuns;
  const held = new Set<Held>();
  const byRun = new Map<string, Held>();
  // Reads still out, dropped runs' included (a read cannot be called back): no new run reads at the
  // door while as many are out as the held runs could ask, so a flood adds no load of the door's own.
  let inFlight = 0;
  const maxInFlight = 3 * maxRuns;
  const maxPerSecond = opts.maxPerSecond ?? maxDoorRunsPerSecond;
  // The times of the last maxPerSecond + 1 starts, oldest at `nextStart`: more than maxPerSecond
  // in the last second when the oldest of them is less than a second old.
  const starts = new Array<number>(maxPerSecond + 1).fill(-Infinity);
  let nextStart = 0;
  const inStorm = (t: number): boolean => {
    starts[nextStart] = t;
    nextStart = (nextStart + 1) % starts.length;
    return t - starts[nextStart]! < 1_000;
  };
  let staleAt = -Infinity;

  const forget = (h: Held) => {
    if (!held.has(h)) return;
    for (const r of h.reads) note(r.kind, 'unused');
    held.delete(h);
    if (h.runId !== undefined && byRun.get(h.runId) === h) byRun.delete(h.runId);
  };
  /** Held and fresh; forgotten when it went stale (a start or a first task that took longer than freshMs). */
  const stillFresh = (h: Held, t = now()): boolean => {
    if (held.has(h) && t - h.at > freshMs) {
      // When it went stale, not when that was noticed: an old one noticed late pauses nothing.
      if (h.reads.length > 0) staleAt = Math.max(staleAt, h.at + freshMs);
      forget(h);
    }
    return held.has(h);
  };

  return {
    open() {
      const t = now();
      for (const h of held) stillFresh(h, t);
      // Every start counts towards a storm, the ones refused door reads too.
      if (inStorm(t) || t - staleAt < doorBacklogPauseMs) return undefined;
      if (held.size >= maxRuns || inFlight >= maxInFlight) return undefined;
      const h: Held = { at: t, reads: [] };
      held.add(h);
      return {
        read(kind, args, read) {
          if (!stillFresh(h)) return;
          let answer: Promise<unknown>;
          try {
            answer = read();
          } catch (err) {
            answer = Promise.reject(err as Error);
          }
          inFlight += 1;
          // Awaited by the activity that takes it, or by nobody: never an unhandled rejection.
          answer.then(
            () => (inFlight -= 1),
            () => (inFlight -= 1),
          );
          h.reads.push({ kind, args: canonical(args), answer });
        },
        bind(runId) {
          if (!stillFresh(h)) return;
          h.runId = runId;
          byRun.set(runId, h);
        },
        drop: () => forget(h),
      };
    },

    take(runId, kind, args) {
      const h = byRun.get(runId);
      if (!h) return undefined;
      if (!stillFresh(h)) return undefined;
      const key = canonical(args);
      const at = h.reads.findIndex((r) => r.kind === kind && r.args === key);
      if (at < 0) return undefined;
      const [read] = h.reads.splice(at, 1);
      if (h.reads.length === 0) forget(h);
      return read!.answer;
    },

    note,

    get size() {
      return held.size;
    },
  };
}

/**
 * `call`, answered by the read taken at the door for the running activity's run when there is one.
 * A door read that failed is asked again here, as the activity's own first try would have been;
 * one refused for good (non-retryable) is the answer as it stands.
 */
export function fromTheDoor<A extends unknown[], R>(
  doors: DoorReads | undefined,
  kind: DoorReadKind,
  call: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  if (!doors) return call;
  return async (...args: A): Promise<R> => {
    const info = activityInfo();
    const runId = info?.attempt === 1 ? info.workflowExecution?.runId : undefined;
    const early = runId === undefined ? undefined : doors.take(runId, kind, args);
    if (early) {
      const signal = activitySignal();
      try {
        const answer = (await untilAborted(early, signal)) as R;
        doors.note(kind, 'taken');
        return answer;
      } catch (err) {
        if (signal?.aborted) throw err;
        doors.note(kind, 'failed');
        // A refusal for good (a target that is not there, a claim the guard refuses) is this
        // attempt's answer too: asking again would only repeat it. Anything else is asked again.
        if (err instanceof ApplicationFailure && err.nonRetryable) throw err;
      }
    }
    return call(...args);
  };
}

/** JSON with object keys sorted: the same arguments however their objects were built. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
