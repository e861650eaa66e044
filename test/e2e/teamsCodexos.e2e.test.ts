// CodexOS's runbooks (runbooks/examples/codexos) end to end on the stack, with the team's own config:
// the backend (the stack's demo container) is killed, Prometheus fires ServiceDown, Alertmanager posts,
// serviceDown keeps its last 100 log lines and restarts it; then the weekly maintenance runs from its
// schedule: PostgreSQL (the stack's) backed up and VACUUM (ANALYZE)d, every service checked, the
// week's availability read from Prometheus and the review sent to Slack.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { incidentWorkflowId, maintenanceWorkflowId } from '../../workflows/messages.js';
import { runThatActed } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { httpOk } from '../support/wait.js';
import { demoTeamFixture, events, expectOutcome, runSchedule } from './teamsSupport.js';

const incident = incidentWorkflowId('serviceDown', 'codexos-backend');

describe('CodexOS, the real loop and its weekly maintenance', () => {
  const fx = demoTeamFixture('codexos', [incident, maintenanceWorkflowId('codexos-weekly')]);

  it('Service Down (P0): the killed backend is restarted and verified, its last 100 log lines kept, the matrix not paged', async () => {
    const since = Date.now();
    dockerSync('kill', stack().demoContainer);

    const result = await runThatActed(fx.team.engine.client, incident, since, 'serviceDown to handle the outage');

    expectOutcome(result, 'recovered');
    expect(result.detail).toMatch(/^healthy after restart \d$/);
    const logs = result.timeline.find((e) => e.step === 'last-lines' && e.event === 'logs');
    expect(logs, events(result).join('\n')).toBeDefined();
    expect(logs!.detail).toMatch(/^\d+ of \d+ lines$/);
    // Started by the stack's ServiceDown through the local-stack binding, not the generic one (its
    // service label, "demo", names no CodexOS service).
    expect(result.timeline[0]).toMatchObject({ event: 'alert firing' });
    expect(await httpOk(`${stack().demoUrl}/health`)).toBe(true);
    for (const level of ['pager-duty', 'senior-pager', 'manager-pager', 'cto-pager'])
      expect(fx.receiver.requestsTo(`/${level}`), level).toHaveLength(0);
    await untilPromSeesUp('demo', 'prometheus sees the backend up again');
  }, 120_000);

  it('weekly maintenance from its schedule: PostgreSQL dumped and analysed, every service healthy, the review on Slack', async () => {
    fx.receiver.reset();
    const result = await runSchedule(fx.team.engine.client, 'codexos-weekly');

    expectOutcome(result, 'completed');
    expect(result.detail).toBe('backed up and analysed; healthy: codexos-backend, codexos-postgres, codexos-redis');
    const backedUp = result.timeline.find((e) => e.event === 'backed up')!;
    const file = /(\/\S+\.dump)/.exec(backedUp.detail ?? '')?.[1];
    expect(file, backedUp.detail).toBeDefined();
    expect(existsSync(file!)).toBe(true);
    expect(result.timeline.find((e) => e.event === 'maintained')!.detail).toMatch(/VACUUM \(ANALYZE\)/);
    const review = fx.receiver
      .requestsTo('/slack')
      .map((r) => (r.body as { text: string }).text)
      .find((t) => t.includes('CodexOS weekly checks'));
    expect(review, JSON.stringify(fx.receiver.requests.map((r) => r.path))).toBeDefined();
    // Slack's escaping applied to the figures (">" is markup there).
    expect(review).toMatch(/availability this week: (0\.\d+|1) &gt;= 0\.999 (holds|does not hold)/);
    expect(review).toContain('For people (not automated): dashboard review, alert rule validation');
  }, 180_000);
});
