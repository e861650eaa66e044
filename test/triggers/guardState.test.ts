// The operator commands' reads of the guard: listings within a second share one query (a console
// polling every 5 s per tab must not queue ahead of an alert storm's restart claims), a close or
// release reads afresh, a failed read is not shared, and no guard yet is nothing held.
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { GuardSnapshot } from '../../activities/guardMessages.js';
import type { EngineConfig } from '../../config/schema.js';
import { guardStateChanged, readGuardState, sharedReadMs } from '../../triggers/operators/guardState.js';
import type { Temporal } from '../../triggers/operators/operatorTemporal.js';

const config = { temporal: { taskQueue: 'remediation' } } as EngineConfig;

/** A Temporal whose guard answers `answer()` to every query, counting them and the workflow ids asked. */
function fakeTemporal(answer: () => Promise<GuardSnapshot>) {
  const asked: string[] = [];
  const t = {
    client: {
      workflow: {
        getHandle: (id: string) => ({
          query: () => {
            asked.push(id);
            return answer();
          },
        }),
      },
    },
    call: <T>(fn: () => Promise<T>) => fn(),
  } as unknown as Temporal;
  return { t, asked };
}

const snapshot = (holder: string): GuardSnapshot => ({
  restarts: {},
  retainMs: 0,
  runId: 'r',
  now: Date.now(),
  windows: [],
  leases: [{ id: `${holder}/r/restart/1`, holder, target: 'api', action: 'restart', acquiredAt: 0, expiresAt: Date.now() + 60_000 }],
});

describe('reading the guard for operator commands', () => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => void vi.useRealTimers());

  it('answers listings within a second with one query, asks again after it, afresh when told and after a change', async () => {
    let n = 0;
    const { t, asked } = fakeTemporal(async () => snapshot(`incident:a:${++n}`));
    expect((await readGuardState(t, config)).leases[0]!.holder).toBe('incident:a:1');
    vi.advanceTimersByTime(sharedReadMs - 10);
    expect((await readGuardState(t, config)).leases[0]!.holder).toBe('incident:a:1');
    expect(asked).toEqual(['remediation-guardrails:remediation']);
    expect((await readGuardState(t, config, { fresh: true })).leases[0]!.holder).toBe('incident:a:2');
    vi.advanceTimersByTime(sharedReadMs + 1);
    expect((await readGuardState(t, config)).leases[0]!.holder).toBe('incident:a:3');
    expect(asked).toHaveLength(3);
    // A close or release changed the guard: the next listing does not show the state before it.
    guardStateChanged(t, config);
    expect((await readGuardState(t, config)).leases[0]!.holder).toBe('incident:a:4');
  });

  it('does not share a failed read, and reads no guard yet as nothing held', async () => {
    let fail = true;
    const { t, asked } = fakeTemporal(async () => {
      if (fail) throw new Error('deadline exceeded');
      return snapshot('incident:b:1');
    });
    await expect(readGuardState(t, config)).rejects.toThrow('deadline exceeded');
    fail = false;
    expect((await readGuardState(t, config)).leases).toHaveLength(1);
    expect(asked).toHaveLength(2);

    const none = fakeTemporal(async () => {
      throw new WorkflowNotFoundError('not found', 'remediation-guardrails:remediation', undefined);
    });
    expect(await readGuardState(none.t, config)).toEqual({ leases: [], windows: [], now: expect.any(Number) });
  });
});
