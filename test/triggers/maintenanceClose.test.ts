// `remediate maintenance close`: the window a terminated maintenance run left open (the guard's entry
// that keeps incidents off its targets, and its Alertmanager silence) is closed by an admin, never
// while the run still runs. Real dev server, the real guard, the stack's real Alertmanager.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertmanagerActivities } from '../../activities/alertmanager.js';
import { guardStateQuery } from '../../activities/guardMessages.js';
import { ActionError, type OperatorActions } from '../../triggers/operators/actions.js';
import type { AuditEntry } from '../../triggers/operators/audit.js';
import type { Identity } from '../../triggers/operators/credentials.js';
import type { Temporal } from '../../triggers/operators/operatorTemporal.js';
import { guardrails } from '../../workflows/guardrails.js';
import { maintenanceWorkflowId } from '../../workflows/messages.js';
import { windowSilenceAuthor, windowSilenceCommentStart } from '../../workflows/steps/maintenanceWindow.js';
import { stack } from '../support/stack.js';
import { startHarness, uniqueTarget, type Harness } from '../workflows/harness.js';
import { suffix, triggerConfig } from './support/config.js';
import { operatorActionsFor } from './support/operatorActions.js';

let h: Harness;
let temporal: Temporal;
let actions: OperatorActions;
let who: (name: string) => Identity;
let audit: AuditEntry[];
const am = () => createAlertmanagerActivities({ url: stack().alertmanagerUrl, timeoutMs: 5_000 });
const schedule = `close-${suffix()}`;
const holder = maintenanceWorkflowId(schedule);

beforeAll(async () => {
  h = await startHarness('maint-close');
  const fx = triggerConfig({
    taskQueue: h.queue,
    temporalAddress: stack().temporalAddress,
    extra: { alertmanager: { url: stack().alertmanagerUrl } },
  });
  fx.raw.maintenance = [{ name: schedule, targets: [fx.db] }];
  fx.raw.operators = [
    { name: 'ada', role: 'admin' },
    { name: 'otto', role: 'operator' },
  ];
  ({ temporal, actions, audit, who } = await operatorActionsFor(fx.raw, 'maintenance close test'));
});

afterAll(async () => {
  await h?.client.workflow
    .getHandle(holder)
    .terminate('test finished')
    .catch(() => undefined);
  await temporal?.close();
  await h?.close();
});

const windowsOf = async () =>
  (await h.client.workflow.getHandle(h.guardId).query(guardStateQuery)).windows.filter((w) => w.schedule === schedule);
const silenceState = async (id: string) => {
  const res = await fetch(`${stack().alertmanagerUrl}/api/v2/silence/${id}`);
  return ((await res.json()) as { status: { state: string } }).status.state;
};
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as ActionError,
  );

describe('closing a maintenance window its run left open', () => {
  it('refuses while the run runs, closes guard entry and silence once it was terminated, and the schedule can open its window again', async () => {
    const target = uniqueTarget('maint');
    // The run as it stands mid-window: its id holds the guard's window and a silence made with its comment.
    // (A guard workflow type on a queue nobody polls: a run that is simply RUNNING.)
    const run = await h.client.workflow.start(guardrails, { taskQueue: `${h.queue}-nobody`, workflowId: holder, args: [{}] });
    await h.guard.openWindow({ holder, schedule, targets: [target], untilMs: Date.now() + 3_600_000 });
    // Mid-VACUUM: it holds the target's one destructive slot, for longer than the window.
    const slot = { holder, target, action: 'maintenance', max: 1, leaseMs: 7_200_000 };
    expect(await h.guard.acquireSlot({ ...slot, requestId: `${holder}-vacuum` })).toMatchObject({ acquired: true });
    const { silenceId } = await am().createSilence({
      matchers: [{ name: 'service', value: target, isRegex: false, isEqual: true }],
      durationMs: 3_600_000,
      createdBy: windowSilenceAuthor,
      comment: `${windowSilenceCommentStart(schedule, holder)}${target}`,
      dryRun: false,
    });
    // Another engine's silence with a look-alike comment, not made by this engine: never touched.
    const { silenceId: foreign } = await am().createSilence({
      matchers: [{ name: 'service', value: target, isRegex: false, isEqual: true }],
      durationMs: 3_600_000,
      createdBy: 'someone',
      comment: `${windowSilenceCommentStart(schedule, holder)}${target}`,
      dryRun: false,
    });

    const running = await refusal(actions.closeMaintenance(who('ada'), schedule, false));
    expect(running).toBeInstanceOf(ActionError);
    expect(running).toMatchObject({ status: 409 });
    expect((running as Error).message).toContain(`is still running (workflow ${holder}): cancel it instead ('remediate cancel ${holder}')`);
    expect(await windowsOf()).toHaveLength(1);
    expect(await silenceState(silenceId)).toBe('active');

    // Listed for anyone who may read, with its run still running.
    const listed = (await actions.maintenanceWindows(who('otto'))).filter((w) => w.schedule === schedule);
    expect(listed).toEqual([{ schedule, holder, status: 'running', targets: [target], until: expect.any(String) }]);

    await run.terminate('terminated mid-window');
    expect((await actions.maintenanceWindows(who('otto'))).filter((w) => w.schedule === schedule)).toEqual([
      { schedule, holder, status: 'terminated', targets: [target], until: listed[0]!.until },
    ]);
    // Meanwhile the window blocks the schedule's next run.
    const next = { holder: `${holder}-2026-12-06T02:00:00Z`, schedule, targets: [target], untilMs: Date.now() + 60_000 };
    await expect(h.guard.openWindow(next)).rejects.toThrow(/already running/);

    // A role below admin is refused, and audited as such.
    expect(await refusal(actions.closeMaintenance(who('otto'), schedule, false))).toMatchObject({ status: 403 });
    expect(audit.at(-1)).toMatchObject({ operator: 'otto', action: 'close maintenance window', result: 'refused' });

    const dry = await actions.closeMaintenance(who('ada'), schedule, true);
    expect(dry).toMatchObject({
      schedule,
      dryRun: true,
      slotsReleased: [`maintenance ${target}`],
      silencesExpired: [silenceId],
      silencesLeft: [],
    });
    expect(dry.holders).toEqual([{ workflowId: holder, status: 'terminated', targets: [target], until: expect.any(String) }]);
    expect(await windowsOf()).toHaveLength(1);
    expect(await silenceState(silenceId)).toBe('active');

    const closed = await actions.closeMaintenance(who('ada'), schedule, false);
    expect(closed).toMatchObject({
      schedule,
      dryRun: false,
      slotsReleased: [`maintenance ${target}`],
      silencesExpired: [silenceId],
      silencesLeft: [],
    });
    // The next run gets the slot at once instead of waiting two hours for the lease to lapse.
    expect(await h.guard.acquireSlot({ ...slot, holder: 'maintenance:next', requestId: `${holder}-next` })).toMatchObject({
      acquired: true,
    });
    expect(closed.holders.map((x) => x.workflowId)).toEqual([holder]);
    expect(await windowsOf()).toEqual([]);
    expect((await actions.maintenanceWindows(who('otto'))).filter((w) => w.schedule === schedule)).toEqual([]);
    expect(await silenceState(silenceId)).toBe('expired');
    expect(await silenceState(foreign)).toBe('active');
    expect(audit.at(-1)).toMatchObject({ operator: 'ada', action: 'close maintenance window', subject: schedule, result: 'done' });

    // Nothing left: said so, as a conflict. And the schedule opens its window again.
    const again = await refusal(actions.closeMaintenance(who('ada'), schedule, false));
    expect(again).toMatchObject({ status: 409 });
    expect((again as Error).message).toContain('there is nothing to close');
    await h.guard.releaseSlot(`${holder}-next`);
    await h.guard.openWindow(next);
    await h.guard.closeWindow(next.holder);
    await am().expireSilence(foreign, false);
  });

  it('names the schedules it knows when asked for one it does not', async () => {
    const err = await refusal(actions.closeMaintenance(who('ada'), 'no-such-schedule', false));
    expect(err).toMatchObject({ status: 404 });
    expect((err as Error).message).toBe(`no maintenance schedule 'no-such-schedule' in the configuration (known: ${schedule})`);
  });
});
