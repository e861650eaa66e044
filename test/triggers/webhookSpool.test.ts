// The webhook with a spool, against a Temporal server of the test's own that it stops and starts:
// alerts are acknowledged while Temporal is away, survive the webhook's process going away, and
// reach Temporal once it is back.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createWebhookServer, webhookThreadSettings, type WebhookServer } from '../../triggers/alerts/alertmanager.js';
import { startWebhookThread } from '../../triggers/alerts/webhookThread.js';
import { createMetrics, type EngineMetrics } from '../../triggers/metrics/metrics.js';
import { openSpool, type Spool } from '../../triggers/alerts/spool.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { alertmanagerPayload, postToWebhook } from '../support/alertmanagerPayload.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { uniqueQueue } from '../support/temporal.js';
import { eventually, until } from '../support/wait.js';
import { triggerConfig, type TriggerFixture } from './support/config.js';

let server: DevServer;
let connection: Connection;
let client: Client;
let fx: TriggerFixture;
let dir: string;
const open: Array<{ webhook: WebhookServer; spool: Spool }> = [];

beforeAll(async () => {
  server = await startDevServer();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
  fx = triggerConfig({ taskQueue: uniqueQueue('webhook-spool'), temporalAddress: server.address, temporalNamespace: server.namespace });
  dir = mkdtempSync(join(tmpdir(), 'remediation-webhook-spool-'));
}, 90_000);

/** The test's own Temporal, killed and started again by the tests; a failed test leaves it running for the next. */
let serverKilled = false;
async function killServer() {
  serverKilled = true;
  await server.stop('SIGKILL');
}
async function restartServer() {
  await server.start();
  serverKilled = false;
}

afterEach(async () => {
  if (serverKilled) await restartServer();
});

afterAll(async () => {
  for (const o of open) {
    await o.webhook.close();
    await o.spool.close();
  }
  await connection?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Where the spool is kept and the batches answered: the engine's own thread, or one of the webhook's. */
type Mode = 'in the event loop' | 'on the webhook thread';

async function startWebhook(
  mode: Mode,
  at: string,
): Promise<{ url: string; webhook: WebhookServer; spool: Spool; metrics: EngineMetrics; log: string[] }> {
  const metrics = createMetrics({ processMetrics: false });
  const log: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void log.push(line) });
  const thread =
    mode === 'on the webhook thread'
      ? await startWebhookThread({
          settings: webhookThreadSettings(fx.config, at),
          logger,
          metrics,
        })
      : undefined;
  const spool = thread?.spool ?? (await openSpool(at));
  const webhook = createWebhookServer({
    config: fx.config,
    client,
    taskQueue: fx.config.temporal.taskQueue,
    metrics,
    logger,
    ready: async () => true,
    temporalTimeoutMs: 1_000,
    ...(thread ? { thread } : { spool }),
    spoolBackoffMs: { first: 100, max: 500 },
  });
  const { port } = await webhook.listen();
  open.push({ webhook, spool });
  return { url: `http://127.0.0.1:${port}`, webhook, spool, metrics, log };
}

const fire = (url: string, service: string) =>
  postToWebhook(
    url,
    fx.token,
    alertmanagerPayload([{ labels: { alertname: 'ServiceDown', service, severity: 'critical' }, fingerprint: `fp-${service}` }]),
  );

// Not found yet is a throw, which `until` counts as "not yet".
const started = (target: string) =>
  until(
    `the incident on ${target} in Temporal`,
    60_000,
    async () => (await client.workflow.getHandle(incidentWorkflowId('serviceDown', target)).describe()).status.name,
  );

describe.each<Mode>(['in the event loop', 'on the webhook thread'])('webhook with a spool, kept %s', (mode) => {
  it('acknowledges alerts while Temporal is down, keeps them across a restart, and delivers them once it is back', async () => {
    const at = mkdtempSync(join(dir, 'restart-'));
    const first = await startWebhook(mode, at);
    await killServer();

    const t0 = performance.now();
    const answer = await fire(first.url, fx.api);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(answer).toMatchObject({ status: 200, json: { status: 'queued', alerts: 1 } });
    // On the webhook thread, the engine's loop hears of the batch by a message that may come after
    // the answer has reached this client (the same loop): the gauge follows within moments.
    const pendingGauge = () => first.metrics.registry.getSingleMetricAsString('webhook_spool_pending_alerts');
    expect(await eventually(pendingGauge, (text) => / 1$/m.test(text), 2_000, 20)).toMatch(/ 1$/m);

    // The engine stops with the alert undelivered: it stays in the spool.
    await first.webhook.close();
    await first.spool.close();
    open.splice(0);

    await restartServer();
    const second = await startWebhook(mode, at);
    expect(await started(fx.api)).toBe('RUNNING');
    await second.webhook.drained();
    expect(second.spool.pendingAlerts()).toBe(0);

    // Temporal goes away again under a running webhook: it retries until Temporal is back.
    const logBefore = second.log.length;
    await killServer();
    expect((await fire(second.url, fx.web)).json).toMatchObject({ status: 'queued' });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(second.spool.pendingAlerts()).toBe(1);
    await restartServer();
    expect(await started(fx.web)).toBe('RUNNING');
    await second.webhook.drained();
    expect(await second.metrics.registry.getSingleMetricAsString('webhook_spool_pending_alerts')).toMatch(/ 0$/m);
    // Many failed tries during the outage, one line when it began and one when it ended. (A server
    // just started may turn the first tries away too: only this outage's lines are counted.)
    const said = (msg: string) => second.log.slice(logBefore).filter((l) => l.includes(msg)).length;
    expect(said('Temporal did not take spooled alerts')).toBe(1);
    expect(said('Temporal takes spooled alerts again')).toBe(1);
    expect(said('Temporal did not accept the alert')).toBe(0);
  }, 180_000);

  it('forwards an alert posted in the middle of a stream of batches while the stream goes on', async () => {
    const w = await startWebhook(mode, mkdtempSync(join(dir, 'stream-')));
    let streaming = true;
    let posted = 0;
    const refused: number[] = [];
    // Four senders back to back (alerts no runbook is bound to): a storm, in which deliveries wait for
    // the batches to be answered first (acceptanceFirst.ts, whose own tests pin when), yet do happen.
    const stream = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (streaming) {
          const fingerprint = `fp-stream-${posted++}`;
          const answer = await postToWebhook(
            w.url,
            fx.token,
            alertmanagerPayload([{ labels: { alertname: 'StreamNoise', severity: 'info' }, fingerprint }]),
          );
          if (answer.status !== 200) refused.push(answer.status);
        }
      }),
    );
    try {
      await until('a storm under way', 10_000, async () => posted > 200 || undefined);
      const answer = await postToWebhook(
        w.url,
        fx.token,
        alertmanagerPayload([{ labels: { alertname: 'DatabaseDown', severity: 'critical' }, fingerprint: 'fp-in-storm' }]),
      );
      expect(answer.status).toBe(200);
      const incident = incidentWorkflowId('databaseConnection', fx.db);
      expect(
        await until(
          `the incident on ${fx.db} in Temporal`,
          30_000,
          async () => (await client.workflow.getHandle(incident).describe()).status.name,
        ),
      ).toBe('RUNNING');
      expect(streaming).toBe(true);
    } finally {
      streaming = false;
      await stream;
    }
    expect(refused).toEqual([]);
    await w.webhook.drained();
    expect(w.spool.pendingAlerts()).toBe(0);
  }, 120_000);
});
