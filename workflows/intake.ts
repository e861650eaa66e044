// The webhook's intake in Temporal (webhook.intake): Alertmanager's alerts made durable in Temporal
// before the webhook answers 200, a whole wave of batches in one signal instead of one start per
// alert, and handed from here to the engine's forwardAlerts activity, which starts and signals the
// incidents exactly as the webhook would have. One run at a time per task queue; it ends after a
// quiet spell (the next batch starts a new one) and continues as new before its history is long.
import { condition, continueAsNew, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { IntakeActivities, IntakeAlert } from '../activities/contract.js';

export type { IntakeAlert } from '../activities/contract.js';

/** A wave of alerts the webhook took (checked at its door, checked again before they are forwarded). */
export interface IntakeWave {
  alerts: IntakeAlert[];
}

export interface IntakeInput {
  /** Alerts taken by the run this one continues, not forwarded yet. */
  queued?: IntakeAlert[];
  /** Events before continuing as new (tests make it small); default 2,000. */
  historyLimit?: number;
  /** How long the intake waits with nothing taken before it ends (tests make it short); default 10 minutes. */
  quietFor?: string;
}

export const intakeSignal = defineSignal<[IntakeWave]>('alerts');

/** The intake's workflow id on a task queue: every engine on the queue signals the same one. */
export function intakeWorkflowId(taskQueue: string): string {
  return `intake:${taskQueue}`;
}

/** Alerts handed to one forwardAlerts call at most. */
export const maxForwardAlerts = 500;

/** Characters of alerts (as JSON) in one forwardAlerts call at most, well under Temporal's 2 MB payload limit. */
export const maxForwardChars = 512 * 1024;

/** History bytes before continuing as new (signals carry alerts: the events are large). */
const historyBytesLimit = 8 * 1_048_576;

const { forwardAlerts } = proxyActivities<IntakeActivities>({
  // A wave of 500 alerts takes seconds; Temporal down makes each of them wait out its deadline.
  startToCloseTimeout: '10 minutes',
  // The engine running it died: another (or the restarted one) takes it up within 20 s, skipping
  // what the heartbeats said was forwarded.
  heartbeatTimeout: '20 seconds',
  // Forwarding is retried for as long as it takes: the alerts wait here, not in Alertmanager.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

export async function intake(input: IntakeInput = {}): Promise<void> {
  const queue: IntakeAlert[] = [...(input.queued ?? [])];
  const historyLimit = input.historyLimit ?? 2_000;
  // Ended after a quiet spell: the next batch starts a new run.
  const quietFor = input.quietFor ?? '10 minutes';
  setHandler(intakeSignal, (wave) => {
    // One at a time: a signal of hundreds of thousands of entries would overflow a spread's arguments.
    if (Array.isArray(wave?.alerts)) for (const alert of wave.alerts) queue.push(alert);
  });
  for (;;) {
    if (!(await condition(() => queue.length > 0, quietFor))) return;
    await forwardAlerts({ alerts: takeForward(queue) });
    const info = workflowInfo();
    // What is queued travels in the next run's input: only while it is small (forwarding drains it).
    const long = info.continueAsNewSuggested || info.historyLength >= historyLimit || info.historySize >= historyBytesLimit;
    if (long && charsOf(queue) <= maxForwardChars) {
      await continueAsNew<typeof intake>({ ...input, queued: queue });
    }
  }
}

/** The oldest alerts, up to one call's worth (at least one, however large). */
function takeForward(queue: IntakeAlert[]): IntakeAlert[] {
  let n = 0;
  let chars = 0;
  while (n < queue.length && n < maxForwardAlerts) {
    chars += JSON.stringify(queue[n]).length;
    if (n > 0 && chars > maxForwardChars) break;
    n++;
  }
  return queue.splice(0, n);
}

function charsOf(alerts: IntakeAlert[]): number {
  let chars = 0;
  for (const a of alerts) chars += JSON.stringify(a).length;
  return chars;
}
