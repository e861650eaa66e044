// The real loop: Prometheus scrapes the demo container, the ServiceDown rule fires, Alertmanager posts
// to the engine's webhook, the runbook verifies, restarts and verifies health. Nothing is simulated.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEngine } from '../../worker/engine.js';
import { incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { holdAlertLoop } from '../support/alertLoop.js';
import { stack } from '../support/stack.js';
import { httpOk as healthy, until } from '../support/wait.js';
import { startTestEngine } from './engine.js';

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();

async function promUp(job: string): Promise<number | undefined> {
  const r = await fetch(`${stack().prometheusUrl}/api/v1/query?query=${encodeURIComponent(`up{job="${job}"}`)}`);
  const body = (await r.json()) as { data: { result: Array<{ value: [number, string] }> } };
  const v = body.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

describe('service down, the real loop', () => {
  let engine: RunningEngine;
  let release: (() => void) | undefined;
  const id = incidentWorkflowId('serviceDown', 'demo');

  beforeAll(async () => {
    release = await holdAlertLoop();
    engine = await startTestEngine();
    // Start from a healthy demo service that Prometheus sees up, and no incident left running.
    docker('start', stack().demoContainer);
    await until('demo healthy', 30_000, async () => ((await healthy(`${stack().demoUrl}/health`)) ? true : undefined));
    await until('prometheus sees demo up', 30_000, async () => ((await promUp('demo')) === 1 ? true : undefined));
    await engine.client.workflow.getHandle(id).terminate('clean slate for the end-to-end test').catch(() => {});
  }, 600_000);

  afterAll(async () => {
    docker('start', stack().demoContainer);
    await engine?.stop();
    release?.();
  });

  async function runOnce(breakIt: () => void): Promise<RunbookResult> {
    const startedBefore = docker('inspect', '-f', '{{.State.StartedAt}}', stack().demoContainer);
    const since = Date.now();
    breakIt();
    // Alertmanager starts the run. A late repeat of the previous alert may start a run of its own that
    // rightly ends as a false alarm; the run we want is the one that did something.
    const seen = new Set<string>();
    const result = await until('a run that handles the outage', 90_000, async () => {
      const d = await engine.client.workflow.getHandle(id).describe();
      if (d.startTime.getTime() < since || seen.has(d.runId)) return undefined;
      const r = (await engine.client.workflow.getHandle(id, d.runId).result()) as RunbookResult;
      seen.add(d.runId);
      return r.outcome === 'false-alarm' ? undefined : r;
    });
    expect(docker('inspect', '-f', '{{.State.StartedAt}}', stack().demoContainer)).not.toBe(startedBefore);
    return result;
  }

  it('restarts a killed container and records the recovery; Prometheus sees it up again', async () => {
    const result = await runOnce(() => docker('kill', stack().demoContainer));
    expect(result.outcome).toBe('recovered');
    expect(result.timeline.some((e) => /restart/i.test(`${e.step} ${e.event}`))).toBe(true);
    expect(await healthy(`${stack().demoUrl}/health`)).toBe(true);
    await until('prometheus sees demo up again', 30_000, async () => ((await promUp('demo')) === 1 ? true : undefined));
    // The outcome reached the engine's own metrics through the workflow's sink.
    const metrics = await (await fetch(`${engine.webhookUrl}/metrics`)).text();
    expect(metrics).toMatch(/runbook_outcomes_total\{runbook="serviceDown",outcome="recovered"\} [1-9]/);
    expect(metrics).toMatch(/runbook_duration_seconds_count\{runbook="serviceDown",outcome="recovered"\} [1-9]/);
  }, 120_000);

  it('restarts a hung container that still runs but no longer answers', async () => {
    await until('prometheus sees demo up', 30_000, async () => ((await promUp('demo')) === 1 ? true : undefined));
    // SIGSTOP the web server: the container stays "running", the port accepts, nothing answers.
    const result = await runOnce(() => {
      const httpd = docker('top', stack().demoContainer, '-eo', 'pid,args').split('\n').find((l) => l.includes('httpd'));
      process.kill(Number(httpd!.trim().split(/\s+/)[0]), 'SIGSTOP');
    });
    expect(result.outcome).toBe('recovered');
    expect(await healthy(`${stack().demoUrl}/health`)).toBe(true);
  }, 120_000);
});
