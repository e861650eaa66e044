// GENESIS Orchestrator's runbooks (runbooks/examples/genesis) end to end on the stack, with the team's
// own config. The orchestrator is the stack's systemd unit inside the systemd host, where a host agent
// runs with the same config (started as a transient unit, as an operator would run it). Its unit is
// killed, Prometheus fires, Alertmanager posts, orchestratorDown has the agent restart it. Then the
// weekly maintenance runs from its schedule: the window's silence, a real mysqldump of MariaDB,
// OPTIMIZE and ANALYZE of the team's three tables, logrotate forced and run artefacts older than 30
// days deleted on the host by the agent, every service checked, the silence expired. Temporal's own
// reading of the team's cron strings (first Sunday, other Sundays, Mondays) is checked too.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRunbookByHand } from '../../triggers/cli/runbookRun.js';
import { incidentWorkflowId, maintenanceWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { holdAlertLoop, runThatActed } from '../support/alertLoop.js';
import { alertmanagerPayload, postToWebhook } from '../support/alertmanagerPayload.js';
import { dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack } from '../support/stack.js';
import { uniqueQueue } from '../support/temporal.js';
import { httpOk, until, untilHttpOk } from '../support/wait.js';
import {
  cleanSlate,
  events,
  expectOutcome,
  nextFirings,
  runSchedule,
  sentTo,
  startTeamEngine,
  teamConfigFor,
  writeAgentConfig,
  type TeamEngine,
} from './teamsSupport.js';

const host = 'remediation-host';
const agentUnit = 'remediation-agent-e2e-genesis.service';
const incident = incidentWorkflowId('orchestratorDown', 'genesis-orchestrator');
const tables = ['router_metrics', 'orchestration_runs', 'stability_tracking'];
const inHost = (...args: string[]) => dockerSync('exec', stack().systemdContainer, ...args);
const unitProperty = (name: string) => inHost('systemctl', 'show', '-p', name, '--value', stack().systemdUnit);

describe('GENESIS Orchestrator, the real loop through its host agent and its weekly maintenance', () => {
  let team: TeamEngine;
  let receiver: Receiver;
  let release: (() => void) | undefined;
  let db: mysql.Connection;
  const scratch = mkdtempSync(join(tmpdir(), 'genesis-e2e-'));

  /** Files the team's config names on the orchestrator's host: its log, its logrotate file, its run artefacts (one 40 days old). */
  function prepareHost(): void {
    inHost('mkdir', '-p', '/var/log/genesis', '/var/lib/genesis/orchestrator_runs/run-old', '/var/lib/genesis/orchestrator_runs/run-new');
    writeFileSync(
      join(scratch, 'orchestrator.log'),
      'INFO router ready\nERROR orchestration run 42 failed: budget exceeded\nINFO run 43 done\n',
    );
    writeFileSync(
      join(scratch, 'genesis-orchestrator'),
      '/var/log/genesis/orchestrator.log {\n  rotate 4\n  missingok\n  notifempty\n  copytruncate\n}\n',
    );
    dockerSync('cp', join(scratch, 'orchestrator.log'), `${stack().systemdContainer}:/var/log/genesis/orchestrator.log`);
    dockerSync('cp', join(scratch, 'genesis-orchestrator'), `${stack().systemdContainer}:/etc/logrotate.d/genesis-orchestrator`);
    inHost('chown', 'root:root', '/etc/logrotate.d/genesis-orchestrator');
    inHost('chmod', '0644', '/etc/logrotate.d/genesis-orchestrator');
    inHost('rm', '-f', '/var/log/genesis/orchestrator.log.1');
    inHost('touch', '-d', '40 days ago', '/var/lib/genesis/orchestrator_runs/run-old/result.json');
    inHost('touch', '/var/lib/genesis/orchestrator_runs/run-new/result.json');
  }

  beforeAll(async () => {
    release = await holdAlertLoop();
    receiver = await startReceiver();
    const s = stack();
    db = await mysql.createConnection({
      host: s.mysql.host,
      port: s.mysql.port,
      user: s.mysql.user,
      password: s.mysql.password,
      database: s.mysql.database,
    });
    for (const t of tables) {
      await db.query(`CREATE TABLE IF NOT EXISTS ${t} (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB`);
      await db.query(`INSERT INTO ${t} (note) VALUES ('a'), ('b'), ('c')`);
    }
    prepareHost();

    // The host agent, inside the systemd host, with the team's config: the repository is /opt/engine there.
    const queue = uniqueQueue('e2e-genesis');
    const agentConfig = teamConfigFor('genesis', {
      queue,
      receiver,
      dir: join(s.dir, 'e2e-genesis'),
      identity: 'hostAgent',
      runbooksDir: '/opt/engine/runbooks/examples/genesis/runbooks',
    });
    const file = writeAgentConfig(agentConfig, 'e2e-genesis');
    try {
      inHost('systemctl', 'stop', agentUnit);
    } catch {
      // None left by an interrupted run: the usual case.
    }
    inHost(
      'systemd-run',
      `--unit=${agentUnit}`,
      '--collect',
      '-p',
      'WorkingDirectory=/opt/engine',
      '--setenv=LOG_LEVEL=info',
      '/usr/local/bin/node',
      '--import',
      'tsx',
      'worker/main.ts',
      '--config',
      file,
      'agent',
      '--host',
      host,
    );
    team = await startTeamEngine('genesis', receiver, queue);
    await until('the GENESIS host agent polling its queue', 90_000, async () => {
      const d = await team.engine.client.workflowService.describeTaskQueue({
        namespace: s.temporalNamespace,
        taskQueue: { name: `${queue}-host-${host}` },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      return (d.pollers ?? []).length > 0 ? true : undefined;
    });
    inHost('systemctl', 'start', s.systemdUnit);
    await untilHttpOk(`${s.systemdDemoUrl}/health`, 'the orchestrator (demo-web) healthy');
    await untilPromSeesUp('demo-web');
    await cleanSlate(team.engine.client, [
      incident,
      maintenanceWorkflowId('genesis-weekly'),
      incidentWorkflowId('diagnoseHost', 'genesis-orchestrator'),
    ]);
  }, 600_000);

  afterAll(async () => {
    try {
      inHost('systemctl', 'start', stack().systemdUnit);
      inHost('systemctl', 'stop', agentUnit);
      inHost('rm', '-rf', '/var/log/genesis', '/var/lib/genesis', '/etc/logrotate.d/genesis-orchestrator');
    } catch {
      // Best effort: the stack's own health check restarts the unit if this failed.
    }
    for (const t of tables) await db?.query(`DROP TABLE IF EXISTS ${t}`).catch(() => {});
    await db?.end().catch(() => {});
    await team?.stop();
    await receiver?.close();
    rmSync(scratch, { recursive: true, force: true });
    release?.();
  });

  it('GenesisOrchestratorDown: on-call paged on PagerDuty and #genesis-critical at once, the killed unit restarted by the host agent and verified, both pages resolved', async () => {
    const pidBefore = unitProperty('MainPID');
    const since = Date.now();
    inHost('systemctl', 'kill', '--signal=SIGKILL', stack().systemdUnit);
    await until('the unit to be down', 10_000, async () => (unitProperty('ActiveState') !== 'active' ? true : undefined));

    const result = await runThatActed(team.engine.client, incident, since, 'orchestratorDown to handle the outage');

    expectOutcome(result, 'recovered');
    expect(result.detail).toMatch(/^healthy after restart [1-3]$/);
    expect(unitProperty('ActiveState')).toBe('active');
    expect(unitProperty('MainPID')).not.toBe(pidBefore);
    // The restart was the agent's, in its journal inside the host; the engine has no systemd here.
    expect(inHost('journalctl', '-u', agentUnit, '--no-pager', '-o', 'cat')).toMatch(/restart/i);
    expect(events(result).some((e) => e.startsWith('p0-procedure:'))).toBe(false);
    // "Automatic page to on-call engineer" and "automatic notification to #genesis-critical", before
    // the restart; the recovery resolves both.
    const pd = receiver.requestsTo('/pagerduty-oncall').map((r) => (r.body as { event_action: string }).event_action);
    expect(pd).toEqual(['trigger', 'resolve']);
    const slack = receiver.requestsTo('/slack-critical').map((r) => (r.body as { text: string }).text);
    expect(slack[0]).toMatch(/^\*P0: 'genesis-orchestrator' is down; restarting it/);
    expect(slack.at(-1)).toMatch(/^:white_check_mark: /);
    const kinds = events(result);
    expect(kinds.findIndex((e) => e.startsWith('page-on-call: paged'))).toBeLessThan(kinds.findIndex((e) => e.startsWith('restart:')));
    // Each paging channel is watched by the engine's own metrics (RemediationPagingFailing): none lost one.
    const metrics = await (await fetch(`${team.engine.webhookUrl}/metrics`)).text();
    expect(metrics).toMatch(/^notification_failures_total\{channel="pagerduty-oncall",kind="permanent"\} 0$/m);
    expect(metrics).toMatch(/^notification_failures_total\{channel="slack-critical",kind="exhausted"\} 0$/m);
    expect(await httpOk(`${stack().systemdDemoUrl}/health`)).toBe(true);
    await untilPromSeesUp('demo-web', 'prometheus sees the orchestrator up again');
  }, 150_000);

  it('the manual override: with alertname=~"Auto.*" silenced as the document says, the killed unit is left alone, on-call told as info', async () => {
    receiver.reset();
    const am = stack().alertmanagerUrl;
    const now = Date.now();
    // amtool silence add alertname="Auto.*" --duration="1h" --author="maintenance" --comment="Maintenance window"
    const res = await fetch(`${am}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        // What amtool sends for alertname="Auto.*": an equality matcher.
        matchers: [{ name: 'alertname', value: 'Auto.*', isRegex: false, isEqual: true }],
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + 10 * 60_000).toISOString(),
        createdBy: 'maintenance',
        comment: 'Maintenance window',
      }),
    });
    const { silenceID } = (await res.json()) as { silenceID: string };
    try {
      const since = Date.now();
      inHost('systemctl', 'kill', '--signal=SIGKILL', stack().systemdUnit);
      await until('the unit to be down', 10_000, async () => (unitProperty('ActiveState') !== 'active' ? true : undefined));
      const result = await runThatActed(team.engine.client, incident, since, 'orchestratorDown to stand down');
      expectOutcome(result, 'suppressed');
      expect(result.detail).toMatch(new RegExp(`^manual override: silence ${silenceID} by maintenance until .*: Maintenance window$`));
      expect(unitProperty('ActiveState')).not.toBe('active');
      // Told, not paged: the outage is real, and the people on the override hear of it as info.
      const pd = receiver
        .requestsTo('/pagerduty-oncall')
        .map((r) => r.body as { event_action: string; payload: { severity: string; summary: string } });
      expect(pd).toHaveLength(1);
      expect(pd[0]).toMatchObject({ event_action: 'trigger', payload: { severity: 'info' } });
      expect(pd[0]!.payload.summary).toMatch(/no automatic action \(suppressed\)$/);
    } finally {
      await fetch(`${am}/api/v2/silence/${silenceID}`, { method: 'DELETE' }).catch(() => undefined);
      inHost('systemctl', 'start', stack().systemdUnit);
    }
    await untilPromSeesUp('demo-web', 'prometheus sees the orchestrator up again');
  }, 150_000);

  it("SLAAvailabilityBreach: management told at once with what else Alertmanager has firing and the orchestrator's health; nothing touched", async () => {
    receiver.reset();
    const am = stack().alertmanagerUrl;
    // Another alert firing in Alertmanager meanwhile (bound to nothing: the engine leaves it alone).
    const probe = { alertname: 'RemediationTestProbe', instance: `genesis-sla-${Date.now()}`, severity: 'warning' };
    const probeAlert = (endsAt: number) =>
      fetch(`${am}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ labels: probe, startsAt: new Date().toISOString(), endsAt: new Date(endsAt).toISOString() }]),
      });
    expect((await probeAlert(Date.now() + 5 * 60_000)).status).toBe(200);
    const slaIncident = incidentWorkflowId('slaAvailabilityBreach', 'genesis-orchestrator');
    await cleanSlate(team.engine.client, [slaIncident]);
    const sla = {
      labels: { alertname: 'SLAAvailabilityBreach', severity: 'critical' },
      annotations: { summary: 'availability 99.2% < 99.9%' },
      fingerprint: 'genesis-sla-e2e',
    };
    try {
      const since = Date.now();
      const token = team.config.webhook.token!.reveal();
      expect((await postToWebhook(team.engine.webhookUrl, token, alertmanagerPayload([sla]))).status).toBe(200);
      const page = await until('the page to management', 60_000, async () => sentTo(receiver, 'email-management', 'SLA breach')[0]);
      const text = JSON.stringify(page.body);
      expect(text).toContain('genesis-orchestrator now: healthy');
      // Whatever else fires on the stack (an earlier test's ServiceDown) is listed too, the most severe first.
      expect(text).toMatch(/Firing in Alertmanager: \d+\\n/);
      expect(text).toMatch(new RegExp(`\\\\nRemediationTestProbe \\[warning\\] \\{instance=${probe.instance}\\} since `));
      expect(text).not.toContain('not read');

      // The breach clears: the pages are resolved and the run ends; it only read and told.
      expect((await postToWebhook(team.engine.webhookUrl, token, alertmanagerPayload([{ ...sla, status: 'resolved' }]))).status).toBe(200);
      const result = await runThatActed(team.engine.client, slaIncident, since, 'slaAvailabilityBreach to end');
      expect(
        events(result).some((e) => e.endsWith(': healthy')),
        events(result).join('; '),
      ).toBe(true);
      const firing = result.timeline.find((e) => e.event === 'alerts');
      expect(firing?.detail).toMatch(/^\d+ firing: .*RemediationTestProbe/);
      const acted = events(result).filter((e) => /restart|silence|command|http/.test(e));
      expect(acted).toEqual([]);
    } finally {
      await probeAlert(Date.now());
    }
  }, 150_000);

  it('Temporal reads the crons as the document means: weekly on other Sundays 02:00, deep maintenance on the first, SLA reviews on Mondays', async () => {
    const client = team.engine.client;
    for (const at of await nextFirings(client, 'genesis-weekly'))
      expect([at.getUTCDay(), at.getUTCHours(), at.getUTCDate() >= 8], at.toISOString()).toEqual([0, 2, true]);
    const deep = await nextFirings(client, 'genesis-monthly');
    expect(deep.length).toBeGreaterThan(0);
    for (const at of deep) expect([at.getUTCDay(), at.getUTCHours(), at.getUTCDate() <= 7], at.toISOString()).toEqual([0, 2, true]);
    for (const at of await nextFirings(client, 'genesis-sla-weekly')) expect([at.getUTCDay(), at.getUTCHours()]).toEqual([1, 10]);
    for (const at of await nextFirings(client, 'genesis-sla-monthly'))
      expect([at.getUTCDay(), at.getUTCHours(), at.getUTCDate() <= 7]).toEqual([1, 11, true]);
  });

  it('by hand, diagnoseHost reads the host through its agent (ports, log file, journal, MySQL) and reports what it could not read', async () => {
    receiver.reset();
    const t = {
      client: team.engine.client,
      address: stack().temporalAddress,
      call: <T>(fn: () => Promise<T>) => fn(),
      close: async () => {},
    };
    const started = await startRunbookByHand(t, team.config, {
      runbook: 'diagnoseHost',
      target: 'genesis-orchestrator',
      operator: 'genesis-oncall',
      severity: 'warning',
      dryRun: false,
    });
    const result = (await team.engine.client.workflow.getHandle(started.workflowId, started.runId).result()) as RunbookResult;

    expectOutcome(result, 'completed');
    const report = receiver
      .requestsTo('/slack-alerts')
      .map((r) => (r.body as { text: string }).text)
      .find((x) => x.includes('GENESIS troubleshooting'));
    expect(report, JSON.stringify(receiver.requests.map((r) => r.path))).toBeDefined();
    // nc -zv to MySQL, Redis and Temporal, from the orchestrator's host: the section is ok only when all three connect.
    expect(report).toMatch(/ok: tcp: ok +127\.0\.0\.1:13306/);
    // The application log file the config names, read by the agent: the one ERROR line.
    expect(report).toContain('orchestrator.log errors: 1; newest: ERROR orchestration run 42 failed: budget exceeded');
    // What the local host lacks is reported, not fatal: python3 and the environment file.
    expect(report).toMatch(/router_config\.json: .*python3/);
    expect(report).toMatch(/environment: .*(exit|No such file)/);
    expect(report).not.toContain('not read in time');
  }, 120_000);

  it('weekly maintenance from its schedule: silenced, MySQL dumped and its tables optimised, logs rotated and old artefacts deleted on the host, every service healthy', async () => {
    receiver.reset();
    const result = await runSchedule(team.engine.client, 'genesis-weekly');

    expectOutcome(result, 'completed');
    const timeline = result.timeline.map((e) => e.event);
    expect(timeline).toEqual(expect.arrayContaining(['window opened', 'backed up', 'maintained', 'silence expired']));
    expect(result.detail).toMatch(/healthy: genesis-orchestrator, genesis-mysql, genesis-redis$/);

    // mysqldump: the file is where the config says, its checksum the one reported.
    const dump = /mysqldump of database 'app' wrote (\d+) bytes to (\/\S+\.sql) in \S+ \(sha256 ([0-9a-f]{12})…\)/.exec(result.detail);
    expect(dump, result.detail).not.toBeNull();
    const [, bytes, file, sha] = dump!;
    expect(file!.startsWith(team.backupDir)).toBe(true);
    expect(statSync(file!).size).toBe(Number(bytes));
    const text = readFileSync(file!, 'utf8');
    expect(createHash('sha256').update(text).digest('hex').slice(0, 12)).toBe(sha);
    for (const t of tables) expect(text).toContain(`CREATE TABLE \`${t}\``);

    // OPTIMIZE and ANALYZE of exactly the team's three tables.
    const maintained = result.timeline.find((e) => e.event === 'maintained')!.detail!;
    for (const t of tables) expect(maintained).toContain(t);

    // On the host, by the agent: the log rotated, the 40-day-old artefact gone, the new one kept.
    expect(inHost('ls', '/var/log/genesis')).toMatch(/orchestrator\.log\.1/);
    expect(inHost('cat', '/var/log/genesis/orchestrator.log.1')).toContain('ERROR orchestration run 42 failed');
    const left = inHost('find', '/var/lib/genesis/orchestrator_runs', '-type', 'f');
    expect(left).toContain('run-new/result.json');
    expect(left).not.toContain('run-old/result.json');

    // The announcement went to Slack; the run's end resolved it. Nothing paged the on-call engineer.
    const slack = receiver.requestsTo('/slack-alerts').map((r) => (r.body as { text: string }).text);
    expect(slack[0]).toMatch(/^\*GENESIS weekly maintenance started\*/);
    expect(slack.at(-1)).toMatch(/^:white_check_mark: /);
    expect(receiver.requestsTo('/pagerduty-oncall')).toHaveLength(0);
  }, 240_000);
});
