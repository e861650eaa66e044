// Claude Code Manager's runbooks (runbooks/examples/claude-code-manager) end to end on the stack, with
// the team's own config: the app (the stack's demo container) hangs, Prometheus fires, Alertmanager
// posts, applicationDown checks PostgreSQL and Redis (the stack's, for real) before restarting it;
// then the weekly planned maintenance runs from its schedule: the silence in Alertmanager, the Slack
// announcement, a real pg_dump, the health checks, the silence expired and the announcement resolved.
import { existsSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decisionUpdate, incidentWorkflowId, maintenanceWorkflowId, statusQuery } from '../../workflows/messages.js';
import { runThatActed } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { httpOk, until } from '../support/wait.js';
import { demoTeamFixture, events, expectOutcome, runSchedule, sentTo } from './teamsSupport.js';

const incident = incidentWorkflowId('applicationDown', 'claude-manager');
const startedAt = () => dockerSync('inspect', '-f', '{{.State.StartedAt}}', stack().demoContainer);

interface AmSilence {
  id: string;
  status: { state: string };
  startsAt: string;
  comment: string;
  matchers: Array<{ name: string; value: string; isRegex: boolean }>;
}
const silences = async (): Promise<AmSilence[]> =>
  (await (await fetch(`${stack().alertmanagerUrl}/api/v2/silences`)).json()) as AmSilence[];

describe('Claude Code Manager, the real loop and its planned maintenance', () => {
  const fx = demoTeamFixture('claude-code-manager', [incident, maintenanceWorkflowId('ccm-weekly')]);

  it('ApplicationDown: a hung app is restarted once PostgreSQL and Redis are found healthy', async () => {
    const before = startedAt();
    const since = Date.now();
    // SIGSTOP the web server: the container stays "running", the port accepts, nothing answers.
    const httpd = dockerSync('top', stack().demoContainer, '-eo', 'pid,args')
      .split('\n')
      .find((l) => l.includes('httpd'));
    process.kill(Number(httpd!.trim().split(/\s+/)[0]), 'SIGSTOP');

    const result = await runThatActed(fx.team.engine.client, incident, since, 'applicationDown to handle the hung app');

    expectOutcome(result, 'recovered');
    // (Entries of a parallel group's children carry the step the group entered last.)
    const deps = result.timeline.find((e) => e.event === 'dependencies healthy');
    expect(deps, events(result).join('\n')).toBeDefined();
    expect(deps!.detail).toMatch(/^claude-manager-postgres ok: .*; claude-manager-redis ok: /);
    // The last 50 lines were read and the state taken before the restart, the document's step 2.
    const kinds = result.timeline.map((e) => e.event);
    expect(kinds.indexOf('logs')).toBeGreaterThan(-1);
    expect(kinds.indexOf('diagnosed')).toBeGreaterThan(-1);
    expect(Math.max(kinds.indexOf('logs'), kinds.indexOf('diagnosed'), kinds.indexOf('dependencies healthy'))).toBeLessThan(
      kinds.indexOf('restarting'),
    );
    expect(result.timeline.find((e) => e.event === 'logs')!.detail).toMatch(/^\d+ of \d+ lines$/);
    expect(events(result).some((e) => e.startsWith('page-dependency:'))).toBe(false);
    expect(startedAt()).not.toBe(before);
    expect(await httpOk(`${stack().demoUrl}/health`)).toBe(true);
    // P1 pages go to PagerDuty and Slack: none was needed.
    expect(fx.receiver.requestsTo('/pagerduty')).toHaveLength(0);
    await untilPromSeesUp('demo', 'prometheus sees the app up again');
  }, 120_000);

  it('planned maintenance from its schedule: silenced, announced on Slack, PostgreSQL dumped, held open for the work until an operator closes it, silence expired, every service healthy, announcement resolved', async () => {
    fx.receiver.reset();
    let silencedDuringWork: AmSilence | undefined;
    const result = await runSchedule(fx.team.engine.client, 'ccm-weekly', async (run) => {
      // "During maintenance" is people's work: the window stays open until an operator closes it.
      await until('the window held open for the work', 60_000, async () =>
        (await run.query(statusQuery)).pendingApproval?.step === 'work' ? true : undefined,
      );
      silencedDuringWork = (await silences()).find(
        (s) => s.comment.includes(maintenanceWorkflowId('ccm-weekly')) && s.status.state === 'active',
      );
      await run.executeUpdate(decisionUpdate, { args: [{ kind: 'approve', operator: 'infra-oncall', reason: 'changes made and tested' }] });
    });

    expectOutcome(result, 'completed');
    expect(silencedDuringWork, 'the window silence while people worked').toBeDefined();
    expect(events(result)).toEqual(
      expect.arrayContaining(['open-window: window opened', 'backup: backed up', 'close-window: silence expired']),
    );
    // The silences were removed before the services were checked, as the document orders it.
    const kinds = events(result);
    const firstCheck = kinds.findIndex((e) => e.startsWith('check:'));
    expect(firstCheck, kinds.join('\n')).toBeGreaterThan(kinds.indexOf('close-window: silence expired'));
    expect(kinds.indexOf('work: approved')).toBeLessThan(kinds.indexOf('close-window: silence expired'));
    expect(result.detail).toContain('window closed by infra-oncall');
    // The dump is on disk where the config says, and not empty.
    const file = /backed up (\S+) \((\d+) bytes\)/.exec(result.detail);
    expect(file, result.detail).not.toBeNull();
    expect(file![1]!.startsWith(fx.team.backupDir)).toBe(true);
    expect(existsSync(file![1]!) && statSync(file![1]!).size).toBe(Number(file![2]));
    expect(result.detail).toMatch(/healthy: claude-manager, claude-manager-postgres, claude-manager-redis$/);

    // The window's silence covered the three services' alerts, and is expired now.
    // This run's: an earlier run of the schedule left an expired one with the same comment.
    const silence = (await silences()).find(
      (s) => s.comment.includes(maintenanceWorkflowId('ccm-weekly')) && Date.parse(s.startsAt) >= Date.parse(result.startedAt) - 1_000,
    );
    expect(silence, 'the window silence').toBeDefined();
    expect(silence!.matchers).toEqual([expect.objectContaining({ name: 'service', isRegex: true, value: 'app-db|cache|demo' })]);
    expect(silence!.status.state).toBe('expired');

    // "Notify stakeholders via Slack", then the completion notification on the same channel.
    const slack = fx.receiver.requestsTo('/slack-oncall').map((r) => (r.body as { text: string }).text);
    expect(slack[0]).toMatch(/^\*Claude Code Manager maintenance 'ccm-weekly' started\*/);
    expect(slack.at(-1)).toMatch(/^:white_check_mark: .*ccm-weekly.*completed/s);
    expect(sentTo(fx.receiver, 'pagerduty', 'ccm-weekly')).toHaveLength(0);
  }, 180_000);
});
