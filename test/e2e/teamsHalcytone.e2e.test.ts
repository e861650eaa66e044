// Halcytone's runbooks (runbooks/examples/halcytone) end to end on the stack, with the team's own
// config: the content generator (the stack's demo container) is killed, Prometheus fires, Alertmanager
// posts to the engine, and halcytoneServiceDown keeps its error lines and restarts it; then the weekly
// review runs from its Temporal schedule and sends the development team the week's figures, read from
// the real Prometheus. Temporal's own reading of the team's cron strings is checked too.
import { describe, expect, it } from 'vitest';
import { incidentWorkflowId, maintenanceWorkflowId } from '../../workflows/messages.js';
import { runThatActed } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { httpOk } from '../support/wait.js';
import { demoTeamFixture, events, expectOutcome, nextFirings, runSchedule, sentTo } from './teamsSupport.js';

const incident = incidentWorkflowId('halcytoneServiceDown', 'halcytone-content-generator');
const startedAt = () => dockerSync('inspect', '-f', '{{.State.StartedAt}}', stack().demoContainer);

describe('Halcytone, the real loop and its schedules', () => {
  const fx = demoTeamFixture('halcytone', [incident, maintenanceWorkflowId('halcytone-weekly')]);

  it('HalcytoneServiceDown: the killed content generator is restarted, its error lines kept, nobody paged', async () => {
    const before = startedAt();
    const since = Date.now();
    dockerSync('kill', stack().demoContainer);

    const result = await runThatActed(fx.team.engine.client, incident, since, 'halcytoneServiceDown to handle the outage');

    expectOutcome(result, 'recovered');
    expect(result.detail).toMatch(/^healthy after restart 1.*; \d+ error line\(s\) in the last 500 before the restart$/);
    const steps = events(result);
    // The log was read before the restart, as the document's "check application logs" comes first.
    expect(steps.findIndex((e) => e.startsWith('error-lines:'))).toBeGreaterThan(-1);
    expect(steps.findIndex((e) => e.startsWith('error-lines:'))).toBeLessThan(steps.findIndex((e) => e.startsWith('restart:')));
    expect(startedAt()).not.toBe(before);
    expect(await httpOk(`${stack().demoUrl}/health`)).toBe(true);
    // Recovered without a person: no level of the matrix was paged.
    expect(fx.receiver.requestsTo('/dev-team').filter((r) => JSON.stringify(r.body).includes('"event":"trigger"'))).toHaveLength(0);
    expect(fx.receiver.requestsTo('/manager-phone')).toHaveLength(0);
    await untilPromSeesUp('demo', 'prometheus sees the content generator up again');
  }, 120_000);

  it('Temporal reads the weekly and monthly crons as the team means: every Sunday 02:00, and the first Sunday 03:00 after it', async () => {
    const weekly = await nextFirings(fx.team.engine.client, 'halcytone-weekly');
    const monthly = await nextFirings(fx.team.engine.client, 'halcytone-monthly');
    expect(weekly.length).toBeGreaterThan(0);
    expect(monthly.length).toBeGreaterThan(0);
    for (const at of weekly) expect([at.getUTCDay(), at.getUTCHours()], at.toISOString()).toEqual([0, 2]);
    // A week apart: no Sunday skipped.
    for (let i = 1; i < weekly.length; i++) expect(weekly[i]!.getTime() - weekly[i - 1]!.getTime()).toBe(7 * 24 * 3_600_000);
    for (const at of monthly) expect([at.getUTCDay(), at.getUTCHours(), at.getUTCDate() <= 7], at.toISOString()).toEqual([0, 3, true]);
  });

  it("the weekly review runs from its schedule and tells the development team the week's figures from Prometheus", async () => {
    fx.receiver.reset();
    const result = await runSchedule(fx.team.engine.client, 'halcytone-weekly');
    expectOutcome(result, 'completed');
    const [report] = sentTo(fx.receiver, 'dev-team', 'Halcytone weekly review');
    expect(report, JSON.stringify(fx.receiver.requests.map((r) => r.path))).toBeDefined();
    const body = report!.body as { event: string; severity: string; text: string };
    expect(body).toMatchObject({ event: 'trigger', severity: 'info' });
    // Real figures: the stack's ServiceDown fired this week (the test above made sure of it), and
    // the demo service's availability is read from its `up` series.
    expect(body.text).toMatch(/kinds of alert that fired this week: [1-9]\d* < 5 (holds|does not hold);/);
    expect(body.text).toMatch(/availability: (0\.\d+|1) >= 0\.999 (holds|does not hold);/);
    expect(body.text).toContain('Loki deletes them after LOKI_RETENTION_PERIOD (30d)');
    // Read-only: no window, no silence, no restart.
    expect(events(result).some((e) => /window|silence|restart/.test(e))).toBe(false);
    // The run's end resolves the report it sent (nothing stays open on the team's channel).
    expect(sentTo(fx.receiver, 'dev-team', '"event":"resolve"')).toHaveLength(1);
  }, 120_000);
});
