// An activity run the way a worker runs it (its context, heartbeats and cancellation), for tests of
// activities that heartbeat while they wait and must stop on the server when cancelled.
import { MockActivityEnvironment } from '@temporalio/testing';

/**
 * Starts `fn` as an activity. `beats` gets a copy of each heartbeat (an activity may keep adding to
 * the one object it heartbeats); `outcome` settles with 'finished' or the error it ended with.
 */
export function cancellableActivity(fn: () => Promise<unknown>) {
  const env = new MockActivityEnvironment();
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(structuredClone(d)));
  const outcome = env.run(fn).then(
    () => 'finished',
    (err: unknown) => err,
  );
  return { beats, outcome, cancel: () => env.cancel() };
}
