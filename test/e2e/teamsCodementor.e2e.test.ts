// CodeMentor AI's runbooks (runbooks/examples/codementor) end to end on the stack, with the team's own
// config. The API is a Kubernetes deployment the engine cannot restart: when it goes down (the stack's
// demo service stands in for its health endpoints), Prometheus fires, Alertmanager posts, apiDown reads
// every health endpoint and the data stores, says the restart is a kubectl step, and pages; nothing is
// restarted. A person brings it back (here: the test starts the container), the alert clears, and the
// pages are resolved. Then the weekly maintenance runs from its schedule, over PostgreSQL's own
// connection (no kubectl).
import { describe, expect, it } from 'vitest';
import { incidentWorkflowId, maintenanceWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { containerActions, dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { until } from '../support/wait.js';
import { demoTeamFixture, expectOutcome, runSchedule, sentTo } from './teamsSupport.js';

const incident = incidentWorkflowId('apiDown', 'codementor-api');

describe('CodeMentor AI, the real loop without a restart, and its weekly maintenance', () => {
  const fx = demoTeamFixture('codementor', [incident, maintenanceWorkflowId('codementor-weekly')]);

  it('the API down: findings and the kubectl steps paged, nothing restarted; brought back by a person, the incident ends and its pages are resolved', async () => {
    const since = Date.now();
    dockerSync('kill', stack().demoContainer);

    // The page: Slack #alerts and e-mail at once (severity critical → the "high" policy).
    const page = await until('the on-call page', 90_000, async () =>
      fx.receiver.requestsTo('/email').find((r) => {
        const b = r.body as { event: string; title: string; text: string };
        return (
          b.event === 'trigger' &&
          b.title === "[critical] ServiceDown on 'codementor-api'" &&
          !b.text.includes('Not automated (Kubernetes, out of reach')
        );
      }),
    );
    const text = (page.body as { text: string }).text;
    expect(text).toMatch(/^'codementor-api' does not answer: http failed: /);
    expect(text).toMatch(/dependencies: codementor-postgres ok: .*codementor-redis ok: /);
    expect(text).toContain('Restart with kubectl (not automated: Kubernetes).');
    // The notification step said so before the page, on the same first level.
    const [k8s] = sentTo(fx.receiver, 'slack-alerts', 'its restart is a Kubernetes step');
    expect(k8s, JSON.stringify(fx.receiver.requests.map((r) => r.path))).toBeDefined();
    expect((k8s!.body as { text: string }).text).toContain('kubectl rollout restart deployment/codementor-server -n codementor-ai');

    // Nothing was restarted: the container is still down, and Docker saw no start since the kill.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(dockerSync('inspect', '-f', '{{.State.Running}}', stack().demoContainer)).toBe('false');
    expect(await containerActions(stack().demoContainer, since, ['start', 'restart'])).toBe('');

    // The person's kubectl rollout restart, here: the alert clears, the run ends, the pages are resolved.
    dockerSync('start', stack().demoContainer);
    const result = (await fx.team.engine.client.workflow.getHandle(incident).result()) as RunbookResult;
    expectOutcome(result, 'resolved-externally');
    expect(result.timeline.map((e) => e.event)).toEqual(expect.arrayContaining(['paged kubernetes-steps', 'paged on-call']));
    await until('the pages resolved', 30_000, async () =>
      fx.receiver.requestsTo('/email').some((r) => (r.body as { event: string }).event === 'resolve') &&
      fx.receiver.requestsTo('/slack-alerts').some((r) => (r.body as { text: string }).text.startsWith(':white_check_mark:'))
        ? true
        : undefined,
    );
    // The second level (15 minutes) was never reached.
    expect(fx.receiver.requestsTo('/webhook')).toHaveLength(0);
    await untilPromSeesUp('demo', 'prometheus sees the API up again');
  }, 150_000);

  it("weekly maintenance from its schedule, over the database's own connection: dumped, vacuumed, every service healthy, review on Slack", async () => {
    fx.receiver.reset();
    const result = await runSchedule(fx.team.engine.client, 'codementor-weekly');

    expectOutcome(result, 'completed');
    expect(result.detail).toBe('backed up, vacuumed; healthy: codementor-api, codementor-postgres, codementor-redis');
    const review = fx.receiver
      .requestsTo('/slack-alerts')
      .map((r) => (r.body as { text: string }).text)
      .find((t) => t.includes('CodeMentor weekly maintenance'));
    expect(review).toBeDefined();
    expect(review).toMatch(/backup \/\S+codementor-postgres-\d{8}T\d{6}Z\.dump \(\d+ bytes\); VACUUM \(ANALYZE\) on the whole database/);
    // The stand-in has no monitoring API: the step failed, the run carried on and says so.
    expect(review).toMatch(/error statistics: error-stats: GET http:\/\/127\.0\.0\.1:18080\/monitoring\/errors\/stats answered 404/);
    expect(review).toContain('old logs are in the pods (Kubernetes, out of reach here)');
  }, 180_000);
});
