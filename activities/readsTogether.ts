// A run's first reads as one local activity: the silence check, the target's check and the first
// restart's claim, asked side by side with the engine's own activities (so a read taken at the door,
// activities/readAhead.ts, answers here as it would answer each of them). Each read's failure is its
// own: it is handed back as such, and the run asks that read again on its own activity, with that
// activity's retries. One answer instead of three is one workflow activation less on the path from
// an alert to its restart.
import type {
  FirstReadActivities,
  GuardrailActivities,
  EngineActivities,
  TargetActivities,
  TogetherAnswer,
  TogetherRead,
} from './contract.js';
import { badInput } from './failures.js';

export type TogetherReadActivities = Pick<EngineActivities, 'checkSuppression'> &
  Pick<TargetActivities, 'verifyTarget'> &
  Pick<GuardrailActivities, 'claimRestart'>;

/** At most one of each: a run asks each first read once. */
const maxReads = 3;
/** A failure's reason, as long as the history keeps it: the read is asked again anyway. */
const maxReasonChars = 1_024;

export function readsTogetherOver(reads: TogetherReadActivities): FirstReadActivities {
  return {
    async readsTogether(asked: TogetherRead[]): Promise<TogetherAnswer[]> {
      if (!Array.isArray(asked) || asked.length === 0 || asked.length > maxReads) {
        throw badInput('first reads', `expected 1 to ${maxReads} reads, got ${Array.isArray(asked) ? asked.length : typeof asked}`);
      }
      const calls = asked.map((read, i) => callOf(reads, read, i));
      const settled = await Promise.allSettled(calls.map((call) => call()));
      return settled.map((s, i) => {
        const kind = asked[i]!.kind;
        return s.status === 'fulfilled' ? { kind, value: s.value } : { kind, failed: reasonOf(s.reason).slice(0, maxReasonChars) };
      });
    },
  };
}

function callOf(reads: TogetherReadActivities, read: TogetherRead, i: number): () => Promise<unknown> {
  const args = (read as { args?: unknown }).args;
  if (!read || typeof read !== 'object' || !Array.isArray(args)) throw badInput(`first read ${i}`, 'not a read with its arguments');
  switch (read.kind) {
    case 'checkSuppression':
      // As many arguments as asked (a spread keeps them): a read taken at the door is matched by its
      // exact arguments.
      return () => reads.checkSuppression(...read.args);
    case 'verifyTarget':
      return () => reads.verifyTarget(...read.args);
    case 'claimRestart':
      return () => reads.claimRestart(...read.args);
    default:
      throw badInput(
        `first read ${i}`,
        `'${String((read as { kind?: unknown }).kind).slice(0, 64)}' is not one of checkSuppression, verifyTarget, claimRestart`,
      );
  }
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
