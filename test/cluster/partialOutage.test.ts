// What the engine's doors answer while part of the cluster is down, and that nothing is lost once it
// is back: an alert posted during the outage is either taken (200: Temporal has it) or refused with
// 503 and Retry-After (Alertmanager keeps it and retries), /readyz says which, and the alert ends as
// an incident that pages, after the same engine process carried on. Each part is killed (SIGKILL;
// PostgreSQL's immediate stop) and left down while the doors are asked, then `stack.sh cluster-up`.
// Only with TEMPORAL_MODE=cluster, and alone: every other user of the cluster sees the outage too.
import { randomBytes } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineConfigInput } from '../../config/schema.js';
import { alertmanagerPayload } from '../support/alertmanagerPayload.js';
import { clusterUp, crashClusterPostgres, killClusterService } from '../support/cluster.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { closedPort } from '../support/ports.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack, temporalMode } from '../support/stack.js';
import { temporalClient, temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { until } from '../support/wait.js';

interface Answer {
  status: number;
  ms: number;
  retryAfter: string | null;
  body: string;
}

async function ask(url: string, init: RequestInit = {}): Promise<Answer> {
  const t0 = Date.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, ms: Date.now() - t0, retryAfter: res.headers.get('retry-after'), body: (await res.text()).slice(0, 300) };
}

describe.skipIf(temporalMode() !== 'cluster')('the engine while part of the cluster is down', () => {
  const taskQueue = uniqueQueue('outage');
  const targets = ['history', 'matching', 'frontend', 'postgres'].map((p) => `outage-${p}-${randomBytes(3).toString('hex')}`);
  let engine: EngineProcess;
  let receiver: Receiver;
  let client: Client;
  let connection: Connection;

  beforeAll(async () => {
    await clusterUp();
    receiver = await startReceiver();
    ({ client, connection } = await temporalClient());
    // Targets that are down and cannot be restarted: each alert ends as an incident that pages on-call.
    const closed = `http://127.0.0.1:${await closedPort()}/health`;
    const config: EngineConfigInput = {
      temporal: { ...temporalConfigInput('engine'), taskQueue },
      webhook: { listen: '127.0.0.1:0', token: stack().webhookToken },
      targets: Object.fromEntries(targets.map((t) => [t, { kind: 'http' as const, health: { url: closed, timeout: '1s' } }])),
      bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets, runbook: 'serviceDown' }],
      channels: { pager: { type: 'webhook', url: `${receiver.url}/outage` } },
      escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['pager'] }] } } },
      guardrails: { restarts: { max: 1000, window: '1h' }, restartAttempts: 1, verifyDeadline: '2s', verifyInterval: '500ms' },
    };
    engine = await spawnEngine(config);
  }, 200_000);

  afterAll(async () => {
    await clusterUp().catch((err: unknown) => console.error(`cluster-up after the outage tests: ${String(err)}`));
    if (client) await terminateRunning(client, taskQueue, 'end of the partial-outage test');
    await engine?.stop(10_000);
    await connection?.close();
    await receiver?.close();
  }, 200_000);

  const post = (target: string) =>
    ask(`${engine.webhookUrl}/alertmanager`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack().webhookToken}` },
      body: JSON.stringify(
        alertmanagerPayload([{ labels: { alertname: 'ServiceDown', service: target, severity: 'critical' }, fingerprint: `fp-${target}` }]),
      ),
    });
  const paged = (target: string) =>
    receiver.requestsTo('/outage').some((r) => (r.body as { idempotencyKey: string }).idempotencyKey.includes(`:${target}:`));

  /**
   * Takes `part` down, asks the webhook and /readyz, brings the cluster back, posts again as
   * Alertmanager would (only if the first was refused) and waits for the page.
   */
  async function during(part: string, target: string, fault: () => Promise<void>, expected: { webhook: 200 | 503; ready: 200 | 503 }) {
    await fault();
    // Let the other services notice (a dead peer leaves the membership ring within seconds).
    await new Promise((r) => setTimeout(r, 3_000));
    const alert = await post(target);
    const ready = await ask(`${engine.webhookUrl}/readyz`);
    console.info(
      `${part} down: webhook ${alert.status} in ${alert.ms} ms (Retry-After ${alert.retryAfter}) ${alert.body}; /readyz ${ready.status} in ${ready.ms} ms ${ready.body}`,
    );
    const t0 = Date.now();
    await clusterUp();
    const backMs = Date.now() - t0;
    let retried: Answer | undefined;
    if (alert.status !== 200)
      retried = await until(
        `the webhook taking the retried alert after ${part} is back`,
        60_000,
        async () => {
          const a = await post(target);
          return a.status === 200 ? a : undefined;
        },
        1_000,
      );
    await until(`${target} paged after ${part} is back`, 120_000, async () => (paged(target) ? true : undefined), 500);
    console.info(
      `${part}: cluster back in ${backMs} ms; ${retried ? 'the retried alert was taken' : 'the alert taken during the outage'} paged ${Date.now() - t0} ms after the restart began`,
    );

    expect(alert.status, alert.body).toBe(expected.webhook);
    // Every refusal is bounded by the webhook's 5 s deadline on Temporal (6–8 s here, its calls and a
    // loaded machine included), never a hang, and tells Alertmanager when to retry.
    expect(alert.ms).toBeLessThan(12_000);
    if (alert.status === 503) expect(alert.retryAfter).toMatch(/^\d+$/);
    expect(ready.status, ready.body).toBe(expected.ready);
    expect(ready.ms).toBeLessThan(3_000);
    if (ready.status === 503) expect(JSON.parse(ready.body).reason).toBeTruthy();
    // The engine process outlived the outage: no restart needed.
    const running = await Promise.race([engine.exited.then(() => false), new Promise((r) => setTimeout(() => r(true), 100))]);
    expect(running, engine.output().slice(-3_000)).toBe(true);
  }

  it('history down: the webhook refuses with 503 within its deadline, /readyz says why; the retry after it is back pages', async () => {
    await during('history', targets[0]!, () => killClusterService('history'), { webhook: 503, ready: 503 });
  }, 300_000);

  it('matching down: the webhook still takes the alert (history holds it) and it runs once matching is back', async () => {
    await during('matching', targets[1]!, () => killClusterService('matching'), { webhook: 200, ready: 200 });
  }, 300_000);

  it('frontend down: the webhook refuses with 503 within its deadline, /readyz says why; the retry after it is back pages', async () => {
    await during('frontend', targets[2]!, () => killClusterService('frontend'), { webhook: 503, ready: 503 });
  }, 300_000);

  it('PostgreSQL down: the webhook refuses with 503 within its deadline, /readyz says why; the retry after it is back pages', async () => {
    await during('postgres', targets[3]!, () => crashClusterPostgres(), { webhook: 503, ready: 503 });
  }, 300_000);
});
