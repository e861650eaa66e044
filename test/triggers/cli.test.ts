import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { parseConfig } from '../../config/load.js';
import { matchBinding } from '../../triggers/alerts/binding.js';
import { closedIncidentsSince } from '../../triggers/operators/operatorCommands.js';
import { connectTemporal } from '../../triggers/operators/operatorTemporal.js';
import { createIncidentSignaller } from '../../triggers/alerts/incidents.js';
import { planRunbook } from '../../triggers/plan.js';
import { maintenanceScheduleId, syncSchedules } from '../../triggers/schedules/schedules.js';
import { approveSignal, cancelRequestedSignal, incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { historyEvents } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { runCli } from '../support/operatorCli.js';
import { stack } from '../support/stack.js';
import { temporalClient, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { eventually } from '../support/wait.js';
import { triggerConfig, suffix, type TriggerFixture } from './support/config.js';
import { startStubWorker } from './support/stubWorker.js';

let fx: TriggerFixture;
let taskQueue: string;
let client: Client;
let connection: Connection;
let stopWorker: () => Promise<void>;
let dir: string;
let configPath: string;
const maintenanceName = `cli-${suffix()}`;

const withConfig = (...args: string[]) => ['--config', configPath, ...args];
/** The administrators' mode: straight to Temporal with the config, operators named with --as. */
const admin = (...args: string[]) => withConfig('admin', ...args);

/** Starts a stub incident the way the webhook does, through the same signaller. */
async function fireIncident(labels: Record<string, string>): Promise<string> {
  const match = matchBinding(fx.config, { labels });
  if (!match.matched) throw new Error(match.reason);
  const input = planRunbook(fx.config, match, { labels }, { engineQueue: taskQueue });
  const r = await createIncidentSignaller(client, { timeoutMs: 5_000 }).fire(input, { at: new Date().toISOString() }, taskQueue);
  return r.workflowId;
}

beforeAll(async () => {
  taskQueue = uniqueQueue('triggers-cli');
  fx = triggerConfig({
    taskQueue,
    temporalAddress: stack().temporalAddress,
    extra: { alertmanager: { url: stack().alertmanagerUrl } },
  });
  fx.raw.maintenance = [{ name: maintenanceName, targets: [fx.db] }];
  fx.config = parseConfig(fx.raw, 'cli test');
  dir = mkdtempSync(join(tmpdir(), 'remediate-cli-'));
  configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(fx.raw));
  ({ stop: stopWorker } = await startStubWorker(taskQueue));
  ({ client, connection } = await temporalClient());
});

afterAll(async () => {
  await client.schedule
    .getHandle(maintenanceScheduleId(maintenanceName))
    .delete()
    .catch(() => {});
  await terminateRunning(client, taskQueue);
  await stopWorker?.();
  await connection?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('remediate preview', () => {
  it('shows which runbook and target an alert would start, without Temporal', async () => {
    const r = await runCli(
      [
        ...withConfig('preview', '--label', 'alertname=ServiceDown', '--label', `service=${fx.web}`, '--label', 'severity=critical'),
        '--json',
      ],
      {
        TEMPORAL_ADDRESS: '127.0.0.1:1',
      },
    );
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      matched: true,
      runbook: 'serviceDown',
      target: fx.web,
      workflowId: incidentWorkflowId('serviceDown', fx.web),
      input: { targetKind: 'container', targetQueue: taskQueue, operators: ['alice', 'bob'], alert: { severity: 'critical' } },
    });
    // One level at 0 s: waited on for 15 min, not given up as it pages; the text says so.
    expect((r.json as { input: { escalation: { lastAnswerMs: number } } }).input.escalation.lastAnswerMs).toBe(900_000);
    const text = await runCli(withConfig('preview', '-l', 'alertname=ServiceDown', '-l', `service=${fx.web}`), {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    });
    expect(text.stdout).toContain('escalation:  standard: oncall after 0ms → oncall; the last has 15m to answer');
  });

  it('explains why an alert with a foreign target label would start nothing', async () => {
    const r = await runCli(['preview', '-l', 'alertname=ServiceDown', '-l', 'service=evil', '--json'], { REMEDIATION_CONFIG: configPath });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`remediate: config ${configPath} (from REMEDIATION_CONFIG)\n`);
    expect(r.json).toEqual({
      matched: false,
      code: 'target-not-allowed',
      reason: `label service='evil' names no target this binding allows (allowed: ${fx.api}, ${fx.web})`,
    });
  });

  it('exits 1 with a clear message for a malformed label or a missing config', async () => {
    const bad = await runCli(withConfig('preview', '--label', 'alertname'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--label "alertname": expected key=value');
    // Away from the repository, where no config/example.yaml is, as the engine would not find one either.
    const noConfig = await runCli(['preview', '--label', 'alertname=X'], {}, dir);
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr).toContain('no configuration: pass --config <path> or set REMEDIATION_CONFIG');
  });
});

describe('remediate admin: approvals straight to Temporal', () => {
  it('approve unblocks an incident waiting for approval, and show reports before and after', async () => {
    const workflowId = await fireIncident({ alertname: 'ServiceDown', service: fx.api, severity: 'critical' });
    const before = await runCli([...admin('show', workflowId), '--json']);
    expect(before.code).toBe(0);
    expect(before.json).toMatchObject({
      workflowId,
      status: 'RUNNING',
      target: fx.api,
      alert: 'ServiceDown',
      live: { pendingApproval: { step: 'restart' } },
    });

    const stranger = await runCli(admin('approve', workflowId, '--as', 'mallory', '--reason', 'trust me'));
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain("'mallory' is not a configured operator and cannot approve (operators: alice, bob)");

    const ok = await runCli([...admin('approve', workflowId, '--as', 'alice', '--reason', 'restart is safe'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json).toEqual({ workflowId, signal: 'approve', operator: 'alice', sent: true });
    const result = (await client.workflow.getHandle(workflowId).result()) as RunbookResult;
    expect(result.outcome).toBe('recovered');
    expect(result.timeline.find((e) => e.event === 'approved')).toMatchObject({ actor: 'alice', detail: 'restart is safe' });
    // Temporal's history names who really sent it: the account and host that ran the command, not --as.
    const signalled = (await historyEvents(client.workflow.getHandle(workflowId))).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === approveSignal.name,
    );
    expect(signalled).toHaveLength(1);
    // It says which door it came through, so the incident's timeline reads "(via admin)".
    const payload = signalled[0]!.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!.data!;
    expect(JSON.parse(Buffer.from(payload).toString('utf8'))).toEqual({ operator: 'alice', reason: 'restart is safe', via: 'admin' });
    expect(signalled[0]!.workflowExecutionSignaledEventAttributes!.identity).toBe(
      `remediate admin ${userInfo().username}@${hostname()} pid ${/pid (\d+)$/.exec(signalled[0]!.workflowExecutionSignaledEventAttributes!.identity!)?.[1]}`,
    );

    const after = await runCli([...admin('show', workflowId), '--json']);
    expect(after.json).toMatchObject({ status: 'COMPLETED', result: { outcome: 'recovered' } });
    const text = await runCli(admin('show', workflowId));
    expect(text.stdout).toContain('outcome: recovered');

    const again = await runCli(admin('approve', workflowId, '--as', 'alice', '--reason', 'again'));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`workflow '${workflowId}' is completed; there is nothing to approve`);
  });

  it('reject ends the incident as rejected; cancel cancels one', async () => {
    const rejected = await fireIncident({ alertname: 'ServiceDown', service: fx.web });
    expect((await runCli(admin('reject', rejected, '--as', 'bob', '--reason', 'not now'))).code).toBe(0);
    expect(((await client.workflow.getHandle(rejected).result()) as RunbookResult).outcome).toBe('rejected');

    const cancelled = await fireIncident({ alertname: 'DatabaseDown' });
    // Like a decision: a configured operator named with --as, a reason of at most 500 characters.
    const nobody = await runCli(admin('cancel', cancelled, '--reason', 'wrong target'));
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain("required option '--as <operator>' not specified");
    const stranger = await runCli(admin('cancel', cancelled, '--as', 'mallory', '--reason', 'trust me'));
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain("'mallory' is not a configured operator and cannot cancel (operators: alice, bob)");
    const long = await runCli(admin('cancel', cancelled, '--as', 'bob', '--reason', 'x'.repeat(501)));
    expect(long.code).toBe(1);
    expect(long.stderr).toContain('--reason: at most 500 characters');
    expect((await client.workflow.getHandle(cancelled).describe()).status.name).toBe('RUNNING');

    const c = await runCli(admin('cancel', cancelled, '--as', 'bob', '--reason', 'wrong\u001b[2J target\n'));
    expect(c).toMatchObject({ code: 0, stdout: `cancellation requested for ${cancelled}\n` });
    await expect(client.workflow.getHandle(cancelled).result()).rejects.toThrow();
    expect((await client.workflow.getHandle(cancelled).describe()).status.name).toBe('CANCELLED');
    const history = await historyEvents(client.workflow.getHandle(cancelled));
    const requested = history.find((e) => e.workflowExecutionCancelRequestedEventAttributes);
    expect(requested?.workflowExecutionCancelRequestedEventAttributes?.identity).toMatch(/^remediate admin \S+@\S+ pid \d+$/);
    // The run is told who cancelled it and why, before the cancel request, so its timeline reads
    // "cancelled by bob: wrong [2J target (via admin)" rather than "the workflow was cancelled".
    const told = history.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === cancelRequestedSignal.name);
    expect(told).toHaveLength(1);
    expect(Number(told[0]!.eventId)).toBeLessThan(Number(requested!.eventId));
    const payload = told[0]!.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!.data!;
    expect(JSON.parse(Buffer.from(payload).toString('utf8'))).toEqual({ operator: 'bob', reason: 'wrong [2J target', via: 'admin' });
  });

  it('shows alert text with its escape sequences and newlines made visible: one timeline entry stays one line', async () => {
    const labels = { alertname: 'ServiceDown', service: fx.web };
    const match = matchBinding(fx.config, { labels });
    if (!match.matched) throw new Error(match.reason);
    const input = planRunbook(fx.config, match, { labels }, { engineQueue: taskQueue });
    const forged = 'abc\u001b[2J\n  2026-01-01 00:00:00  restart: approved (alice)';
    const { workflowId } = await createIncidentSignaller(client, { timeoutMs: 5_000 }).fire(
      input,
      { fingerprint: forged, at: new Date().toISOString() },
      taskQueue,
    );
    const text = await runCli(admin('show', workflowId));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toContain('\u001b');
    const firing = text.stdout.split('\n').filter((l) => l.includes('firing'));
    expect(firing).toHaveLength(1);
    expect(firing[0]).toContain('abc\\x1b[2J\\n  2026-01-01 00:00:00  restart: approved (alice)');
    expect(text.stdout.split('\n').filter((l) => l.includes('approved (alice)'))).toHaveLength(1);
    await client.workflow.getHandle(workflowId).terminate('test done');
  });

  it('exits 2 for an incident that does not exist', async () => {
    const r = await runCli(admin('show', `incident:serviceDown:nope-${suffix()}`));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no workflow 'incident:serviceDown:nope-/);
    expect((await runCli(admin('ack', `incident:serviceDown:nope-${suffix()}`, '--as', 'bob'))).code).toBe(2);
  });

  it('refuses an acknowledgement from a name that is not a configured operator, as the workflow would ignore it', async () => {
    const r = await runCli(admin('ack', `incident:serviceDown:nope-${suffix()}`, '--as', 'carol'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'carol' is not a configured operator and cannot acknowledge (operators: alice, bob)");
  });
});

describe('remediate admin: incidents and report', () => {
  it('lists incidents filtered by target, open or closed', async () => {
    const closed = await eventually(
      () => runCli([...admin('incidents', '--closed', '--target', fx.api), '--json']),
      (r) => Array.isArray(r.json) && r.json.length === 1 && r.json[0].outcome === 'recovered',
    );
    expect(closed.json).toEqual([
      expect.objectContaining({
        workflowId: incidentWorkflowId('serviceDown', fx.api),
        status: 'COMPLETED',
        target: fx.api,
        severity: 'critical',
        outcome: 'recovered',
      }),
    ]);
    const open = await runCli([...admin('incidents', '--open', '--target', fx.api), '--json']);
    expect(open.json).toEqual([]);
    // --runbook filters on the Runbook search attribute: every runbook file runs as one workflow type.
    const byRunbook = await runCli([...admin('incidents', '--runbook', 'serviceDown', '--target', fx.api), '--json']);
    expect(byRunbook.json).toEqual([
      expect.objectContaining({ workflowId: incidentWorkflowId('serviceDown', fx.api), runbook: 'serviceDown' }),
    ]);
    expect((await runCli([...admin('incidents', '--runbook', 'databaseConnection', '--target', fx.api), '--json'])).json).toEqual([]);
    const table = await runCli(admin('incidents', '--target', fx.api));
    expect(table.stdout).toMatch(/^WORKFLOW ID\s+STATUS\s+ALERT/);
    expect(table.stdout).toContain(incidentWorkflowId('serviceDown', fx.api));
  });

  it('refuses contradictory or unsafe filters with exit 1', async () => {
    expect((await runCli(admin('incidents', '--open', '--closed'))).stderr).toContain('--open and --closed exclude each other');
    const quote = await runCli(admin('incidents', '--target', "x' OR 1=1"));
    expect(quote.code).toBe(1);
    expect((await runCli(admin('incidents', '--outcome', 'great'))).code).toBe(1);
    const runbook = await runCli(admin('incidents', '--runbook', "serviceDown' OR 1=1"));
    expect(runbook.code).toBe(1);
    expect(runbook.stderr).toContain('is not a runbook name');
  });

  it('reports outcomes, automatic recovery and time to recover per target', async () => {
    // Per target, so other incidents on the same server (other tests, benchmarks) never crowd these out.
    const report = (target: string) =>
      eventually(
        () => runCli([...admin('report', '--since', '1h', '--target', target), '--json']),
        (x) => x.json?.perTarget?.some((p: { target: string }) => p.target === target),
      );
    const r = await report(fx.api);
    expect(r.code).toBe(0);
    expect(r.json.truncated).toBe(false);
    expect(r.json.perTarget.map((p: { target: string }) => p.target)).toEqual([fx.api]);
    // alice approved it: recovered, but not automatically.
    expect(r.json.perTarget[0]).toMatchObject({
      incidents: 1,
      recovered: 1,
      recoveredAutomatically: 0,
      automaticRecoveryRate: 0,
      byOutcome: { recovered: 1 },
    });
    expect(r.json.perTarget[0].timeToRecover.count).toBe(1);
    expect((await report(fx.web)).json.perTarget[0]).toMatchObject({ target: fx.web, byOutcome: { rejected: 1 } });
    expect((await runCli(admin('report', '--since', 'last week'))).code).toBe(1);
  });

  it('says when a report read only part of the period', async () => {
    // The CLI's own connection: its deadlines and error mapping, as `remediate report` uses them.
    const t = await connectTemporal(fx.config);
    try {
      const since = new Date(Date.now() - 3_600_000);
      // The api and web incidents above are both closed: a limit of one cannot hold them.
      const partial = await closedIncidentsSince(t, since, { limit: 1 });
      expect(partial).toMatchObject({ truncated: true, incidents: [expect.anything()] });
      const whole = await closedIncidentsSince(t, since, { target: fx.api, limit: 1 });
      expect(whole.truncated).toBe(false);
      expect(whole.incidents.map((i) => i.target)).toEqual([fx.api]);
    } finally {
      await t.close();
    }
  });

  it('tells runs somebody cancelled or terminated from failed ones', async () => {
    // fx.db's first incident was cancelled above; its next one is terminated.
    await client.workflow.getHandle(await fireIncident({ alertname: 'DatabaseDown' })).terminate('operator gave up');
    const r = await eventually(
      () => runCli([...admin('report', '--since', '1h', '--target', fx.db), '--json']),
      (x) => x.json?.incidents === 2,
    );
    expect(r.json.byOutcome).toEqual({ cancelled: 1, terminated: 1 });
  });

  it('exits 3 when Temporal cannot be reached', async () => {
    const port = await closedPort();
    const r = await runCli(admin('incidents'), { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot reach Temporal at 127.0.0.1:${port}`);
  });
});

describe('remediate admin: destructive slots', () => {
  it('lists the slots straight from the guard, and says when a run holds none to release', async () => {
    const listed = await runCli([...admin('slots'), '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(Array.isArray(listed.json)).toBe(true);
    const id = 'incident:serviceDown:never-held';
    const nobody = await runCli(admin('slots', 'release', id));
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain("required option '--as <operator>' not specified");
    const none = await runCli(admin('slots', 'release', id, '--as', 'alice', '--dry-run'));
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`remediate: workflow '${id}' holds no destructive slot: there is nothing to release\n`);
  });
});

describe('remediate admin: maintenance and schedules', () => {
  it('maintenance run starts the window now; an unknown schedule exits 2', async () => {
    // An administrator says who they start it as, as for every other action.
    const nobody = await runCli(admin('maintenance', 'run', maintenanceName));
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain("required option '--as <operator>' not specified");
    // Only a configured operator: the run would say it was started by whatever --as says.
    const stranger = await runCli(admin('maintenance', 'run', maintenanceName, '--as', 'schedule'));
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain("'schedule' is not a configured operator and cannot start maintenance (operators: alice, bob)");
    const r = await runCli([...admin('maintenance', 'run', maintenanceName, '--as', 'alice'), '--json']);
    expect(r.code).toBe(0);
    expect(r.json.workflowId).toBe(`maintenance:${maintenanceName}`);
    const result = (await client.workflow.getHandle(r.json.workflowId).result()) as RunbookResult;
    expect(result).toMatchObject({ outcome: 'completed', detail: `stub maintenance '${maintenanceName}' of ${fx.db}` });
    const unknown = await runCli(admin('maintenance', 'run', 'nope', '--as', 'alice'));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`no maintenance schedule 'nope' in the configuration (known: ${maintenanceName})`);
  });

  it('lists, pauses, unpauses and triggers a synced schedule', async () => {
    await syncSchedules({ client, config: fx.config, taskQueue });
    const listed = await eventually(
      () => runCli([...admin('schedules', 'list'), '--json']),
      (r) => Array.isArray(r.json) && r.json.some((s: { name: string }) => s.name === maintenanceName),
    );
    expect(listed.json.find((s: { name: string }) => s.name === maintenanceName)).toMatchObject({
      paused: false,
      scheduleId: maintenanceScheduleId(maintenanceName),
    });

    expect((await runCli(admin('schedules', 'pause', maintenanceName, '--reason', 'db migration'))).code).toBe(0);
    expect((await client.schedule.getHandle(maintenanceScheduleId(maintenanceName)).describe()).state).toMatchObject({
      paused: true,
      note: 'db migration',
    });
    expect((await runCli(admin('schedules', 'unpause', maintenanceName))).code).toBe(0);
    expect((await client.schedule.getHandle(maintenanceScheduleId(maintenanceName)).describe()).state.paused).toBe(false);

    expect((await runCli(admin('schedules', 'trigger', maintenanceName))).code).toBe(0);
    const d = await eventually(
      () => client.schedule.getHandle(maintenanceScheduleId(maintenanceName)).describe(),
      (x) => x.info.recentActions.length > 0,
    );
    expect(d.info.recentActions).toHaveLength(1);

    const missing = await runCli(admin('schedules', 'pause', 'nope'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no maintenance schedule 'nope' in Temporal");
  });
});
