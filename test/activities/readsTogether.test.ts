// The first reads asked as one local activity: each read answered (or failed) on its own, named, in
// the order asked; a read taken at the door answers here as it answers its own activity; malformed
// batches are refused for good, naming what is wrong.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import type { RestartClaim, RestartClaimed, Suppression, TogetherRead, Verification } from '../../activities/contract.js';
import { createDoorReads, fromTheDoor } from '../../activities/readAhead.js';
import { readsTogetherOver, type TogetherReadActivities } from '../../activities/readsTogether.js';

const claim = { requestId: 'incident:x:web/run-1/restart/web#1', target: 'web' } as unknown as RestartClaim;
const granted = { acquired: true, leaseId: claim.requestId } as unknown as RestartClaimed;
const healthy: Verification = { healthy: true, checks: [{ check: 'http', ok: true, detail: '200' }] } as Verification;

/** The reads, recording each call with exactly the arguments it was given. */
function recording(overrides: Partial<TogetherReadActivities> = {}) {
  const calls: Array<[string, unknown[]]> = [];
  const reads: TogetherReadActivities = {
    checkSuppression: async (...args) => (calls.push(['checkSuppression', args]), { suppressed: false } as Suppression),
    verifyTarget: async (...args) => (calls.push(['verifyTarget', args]), healthy),
    claimRestart: async (...args) => (calls.push(['claimRestart', args]), granted),
    ...overrides,
  };
  return { calls, reads };
}

const inRun = <T>(fn: () => Promise<T>): Promise<T> =>
  new MockActivityEnvironment({ attempt: 1, workflowExecution: { workflowId: 'incident:x:web', runId: 'run-1' } }).run(fn) as Promise<T>;

const first: TogetherRead[] = [
  { kind: 'claimRestart', args: [claim] },
  { kind: 'verifyTarget', args: ['web'] },
  { kind: 'checkSuppression', args: ['web'] },
];

describe('reads asked together', () => {
  it('answers each read in the order asked, named, with exactly the arguments each was asked with', async () => {
    const { calls, reads } = recording();
    const answers = await readsTogetherOver(reads).readsTogether(first);
    expect(answers).toEqual([
      { kind: 'claimRestart', value: granted },
      { kind: 'verifyTarget', value: healthy },
      { kind: 'checkSuppression', value: { suppressed: false } },
    ]);
    // One argument stays one: the door matches a read by its exact arguments.
    expect(calls).toEqual([
      ['claimRestart', [claim]],
      ['verifyTarget', ['web']],
      ['checkSuppression', ['web']],
    ]);
    await readsTogetherOver(reads).readsTogether([{ kind: 'checkSuppression', args: ['web', { alertname: 'ServiceDown' }] }]);
    expect(calls.at(-1)).toEqual(['checkSuppression', ['web', { alertname: 'ServiceDown' }]]);
  });

  it("keeps each read's failure its own: the others are answered, the failure's reason capped", async () => {
    const { reads } = recording({
      verifyTarget: async () => {
        throw ApplicationFailure.nonRetryable(`no target 'web' ${'x'.repeat(5_000)}`, 'BadInput');
      },
    });
    const answers = await readsTogetherOver(reads).readsTogether(first);
    expect(answers[0]).toEqual({ kind: 'claimRestart', value: granted });
    expect(answers[2]).toEqual({ kind: 'checkSuppression', value: { suppressed: false } });
    const failed = answers[1] as { kind: string; failed: string };
    expect(failed.kind).toBe('verifyTarget');
    expect(failed.failed).toMatch(/^no target 'web' x+$/);
    expect(failed.failed).toHaveLength(1_024);
  });

  it("answers with the read taken at the door for the run, as the read's own activity would", async () => {
    const doors = createDoorReads();
    let asked = 0;
    const ticket = doors.open()!;
    ticket.read('checkSuppression', ['web'], async () => ({ suppressed: true, reason: 'silence s-1 (read at the door)' }));
    ticket.bind('run-1');
    const { calls, reads } = recording();
    const together = readsTogetherOver({
      ...reads,
      checkSuppression: fromTheDoor(doors, 'checkSuppression', async (...args: [string, Record<string, string>?]) => {
        asked += 1;
        return reads.checkSuppression(...(args as [string]));
      }),
    });
    const answers = await inRun(() => together.readsTogether(first));
    expect(answers[2]).toEqual({ kind: 'checkSuppression', value: { suppressed: true, reason: 'silence s-1 (read at the door)' } });
    expect(asked).toBe(0);
    expect(calls.map(([kind]) => kind)).toEqual(['claimRestart', 'verifyTarget']);
  });

  it('refuses for good a batch that is empty, too long or asks what it may not, naming it', async () => {
    const { calls, reads } = recording();
    const together = readsTogetherOver(reads);
    const refusal = (asked: unknown) => together.readsTogether(asked as TogetherRead[]).catch((e: unknown) => e as ApplicationFailure);
    for (const [asked, says] of [
      [[], 'expected 1 to 3 reads, got 0'],
      [[...first, first[0]], 'expected 1 to 3 reads, got 4'],
      ['claimRestart', 'expected 1 to 3 reads, got string'],
      [
        [{ kind: 'restartTarget', args: ['web'] }],
        "first read 0 refused: 'restartTarget' is not one of checkSuppression, verifyTarget, claimRestart",
      ],
      [[first[0], { kind: 'verifyTarget' }], 'first read 1 refused: not a read with its arguments'],
    ] as const) {
      const err = await refusal(asked);
      expect(err, JSON.stringify(asked)).toBeInstanceOf(ApplicationFailure);
      expect((err as ApplicationFailure).nonRetryable).toBe(true);
      expect((err as ApplicationFailure).message).toContain(says);
    }
    // Nothing was asked of a batch refused: not even its valid reads.
    expect(calls).toEqual([]);
  });
});
