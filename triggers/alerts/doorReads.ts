// The webhook's side of the reads taken at the door (activities/readAhead.ts): what a run about to
// start will ask first (workflows/steps/checksAhead.ts firstReads), asked now with the engine's own
// activities, and handed to the run's activities once the start says which run it is.
import type { EngineActivities, GuardrailActivities, TargetActivities } from '../../activities/contract.js';
import type { DoorReads } from '../../activities/readAhead.js';
import { firstReads } from '../../workflows/steps/checksAhead.js';
import type { RunbookRunInput } from '../../workflows/messages.js';

/** The door reads of one start: told how it went. */
export interface DoorStart {
  started(runId: string): void;
  dropped(): void;
}

/** Opens the door reads of a run about to start, or undefined when it opens otherwise (or too many are held). */
export type OpenDoorReads = (input: RunbookRunInput, workflowId: string) => DoorStart | undefined;

export type DoorReadActivities = Pick<EngineActivities, 'checkSuppression'> &
  Pick<TargetActivities, 'verifyTarget'> &
  Pick<GuardrailActivities, 'claimRestart'>;

export function doorReadsFor(doors: DoorReads, reads: DoorReadActivities): OpenDoorReads {
  return (input, workflowId) => {
    const first = firstReads(input);
    if (!first) return undefined;
    const ticket = doors.open();
    if (!ticket) return undefined;
    const [target, labels] = first.suppression;
    ticket.read('checkSuppression', first.suppression, () => reads.checkSuppression(target, labels));
    const verify = first.verify;
    if (verify) ticket.read('verifyTarget', verify, () => reads.verifyTarget(...verify));
    return {
      started(runId) {
        ticket.bind(runId);
        // The claim names the run: asked once the start said which.
        const claim = first.claim?.(workflowId, runId);
        if (claim) ticket.read('claimRestart', [claim], () => reads.claimRestart(claim));
      },
      dropped: () => ticket.drop(),
    };
  };
}
