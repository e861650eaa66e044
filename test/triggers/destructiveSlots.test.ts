// `remediate slots` and `remediate slots release`: the destructive slot an incident run kept when it
// was terminated mid-restart (every other incident waits for it until its lease lapses) is released
// by an admin, never while that run still runs. Real dev server, the real guard.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardStateQuery } from '../../activities/guardMessages.js';
import { ActionError, type OperatorActions } from '../../triggers/operators/actions.js';
import type { AuditEntry } from '../../triggers/operators/audit.js';
import type { Identity } from '../../triggers/operators/credentials.js';
import { leaseRunId } from '../../triggers/operators/destructiveSlots.js';
import type { Temporal } from '../../triggers/operators/operatorTemporal.js';
import { releasedSlotsText, slotsTable } from '../../triggers/cli/cliText.js';
import { guardrails } from '../../workflows/guardrails.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { stack } from '../support/stack.js';
import { startHarness, uniqueTarget, type Harness } from '../workflows/harness.js';
import { triggerConfig } from './support/config.js';
import { operatorActionsFor } from './support/operatorActions.js';

let h: Harness;
let temporal: Temporal;
let actions: OperatorActions;
let who: (name: string) => Identity;
let audit: AuditEntry[];
const target = uniqueTarget('slots');
const holder = incidentWorkflowId('serviceDown', target);

beforeAll(async () => {
  h = await startHarness('slots');
  const fx = triggerConfig({ taskQueue: h.queue, temporalAddress: stack().temporalAddress });
  fx.raw.operators = [
    { name: 'ada', role: 'admin' },
    { name: 'otto', role: 'operator' },
    { name: 'tess', role: 'admin', targets: [fx.db] },
  ];
  ({ temporal, actions, audit, who } = await operatorActionsFor(fx.raw, 'destructive slots test'));
});

afterAll(async () => {
  await h?.client.workflow
    .getHandle(holder)
    .terminate('test finished')
    .catch(() => undefined);
  await temporal?.close();
  await h?.close();
});

const leasesOf = async () =>
  (await h.client.workflow.getHandle(h.guardId).query(guardStateQuery)).leases.filter((l) => l.holder === holder);
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as ActionError,
  );
// A run that is simply RUNNING: a guard workflow type on a queue nobody polls.
const startRun = () => h.client.workflow.start(guardrails, { taskQueue: `${h.queue}-nobody`, workflowId: holder, args: [{}] });

describe('the destructive slots a run left held', () => {
  it('lists the slot with its run, refuses to release it while the run runs, releases it once the run was terminated, even with a new run on the same id', async () => {
    const run = await startRun();
    // Mid-restart: it holds one of the slots, as its restart claim took it (request id <workflow>/<run>/…).
    const requestId = `${holder}/${run.firstExecutionRunId}/restart/1`;
    const slot = { holder, target, action: 'restart', max: 50, leaseMs: 600_000 };
    expect(await h.guard.acquireSlot({ ...slot, requestId })).toMatchObject({ acquired: true });

    const listed = (await actions.slots(who('otto'))).filter((s) => s.holder === holder);
    expect(listed).toEqual([
      {
        holder,
        runId: run.firstExecutionRunId,
        target,
        action: 'restart',
        since: expect.any(String),
        lapses: expect.any(String),
        status: 'running',
      },
    ]);
    expect(Date.parse(listed[0]!.lapses) - Date.parse(listed[0]!.since)).toBe(600_000);

    const running = await refusal(actions.releaseSlots(who('ada'), holder, false));
    expect(running).toBeInstanceOf(ActionError);
    expect(running).toMatchObject({ status: 409 });
    expect((running as Error).message).toBe(
      `workflow '${holder}' is still running (run ${run.firstExecutionRunId}) and holds its slot for its restart of '${target}': cancel it instead ('remediate cancel ${holder}'), which releases it`,
    );
    expect(await leasesOf()).toHaveLength(1);

    await run.terminate('terminated mid-restart');
    // The incident fires again: a new run on the same workflow id, waiting for a slot (it holds none).
    const next = await startRun();
    const ended = (await actions.slots(who('otto'))).filter((s) => s.holder === holder);
    expect(ended.map((s) => [s.runId, s.status])).toEqual([[run.firstExecutionRunId, 'terminated']]);
    expect(slotsTable(ended)).toContain(`'${holder}' ended holding its slot: remediate slots release ${holder}\n`);

    // Below admin, or an admin for other targets only: refused, audited, nothing released.
    expect(await refusal(actions.releaseSlots(who('otto'), holder, false))).toMatchObject({ status: 403 });
    expect(audit.at(-1)).toMatchObject({ operator: 'otto', action: 'release destructive slots', subject: holder, result: 'refused' });
    const narrow = await refusal(actions.releaseSlots(who('tess'), holder, false));
    expect(narrow).toMatchObject({ status: 403 });
    expect((narrow as Error).message).toContain(`not '${target}'`);
    expect(await leasesOf()).toHaveLength(1);

    const dry = await actions.releaseSlots(who('ada'), holder, true);
    expect(dry).toMatchObject({ workflowId: holder, dryRun: true, released: [{ target, action: 'restart', status: 'terminated' }] });
    expect(releasedSlotsText(dry)).toMatch(
      new RegExp(`^${holder}: would release the slot for its restart of ${target} \\(held since .+, run terminated\\)\n$`),
    );
    expect(await leasesOf()).toHaveLength(1);

    const released = await actions.releaseSlots(who('ada'), holder, false);
    expect(released).toMatchObject({
      workflowId: holder,
      dryRun: false,
      released: [{ runId: run.firstExecutionRunId, status: 'terminated' }],
    });
    expect(await leasesOf()).toEqual([]);
    expect(audit.at(-1)).toMatchObject({ operator: 'ada', action: 'release destructive slots', subject: holder, result: 'done' });
    expect(await next.describe().then((d) => d.status.name)).toBe('RUNNING');

    // Nothing left: said so, as a conflict.
    const again = await refusal(actions.releaseSlots(who('ada'), holder, false));
    expect(again).toMatchObject({ status: 409 });
    expect((again as Error).message).toBe(`workflow '${holder}' holds no destructive slot: there is nothing to release`);
  });

  it('refuses a workflow id that is not an incident or maintenance run, before asking anything', async () => {
    for (const bad of ['remediation-guardrails:x', 'incident:a b', `incident:${'x'.repeat(300)}`, 42]) {
      const err = await refusal(actions.releaseSlots(who('ada'), bad, false));
      expect(err).toMatchObject({ status: 400 });
    }
  });

  it('reads the run a lease names from its request id, and none from one that does not name it', () => {
    expect(leaseRunId({ holder: 'incident:a:b', id: 'incident:a:b/0f6a2c3e-7b1d-4c55-9a3e-2f7b8c9d0e1f/restart/1' })).toBe(
      '0f6a2c3e-7b1d-4c55-9a3e-2f7b8c9d0e1f',
    );
    expect(leaseRunId({ holder: 'incident:a:b', id: 'incident:a:b-next' })).toBeUndefined();
    expect(leaseRunId({ holder: 'incident:a:b', id: 'incident:a:b/not a run/x' })).toBeUndefined();
  });
});
