import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { maintenance } from '../../workflows/maintenance.js';
import { incidentWorkflowId, maintenanceWorkflowId, statusQuery, type MaintenanceInput } from '../../workflows/messages.js';
import { serviceDown } from '../../workflows/serviceDown.js';
import {
  gate,
  maintenanceInput,
  permanentFailure,
  runbookInput,
  startHarness,
  uniqueTarget,
  waitForStatus,
  type Harness,
} from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-maintenance');
});
afterAll(async () => {
  await h?.close();
});

function start(input: MaintenanceInput) {
  return h.client.workflow.start(maintenance, {
    taskQueue: h.queue,
    workflowId: maintenanceWorkflowId(input.schedule),
    args: [input],
  });
}

/** What the run did, in order, leaving out the checks. */
function steps(runId: string, targets: string[]): string[] {
  return h.calls
    .filter(
      (c) =>
        (c.target && targets.includes(c.target) && c.activity !== 'verifyTarget') ||
        (c.activity === 'createSilence' && (c.arg as { comment: string }).comment.includes(runId)) ||
        c.activity === 'expireSilence',
    )
    .map((c) => (c.target ? `${c.activity} ${c.target}` : c.activity));
}

async function windowFor(target: string) {
  return h.guard.maintenanceWindowFor(target);
}

describe('maintenance', () => {
  it('silences, backs up, maintains and checks every target in turn, then expires the silence', async () => {
    const [a, b] = [uniqueTarget('pg'), uniqueTarget('mysql')];
    h.script(a, { healthy: () => true });
    h.script(b, { healthy: () => true });
    const input = maintenanceInput(h, [a, b]);
    const handle = await start(input);
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('completed');
    const silence = h.calls.find(
      (c) => c.activity === 'createSilence' && (c.arg as { comment: string }).comment.includes(handle.workflowId),
    );
    expect(silence?.arg).toMatchObject({ matchers: input.silence, durationMs: 60_000, dryRun: false });
    const silenceId = h.calls.filter((c) => c.activity === 'expireSilence').map((c) => c.arg);
    expect(silenceId).toContain('silence-1');
    expect(steps(handle.workflowId, [a, b]).filter((s) => !s.startsWith('expire') && !s.startsWith('create'))).toEqual([
      `backupTarget ${a}`,
      `maintainTarget ${a}`,
      `backupTarget ${b}`,
      `maintainTarget ${b}`,
    ]);
    expect(h.callsFor(a, 'verifyTarget')).toHaveLength(1);
    expect((await windowFor(a)).suppressed).toBe(false);
    const told = h.notifications.filter((n) => n.incidentKey === handle.workflowId).map((n) => n.event);
    expect(told).toEqual(['trigger', 'resolve']);
  });

  it('suppresses automatic restarts of its targets while the window is open', async () => {
    const target = uniqueTarget('pg');
    const inBackup = gate();
    const finishBackup = gate();
    h.script(target, {
      healthy: () => false,
      backup: async () => {
        inBackup.open();
        await finishBackup.wait;
      },
    });
    const input = maintenanceInput(h, [target]);
    const handle = await start(input);
    await inBackup.wait;
    const incident = await h.client.workflow.start(serviceDown, {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId('serviceDown', target),
      args: [runbookInput(h, target)],
    });
    const suppressed = await incident.result();
    expect(suppressed.outcome, suppressed.detail).toBe('suppressed');
    expect(suppressed.detail).toContain(`maintenance window '${input.schedule}'`);
    expect(h.callsFor(target, 'restartTarget')).toHaveLength(0);
    finishBackup.open();
    const result = await handle.result();
    // The post-check fails (the target is scripted unhealthy), and the window still closes.
    expect(result.outcome, result.detail).toBe('failed');
    expect(result.detail).toContain(`post-check of '${target}' failed`);
    expect((await windowFor(target)).suppressed).toBe(false);
  });

  it('expires the silence and closes the window when a step fails', async () => {
    const [a, b] = [uniqueTarget('pg'), uniqueTarget('pg')];
    h.script(a, {
      healthy: () => true,
      maintain: () => {
        throw permanentFailure(`maintenance of postgres '${a}' failed: relation "orders" does not exist`);
      },
    });
    h.script(b, { healthy: () => true });
    const handle = await start(maintenanceInput(h, [a, b]));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('failed');
    expect(result.detail).toContain('relation "orders" does not exist');
    // The failure stopped the run before the next target was touched.
    expect(h.callsFor(b)).toHaveLength(0);
    const timeline = result.timeline.map((e) => e.event);
    expect(timeline).toContain('silence expired');
    expect(timeline).toContain('window closed');
    expect(timeline.indexOf('silence expired')).toBeGreaterThan(timeline.indexOf('window opened'));
    expect((await windowFor(a)).suppressed).toBe(false);
    const told = h.notifications.filter((n) => n.incidentKey === handle.workflowId);
    expect(told.map((n) => `${n.event} ${n.severity}`)).toEqual(['trigger info', 'trigger critical']);
  });

  it('expires the silence and closes the window when cancelled mid-step', async () => {
    const target = uniqueTarget('pg');
    const inBackup = gate();
    const finishBackup = gate();
    h.script(target, {
      healthy: () => true,
      backup: async () => {
        inBackup.open();
        await finishBackup.wait;
      },
    });
    const handle = await start(maintenanceInput(h, [target]));
    await inBackup.wait;
    const expiredBefore = h.calls.filter((c) => c.activity === 'expireSilence').length;
    expect((await windowFor(target)).suppressed).toBe(true);
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    finishBackup.open();
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(h.calls.filter((c) => c.activity === 'expireSilence').length).toBe(expiredBefore + 1);
    expect((await windowFor(target)).suppressed).toBe(false);
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('cancelled');
    expect(status.timeline.map((e) => e.event)).toEqual(expect.arrayContaining(['silence expired', 'window closed', 'cancelled']));
    expect(h.callsFor(target, 'maintainTarget')).toHaveLength(0);
  });

  it('passes dryRun to the silence, backups, maintenance and notifications in a dry run', async () => {
    const target = uniqueTarget('pg');
    h.script(target, { healthy: () => true });
    const handle = await start(maintenanceInput(h, [target], { dryRun: true }));
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('completed');
    const mine = h.calls.filter(
      (c) =>
        c.target === target ||
        (c.activity === 'createSilence' && (c.arg as { comment: string }).comment.includes(handle.workflowId)) ||
        (c.activity === 'notify' && (c.arg as { incidentKey: string }).incidentKey === handle.workflowId) ||
        (c.activity === 'expireSilence' && c.arg === 'dry-run'),
    );
    const mutating = mine.filter((c) => c.activity !== 'verifyTarget');
    expect(mutating.map((c) => c.activity).sort()).toEqual(['backupTarget', 'createSilence', 'maintainTarget', 'notify', 'notify'].sort());
    expect(mutating.every((c) => c.dryRun === true)).toBe(true);
    // The dry run created no silence, so none is expired (Alertmanager would refuse the id).
    expect(result.timeline.find((e) => e.event === 'silence expired')?.detail).toBe('nothing to expire: the dry run created no silence');
    // A dry run opens no real window: incidents on the target are not suppressed by it.
    expect(result.timeline.map((e) => e.event)).not.toContain('window closed');
  });

  it('waits for the concurrency cap like an incident restart does', async () => {
    const target = uniqueTarget('pg');
    h.script(target, { healthy: () => true });
    const lease = await h.guard.acquireSlot({
      requestId: `test-hold-${target}`,
      holder: 'someone-else',
      target: 'other',
      action: 'restart',
      max: 1,
      leaseMs: 60_000,
    });
    expect(lease.acquired).toBe(true);
    const handle = await start(maintenanceInput(h, [target], { maxConcurrentDestructive: 1 }));
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'waiting for a slot'));
    expect(h.callsFor(target, 'backupTarget')).toHaveLength(0);
    await h.guard.releaseSlot(lease.leaseId!);
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('completed');
  });
});
