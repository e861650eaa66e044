// Maintenance, for real: the schedule the engine synced from config is triggered from the CLI; the
// window's silence appears in Alertmanager; while it is open the demo service dies, Prometheus fires
// ServiceDown, Alertmanager holds the alert as silenced and nothing is remediated; when the work is
// done the silence is expired, the held alert reaches the engine and the service is restarted.
// The window stays open long enough to watch because a transaction of the test's holds the lock
// VACUUM needs on the maintained table, as a long-running job would in production.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineConfigInput } from '../../config/schema.js';
import { maintenanceScheduleId } from '../../triggers/schedules/schedules.js';
import type { RunningEngine } from '../../worker/engine.js';
import { incidentWorkflowId, statusQuery, type RunbookResult } from '../../workflows/messages.js';
import { holdAlertLoop, runThatActed } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { writeConfig } from '../support/engineProcess.js';
import { remediate } from '../support/operatorCli.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { httpOk, until, untilHttpOk } from '../support/wait.js';
import { demoTarget, e2eConfigInput, startTestEngine } from './engine.js';

const schedule = 'e2e-window';
const table = 'e2e_maintenance';

function overrides(): Partial<EngineConfigInput> {
  const s = stack();
  return {
    targets: {
      demo: demoTarget(),
      'app-db': { kind: 'postgres', ...s.pg, labels: { service: 'app-db' }, maintenanceTables: [table] },
    },
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: ['demo'], runbook: 'serviceDown' }],
    // Far from any run of this test: only the CLI's trigger starts it.
    maintenance: [{ name: schedule, cron: '0 3 1 1 *', window: '5m', targets: ['demo', 'app-db'] }],
    backupDir: mkdtempSync(join(tmpdir(), 'remediation-e2e-backups-')),
  };
}

interface AmSilence {
  id: string;
  status: { state: string };
  comment: string;
  matchers: Array<{ name: string; value: string; isRegex: boolean }>;
}
interface AmAlert {
  labels: Record<string, string>;
  status: { state: string; silencedBy: string[] };
}
const am = async <T>(path: string): Promise<T> => (await (await fetch(`${stack().alertmanagerUrl}/api/v2/${path}`)).json()) as T;

describe('maintenance window on a schedule, the real loop', () => {
  let engine: RunningEngine;
  let release: (() => void) | undefined;
  let configFile: string;
  const blocker = new pg.Client(stack().pg);

  beforeAll(async () => {
    release = await holdAlertLoop();
    await blocker.connect();
    await blocker.query(`CREATE TABLE IF NOT EXISTS ${table} (id int primary key, note text)`);
    configFile = writeConfig(e2eConfigInput(overrides()));
    engine = await startTestEngine(overrides());
    dockerSync('start', stack().demoContainer);
    await untilHttpOk(`${stack().demoUrl}/health`, 'demo healthy');
    await untilPromSeesUp('demo');
    await engine.client.workflow
      .getHandle(incidentWorkflowId('serviceDown', 'demo'))
      .terminate('clean slate')
      .catch(() => {});
  }, 600_000);

  afterAll(async () => {
    await blocker.query('ROLLBACK').catch(() => {});
    await blocker.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await blocker.end().catch(() => {});
    dockerSync('start', stack().demoContainer);
    await engine?.client.schedule
      .getHandle(maintenanceScheduleId(schedule))
      .delete()
      .catch(() => {});
    await engine?.stop();
    release?.();
  });

  it('silences the window in Alertmanager, leaves a dying service alone during it, and remediates it once the silence is gone', async () => {
    const scheduleHandle = engine.client.schedule.getHandle(maintenanceScheduleId(schedule));
    // The schedule runs the maintenance runbook file through the interpreter.
    const action = (await scheduleHandle.describe()).action;
    expect(action).toMatchObject({ workflowType: 'runbook' });
    expect((action as { args?: Array<{ definition: { name: string } }> }).args?.[0]?.definition.name).toBe('maintenance');

    // A long transaction holds the lock VACUUM needs: the window stays open until the test commits.
    await blocker.query('BEGIN');
    await blocker.query(`LOCK TABLE ${table} IN SHARE UPDATE EXCLUSIVE MODE`);

    const triggered = await remediate(configFile, 'schedules', 'trigger', schedule);
    expect(triggered.code, `${triggered.stdout}${triggered.stderr}`).toBe(0);
    const run = await until(
      'the scheduled maintenance run',
      30_000,
      async () => (await scheduleHandle.describe()).info.runningActions[0]?.workflow,
    );
    const handle = engine.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId);
    await until('maintenance waiting on VACUUM of app-db', 60_000, async () =>
      (await handle.query(statusQuery)).step === 'maintain:app-db' ? true : undefined,
    );

    const silence = (await am<AmSilence[]>('silences')).find((s) => s.status.state === 'active' && s.comment.includes(run.workflowId));
    expect(silence, 'an active silence for the window').toBeDefined();
    expect(silence!.matchers).toEqual([expect.objectContaining({ name: 'service', value: 'app-db|demo', isRegex: true })]);

    // The service under maintenance dies: Prometheus fires, Alertmanager holds the alert.
    const killedAt = Date.now();
    dockerSync('kill', stack().demoContainer);
    await until('ServiceDown for demo held by the silence', 60_000, async () => {
      const alerts = await am<AmAlert[]>(
        `alerts?filter=${encodeURIComponent('alertname="ServiceDown"')}&filter=${encodeURIComponent('service="demo"')}`,
      );
      return alerts.some((a) => a.status.state === 'suppressed' && a.status.silencedBy.includes(silence!.id)) ? true : undefined;
    });
    // Several of Alertmanager's group intervals (2s) pass; still nobody touched the service.
    await new Promise((r) => setTimeout(r, 6_000));
    const incident = await engine.client.workflow
      .getHandle(incidentWorkflowId('serviceDown', 'demo'))
      .describe()
      .catch(() => undefined);
    expect(incident === undefined || incident.startTime.getTime() < killedAt, 'no incident started during the window').toBe(true);
    expect(dockerSync('inspect', '-f', '{{.State.Running}}', stack().demoContainer)).toBe('false');

    // The long job ends: VACUUM runs, the post-checks pass, the silence is expired.
    await blocker.query('COMMIT');
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.timeline.map((e) => e.event)).toEqual(
      expect.arrayContaining(['window opened', 'backed up', 'maintained', 'silence expired']),
    );
    expect((await am<AmSilence[]>('silences')).find((s) => s.id === silence!.id)?.status.state).toBe('expired');

    // Now the held alert goes out and the runbook does its job.
    const recovered = await runThatActed(
      engine.client,
      incidentWorkflowId('serviceDown', 'demo'),
      killedAt,
      'the demo service remediated after the window',
    );
    expect(recovered.outcome, recovered.detail).toBe('recovered');
    expect(await httpOk(`${stack().demoUrl}/health`)).toBe(true);
  }, 240_000);

  it('closes, from the CLI, the window and silence a terminated run left open, and not while the run runs', async () => {
    const scheduleHandle = engine.client.schedule.getHandle(maintenanceScheduleId(schedule));
    // A window an interrupted earlier run of this test left behind would refuse this one's runs.
    await remediate(configFile, 'maintenance', 'close', schedule, '--as', 'alice');
    await blocker.query('BEGIN');
    await blocker.query(`LOCK TABLE ${table} IN SHARE UPDATE EXCLUSIVE MODE`);
    const runOf = async (after: string | undefined) => {
      expect((await remediate(configFile, 'schedules', 'trigger', schedule)).code).toBe(0);
      return until('a new scheduled maintenance run', 30_000, async () => {
        const w = (await scheduleHandle.describe()).info.runningActions[0]?.workflow;
        return w && w.workflowId !== after ? w : undefined;
      });
    };
    const atVacuum = (run: { workflowId: string; firstExecutionRunId: string }) =>
      until('maintenance waiting on VACUUM of app-db', 60_000, async () =>
        (await engine.client.workflow.getHandle(run.workflowId, run.firstExecutionRunId).query(statusQuery)).step === 'maintain:app-db'
          ? true
          : undefined,
      );
    const run = await runOf(undefined);
    await atVacuum(run);
    const silenceOf = async (workflowId: string) =>
      (await am<AmSilence[]>('silences')).find((s) => s.status.state === 'active' && s.comment.includes(workflowId));
    const silence = await silenceOf(run.workflowId);
    expect(silence, 'an active silence for the window').toBeDefined();

    // While it runs: refused, naming the run to cancel instead; nothing closed.
    const refused = await remediate(configFile, 'maintenance', 'close', schedule, '--as', 'alice');
    expect(refused.code, refused.stdout).toBe(1);
    expect(refused.stderr).toContain(`is still running (workflow ${run.workflowId}): cancel it instead`);

    // Terminated (no cleanup runs): its silence and guard window stay, and the next run is refused its window.
    await engine.client.workflow.getHandle(run.workflowId).terminate('e2e: terminated mid-window');
    expect((await silenceOf(run.workflowId))?.id).toBe(silence!.id);
    await blocker.query('COMMIT');
    const blockedRun = await runOf(run.workflowId);
    const blocked = (await engine.client.workflow
      .getHandle(blockedRun.workflowId, blockedRun.firstExecutionRunId)
      .result()) as RunbookResult;
    expect(blocked.outcome).toBe('failed');
    expect(JSON.stringify(blocked.timeline)).toContain(`already running: ${run.workflowId} holds its window`);

    const windows = await remediate(configFile, 'maintenance', 'windows');
    expect(windows.code, windows.stderr).toBe(0);
    expect(windows.stdout).toMatch(new RegExp(`^${schedule} +${run.workflowId} +terminated +demo, app-db +\\d{4}-`, 'm'));
    expect(windows.stdout).toContain(`'${schedule}' is held by a run that ended: remediate maintenance close ${schedule}`);

    const dry = await remediate(configFile, 'maintenance', 'close', schedule, '--dry-run', '--as', 'alice');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would close window on demo, app-db`);
    expect(dry.stdout).toContain(`would expire silence ${silence!.id}`);
    // It was VACUUMing app-db when terminated: the slot is released with the window.
    expect(dry.stdout).toContain('would release destructive slot maintenance app-db');
    expect((await silenceOf(run.workflowId))?.id).toBe(silence!.id);

    const closed = await remediate(configFile, 'maintenance', 'close', schedule, '--as', 'alice', '--json');
    expect(closed.code, closed.stderr).toBe(0);
    expect(closed.json).toMatchObject({
      schedule,
      dryRun: false,
      slotsReleased: ['maintenance app-db'],
      silencesExpired: [silence!.id],
      silencesLeft: [],
    });
    expect(closed.json.holders).toEqual(
      expect.arrayContaining([expect.objectContaining({ workflowId: run.workflowId, status: 'terminated', targets: ['demo', 'app-db'] })]),
    );
    expect((await am<AmSilence[]>('silences')).find((s) => s.id === silence!.id)?.status.state).toBe('expired');

    // The schedule runs again, its window its own.
    const next = await runOf(blockedRun.workflowId);
    const result = (await engine.client.workflow.getHandle(next.workflowId, next.firstExecutionRunId).result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.timeline.map((e) => e.event)).toEqual(expect.arrayContaining(['window opened', 'silence expired']));
  }, 240_000);
});
