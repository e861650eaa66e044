// The groupRestart, housekeeping, logrotate and logs-from-a-file steps in the interpreter on the real
// dev server with the real guard, the harness's scripted targets standing in for the systems: the
// order of restarts and verifications, where a group stops, anti-flap and the destructive cap, the
// approver's name, dry-run, and what each step leaves for later steps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunbook } from '../../config/runbookLoad.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import {
  approveSignal,
  incidentWorkflowId,
  interpreterWorkflowType,
  type RunbookInput,
  type RunbookResult,
  type RunbookRunInput,
  type TargetRef,
} from '../../workflows/messages.js';
import { runbookInput, startHarness, uniqueTarget, waitForStatus, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-host-steps');
});
afterAll(async () => {
  await h?.close();
});

type Interpreter = (input: RunbookRunInput) => Promise<RunbookResult>;

function definition(name: string, steps: string): RunbookDefinition {
  return parseRunbook(
    `name: ${name}\ndescription: a runbook under test\nappliesTo: [container, systemd]\nsteps:\n${steps}`,
    'host-steps.yaml',
  );
}

const ref = (name: string): TargetRef => ({ name, kind: 'container', queue: h.queue, labels: { service: name } });

async function start(def: RunbookDefinition, target: string, others: string[] = [], input: Partial<RunbookInput> = {}) {
  const run: RunbookRunInput = {
    ...runbookInput(h, target, {
      runbook: def.name,
      escalation: { policy: 'one', levels: [{ name: 'primary', afterMs: 0, channels: ['ops'] }] },
      ...input,
    }),
    definition: def,
    targets: [ref(target), ...others.map(ref)],
    startedBy: 'alertmanager',
  };
  return h.client.workflow.start<Interpreter>(interpreterWorkflowType, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId(def.name, target),
    args: [run],
  });
}

/** A stack of three: database, cache, app, restarted in that order. */
function stack(prefix: string) {
  const [db, cache, app] = ['db', 'cache', 'app'].map((p) => uniqueTarget(`${prefix}-${p}`)) as [string, string, string];
  return { db, cache, app, names: [db, cache, app] };
}

const groupDef = (targets: string[], extra = '') =>
  definition(
    'fullStack',
    `  - id: all
    uses: groupRestart
    with: { targets: [${targets.join(', ')}]${extra} }
  - id: report
    uses: end
    with: { outcome: completed, detail: "recovered=\${{ steps.all.recovered }} failed=\${{ steps.all.failedTarget }} restarted=\${{ steps.all.restarted }} n=\${{ size(steps.all.results) }}" }
`,
  );

const restartsAndVerifies = (names: string[]) =>
  h.calls
    .filter((c) => names.includes(c.target ?? '') && (c.activity === 'restartTarget' || c.activity === 'verifyTarget'))
    .map((c) => `${c.activity === 'restartTarget' ? 'restart' : 'verify'} ${c.target}`);

describe('groupRestart', () => {
  it('restarts each target in the given order and verifies it before touching the next', async () => {
    const s = stack('grp');
    for (const n of s.names) h.script(n, { healthy: (st) => st.restarts > 0 });
    const run = await start(groupDef(s.names), s.app, s.names);
    const result = await run.result();
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.detail).toBe(`recovered=true failed= restarted=${JSON.stringify(s.names)} n=3`);
    expect(restartsAndVerifies(s.names)).toEqual([
      `restart ${s.db}`,
      `verify ${s.db}`,
      `restart ${s.cache}`,
      `verify ${s.cache}`,
      `restart ${s.app}`,
      `verify ${s.app}`,
    ]);
    expect(result.timeline.find((e) => e.event === 'group restarted')!.detail).toBe(`all 3 back, in order: ${s.names.join(', ')}`);
    for (const n of s.names)
      expect(h.callsFor(n, 'restartTarget')[0]!.ctx).toMatchObject({
        actor: 'engine',
        dryRun: false,
        reason: 'ServiceDown: group restart all',
      });
  });

  it('stops at the first target that does not come back, naming it, and leaves the rest untouched', async () => {
    const s = stack('grp-stop');
    h.script(s.db, { healthy: (st) => st.restarts > 0 });
    h.script(s.cache, { healthy: () => false });
    h.script(s.app, { healthy: (st) => st.restarts > 0 });
    const result = await (await start(groupDef(s.names, ', attempts: 2'), s.app, s.names)).result();
    expect(result.detail).toBe(`recovered=false failed=${s.cache} restarted=${JSON.stringify([s.db])} n=2`);
    expect(h.callsFor(s.cache, 'restartTarget')).toHaveLength(2);
    expect(h.callsFor(s.app, 'restartTarget')).toHaveLength(0);
    const stopped = result.timeline.find((e) => e.event === 'group restart stopped')!.detail!;
    expect(stopped).toMatch(
      new RegExp(`^back: ${s.db}; '${s.cache}' did not come back: not healthy after 2 restarts: .*; not restarted: ${s.app}$`),
    );
  });

  it('asks the guard for each restart: anti-flap refuses a target restarted too often, and the group stops there', async () => {
    const s = stack('grp-flap');
    for (const n of s.names) h.script(n, { healthy: (st) => st.restarts > 0 });
    const result = await (
      await start(groupDef(s.names), s.app, s.names, { guardrails: { restartsPerWindow: { max: 0, windowMs: 3_600_000 } } as never })
    ).result();
    expect(result.detail).toBe(`recovered=false failed=${s.db} restarted=[] n=1`);
    expect(s.names.flatMap((n) => h.callsFor(n, 'restartTarget'))).toHaveLength(0);
    expect(result.timeline.find((e) => e.event === 'restart refused')!.detail).toMatch(
      new RegExp(`^anti-flap: 0 restarts of '${s.db}' in the last 1h`),
    );
  });

  it('needs only one destructive slot: each restart releases its slot before the next target', async () => {
    const s = stack('grp-cap');
    for (const n of s.names) h.script(n, { healthy: (st) => st.restarts > 0 });
    const result = await (
      await start(groupDef(s.names), s.app, s.names, { guardrails: { maxConcurrentDestructive: 1, slotWaitMs: 2_000 } as never })
    ).result();
    expect(result.detail).toMatch(/^recovered=true /);
    expect(s.names.map((n) => h.callsFor(n, 'restartTarget').length)).toEqual([1, 1, 1]);
  });

  it('in a dry run only describes each restart, and verification decides as for real', async () => {
    const s = stack('grp-dry');
    for (const n of s.names) h.script(n, { healthy: () => true });
    const result = await (await start(groupDef(s.names), s.app, s.names, { dryRun: true })).result();
    expect(result.detail).toMatch(/^recovered=true /);
    expect(s.names.map((n) => h.callsFor(n, 'restartTarget')[0]!.dryRun)).toEqual([true, true, true]);
  });

  it("acts in the approver's name with approvedBy, and fails without an approval", async () => {
    const s = stack('grp-ok');
    for (const n of s.names) h.script(n, { healthy: (st) => st.restarts > 0 });
    const def = definition(
      'approvedStack',
      `  - id: ask
    uses: approval
    with: { action: "restart the whole stack" }
  - id: all
    uses: groupRestart
    with: { targets: [${s.names.join(', ')}], approvedBy: ask }
`,
    );
    const handle = await start(def, s.app, s.names);
    await waitForStatus(handle, (st) => st.pendingApproval !== undefined);
    await handle.signal(approveSignal, { operator: 'alice', reason: 'maintenance agreed' });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('completed');
    for (const n of s.names)
      expect(h.callsFor(n, 'restartTarget')[0]!.ctx).toMatchObject({
        actor: 'alice',
        reason: 'ServiceDown: group restart all, approved by alice',
      });

    const t = uniqueTarget('grp-unapproved');
    const unanswered = definition(
      'unapproved',
      `  - id: ask\n    uses: approval\n    with: { action: "restart", timeout: 1s }\n  - id: all\n    uses: groupRestart\n    with: { targets: [${t}], approvedBy: ask }\n`,
    );
    const refused = await (await start(unanswered, t, [])).result();
    expect(refused.outcome).toBe('failed');
    expect(refused.detail).toMatch(/^step all failed: needs the approval of step ask, which is (timed-out|timeout)/);
    expect(h.callsFor(t, 'restartTarget')).toHaveLength(0);
  });

  it('touches nothing when one of its targets was not planned for the run', async () => {
    const s = stack('grp-plan');
    const result = await (await start(groupDef(s.names), s.app, [s.db])).result();
    expect(result.outcome).toBe('failed');
    expect(result.detail).toBe(`step all failed: target '${s.cache}' was not planned for this run`);
    expect(h.callsFor(s.db, 'restartTarget')).toHaveLength(0);
  });

  it('is refused at load with a target listed twice, none, or more than 20 restarts in all', () => {
    expect(() => definition('x', `  - id: g\n    uses: groupRestart\n    with: { targets: [a, b, a] }\n`)).toThrow(
      /with\.targets: a target is listed twice/,
    );
    expect(() => definition('x', `  - id: g\n    uses: groupRestart\n    with: { targets: [] }\n`)).toThrow(/with\.targets/);
    expect(() => definition('x', `  - id: g\n    uses: groupRestart\n    with: { targets: [a, b, c], attempts: 7 }\n`)).toThrow(
      /with\.attempts: at most 20 restarts in all \(targets × attempts\)/,
    );
  });
});

describe('housekeeping, logrotate and a log file', () => {
  const def = definition(
    'weeklyUpkeep',
    `  - id: errors
    uses: logs
    with: { file: orchestrator, tail: 200, pattern: "ERROR|FATAL" }
  - id: clean
    uses: housekeeping
    with: { olderThanDays: 30 }
  - id: rotate
    uses: logrotate
  - id: report
    uses: end
    with: { outcome: completed, detail: "\${{ steps.clean.files }} files, \${{ steps.clean.bytes }} bytes, complete=\${{ steps.clean.complete }}, first \${{ steps.clean.listed[0] }}; \${{ steps.rotate.summary }}; \${{ steps.errors.matched }} errors" }
`,
  );

  it('sends the file by name and the age, and leaves counts, the list and the rotation for later steps', async () => {
    const target = uniqueTarget('upkeep');
    h.script(target, { logs: 'INFO a\nERROR b\nFATAL c' });
    const result = await (await start(def, target)).result();
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.detail).toBe('2 files, 3072 bytes, complete=true, first /var/lib/app/runs/a.json; logrotate -f: rotated; 2 errors');
    expect(h.callsFor(target, 'targetLogs')[0]!.arg).toEqual({ tail: 200, pattern: 'ERROR|FATAL', file: 'orchestrator' });
    expect(h.callsFor(target, 'housekeepFiles')[0]!.arg).toMatchObject({
      olderThanDays: 30,
      dryRun: false,
      actor: 'alertmanager',
      reason: 'ServiceDown: step clean',
    });
    expect(result.timeline.map((e) => e.event)).toEqual(expect.arrayContaining(['housekeeping', 'logs rotated']));
  });

  it('passes dry-run to both', async () => {
    const target = uniqueTarget('upkeep-dry');
    const result = await (await start(def, target, [], { dryRun: true })).result();
    expect(result.outcome).toBe('completed');
    expect(h.callsFor(target, 'housekeepFiles')[0]!.dryRun).toBe(true);
    expect(h.callsFor(target, 'rotateLogs')[0]!.dryRun).toBe(true);
    expect(result.timeline.map((e) => e.event)).toEqual(expect.arrayContaining(['housekeeping (dry-run)', 'logrotate (dry-run)']));
  });

  it('refuses at load a log file read since a time, and an age out of bounds', () => {
    expect(() => definition('x', `  - id: l\n    uses: logs\n    with: { file: app, since: 10m }\n`)).toThrow(
      /with\.since: since is for container logs and journals/,
    );
    expect(() => definition('x', `  - id: c\n    uses: housekeeping\n    with: { olderThanDays: 0 }\n`)).toThrow(/with\.olderThanDays/);
    expect(() => definition('x', `  - id: l\n    uses: logs\n    with: { file: "../etc/passwd" }\n`)).toThrow(/with\.file/);
  });
});
