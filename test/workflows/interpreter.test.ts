// The runbook interpreter on the real dev server: small definitions written inline exercise each
// piece of the language, and the shipped runbook files run through their representative paths.
// Targets, channels and Alertmanager are the harness's scripted stand-ins.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import { loadRunbookDir, parseRunbook } from '../../config/runbookLoad.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import type { TargetKind } from '../../config/schema.js';
import {
  acknowledgeSignal,
  alertResolvedSignal,
  approveSignal,
  incidentWorkflowId,
  interpreterWorkflowType,
  maintenanceWorkflowId,
  rejectSignal,
  statusQuery,
  type RunbookInput,
  type RunbookResult,
  type RunbookRunInput,
} from '../../workflows/messages.js';
import { until } from '../support/wait.js';
import { cancelIncident } from '../../triggers/operators/operatorCommands.js';
import { temporalOf } from '../../triggers/operators/operatorTemporal.js';
import { guardStateQuery } from '../../workflows/guardrails.js';
import { firstReads } from '../../workflows/steps/checksAhead.js';
import {
  cancelWhileFirstReadsOut,
  events,
  gate,
  guardHolds,
  inMaintenanceWindow,
  localReads,
  authRefused,
  permanentFailure,
  runbookInput,
  startHarness,
  uniqueTarget,
  waitForStatus,
  type Harness,
} from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-interpreter');
});
afterAll(async () => {
  await h?.close();
});

type Interpreter = (input: RunbookRunInput) => Promise<RunbookResult>;
type Run = WorkflowHandle<Interpreter>;

const shipped = loadRunbookDir('runbooks');

/** A definition from the step lines given, as a runbook file would hold them. */
function definition(name: string, steps: string, extra = ''): RunbookDefinition {
  return parseRunbook(
    `name: ${name}\ndescription: a runbook under test\nappliesTo: [container, postgres, http]\nsteps:\n${steps}${extra}`,
    'test.yaml',
  );
}

function runInput(
  target: string,
  def: RunbookDefinition,
  overrides: Partial<RunbookInput> = {},
  kind: TargetKind = 'container',
): RunbookRunInput {
  return {
    ...runbookInput(h, target, { runbook: def.name, targetKind: kind, ...overrides }),
    definition: def,
    targets: [{ name: target, kind, queue: h.queue, labels: { service: target } }],
    startedBy: 'alertmanager',
  };
}

function start(input: RunbookRunInput, workflowId = incidentWorkflowId(input.definition.name, input.target)): Promise<Run> {
  return h.client.workflow.start<Interpreter>(interpreterWorkflowType, { taskQueue: h.queue, workflowId, args: [input] });
}

async function run(def: RunbookDefinition, target: string, overrides: Partial<RunbookInput> = {}, kind: TargetKind = 'container') {
  const handle = await start(runInput(target, def, overrides, kind));
  return { handle, result: await handle.result() };
}

/** Every notification this run sent, in order. */
function sent(handle: Run) {
  return h.notifications.filter((n) => n.incidentKey === handle.workflowId);
}

function titled(handle: Run, key: string): string | undefined {
  return sent(handle).find((n) => n.idempotencyKey.endsWith(`:${key}`) && n.event === 'trigger')?.title;
}

/** The activities that touched the target, in order, checks included. */
function activities(target: string): string[] {
  return h.callsFor(target).map((c) => c.activity);
}

const pending = (s: { pendingApproval?: unknown }) => s.pendingApproval !== undefined;

/** Levels far enough apart that an acknowledgement after the first lands well before the second. */
const slowLevels = {
  policy: 'slow',
  levels: [
    { name: 'primary', afterMs: 0, channels: ['ops'] },
    { name: 'secondary', afterMs: 20_000, channels: ['lead'] },
  ],
};
const oneLevel = { policy: 'one', levels: [{ name: 'primary', afterMs: 0, channels: ['ops'] }] };

describe('the interpreter', () => {
  it('runs steps in order and ends completed when the list runs out, resolving what it paged', async () => {
    const def = definition(
      'sequence',
      `  - id: verify
    uses: verify
  - id: diagnose
    uses: diagnose
  - id: act
    uses: runAction
  - id: tell
    uses: notify
    with: { key: told, title: "done with \${{ target.name }}" }
`,
    );
    const target = uniqueTarget('seq');
    const { handle, result } = await run(def, target);
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.detail).toBe('every step ran');
    expect(activities(target)).toEqual(['verifyTarget', 'diagnoseTarget', 'runTargetAction']);
    expect(sent(handle).map((n) => `${n.event} ${n.title}`)).toEqual([
      `trigger done with ${target}`,
      `resolve sequence on '${target}' resolved`,
    ]);
    expect(result.timeline.find((e) => e.event === 'definition')?.detail).toBe(
      `test.yaml (sha256 ${def.sha256.slice(0, 12)}), started by alertmanager`,
    );
    expect(h.outcomes.filter((o) => o.workflowId === handle.workflowId)).toEqual([
      { workflowId: handle.workflowId, runbook: 'sequence', outcome: 'completed', durationMs: expect.any(Number) },
    ]);
  });

  it('runs the steps of a parallel group at once, and a child that may fail does not fail the group', async () => {
    const def = definition(
      'parallel',
      `  - id: gather
    parallel:
      - id: diagnose
        uses: diagnose
      - id: logs
        uses: logs
        with: { tail: 10, pattern: ERROR }
      - id: act
        uses: runAction
        onFailure: continue
  - id: tell
    uses: notify
    with: { key: told, title: "failed: \${{ steps.gather.failed.join(',') }}; \${{ steps.logs.matched }} error line(s)" }
`,
    );
    const target = uniqueTarget('par');
    const slowDiagnosis = gate();
    h.script(target, {
      diagnose: async () => {
        await slowDiagnosis.wait;
        return { target, sections: [{ title: 'logs', ok: true, text: 'fine' }], summary: 'fine' };
      },
      action: () => {
        throw permanentFailure(`action of '${target}' refused`);
      },
    });
    const handle = await start(runInput(target, def));
    // Logs and the action ran while the diagnosis was still running.
    await until(
      'the siblings of the slow diagnosis to run',
      15_000,
      async () => (h.callsFor(target, 'targetLogs').length && h.callsFor(target, 'runTargetAction').length ? true : undefined),
      50,
    );
    expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
    slowDiagnosis.open();
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('completed');
    expect(titled(handle, 'told')).toBe('failed: act; 1 error line(s)');
    // Each sibling's entries are filed under its own step, not under whichever entered last (act).
    const stepOf = (event: string) => result.timeline.filter((e) => e.event === event).map((e) => e.step);
    expect(stepOf('diagnosed')).toEqual(['diagnose']);
    expect(stepOf('step failed')).toEqual(['act']);
    expect(result.timeline.filter((e) => e.step === 'act').map((e) => e.event)).toEqual(['step failed']);
  });

  it('restarts two targets side by side as two claims of their own: each restart counted, so anti-flap refuses both next time', async () => {
    const [a, b] = [uniqueTarget('par-a'), uniqueTarget('par-b')];
    const def = definition(
      'parallel-restarts',
      `  - id: both
    parallel:
      - id: restart-a
        uses: restart
        with: { target: ${a} }
      - id: restart-b
        uses: restart
        with: { target: ${b} }
`,
    );
    for (const t of [a, b]) h.script(t, { healthy: (s) => s.restarts > 0 });
    const input = (max: number) => ({
      ...runInput(a, def, { guardrails: { restartAttempts: 1, restartsPerWindow: { max, windowMs: 3_600_000 } } as never }),
      targets: [a, b].map((name) => ({ name, kind: 'container' as const, queue: h.queue, labels: { service: name } })),
    });
    const claimsOf = (handle: Run) => h.claims.filter((c) => c.holder === handle.workflowId && (c.target === a || c.target === b));

    // Both claims go out in the same workflow task, so each is asked while the other is held.
    const first = await start(input(1));
    const done = await first.result();
    expect(done.outcome, done.detail).toBe('completed');
    expect([a, b].map((t) => h.callsFor(t, 'restartTarget').length)).toEqual([1, 1]);
    const firstClaims = claimsOf(first);
    expect(firstClaims.map((c) => c.target).sort()).toEqual([a, b].sort());
    expect(new Set(firstClaims.map((c) => c.requestId)).size).toBe(2);
    // Only a run's first reads go together: these claims go on their own, neither waiting for the other's answer.
    expect((await localReads(first)).filter((r) => r.startsWith('readsTogether'))).toEqual([]);
    for (const t of [a, b]) expect((await guardHolds(h, t)).restarts, `restarts of ${t} counted`).toHaveLength(1);

    // With at most one restart an hour, the next run may restart neither.
    const second = await start(input(1));
    const refused = await second.result();
    expect(refused.outcome, refused.detail).toBe('completed');
    expect([a, b].map((t) => h.callsFor(t, 'restartTarget').length)).toEqual([1, 1]);
    const refusals = refused.timeline.filter((e) => e.event === 'restart refused').map((e) => e.detail ?? '');
    expect(refusals).toHaveLength(2);
    for (const t of [a, b])
      expect(
        refusals.some((d) => d.startsWith(`anti-flap: 1 restarts of '${t}' in the last 1h`)),
        t,
      ).toBe(true);
  });

  it('fails a parallel group whose child fails, after its siblings finished', async () => {
    const def = definition(
      'parallel-fails',
      `  - id: gather
    parallel:
      - id: diagnose
        uses: diagnose
      - id: act
        uses: runAction
  - id: after
    uses: verify
`,
    );
    const target = uniqueTarget('parf');
    h.script(target, {
      action: () => {
        throw permanentFailure('no such action');
      },
    });
    const { result } = await run(def, target);
    expect(result.outcome).toBe('failed');
    expect(result.detail).toBe('step gather failed: step act failed: runTargetAction failed: no such action');
    expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
    expect(h.callsFor(target, 'verifyTarget')).toHaveLength(0);
  });

  it('skips a step whose `when` is false and runs one whose `when` is true', async () => {
    const def = definition(
      'when',
      `  - id: verify
    uses: verify
  - id: restart-if-healthy
    when: steps.verify.healthy
    uses: restart
  - id: act-if-down
    when: "!steps.verify.healthy"
    uses: runAction
  - id: tell
    uses: notify
    with: { key: told, title: "\${{ steps.restart_if_healthy.status }} / \${{ steps.act_if_down.status }}" }
`,
    );
    const target = uniqueTarget('when');
    h.script(target, { healthy: () => false });
    const { handle, result } = await run(def, target);
    expect(result.outcome, result.detail).toBe('completed');
    expect(titled(handle, 'told')).toBe('skipped / ok');
    expect(activities(target)).toEqual(['verifyTarget', 'runTargetAction']);
  });

  describe('onFailure', () => {
    const failing = (target: string) =>
      h.script(target, {
        action: () => {
          throw permanentFailure(`cache of '${target}' is read-only`);
        },
      });

    it("'fail' (the default) ends the run failed and pages the first escalation level", async () => {
      const def = definition('on-failure-fail', `  - id: act\n    uses: runAction\n  - id: after\n    uses: verify\n`);
      const target = uniqueTarget('fail');
      failing(target);
      const { handle, result } = await run(def, target);
      expect(result.outcome).toBe('failed');
      expect(result.detail).toBe(`step act failed: runTargetAction failed: cache of '${target}' is read-only`);
      expect(h.callsFor(target, 'verifyTarget')).toHaveLength(0);
      const page = sent(handle).find((n) => n.idempotencyKey.endsWith(':failed'));
      expect(page).toMatchObject({
        event: 'trigger',
        channels: ['ops'],
        severity: 'critical',
        title: `[critical] ServiceDown on '${target}': the runbook failed`,
      });
      expect(page!.text).toContain(result.detail);
      expect(events(result.timeline)).toContain('step failed');
    });

    it("'continue' records the failure as steps.<id>.status and .error and goes on", async () => {
      const def = definition(
        'on-failure-continue',
        `  - id: act
    uses: runAction
    onFailure: continue
  - id: tell
    uses: notify
    with: { key: told, title: "act \${{ steps.act.status }}: \${{ steps.act.error }}" }
`,
      );
      const target = uniqueTarget('cont');
      failing(target);
      const { handle, result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('completed');
      expect(titled(handle, 'told')).toBe(`act failed: runTargetAction failed: cache of '${target}' is read-only`);
    });

    it('`goto` jumps forward past the steps in between', async () => {
      const def = definition(
        'on-failure-goto',
        `  - id: act
    uses: runAction
    onFailure: { goto: page-now }
  - id: verify
    uses: verify
  - id: restart
    uses: restart
  - id: page-now
    uses: notify
    with: { key: jumped, title: "jumped after \${{ steps.act.error }}" }
  - id: done
    uses: end
    with: { outcome: escalated, detail: "paged after the action failed" }
`,
      );
      const target = uniqueTarget('goto');
      failing(target);
      const { handle, result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('escalated');
      expect(result.detail).toBe('paged after the action failed');
      expect(activities(target)).toEqual(['runTargetAction']);
      expect(titled(handle, 'jumped')).toBe(`jumped after runTargetAction failed: cache of '${target}' is read-only`);
      expect(result.timeline.find((e) => e.event === 'jumping')?.detail).toBe('to page-now after act failed');
    });
  });

  describe('finally', () => {
    const cleanup = `finally:
  - id: cleanup
    uses: notify
    with: { key: cleanup, title: "cleanup after \${{ incident.outcome }}: \${{ incident.outcomeDetail }}" }
`;

    it('runs after a failed step, before the failure page', async () => {
      const def = definition(
        'finally-failed',
        `  - id: verify
    uses: verify
  - id: up
    uses: assert
    with: { that: steps.verify.healthy, message: "'\${{ target.name }}' is down: \${{ steps.verify.detail }}" }
`,
        cleanup,
      );
      const target = uniqueTarget('fin');
      h.script(target, { healthy: () => false });
      const { handle, result } = await run(def, target);
      expect(result.outcome).toBe('failed');
      expect(result.detail).toBe(`step up failed: '${target}' is down: http failed: connection refused`);
      expect(sent(handle).map((n) => n.idempotencyKey.split(':').pop())).toEqual(['cleanup', 'failed']);
      expect(titled(handle, 'cleanup')).toBe(`cleanup after failed: ${result.detail}`);
    });

    it('runs every finally step even when one of them fails, and a failure there turns the ending into failed', async () => {
      const def = definition(
        'finally-all',
        `  - id: verify
    uses: verify
`,
        `finally:
  - id: broken
    uses: assert
    with: { that: "false", message: cleanup broke }
  - id: last
    uses: notify
    with: { key: last, title: "still ran after \${{ steps.broken.status }}" }
`,
      );
      const target = uniqueTarget('fin-all');
      h.script(target, { healthy: () => true });
      const { handle, result } = await run(def, target);
      expect(titled(handle, 'last')).toBe('still ran after failed');
      expect(result.outcome).toBe('failed');
      expect(result.detail).toBe('every step ran; then a finally step failed: step broken failed: cleanup broke');
    });

    it('expires nothing in a dry run: the silence a dry run "created" is not asked of Alertmanager', async () => {
      const def = definition(
        'dry-silence',
        `  - id: mute
    uses: silence
    with: { duration: 10m }
`,
        `finally:
  - id: unmute
    uses: expireSilence
    with: { silenceId: "\${{ steps.mute.silenceId }}" }
`,
      );
      const target = uniqueTarget('dry-sil');
      const { result } = await run(def, target, { dryRun: true });
      expect(result.outcome, result.detail).toBe('completed');
      expect(result.timeline.find((e) => e.step === 'unmute')?.detail).toBe('nothing to expire: the dry run created no silence');
      expect(h.calls.filter((c) => c.activity === 'expireSilence' && c.arg === 'dry-run')).toHaveLength(0);
    });

    it('runs when the run is cancelled, and the run ends cancelled', async () => {
      const def = definition(
        'finally-cancelled',
        `  - id: verify
    uses: verify
  - id: wait
    uses: sleep
    with: { duration: 10m }
  - id: never
    uses: runAction
`,
        cleanup,
      );
      const target = uniqueTarget('cancel');
      const handle = await start(runInput(target, def));
      await waitForStatus(handle, (s) => s.step === 'wait');
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect(titled(handle, 'cleanup')).toBe('cleanup after cancelled: the workflow was cancelled');
      expect(h.callsFor(target, 'runTargetAction')).toHaveLength(0);
      const status = await handle.query(statusQuery);
      expect(status.outcome).toBe('cancelled');
      expect(h.outcomes.find((o) => o.workflowId === handle.workflowId)?.outcome).toBe('cancelled');
    });
  });

  describe('waitUntil', () => {
    const waiting = (deadline: string) =>
      definition(
        'wait-until',
        `  - id: wait
    uses: waitUntil
    with: { until: check.healthy, every: 200ms, deadline: ${deadline} }
  - id: done
    when: steps.wait.met
    uses: end
    with: { outcome: recovered, detail: "healthy after \${{ steps.wait.polls }} checks: \${{ steps.wait.detail }}" }
  - id: not-yet
    uses: end
    with: { outcome: escalated, detail: "still down after \${{ steps.wait.polls }} checks" }
`,
      );

    it('repeats the check until `until` holds', async () => {
      const target = uniqueTarget('wait');
      h.script(target, { healthy: (s) => s.verifies >= 3 });
      const { result } = await run(waiting('10s'), target);
      expect(result.outcome, result.detail).toBe('recovered');
      expect(result.detail).toBe('healthy after 3 checks: http ok: 200 OK');
      expect(h.callsFor(target, 'verifyTarget')).toHaveLength(3);
    });

    it('gives up at its deadline with met false', async () => {
      const target = uniqueTarget('wait');
      h.script(target, { healthy: () => false });
      const { result } = await run(waiting('1s'), target);
      expect(result.outcome, result.detail).toBe('escalated');
      const checks = h.callsFor(target, 'verifyTarget');
      expect(result.detail).toBe(`still down after ${checks.length} checks`);
      // The last check is the first one after the deadline (timers here fire on the server's clock, ~1 s apart at worst).
      expect(checks.length).toBeGreaterThanOrEqual(2);
      expect(checks.length).toBeLessThanOrEqual(7);
      expect(checks.at(-1)!.at - checks[0]!.at).toBeGreaterThanOrEqual(900);
      expect(events(result.timeline)).toContain('deadline passed');
    });
  });

  it("passes a step's outputs to later conditions and templates", async () => {
    const def = definition(
      'outputs',
      `  - id: restart
    uses: restart
  - id: tell
    when: steps.restart.attempts >= 2
    uses: notify
    with:
      key: told
      title: "\${{ steps.restart.recovered ? 'recovered' : 'down' }} after \${{ steps.restart.attempts }}; a next one would be \${{ steps.restart.attempts + 1 }}"
      text: "\${{ steps.restart.detail }}"
`,
    );
    const target = uniqueTarget('out');
    h.script(target, { healthy: (s) => s.restarts >= 2 });
    const { handle, result } = await run(def, target);
    expect(result.outcome, result.detail).toBe('completed');
    const told = sent(handle).find((n) => n.idempotencyKey.endsWith(':told'));
    expect(told).toMatchObject({ title: 'recovered after 2; a next one would be 3', text: 'healthy after restart 2' });
  });

  describe('timeout', () => {
    it('fails a step that outlives it', async () => {
      const def = definition(
        'timeout-sleep',
        `  - id: nap
    uses: sleep
    timeout: 300ms
    onFailure: continue
    with: { duration: 1m }
  - id: tell
    uses: notify
    with: { key: told, title: "nap \${{ steps.nap.status }}: \${{ steps.nap.error }}" }
`,
      );
      const target = uniqueTarget('nap');
      const { handle, result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('completed');
      expect(titled(handle, 'told')).toBe('nap failed: timed out after 300ms');
    });

    it('fails a step whose activity hangs, even one that takes a failed call for a finding', async () => {
      const def = definition(
        'timeout-activity',
        `  - id: diagnose\n    uses: diagnose\n    timeout: 500ms\n  - id: after\n    uses: verify\n`,
      );
      const target = uniqueTarget('hang');
      const hung = gate();
      h.script(target, {
        diagnose: async () => {
          await hung.wait;
          return { target, sections: [], summary: 'late' };
        },
      });
      try {
        const started = Date.now();
        const { result } = await run(def, target);
        expect(result.outcome, result.detail).toBe('failed');
        expect(result.detail).toBe('step diagnose failed: timed out after 500ms');
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(h.callsFor(target, 'verifyTarget')).toHaveLength(0);
      } finally {
        hung.open();
      }
    });
  });

  describe('retry', () => {
    it("asks a restart step's retry with request ids of its own, so the guard can refuse the first pass's ids, once settled, as late duplicates", async () => {
      const target = uniqueTarget('again');
      const def = definition(
        'restart-retried',
        `  - id: restart
    uses: restart
    timeout: 1s
    retry: { attempts: 2, backoff: 100ms }
`,
      );
      // Never healthy: each pass restarts, then verifies until the step's timeout cuts it off.
      h.script(target, { healthy: () => false });
      const { handle, result } = await run(def, target, { guardrails: { restartAttempts: 1, verifyDeadlineMs: 30_000 } as never });
      expect(result.outcome, result.detail).toBe('failed');
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(2);
      const ids = h.claims.filter((c) => c.holder === handle.workflowId).map((c) => c.requestId);
      const first = `${handle.workflowId}/${(await handle.describe()).runId}/restart/restart/${target}/1/1`;
      expect(ids).toEqual([first, `${first}#2`]);
      expect(h.claims.filter((c) => c.holder === handle.workflowId).every((c) => c.once === true)).toBe(true);
      // Both restarts counted and both leases released; the first pass's id asked again (what a
      // stalled worker's queued claim would do) is refused and holds nothing.
      expect(await guardHolds(h, target)).toMatchObject({ leases: 0, restarts: [expect.any(Number), expect.any(Number)] });
      const late = await h.guard.claimRestart({ ...h.claims.find((c) => c.requestId === first)! });
      expect(late).toMatchObject({ allowed: false, acquired: false, recent: 2 });
      expect(late.reason).toContain(`a late duplicate: request ${first} was granted and then settled`);
      expect(await guardHolds(h, target)).toMatchObject({ leases: 0 });
      // The guard's state query counts the settled ids (asked every few seconds by the gauges) and lists none.
      const snapshot = await h.client.workflow.getHandle(h.guardId).query(guardStateQuery);
      expect(snapshot.settledKept).toBeGreaterThanOrEqual(2);
      expect(snapshot).not.toHaveProperty('settled');
    });

    const retrying = (attempts: number) =>
      definition(
        'retry',
        `  - id: act
    uses: runAction
    retry: { attempts: ${attempts}, backoff: 100ms }
  - id: tell
    uses: notify
    with: { key: told, title: "act \${{ steps.act.status }}" }
`,
      );
    const flaky = (target: string, failures: number) => {
      let calls = 0;
      h.script(target, {
        action: () => {
          calls += 1;
          if (calls <= failures) throw permanentFailure(`attempt ${calls} refused`);
        },
      });
    };

    it('runs a failing step again until it succeeds', async () => {
      const target = uniqueTarget('retry');
      flaky(target, 2);
      const { handle, result } = await run(retrying(3), target);
      expect(result.outcome, result.detail).toBe('completed');
      expect(h.callsFor(target, 'runTargetAction')).toHaveLength(3);
      expect(titled(handle, 'told')).toBe('act ok');
      expect(result.timeline.filter((e) => e.event === 'step failed, retrying').map((e) => e.detail)).toEqual([
        'act attempt 1 of 3: runTargetAction failed: attempt 1 refused',
        'act attempt 2 of 3: runTargetAction failed: attempt 2 refused',
      ]);
    });

    it('fails the step when every attempt failed', async () => {
      const target = uniqueTarget('retry');
      flaky(target, 10);
      const { result } = await run(retrying(2), target);
      expect(result.outcome).toBe('failed');
      expect(result.detail).toBe('step act failed: runTargetAction failed: attempt 2 refused');
      expect(h.callsFor(target, 'runTargetAction')).toHaveLength(2);
    });
  });

  it('waits for an approval step, counting only configured operators, and acts in the approver’s name', async () => {
    const def = definition(
      'approval',
      `  - id: approve-restart
    uses: approval
    with: { action: "restart '\${{ target.name }}'", timeout: 30s }
  - id: restart
    uses: restart
    with: { approvedBy: approve-restart }
  - id: done
    uses: end
    with: { outcome: recovered, detail: "approved by \${{ steps.approve_restart.by }} (\${{ steps.approve_restart.reason }}), recovered: \${{ steps.restart.recovered }}" }
`,
    );
    const target = uniqueTarget('appr');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start(runInput(target, def));
    const waiting = await waitForStatus(handle, pending);
    expect(waiting.pendingApproval?.step).toBe('approve-restart');
    // Pending is marked before the request is paged, so an operator answering at once is never refused.
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'paged approval:approve-restart'));
    expect(titled(handle, 'approval:approve-restart')).toBe(`Approval needed: restart '${target}'`);
    await handle.signal(approveSignal, { operator: 'mallory', reason: 'let me in' });
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'approval ignored'));
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    expect((await handle.query(statusQuery)).pendingApproval).toBeDefined();
    await handle.signal(approveSignal, { operator: 'alice', reason: 'go' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('approved by alice (go), recovered: true');
    expect(h.callsFor(target, 'restartTarget').map((c) => c.ctx?.actor)).toEqual(['alice']);
    expect(result.timeline.find((e) => e.event === 'approval ignored')).toMatchObject({
      actor: 'mallory',
      detail: "'mallory' is not an operator",
    });
  });

  it('closes an approval its step timeout cut off: no operator can decide it afterwards', async () => {
    const def = definition(
      'approval-cut',
      `  - id: approve-restart
    uses: approval
    timeout: 1s
    onFailure: continue
    with: { action: "restart '\${{ target.name }}'", timeout: 30s }
  - id: page
    uses: escalate
    with: { reason: "nobody approved in time" }
  - id: done
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.page.end }}" }
`,
    );
    const target = uniqueTarget('appr-cut');
    const handle = await start(runInput(target, def, { escalation: slowLevels }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    expect((await handle.query(statusQuery)).pendingApproval).toBeUndefined();
    await handle.signal(approveSignal, { operator: 'alice', reason: 'late' });
    const ignored = await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'approval ignored'));
    expect(ignored.timeline.find((e) => e.event === 'approval ignored')).toMatchObject({
      actor: 'alice',
      detail: 'no approval is pending',
    });
    expect(ignored.approvedBy).toBeUndefined();
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'mine' });
    expect((await handle.result()).outcome).toBe('escalated');
  });

  it('makes a silence whole though the run was cancelled meanwhile, and expires it: it would otherwise outlive the run', async () => {
    const def = definition(
      'silence-cut',
      `  - id: mute
    uses: silence
    with: { duration: 1h }
  - id: ask
    uses: approval
    with: { action: "restart it", timeout: 1h }
  - id: done
    uses: end
    with: { outcome: completed, detail: "asked" }
finally:
  - id: unmute
    uses: expireSilence
    when: has(steps.mute.silenceId)
    with: { silenceId: "\${{ steps.mute.silenceId }}" }
`,
    );
    const target = uniqueTarget('mute');
    let answer!: () => void;
    h.holds.silence = new Promise<void>((r) => (answer = r));
    try {
      const handle = await start(runInput(target, def));
      const asked = () => h.calls.findIndex((c) => c.activity === 'createSilence' && JSON.stringify(c.arg).includes(target));
      await until('the silence asked for', 10_000, async () => (asked() >= 0 ? true : undefined));
      await handle.cancel();
      await new Promise((r) => setTimeout(r, 300));
      // Alertmanager answers after the cancellation: the silence exists.
      answer();
      await expect(handle.result()).rejects.toThrow();
      const made = `silence-${h.calls.filter((c) => c.activity === 'createSilence').findIndex((c) => JSON.stringify(c.arg).includes(target)) + 1}`;
      expect(h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg)).toContain(made);
      const status = await handle.query(statusQuery);
      expect(status.timeline.find((e) => e.event === 'silenced')?.detail).toBe(`${made} for '${target}'`);
    } finally {
      h.holds.silence = undefined;
    }
  });

  it('expires at once a silence Alertmanager made after its step timed out: the step failed, and nothing may keep the target silenced', async () => {
    const def = definition(
      'silence-slow',
      `  - id: mute
    uses: silence
    timeout: 500ms
    onFailure: continue
    with: { duration: 1h }
  - id: tell
    uses: notify
    with: { key: told, title: "mute \${{ steps.mute.status }}: \${{ steps.mute.error }}; id \${{ has(steps.mute.silenceId) ? steps.mute.silenceId : 'none' }}" }
`,
    );
    const target = uniqueTarget('mute');
    const slow = gate();
    h.holds.silence = slow.wait;
    try {
      const handle = await start(runInput(target, def));
      const asked = () => h.calls.findIndex((c) => c.activity === 'createSilence' && JSON.stringify(c.arg).includes(target));
      await until('the silence asked for', 10_000, async () => (asked() >= 0 ? true : undefined));
      // Alertmanager answers well after the step's 500 ms.
      await new Promise((r) => setTimeout(r, 1_500));
      slow.open();
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('completed');
      const made = `silence-${h.calls.filter((c) => c.activity === 'createSilence').findIndex((c) => JSON.stringify(c.arg).includes(target)) + 1}`;
      expect(h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg)).toContain(made);
      expect(titled(handle, 'told')).toBe('mute failed: timed out after 500ms; id none');
      const timeline = (await handle.query(statusQuery)).timeline.map((e) => [e.event, e.detail]);
      expect(timeline).toContainEqual(['silence expired', `${made}: Alertmanager made it after the step was cut off`]);
      expect(timeline).toContainEqual(['step failed', 'mute: timed out after 500ms']);
    } finally {
      h.holds.silence = undefined;
      slow.open();
    }
  });

  it('pages each incident on a target under a PagerDuty key of its own: the next one under the same workflow id does not fold into the last', async () => {
    const def = definition(
      'pages-by-run',
      `  - id: tell
    uses: notify
    with: { key: told, title: "down" }
`,
    );
    const target = uniqueTarget('pd');
    const first = await run(def, target);
    const second = await run(def, target);
    expect(second.handle.workflowId).toBe(first.handle.workflowId);
    const runsOf = (chain: string) =>
      h.notifications.filter((n) => n.incidentKey === first.handle.workflowId && n.incidentRun === chain).map((n) => n.event);
    const chains = [first, second].map(({ handle }) => (handle as typeof handle & { firstExecutionRunId: string }).firstExecutionRunId);
    expect(chains[0]).not.toBe(chains[1]);
    // Each incident's trigger and its resolve under its own key.
    expect(runsOf(chains[0]!)).toEqual(['trigger', 'resolve']);
    expect(runsOf(chains[1]!)).toEqual(['trigger', 'resolve']);
  });

  it('names who cancelled it and why, as the operator doors say before they cancel', async () => {
    const def = definition(
      'cancel-by',
      `  - id: ask
    uses: approval
    with: { action: "restart it", timeout: 1h }
`,
    );
    const target = uniqueTarget('cancel');
    const handle = await start(runInput(target, def));
    await waitForStatus(handle, pending);
    await cancelIncident(temporalOf(h.client, h.client.connection as never, 'harness'), handle.workflowId, {
      operator: 'bob',
      reason: 'wrong target',
      via: 'api',
    });
    await expect(handle.result()).rejects.toThrow();
    const status = await handle.query(statusQuery);
    expect(status.timeline.find((e) => e.event === 'cancel requested')).toMatchObject({ actor: 'bob', detail: 'wrong target (via api)' });
    expect(status.outcome).toBe('cancelled');
    expect(status.timeline.at(-1)).toMatchObject({ event: 'cancelled', detail: 'cancelled by bob: wrong target' });
  });

  it('escalates from a runbook file until an operator acknowledges', async () => {
    const def = definition(
      'escalation',
      `  - id: escalate
    uses: escalate
    with: { reason: "'\${{ target.name }}' needs a human" }
  - id: done
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.escalate.end }} by \${{ steps.escalate.acknowledgedBy }} after \${{ steps.escalate.levels }} level(s)" }
`,
    );
    const target = uniqueTarget('esc');
    const handle = await start(runInput(target, def, { escalation: slowLevels }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(acknowledgeSignal, { operator: 'mallory', reason: 'me' });
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toBe('acknowledged by alice after 2 level(s)');
    expect(sent(handle).map((n) => `${n.event} ${n.channels.join(',')}`)).toEqual(['trigger ops', 'acknowledge ops']);
    expect(sent(handle)[0]!.text).toContain(`'${target}' needs a human`);
    expect(events(result.timeline)).toContain('acknowledgement ignored');
  });

  it.each([
    ['incident', 'at once: its 2 s fell due while the run slept'],
    ['step', 'only 2 s into the step'],
  ] as const)('counts the levels from the %s when asked: the second level paged %s', async (from, _how) => {
    const def = definition(
      `escalation-from-${from}`,
      `  - id: nap
    uses: sleep
    with: { duration: 3s }
  - id: escalate
    uses: escalate
    with: { reason: "down", from: ${from} }
`,
    );
    const target = uniqueTarget('from');
    const levels = {
      policy: 'matrix',
      levels: [
        { name: 'on-call', afterMs: 0, channels: ['ops'] },
        { name: 'senior', afterMs: 2_000, channels: ['lead'] },
        { name: 'manager', afterMs: 60_000, channels: ['boss'] },
      ],
    };
    const handle = await start(runInput(target, def, { escalation: levels }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'senior', 20_000);
    const status = await handle.query(statusQuery);
    const at = (event: string) => Date.parse(status.timeline.find((e) => e.event === event)!.at);
    // From the step's start ('escalating', recorded as it begins), which levels counted from the step
    // count from; not from the on-call page, recorded once its notification came back (CI once saw
    // 1,998 ms between the two pages for a level due 2,000 ms into the step).
    const intoStep = at('paged senior') - at('escalating');
    if (from === 'incident') expect(intoStep).toBeLessThan(1_000);
    else expect(intoStep).toBeGreaterThanOrEqual(2_000);
    await handle.terminate('seen');
  });

  it('repeats a level paged late (from: incident) from when it was paged, not at once', async () => {
    const def = definition(
      'late-repeat',
      `  - id: nap
    uses: sleep
    with: { duration: 3s }
  - id: escalate
    uses: escalate
    with: { reason: "down", from: incident }
`,
    );
    const target = uniqueTarget('late');
    const levels = {
      policy: 'repeating',
      levels: [
        { name: 'on-call', afterMs: 0, channels: ['ops'], repeatMs: 2_000 },
        { name: 'senior', afterMs: 60_000, channels: ['lead'] },
      ],
    };
    const handle = await start(runInput(target, def, { escalation: levels }));
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'paged on-call (repeat 1)'), 20_000);
    const status = await handle.query(statusQuery);
    const at = (event: string) => Date.parse(status.timeline.find((e) => e.event === event)!.at);
    // Paged 3 s in (its nominal repeat at 2 s had passed): the repeat comes 2 s after the page.
    expect(at('paged on-call (repeat 1)') - at('paged on-call')).toBeGreaterThanOrEqual(1_900);
    await handle.terminate('seen');
  });

  it('tells the first level why the runbook gave up when the escalation starts already acknowledged, and escalates no further', async () => {
    const def = definition(
      'early-ack',
      `  - id: ask
    uses: approval
    with: { action: "restart it", timeout: 2s }
  - id: escalate
    when: steps.ask.decision != 'approved'
    uses: escalate
    with: { reason: "nobody approved restarting '\${{ target.name }}'" }
  - id: done
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.escalate.end }} by \${{ steps.escalate.acknowledgedBy }}" }
`,
    );
    const target = uniqueTarget('early');
    const handle = await start(runInput(target, def, { escalation: slowLevels }));
    await waitForStatus(handle, pending);
    // A responder takes it while the approval waits; nobody approves.
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'looking' });
    const result = await handle.result();
    expect(result.detail).toBe('acknowledged by alice');
    const pages = sent(handle).filter((n) => n.event === 'trigger' && !n.idempotencyKey.includes(':approval:'));
    expect(pages.map((n) => n.idempotencyKey.split(':').at(-1))).toEqual(['primary']);
    expect(pages[0]!.text).toMatch(
      new RegExp(`^Acknowledged earlier by alice; the runbook has now given up on its own:\\nnobody approved restarting '${target}'`),
    );
    expect(sent(handle).some((n) => n.idempotencyKey.endsWith(':secondary'))).toBe(false);
  });

  it("gives the suppression check the alert's labels for the alert's own target, and none for another", async () => {
    const def = definition(
      'suppression-labels',
      `  - id: own
    uses: checkSuppression
  - id: other
    uses: checkSuppression
    with: { target: elsewhere }
`,
    );
    const target = uniqueTarget('supp');
    const other = uniqueTarget('elsewhere');
    const input = runInput(target, def, { alert: { name: 'ServiceDown', severity: 'critical', labels: { service: target, team: 'web' } } });
    const withOther = {
      ...input,
      definition: parseRunbook(
        `name: suppression-labels\ndescription: two checks\nappliesTo: [container]\nsteps:\n  - id: own\n    uses: checkSuppression\n  - id: other\n    uses: checkSuppression\n    with: { target: ${other} }\n`,
        'test.yaml',
      ),
      targets: [...input.targets, { name: other, kind: 'container' as const, queue: h.queue, labels: { service: other } }],
    };
    const state = h.script(target, {});
    const otherState = h.script(other, {});
    const result = await (await start(withOther)).result();
    expect(result.outcome, result.detail).toBe('completed');
    expect(state.suppressionLabels).toEqual({ service: target, team: 'web' });
    expect(otherState.suppressionChecks).toBe(1);
    expect(otherState.suppressionLabels).toBeUndefined();
  });

  it('ends resolved-externally at the next step boundary when the alert resolves mid-run', async () => {
    const def = definition('resolution', `  - id: diagnose\n    uses: diagnose\n  - id: restart\n    uses: restart\n`);
    const target = uniqueTarget('res');
    const slow = gate();
    h.script(target, {
      diagnose: async () => {
        await slow.wait;
        return { target, sections: [], summary: 'nothing' };
      },
    });
    const handle = await start(runInput(target, def));
    await until('the diagnosis to start', 15_000, async () => (h.callsFor(target, 'diagnoseTarget').length ? true : undefined), 50);
    await handle.signal(alertResolvedSignal, { at: new Date().toISOString() });
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'alert resolved'));
    slow.open();
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('resolved-externally');
    expect(result.detail).toBe('the alert resolved during diagnose');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
  });

  it('passes dryRun to every mutating activity in a dry run', async () => {
    const def = definition(
      'dry-run',
      `  - id: restart
    uses: restart
    with: { attempts: 1 }
  - id: act
    uses: runAction
  - id: backup
    uses: backup
  - id: mute
    uses: silence
    with: { duration: 10m }
  - id: flush
    uses: http
    with: { method: POST, url: "http://127.0.0.1:18090/flush" }
  - id: tell
    uses: notify
    with: { key: told, title: "dry \${{ incident.dryRun }}; flush \${{ steps.flush.code }} \${{ steps.flush.status == 'ok' ? 'ok' : 'not ok' }}; silence \${{ steps.mute.silenceId }}" }
`,
    );
    const target = uniqueTarget('dry');
    h.script(target, { healthy: () => false });
    const { handle, result } = await run(def, target, { dryRun: true });
    expect(result.outcome, result.detail).toBe('completed');
    for (const activity of ['restartTarget', 'runTargetAction', 'backupTarget']) {
      const calls = h.callsFor(target, activity);
      expect(calls, activity).toHaveLength(1);
      expect(calls[0]!.ctx?.dryRun, activity).toBe(true);
    }
    const mine = (activity: string) => h.calls.filter((c) => c.activity === activity && JSON.stringify(c.arg).includes(handle.workflowId));
    expect(mine('createSilence').map((c) => c.dryRun)).toEqual([true]);
    expect(mine('httpRequest').map((c) => c.dryRun)).toEqual([true]);
    expect(sent(handle).every((n) => n.dryRun)).toBe(true);
    expect(titled(handle, 'told')).toBe('dry true; flush 0 ok; silence dry-run');
  });

  it("hands maintain's analyzeOnly to the activity only when it is set: a step without it calls it as before", async () => {
    const def = definition(
      'maintain-options',
      `  - id: vacuum
    uses: maintain
  - id: analyze
    uses: maintain
    with: { analyzeOnly: true }
  - id: said-false
    uses: maintain
    with: { analyzeOnly: false }
`,
    );
    const target = uniqueTarget('maint');
    h.script(target, {});
    const { result } = await run(def, target, {}, 'postgres');
    expect(result.outcome, result.detail).toBe('completed');
    // The arguments after the context, as the activity received them.
    expect(h.callsFor(target, 'maintainTarget').map((c) => c.arg)).toEqual([[], [{ analyzeOnly: true }], []]);
  });
});

describe('the shipped runbooks', () => {
  describe('serviceDown', () => {
    const def = shipped.serviceDown!;

    it('recovers on the second restart', async () => {
      const target = uniqueTarget('svc');
      h.script(target, { healthy: (s) => s.restarts >= 2 });
      const { handle, result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('recovered');
      expect(result.detail).toBe('healthy after restart 2');
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(2);
      expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(0);
      expect(sent(handle)).toHaveLength(0);
    });

    it('ends as a false alarm when the target answers', async () => {
      const target = uniqueTarget('svc');
      h.script(target, { healthy: () => true });
      const { result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('false-alarm');
      expect(result.detail).toBe(`'${target}' is healthy: http ok: 200 OK`);
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    });

    it('stands down without touching a silenced target', async () => {
      const target = uniqueTarget('svc');
      h.script(target, { silencedBy: 'abc' });
      const { handle, result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('suppressed');
      // Only a read: the first health check is asked beside the silence check, and nothing acts.
      expect(activities(target)).toEqual(['verifyTarget']);
      expect(sent(handle).map((n) => n.severity)).toEqual(['info']);
      // The first restart's claim, asked ahead too, was withdrawn: the guard holds and counts nothing.
      expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
    });

    it("asks its claim first and reads its target's window from the claim's answer, with no read of its own", async () => {
      const target = uniqueTarget('svc');
      h.script(target, { healthy: (s) => s.restarts >= 1 });
      const { handle, result } = await run(def, target);
      expect(result.outcome, result.detail).toBe('recovered');
      // Asked in this order, the claim first, as one local activity; the window came with the claim, not from a read.
      const reads = await localReads(handle);
      expect(reads.slice(0, 3)).toEqual(['readsTogether/claimRestart', 'readsTogether/verifyTarget', 'readsTogether/checkSuppression']);
      expect(reads).not.toContain('maintenanceWindowFor');
    });

    it('reads the window on its own when the claim answered none (the guard refused it), and still stands down in it', async () => {
      const target = uniqueTarget('svc');
      h.script(target, { claimRefused: true });
      const { handle, result } = await inMaintenanceWindow(h, target, () => run(def, target));
      expect(result.outcome, result.detail).toBe('suppressed');
      expect(result.detail).toContain("maintenance window 'weekly'");
      expect(await localReads(handle)).toContain('maintenanceWindowFor');
    });

    it("stands down in an open maintenance window read from the claim's answer, and takes the claim back", async () => {
      const target = uniqueTarget('svc');
      const { handle, result } = await inMaintenanceWindow(h, target, async () => {
        const ran = await run(def, target);
        // Checked while the window is open: the claim was taken back, nothing held or counted.
        expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
        return ran;
      });
      expect(result.outcome, result.detail).toBe('suppressed');
      expect(result.detail).toContain("maintenance window 'weekly'");
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
      expect(await localReads(handle)).not.toContain('maintenanceWindowFor');
    });

    it('withdraws the claim asked ahead when it is cancelled while its first reads are out', async () => {
      const target = uniqueTarget('svc');
      const { handle, error } = await cancelWhileFirstReadsOut(h, target, () => start(runInput(target, def)));
      expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect((await handle.query(statusQuery)).outcome).toBe('cancelled');
      expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    });

    it('restarts nothing when the engine cannot check the target for good, and diagnoses and pages instead', async () => {
      const target = uniqueTarget('svc');
      h.script(target, {
        healthy: () => {
          throw authRefused(`health check of container '${target}' failed: server answered 401 Unauthorized`);
        },
      });
      const handle = await start(runInput(target, def, { escalation: slowLevels }));
      await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
      // While it pages, not only once it ends: the claim asked ahead went back when the restart step passed.
      expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
      await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'rotating the token' });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('escalated');
      expect(result.detail).toMatch(
        new RegExp(`^not restarted: the engine cannot check '${target}' \\(verification could not run: .*401 Unauthorized`),
      );
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
      expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
      expect(events(result.timeline)).toContain('restart skipped');
      // The claim asked beside the first reads went back to the guard: no slot held, no restart counted.
      expect(await guardHolds(h, target)).toEqual({ leases: 0, restarts: undefined });
    });

    it('restarts nothing when the health endpoint refuses the engine (401), since the target answered', async () => {
      const target = uniqueTarget('svc');
      h.script(target, { healthy: () => false, refusesEngine: true });
      const handle = await start(runInput(target, def, { escalation: slowLevels }));
      await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
      await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'rotating the token' });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('escalated');
      expect(result.detail).toMatch(/^not restarted: the engine cannot check .*401 Unauthorized/);
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    });

    it('diagnoses and escalates when restarts do not help, until acknowledged', async () => {
      const target = uniqueTarget('svc');
      h.script(target, { healthy: () => false });
      const handle = await start(runInput(target, def, { escalation: slowLevels, guardrails: { restartAttempts: 1 } as never }));
      await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
      await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'looking' });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('escalated');
      expect(result.detail).toMatch(/^not healthy after 1 restart: .*; acknowledged by alice$/);
      const page = sent(handle)[0]!;
      expect(page).toMatchObject({ event: 'trigger', channels: ['ops'] });
      expect(page.text).toContain(`logs: panic: out of cheese (${target})`);
      expect(h.callsFor(target, 'diagnoseTarget')[0]!.at).toBeLessThanOrEqual(page.at);
      expect(sent(handle).map((n) => n.event)).toEqual(['trigger', 'acknowledge']);
    });
  });

  describe('databaseConnection', () => {
    const def = shipped.databaseConnection!;
    const startDb = (target: string, overrides: Partial<RunbookInput> = {}) =>
      start(runInput(target, def, { runbook: 'databaseConnection', ...overrides }, 'postgres'));

    it('restarts the database once an operator approves', async () => {
      const target = uniqueTarget('db');
      h.script(target, { healthy: (s) => s.restarts >= 1 });
      const handle = await startDb(target);
      await waitForStatus(handle, pending);
      expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
      await handle.signal(approveSignal, { operator: 'alice', reason: 'pool exhausted' });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('recovered');
      expect(result.detail).toBe('healthy after the restart approved by alice');
      expect(h.callsFor(target, 'restartTarget').map((c) => c.ctx?.actor)).toEqual(['alice']);
    });

    it('stops when an operator rejects, and resolves the approval page', async () => {
      const target = uniqueTarget('db');
      h.script(target, { healthy: () => false });
      const handle = await startDb(target);
      await waitForStatus(handle, pending);
      await handle.signal(rejectSignal, { operator: 'bob', reason: 'failover in progress' });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('rejected');
      expect(result.detail).toBe('restart rejected by bob: failover in progress');
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
      expect(sent(handle).map((n) => n.event)).toEqual(['trigger', 'resolve']);
    });

    it('escalates when nobody decides in time', async () => {
      const target = uniqueTarget('db');
      h.script(target, { healthy: () => false });
      const handle = await startDb(target, { escalation: oneLevel, guardrails: { approvalTimeoutMs: 1_000 } as never });
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('escalated');
      expect(result.detail).toBe(`nobody approved restarting '${target}' in time; nobody acknowledged after 1 level(s)`);
      expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
      expect(sent(handle).map((n) => n.idempotencyKey.split(':').pop())).toEqual(['approve-restart', 'primary']);
    });
  });

  it('highErrorRate runs the configured action once approved, and verifies', async () => {
    const target = uniqueTarget('api');
    let acted = false;
    h.script(target, {
      healthy: () => acted,
      action: () => {
        acted = true;
      },
    });
    const handle = await start(runInput(target, shipped.highErrorRate!, { runbook: 'highErrorRate', hasAction: true }, 'http'));
    const waiting = await waitForStatus(handle, pending);
    expect(waiting.pendingApproval?.step).toBe('approve-action');
    await handle.signal(approveSignal, { operator: 'alice', reason: 'clear the cache' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the action approved by alice');
    expect(h.callsFor(target, 'runTargetAction').map((c) => c.ctx?.actor)).toEqual(['alice']);
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
  });

  it('resourcePressure restarts once approved', async () => {
    const target = uniqueTarget('cache');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await start(runInput(target, shipped.resourcePressure!, { runbook: 'resourcePressure' }));
    await waitForStatus(handle, pending);
    expect(h.callsFor(target, 'diagnoseTarget')).toHaveLength(1);
    await handle.signal(approveSignal, { operator: 'bob', reason: '' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the restart approved by bob');
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(1);
  });

  describe('maintenance', () => {
    /** The input planMaintenanceRun makes for a schedule over these targets. */
    function maintenanceRun(targets: string[], windowMs = 60_000): RunbookRunInput {
      const schedule = uniqueTarget('weekly');
      const def = shipped.maintenance!;
      return {
        ...runbookInput(h, schedule, {
          runbook: def.name,
          targetKind: 'postgres',
          alert: { name: 'maintenance', severity: 'info', labels: {} },
          escalation: { policy: 'default', levels: [{ name: 'maintenance', afterMs: 0, channels: ['ops'] }] },
        }),
        definition: def,
        targets: targets.map((name) => ({ name, kind: 'postgres', queue: h.queue, labels: { service: name } })),
        maintenance: {
          schedule,
          targets,
          windowMs,
          silence: [{ name: 'service', value: targets.join('|'), isRegex: true, isEqual: true }],
          channels: ['ops'],
        },
        startedBy: 'schedule',
      };
    }
    const startMaintenance = (input: RunbookRunInput) => start(input, maintenanceWorkflowId(input.maintenance!.schedule));
    const silenceOf = (handle: Run) =>
      h.calls.find((c) => c.activity === 'createSilence' && (c.arg as { comment: string }).comment.includes(handle.workflowId));

    it('fails at its window, touching nothing, while a run by hand of the same schedule holds it, and leaves that run its window', async () => {
      const a = uniqueTarget('pg');
      h.script(a, { healthy: () => true });
      const input = maintenanceRun([a]);
      const schedule = input.maintenance!.schedule;
      const byHand = `maintenance:${schedule}`;
      await h.guard.openWindow({ holder: byHand, schedule, targets: [a], untilMs: Date.now() + 60_000 });
      try {
        // The schedule's own firing: a workflow id of its own.
        const handle = await start(input, `${maintenanceWorkflowId(schedule)}-2026-12-06T02:00:00Z`);
        const result = await handle.result();
        expect(result.outcome, result.detail).toBe('failed');
        expect(result.detail).toContain(`maintenance '${schedule}' is already running: ${byHand} holds its window`);
        expect(h.calls.filter((c) => c.target === a && ['backupTarget', 'maintainTarget'].includes(c.activity))).toEqual([]);
        expect((await h.guard.maintenanceWindowFor(a)).suppressed).toBe(true);
      } finally {
        await h.guard.closeWindow(byHand);
      }
    });

    it('opens the window, backs up, maintains and checks each target, then closes the window', async () => {
      const [a, b] = [uniqueTarget('pg'), uniqueTarget('pg')];
      const inBackup = gate();
      const release = gate();
      h.script(a, {
        healthy: () => true,
        backup: async () => {
          inBackup.open();
          await release.wait;
        },
      });
      h.script(b, { healthy: () => true });
      const input = maintenanceRun([a, b]);
      const handle = await startMaintenance(input);
      await inBackup.wait;
      expect((await h.guard.maintenanceWindowFor(b)).suppressed).toBe(true);
      release.open();
      const result = await handle.result();
      expect(result.outcome, result.detail).toBe('completed');
      expect(result.detail).toBe(`maintained ${a}, ${b}`);
      expect(h.calls.filter((c) => c.target === a || c.target === b).map((c) => `${c.activity} ${c.target}`)).toEqual([
        `backupTarget ${a}`,
        `maintainTarget ${a}`,
        `verifyTarget ${a}`,
        `backupTarget ${b}`,
        `maintainTarget ${b}`,
        `verifyTarget ${b}`,
      ]);
      expect(h.callsFor(a, 'backupTarget')[0]!.ctx).toMatchObject({
        actor: 'engine',
        dryRun: false,
        reason: `maintenance '${input.maintenance!.schedule}'`,
      });
      const silence = silenceOf(handle);
      expect(silence?.arg).toMatchObject({ matchers: input.maintenance!.silence, durationMs: 60_000, dryRun: false });
      const silenceId = (await handle.query(statusQuery)).timeline.find((e) => e.event === 'window opened')!.detail!.split(' ')[1];
      expect(h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg)).toContain(silenceId);
      expect((await h.guard.maintenanceWindowFor(a)).suppressed).toBe(false);
      expect(sent(handle).map((n) => `${n.event} ${n.title}`)).toEqual([
        `trigger maintenance '${input.maintenance!.schedule}' started`,
        `resolve maintenance on '${input.maintenance!.schedule}' resolved`,
      ]);
      expect(sent(handle)[0]!.text).toBe(`${a}, ${b}`);
      expect(sent(handle)[1]!.text).toBe(`maintenance '${input.maintenance!.schedule}' completed: maintained ${a}, ${b}`);
    });

    it('expires a silence whose creation was still under way when the run was cancelled', async () => {
      const a = uniqueTarget('pg');
      h.script(a, { healthy: () => true });
      const alertmanagerSlow = gate();
      h.holds.silence = alertmanagerSlow.wait;
      try {
        const handle = await startMaintenance(maintenanceRun([a]));
        await until('the silence to be asked for', 10_000, async () => silenceOf(handle), 50);
        await handle.cancel();
        // The activity goes on (it does not heartbeat, so it never hears of the cancel) and creates it.
        await new Promise((r) => setTimeout(r, 500));
        alertmanagerSlow.open();
        const err = await handle.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const status = await handle.query(statusQuery);
        const opened = status.timeline.find((e) => e.event === 'window opened');
        expect(opened?.detail).toMatch(/^silence silence-\d+ /);
        expect(h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg)).toContain(opened!.detail!.split(' ')[1]);
        expect(h.callsFor(a, 'backupTarget')).toHaveLength(0);
      } finally {
        delete h.holds.silence;
        alertmanagerSlow.open();
      }
    });

    it("gives a backup what is left of the window, its retry included: one still running at the window's end fails there", async () => {
      const a = uniqueTarget('pg');
      h.script(a, {
        healthy: () => true,
        backup: () => new Promise((r) => setTimeout(r, 8_000)),
      });
      const started = Date.now();
      const handle = await startMaintenance(maintenanceRun([a], 3_000));
      const result = await handle.result();
      expect(result.outcome).toBe('failed');
      expect(result.detail).toMatch(/timed out|timeout/i);
      // Given up at the window's end, not after the 8 s backup (nor a minute's start-to-close).
      expect(Date.now() - started).toBeLessThan(7_500);
      expect(h.callsFor(a, 'maintainTarget')).toHaveLength(0);
      expect(events(result.timeline)).toEqual(expect.arrayContaining(['silence expired', 'window closed']));
    });

    it('fails on a failing post-check, and still expires the silence and closes the window', async () => {
      const [a, b] = [uniqueTarget('pg'), uniqueTarget('pg')];
      h.script(a, { healthy: () => true });
      h.script(b, { healthy: () => false });
      const input = maintenanceRun([a, b]);
      const handle = await startMaintenance(input);
      const result = await handle.result();
      expect(result.outcome).toBe('failed');
      expect(result.detail).toBe(
        `step each-target failed: step post-check-passed for '${b}' failed: post-check of '${b}' failed: http failed: connection refused (finished: ${a})`,
      );
      const silenceId = result.timeline.find((e) => e.event === 'window opened')!.detail!.split(' ')[1];
      expect(silenceOf(handle)).toBeDefined();
      expect(h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg)).toContain(silenceId);
      expect(events(result.timeline)).toEqual(expect.arrayContaining(['silence expired', 'window closed']));
      expect((await h.guard.maintenanceWindowFor(a)).suppressed).toBe(false);
      expect((await h.guard.maintenanceWindowFor(b)).suppressed).toBe(false);
      const page = sent(handle).find((n) => n.idempotencyKey.endsWith(':failed'));
      expect(page).toMatchObject({
        event: 'trigger',
        severity: 'critical',
        channels: ['ops'],
        title: `maintenance '${input.maintenance!.schedule}' failed`,
      });
    });
  });
});

describe('the reads the webhook takes beside a start (checksAhead.ts firstReads)', () => {
  it("predicts a serviceDown run's first reads exactly: the silences with the alert's labels, the check, the claim with the run's request id", async () => {
    const target = uniqueTarget('door');
    const def = shipped.serviceDown!;
    const input = runInput(target, def, { alert: { name: 'ServiceDown', severity: 'critical', labels: { service: target, team: 'web' } } });
    const first = firstReads(input)!;
    const state = h.script(target, { healthy: (s) => s.restarts > 0 });
    const { handle, result } = await run(def, target, { alert: input.alert });
    expect(result.outcome).toBe('recovered');
    expect(first.suppression).toEqual([target, state.suppressionLabels]);
    expect(first.verify).toEqual([target]);
    expect(h.callsFor(target, 'verifyTarget').length).toBeGreaterThan(0);
    const runId = (await handle.describe()).runId;
    expect(h.claims.find((c) => c.holder === handle.workflowId)).toEqual(first.claim!(handle.workflowId, runId));
  });

  it('predicts nothing for a run that opens otherwise, and no check where a host agent checks', () => {
    const target = uniqueTarget('door');
    const opensWithNotify = definition(
      'diagnose-first',
      `  - id: look\n    uses: diagnose\n  - id: check\n    uses: checkSuppression\n  - id: verify\n    uses: verify\n`,
    );
    expect(firstReads(runInput(target, opensWithNotify))).toBeUndefined();
    const conditional = definition(
      'when-first',
      `  - id: check\n    uses: checkSuppression\n    when: "true"\n  - id: verify\n    uses: verify\n`,
    );
    expect(firstReads(runInput(target, conditional))).toBeUndefined();
    const diagnoses = definition(
      'diagnose-third',
      `  - id: check\n    uses: checkSuppression\n  - id: verify\n    uses: verify\n  - id: look\n    uses: diagnose\n`,
    );
    const reads = firstReads(runInput(target, diagnoses))!;
    expect(reads.claim).toBeUndefined();
    expect(reads.suppression).toEqual([target, { service: target }]);
    expect(firstReads(runInput(target, diagnoses, {}, 'systemd'))?.verify).toBeUndefined();
  });
});

describe('a target whose host agent is not running', () => {
  /** The shipped serviceDown on a systemd unit of a host whose queue no agent polls. */
  function onDeadHost(target: string, agentWaitMs?: number): RunbookRunInput {
    const queue = `no-agent-${target}`;
    const input = runInput(target, shipped.serviceDown!, {}, 'systemd');
    return {
      ...input,
      targetQueue: queue,
      targets: [{ name: target, kind: 'systemd', queue, labels: { service: target } }],
      guardrails: { ...input.guardrails, ...(agentWaitMs === undefined ? {} : { agentWaitMs }) },
    };
  }

  /** Each activity the run asked of the host's queue, with the wait for a worker the server recorded for it (0: none). */
  async function waitsAsked(handle: Run): Promise<Array<[string, number]>> {
    const events = (await handle.fetchHistory()).events ?? [];
    return events
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => a?.taskQueue?.name?.startsWith('no-agent-'))
      .map((a) => [a!.activityType!.name!, optionalTsToMs(a!.scheduleToStartTimeout) ?? 0]);
  }

  it('fails the check saying no agent took it, restarts nothing, and pages without waiting the whole wait again', async () => {
    const target = uniqueTarget('unit');
    const startedAt = Date.now();
    const handle = await start(onDeadHost(target, 3_000));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    const unhealthy = result.timeline.find((e) => e.event === 'unhealthy');
    expect(unhealthy?.detail).toMatch(
      /^verification could not run: verifyTarget failed: no host agent took it in time \(guardrails\.agentWait\): is the agent for this target's host running/,
    );
    // Not one restart was asked of a host nobody answers for, and the first level was paged.
    expect(h.callsFor(target).map((c) => c.activity)).not.toContain('restartTarget');
    expect(sent(handle).some((n) => n.event === 'trigger')).toBe(true);
    expect(Date.now() - startedAt).toBeLessThan(30_000);
    // The check waited the plan's 3 s; the diagnosis after it, on the queue found without an agent,
    // a tenth of that (at least 1 s), not another 3 s.
    const waits = await waitsAsked(handle);
    expect(waits[0]).toEqual(['verifyTarget', 3_000]);
    const later = waits.slice(1);
    expect(later.length).toBeGreaterThan(0);
    expect(later.map(([type]) => type)).toContain('diagnoseTarget');
    for (const [type, ms] of later) expect(ms, type).toBe(1_000);
  });

  it('waits the whole wait again on the host once an agent took a step there', async () => {
    const target = uniqueTarget('unit');
    const def = parseRunbook(
      `name: agent-back
description: the host's agent is down at first, and back before the later steps
appliesTo: [systemd]
steps:
  - id: check
    uses: verify
  - id: go-on
    uses: approval
    with: { action: "go on once the agent is back", timeout: 1m }
  - id: recheck
    uses: verify
  - id: diagnose
    uses: diagnose
`,
      'agent-back.yaml',
    );
    const input = onDeadHost(target, 3_000);
    const handle = await start({ ...input, runbook: def.name, definition: def }, incidentWorkflowId(def.name, target));
    await waitForStatus(handle, pending, 20_000);
    // The check found no agent; the agent comes back before anyone approves.
    const stopAgent = await h.serveAgentQueue(input.targetQueue);
    try {
      await handle.signal(approveSignal, { operator: 'alice', reason: 'agent restarted' });
      const result = await handle.result();
      expect(result.timeline.find((e) => e.event === 'unhealthy')?.detail).toMatch(/no host agent took it in time/);
      // The recheck waited a tenth (its queue had been found without an agent) and was taken; the
      // diagnosis after it, asked of a host whose agent answered, waits the whole wait again.
      const waits = await waitsAsked(handle);
      expect(waits[0]).toEqual(['verifyTarget', 3_000]);
      expect(waits[1]).toEqual(['verifyTarget', 1_000]);
      const later = waits.slice(2);
      expect(later.map(([type]) => type)).toContain('diagnoseTarget');
      for (const [type, ms] of later) expect(ms, type).toBe(3_000);
      expect(h.callsFor(target, 'verifyTarget')).toHaveLength(1);
    } finally {
      await stopAgent();
    }
  });

  it('waits without end in a run planned before the wait existed, as such runs did', async () => {
    const target = uniqueTarget('unit');
    const handle = await start(onDeadHost(target));
    await new Promise((r) => setTimeout(r, 3_000));
    const st = await handle.query(statusQuery);
    expect(st.timeline.some((e) => e.event === 'unhealthy')).toBe(false);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // Its check was asked with no wait for a worker at all, not merely a long one.
    expect(await waitsAsked(handle)).toEqual([['verifyTarget', 0]]);
    await handle.terminate('test over');
  });
});
