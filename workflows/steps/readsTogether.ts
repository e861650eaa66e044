// The reads a run asks in one turn of its code, as one local activity. A run that opens the usual
// way asks its silence check, its target's check and its first restart's claim at once
// (checksAhead.ts); as three local activities their answers reached the run in two or three
// activations, each a turn of the workflow thread and of the worker's core (~7–15 ms apiece on 2
// busy cores) before the restart could be asked. As one, they reach it in one. Each read keeps its
// own code path: its call site is unchanged, and a read that failed in the batch (or a batch that
// failed as a whole, not cancelled with the run) is asked again on its own activity, with that
// activity's retries. Only the first reads are gathered (firstReadsTogether): reads asked anywhere
// else (a parallel group's checks, a later step's) go on their own, so none waits for another's
// answer; a gathering of a single read asks it on its own activity, as before.
import { CancellationScope, isCancellation, log, proxyLocalActivities, proxySinks, sleep } from '@temporalio/workflow';
import type { FirstReadActivities, TogetherAnswer, TogetherRead } from '../../activities/contract.js';
import type { RunbookMetricsSinks } from '../messages.js';
import { asksReadsTogether } from './patchesFirst.js';

/** The arguments a read of this kind is asked with: `together` ties each kind to its own. */
type ArgsOf<K extends TogetherRead['kind']> = Extract<TogetherRead, { kind: K }>['args'];

interface Waiting {
  read: TogetherRead;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  alone(): Promise<unknown>;
}

/**
 * The pause before a local read the worker dropped is asked again (here, and in activities.ts
 * asActivity): it lets the task end and the eviction finish; asked at once, the same eviction
 * would cancel it again.
 */
export const droppedReadPauseMs = 1_000;

// Module state is the run's own: each workflow run has its own module instances.
let gathering = false;
let waiting: Waiting[] | undefined;

// No retries of its own: a read that failed is asked again on its own activity, which has them.
const batch = proxyLocalActivities<FirstReadActivities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 1 } });

/**
 * Runs `ask`, whose synchronous part asks a run's first reads (checksAhead.ts askAhead and the
 * silence check after it): in the runs that do (asksReadsTogether), those go out as one local
 * activity once it returns.
 */
export function firstReadsTogether<T>(ask: () => T): T {
  if (!asksReadsTogether()) return ask();
  gathering = true;
  try {
    return ask();
  } finally {
    gathering = false;
  }
}

/**
 * `alone`, asked with the other first reads of the same gathering as one local activity; on its own
 * anywhere else.
 */
export function together<K extends TogetherRead['kind'], A extends ArgsOf<K>, R>(
  kind: K,
  alone: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return (...args) => {
    if (!gathering) return alone(...args);
    return new Promise<R>((resolve, reject) => {
      if (!waiting) {
        const asked: Waiting[] = (waiting = []);
        // Once the gathering's synchronous code has asked what it asks: deterministic, as every
        // microtask of a workflow is. Whatever goes wrong on the way is each read's failure.
        void Promise.resolve()
          .then(() => {
            waiting = undefined;
            return askTogether(asked);
          })
          .catch((err: unknown) => {
            for (const w of asked) w.reject(err);
          });
      }
      waiting.push({
        read: { kind, args } as TogetherRead,
        resolve: resolve as (v: unknown) => void,
        reject,
        alone: () => alone(...args),
      });
    });
  };
}

async function askTogether(asked: Waiting[]): Promise<void> {
  if (asked.length === 1) return settle(asked[0]!, asked[0]!.alone());
  let answers: TogetherAnswer[];
  try {
    answers = await batch.readsTogether(asked.map((w) => w.read));
  } catch (err) {
    // Cancelled with the run: so is every read. Anything else (its time ran out, the worker dropped
    // it): each read is asked on its own, as it was before reads went together. A batch the worker
    // dropped (evicting the run from its cache) is counted, and the reads wait out the eviction
    // first, as a dropped read does (activities.ts asActivity).
    const cancelled = isCancellation(err);
    if (cancelled && CancellationScope.current().consideredCancelled) {
      for (const w of asked) w.reject(err);
      return;
    }
    if (cancelled) {
      log.warn('first reads dropped by the worker; asking each on its own', { reads: asked.map((w) => w.read.kind) });
      proxySinks<RunbookMetricsSinks>().metrics.localReadDropped('readsTogether');
      // Cancelled during the pause: every read is (askTogether's caller rejects them).
      await sleep(droppedReadPauseMs);
    }
    for (const w of asked) settle(w, w.alone());
    return;
  }
  asked.forEach((w, i) => {
    const answer = answers[i];
    if (answer?.kind === w.read.kind && 'value' in answer) w.resolve(answer.value);
    else settle(w, w.alone());
  });
}

function settle(w: Waiting, answer: Promise<unknown>): void {
  answer.then(w.resolve, w.reject);
}
