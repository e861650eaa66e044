// The reads the webhook takes beside a run's start: each is its run's own, once, fresh, with the
// arguments the run asks with; anything else reads for itself.
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDoorReads, doorBacklogPauseMs, fromTheDoor, type DoorReadKind, type DoorReadOutcome } from '../../activities/readAhead.js';

function doors(opts: { maxRuns?: number; maxPerSecond?: number } = {}) {
  let t = 1_000;
  const noted: Array<[DoorReadKind, DoorReadOutcome]> = [];
  const d = createDoorReads({ now: () => t, freshMs: 2_000, ...opts, onOutcome: (k, o) => noted.push([k, o]) });
  return { d, noted, advance: (ms: number) => (t += ms) };
}

/** Runs `fn` as attempt `attempt` of an activity of run `runId`. */
function inActivity<T>(runId: string, fn: () => Promise<T>, attempt = 1): Promise<T> {
  return new MockActivityEnvironment({ attempt, workflowExecution: { workflowId: 'incident:x:web', runId } }).run(fn);
}

describe('door reads', () => {
  it('hands a run its read once, for the same arguments however their keys are ordered', async () => {
    const { d } = doors();
    const ticket = d.open()!;
    ticket.read('checkSuppression', ['web', { alertname: 'Down', service: 'web' }], async () => ({ suppressed: false }));
    ticket.bind('run-1');
    expect(d.take('run-1', 'checkSuppression', ['web', { service: 'web', alertname: 'Down' }])).toBeDefined();
    expect(d.take('run-1', 'checkSuppression', ['web', { service: 'web', alertname: 'Down' }])).toBeUndefined();
  });

  it('gives nothing to another run, another read, other arguments, or before the start said which run', () => {
    const { d } = doors();
    const ticket = d.open()!;
    ticket.read('verifyTarget', ['web'], async () => ({ healthy: false }));
    expect(d.take('run-1', 'verifyTarget', ['web'])).toBeUndefined();
    ticket.bind('run-1');
    expect(d.take('run-2', 'verifyTarget', ['web'])).toBeUndefined();
    expect(d.take('run-1', 'checkSuppression', ['web'])).toBeUndefined();
    expect(d.take('run-1', 'verifyTarget', ['api'])).toBeUndefined();
    expect(d.take('run-1', 'verifyTarget', ['web'])).toBeDefined();
  });

  it('drops a stale read and a dropped start, counting them unused', () => {
    const { d, noted, advance } = doors();
    const dropped = d.open()!;
    dropped.read('checkSuppression', ['web'], async () => ({ suppressed: false }));
    dropped.drop();
    dropped.bind('run-2');
    expect(d.take('run-2', 'checkSuppression', ['web'])).toBeUndefined();
    const stale = d.open()!;
    stale.read('verifyTarget', ['web'], async () => ({ healthy: false }));
    stale.bind('run-1');
    advance(2_001);
    expect(d.take('run-1', 'verifyTarget', ['web'])).toBeUndefined();
    expect(noted).toEqual([
      ['checkSuppression', 'unused'],
      ['verifyTarget', 'unused'],
    ]);
    expect(d.size).toBe(0);
  });

  it('gives no door reads in a storm: while the last second saw more than maxPerSecond starts, refused ones counted', () => {
    const { d, advance } = doors({ maxPerSecond: 3 });
    for (let i = 0; i < 3; i++) d.open()!.drop();
    expect(d.open()).toBeUndefined();
    // A storm that goes on (5 starts a second) never gets them: each refused start counts too.
    for (let i = 0; i < 50; i++) {
      advance(200);
      expect(d.open()).toBeUndefined();
    }
    // Once the last second saw 3 starts or fewer, the next one reads at the door again.
    advance(1_000);
    expect(d.open()).toBeDefined();
    advance(400);
    expect(d.open()).toBeDefined();
    advance(400);
    expect(d.open()).toBeDefined();
  });

  it('pauses door reads for doorBacklogPauseMs once one went stale unread (the worker is behind), and only then', () => {
    const { d, advance } = doors();
    // A start that failed (dropped) is not a backlog.
    d.open()!.drop();
    expect(d.open()).toBeDefined();
    advance(2_001);
    const late = d.open()!;
    late.read('verifyTarget', ['web'], async () => ({ healthy: false }));
    late.bind('run-1');
    advance(2_001);
    expect(d.take('run-1', 'verifyTarget', ['web'])).toBeUndefined();
    expect(d.open()).toBeUndefined();
    advance(doorBacklogPauseMs - 2);
    expect(d.open()).toBeUndefined();
    advance(2);
    expect(d.open()).toBeDefined();
  });

  it('is not paused by a stale read noticed long after it went stale', () => {
    const { d, advance } = doors();
    const ticket = d.open()!;
    ticket.read('verifyTarget', ['web'], async () => ({ healthy: false }));
    ticket.bind('run-1');
    advance(60_000);
    expect(d.open()).toBeDefined();
  });

  it('holds at most maxRuns starts, and opens again once the old ones went stale', () => {
    const { d, advance } = doors({ maxRuns: 2 });
    expect(d.open()).toBeDefined();
    expect(d.open()).toBeDefined();
    expect(d.open()).toBeUndefined();
    advance(2_001);
    expect(d.open()).toBeDefined();
    expect(d.size).toBe(1);
  });

  it('reads nothing more for a start that took longer than the reads stay fresh', () => {
    const { d, advance } = doors();
    const ticket = d.open()!;
    advance(2_001);
    let asked = false;
    ticket.bind('run-1');
    ticket.read('claimRestart', [{ requestId: 'r' }], async () => (asked = true));
    expect(asked).toBe(false);
    expect(d.take('run-1', 'claimRestart', [{ requestId: 'r' }])).toBeUndefined();
  });

  it('opens no door while as many reads are out as its held runs could ask, dropped runs included', async () => {
    const { d } = doors({ maxRuns: 2 });
    const answers: Array<() => void> = [];
    for (let i = 0; i < 2; i++) {
      const ticket = d.open()!;
      for (let j = 0; j < 3; j++) ticket.read('verifyTarget', [`t${i}${j}`], () => new Promise<void>((r) => answers.push(r)));
      ticket.drop();
    }
    expect(d.size).toBe(0);
    expect(d.open()).toBeUndefined();
    answers.pop()!();
    await new Promise((r) => setTimeout(r, 0));
    expect(d.open()).toBeDefined();
  });

  it('turns a read that throws at once into a failed answer, never an unhandled rejection', async () => {
    const { d } = doors();
    const ticket = d.open()!;
    ticket.read('verifyTarget', ['web'], () => {
      throw new Error('docker socket gone');
    });
    ticket.bind('run-1');
    await expect(d.take('run-1', 'verifyTarget', ['web'])).rejects.toThrow('docker socket gone');
  });

  describe('an activity answered from the door', () => {
    /** A check of 'web' whose door read for run-1 is `door`; `calls` lists the checks it asked itself. */
    function verifyWithDoor(door: () => Promise<unknown>) {
      const { d, noted } = doors();
      const calls: string[] = [];
      const ticket = d.open()!;
      ticket.read('verifyTarget', ['web'], door);
      ticket.bind('run-1');
      const verify = fromTheDoor(d, 'verifyTarget', async (target: string) => {
        calls.push(target);
        return { target, healthy: true, from: 'own' };
      });
      return { verify, calls, noted };
    }
    const fromDoor = async () => ({ target: 'web', healthy: false, from: 'door' });

    it("answers its run's first attempt with the door's read, without asking itself", async () => {
      const { verify, calls, noted } = verifyWithDoor(fromDoor);
      await expect(inActivity('run-1', () => verify('web'))).resolves.toMatchObject({ from: 'door' });
      // Once: the run's next check is its own.
      await expect(inActivity('run-1', () => verify('web'))).resolves.toMatchObject({ from: 'own' });
      expect(calls).toEqual(['web']);
      expect(noted).toEqual([['verifyTarget', 'taken']]);
    });

    it('asks itself on a retry, for another run, and outside an activity', async () => {
      const { verify, calls } = verifyWithDoor(fromDoor);
      await expect(inActivity('run-1', () => verify('web'), 2)).resolves.toMatchObject({ from: 'own' });
      await expect(inActivity('run-2', () => verify('web'))).resolves.toMatchObject({ from: 'own' });
      await expect(verify('web')).resolves.toMatchObject({ from: 'own' });
      expect(calls).toEqual(['web', 'web', 'web']);
    });

    it('asks again itself when the door read failed, as its own first try would have', async () => {
      const { verify, calls, noted } = verifyWithDoor(async () => {
        throw new Error('connection reset');
      });
      await expect(inActivity('run-1', () => verify('web'))).resolves.toMatchObject({ from: 'own' });
      expect(calls).toEqual(['web']);
      expect(noted).toEqual([['verifyTarget', 'failed']]);
    });

    it('answers with a refusal for good as it stands, without asking again', async () => {
      const { verify, calls, noted } = verifyWithDoor(async () => {
        throw ApplicationFailure.create({ message: "target 'web' not found", nonRetryable: true });
      });
      await expect(inActivity('run-1', () => verify('web'))).rejects.toThrow("target 'web' not found");
      expect(calls).toEqual([]);
      expect(noted).toEqual([['verifyTarget', 'failed']]);
    });

    it('stops waiting for the door read when the activity is cancelled, and asks nothing', async () => {
      const { verify, calls } = verifyWithDoor(() => new Promise(() => undefined));
      const env = new MockActivityEnvironment({ attempt: 1, workflowExecution: { workflowId: 'incident:x:web', runId: 'run-1' } });
      const outcome = env
        .run(() => verify('web'))
        .then(
          () => 'finished',
          (err: unknown) => err,
        );
      await new Promise((r) => setTimeout(r, 20));
      env.cancel();
      expect(await outcome).not.toBe('finished');
      expect(calls).toEqual([]);
    });
  });
});
