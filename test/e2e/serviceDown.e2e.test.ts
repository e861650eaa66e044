// The real loop: Prometheus scrapes the demo container, the ServiceDown rule fires, Alertmanager posts
// to the engine's webhook, the runbook verifies, restarts and verifies health. Nothing is simulated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEngine } from '../../worker/engine.js';
import { incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { holdAlertLoop, runThatActed } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { httpOk as healthy, untilHttpOk } from '../support/wait.js';
import { startTestEngine } from './engine.js';

describe('service down, the real loop', () => {
  let engine: RunningEngine;
  let release: (() => void) | undefined;
  const id = incidentWorkflowId('serviceDown', 'demo');

  beforeAll(async () => {
    release = await holdAlertLoop();
    engine = await startTestEngine();
    // Start from a healthy demo service that Prometheus sees up, and no incident left running.
    dockerSync('start', stack().demoContainer);
    await untilHttpOk(`${stack().demoUrl}/health`, 'demo healthy');
    await untilPromSeesUp('demo');
    await engine.client.workflow
      .getHandle(id)
      .terminate('clean slate for the end-to-end test')
      .catch(() => {});
  }, 600_000);

  afterAll(async () => {
    dockerSync('start', stack().demoContainer);
    await engine?.stop();
    release?.();
  });

  async function runOnce(breakIt: () => void): Promise<RunbookResult> {
    const startedBefore = dockerSync('inspect', '-f', '{{.State.StartedAt}}', stack().demoContainer);
    const since = Date.now();
    breakIt();
    const result = await runThatActed(engine.client, id, since, 'a run that handles the outage');
    expect(dockerSync('inspect', '-f', '{{.State.StartedAt}}', stack().demoContainer)).not.toBe(startedBefore);
    return result;
  }

  it('restarts a killed container and records the recovery; Prometheus sees it up again', async () => {
    const result = await runOnce(() => dockerSync('kill', stack().demoContainer));
    expect(result.outcome).toBe('recovered');
    expect(result.timeline.some((e) => /restart/i.test(`${e.step} ${e.event}`))).toBe(true);
    expect(await healthy(`${stack().demoUrl}/health`)).toBe(true);
    await untilPromSeesUp('demo', 'prometheus sees demo up again');
    // The outcome reached the engine's own metrics through the workflow's sink.
    const metrics = await (await fetch(`${engine.webhookUrl}/metrics`)).text();
    expect(metrics).toMatch(/runbook_outcomes_total\{runbook="serviceDown",outcome="recovered"\} [1-9]/);
    expect(metrics).toMatch(/runbook_duration_seconds_count\{runbook="serviceDown",outcome="recovered"\} [1-9]/);
    // The run's first reads were the ones the webhook took beside its start: asked with the same
    // arguments (the claim with the run's own request id), each taken as the run's own.
    for (const read of ['checkSuppression', 'verifyTarget', 'claimRestart'])
      expect(metrics).toMatch(new RegExp(`door_reads_total\\{read="${read}",outcome="taken"\\} [1-9]`));
  }, 120_000);

  it('restarts a hung container that still runs but no longer answers', async () => {
    await untilPromSeesUp('demo');
    // SIGSTOP the web server: the container stays "running", the port accepts, nothing answers.
    const result = await runOnce(() => {
      const httpd = dockerSync('top', stack().demoContainer, '-eo', 'pid,args')
        .split('\n')
        .find((l) => l.includes('httpd'));
      process.kill(Number(httpd!.trim().split(/\s+/)[0]), 'SIGSTOP');
    });
    expect(result.outcome).toBe('recovered');
    expect(await healthy(`${stack().demoUrl}/health`)).toBe(true);
  }, 120_000);
});
