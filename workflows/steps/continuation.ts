// Keeping a long incident's history short: a run that has heard many repeated alerts (each one a
// signal) continues as new at its next waiting point, carrying its state (see RunbookResume).
import { workflowInfo } from '@temporalio/workflow';
import type { RunbookResume } from '../messages.js';

/**
 * History past this many events is carried into a new run at the next waiting point: a storm of
 * repeated alerts (each a signal) must not wedge an incident (Temporal refuses signals past 10,000
 * per run, and a long history replays slowly after a worker restart).
 */
export const historyLimit = 2_000;

/** Thrown by a waiting step to continue the run as new; never seen outside this module. */
export class ContinueRun extends Error {
  constructor(readonly carry: Pick<RunbookResume, 'at' | 'escalation' | 'approval'>) {
    super('continue as new');
  }
}

export function historyTooLong(): boolean {
  const info = workflowInfo();
  return info.historyLength > historyLimit || info.continueAsNewSuggested;
}
