import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { pino } from 'pino';
import { createWebhookServer, type WebhookServer } from '../../triggers/alerts/alertmanager.js';
import { createMetrics, type EngineMetrics } from '../../triggers/metrics/metrics.js';
import { incidentWorkflowId, statusQuery, type RunbookResult } from '../../workflows/messages.js';
import { alertmanagerPayload, postToWebhook, type AlertInit, type WebhookAnswer } from '../support/alertmanagerPayload.js';
import { silentServer } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { temporalClient, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { eventually } from '../support/wait.js';
import { triggerConfig, suffix, type TriggerFixture } from './support/config.js';
import { startStubWorker } from './support/stubWorker.js';

/** A notification of these alerts, each summarised as a test alert. */
const payload = (alerts: AlertInit[], overrides: Record<string, unknown> = {}) =>
  alertmanagerPayload(
    alerts.map((a) => ({ annotations: { summary: 'test alert' }, ...a })),
    overrides,
  );

let fx: TriggerFixture;
let taskQueue: string;
let client: Client;
let stackConnection: Connection;
let stopWorker: () => Promise<void>;
let server: WebhookServer;
let metrics: EngineMetrics;
let url: string;
let ready = true;
const logLines: string[] = [];

const post = (body: unknown, headers: Record<string, string> = {}): Promise<WebhookAnswer> => postToWebhook(url, fx.token, body, headers);

async function metric(name: string, labels = ''): Promise<number> {
  const text = await metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function executionsOf(workflowId: string): Promise<number> {
  let n = 0;
  for await (const _ of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n++;
  return n;
}

beforeAll(async () => {
  taskQueue = uniqueQueue('triggers-webhook');
  fx = triggerConfig({ taskQueue, temporalAddress: stack().temporalAddress });
  ({ stop: stopWorker } = await startStubWorker(taskQueue));
  ({ client, connection: stackConnection } = await temporalClient());
  metrics = createMetrics({ processMetrics: false });
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  server = createWebhookServer({ config: fx.config, client, taskQueue, metrics, logger, ready: async () => ready });
  const { port } = await server.listen();
  url = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.close();
  // Incidents left waiting by a failed test would otherwise run forever on a queue nobody polls.
  await terminateRunning(client, taskQueue);
  await stopWorker?.();
  await stackConnection?.close();
});

describe('Alertmanager webhook: who may post', () => {
  it('refuses a request without a bearer token, and one with the wrong token', async () => {
    const body = payload([{ labels: { alertname: 'ServiceDown', service: fx.api } }]);
    const none = await post(body, { Authorization: '' });
    expect(none.status).toBe(401);
    expect(none.json.error).toMatch(/missing bearer token/);
    const wrong = await post(body, { Authorization: `Bearer ${fx.token}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('invalid bearer token');
    const basic = await post(body, { Authorization: `Basic ${Buffer.from(`x:${fx.token}`).toString('base64')}` });
    expect(basic.status).toBe(401);
    await expect(client.workflow.getHandle(incidentWorkflowId('serviceDown', fx.api)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    expect(logLines.filter((l) => l.includes('webhook request refused') && l.includes('"status":401'))).toHaveLength(3);
  });
});

describe('Alertmanager webhook: what it accepts', () => {
  it('says the content type is wrong when the body is not declared JSON', async () => {
    const r = await post('{}', { 'Content-Type': 'text/plain' });
    expect(r).toEqual({ status: 400, json: { error: 'expected Content-Type application/json, got "text/plain"' } });
  });

  it('says the body is not valid JSON', async () => {
    const r = await post('{"version": "4", ');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/^body is not valid JSON: /);
  });

  it('names the payload version it understands', async () => {
    const r = await post(payload([], { version: '3' }));
    expect(r.status).toBe(400);
    expect(r.json.error).toBe(
      'invalid Alertmanager payload: version: expected "4" (the Alertmanager webhook payload version this receiver understands)',
    );
  });

  it('names the bad field of an alert', async () => {
    const body = payload([{ labels: { alertname: 'ServiceDown', service: fx.api } }]);
    (body.alerts[0] as any).status = 'pending';
    (body.alerts[0] as any).labels.port = 8080;
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(r.json.error).toContain(`alerts[0].status: Invalid enum value. Expected 'firing' | 'resolved', received 'pending'`);
    expect(r.json.error).toContain('alerts[0].labels.port: Expected string, received number');
  });

  it('refuses a body over webhook.maxBodyBytes with 413, before reading it', async () => {
    const big = JSON.stringify(payload([{ labels: { alertname: 'ServiceDown', service: fx.api, pad: 'x'.repeat(100 * 1024) } }]));
    const r = await post(big);
    expect(r.status).toBe(413);
    expect(r.json.error).toBe('body exceeds the limit of 65536 bytes (webhook.maxBodyBytes)');
  });

  it('cuts off a chunked body as soon as it passes the limit', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${url}/alertmanager`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${fx.token}`, 'Transfer-Encoding': 'chunked' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      // Keep sending well past the limit: the server must answer without waiting for the end.
      let sent = 0;
      const pump = () => {
        while (sent < 4 * 1024 * 1024) {
          sent += 16 * 1024;
          if (!req.write('x'.repeat(16 * 1024))) return void req.once('drain', pump);
        }
        req.end();
      };
      req.write('{"pad":"');
      pump();
    }).catch((err: Error) => ({ status: -1, body: err.message }));
    expect(status).toBe(413);
    expect(body).toContain('exceeds the limit');
  });
});

describe('Alertmanager webhook: alerts to runbooks', () => {
  it('starts one workflow for the same alert posted ten times: one Temporal call, the copies coalesced', async () => {
    const alert = { labels: { alertname: 'ServiceDown', service: fx.api, severity: 'critical' }, fingerprint: 'fp-api-1' };
    const startedBefore = await metric('runbooks_started_total', '{runbook="serviceDown"}');
    const coalescedBefore = await metric('alerts_coalesced_total', '{runbook="serviceDown"}');
    // One notification delivered ten times (the same startsAt), as an Alertmanager HA pair or a
    // retried batch delivers it.
    const body = payload([alert]);
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(body)));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(responses.reduce((n, r) => n + r.json.started, 0)).toBe(1);
    expect(responses.reduce((n, r) => n + r.json.coalesced, 0)).toBe(9);

    const workflowId = incidentWorkflowId('serviceDown', fx.api);
    const handle = client.workflow.getHandle(workflowId);
    const d = await handle.describe();
    // The serviceDown runbook file, run by the interpreter.
    expect(d.type).toBe('runbook');
    expect(d.taskQueue).toBe(taskQueue);
    expect(d.searchAttributes).toMatchObject({
      RemediationTarget: [fx.api],
      AlertName: ['ServiceDown'],
      Severity: ['critical'],
      Runbook: ['serviceDown'],
    });
    expect(
      await eventually(
        () => executionsOf(workflowId),
        (n) => n === 1,
      ),
    ).toBe(1);
    // The copies never reached the workflow: one signal in its history, the one it started with.
    const signals = (await handle.fetchHistory()).events!.filter((e) => e.workflowExecutionSignaledEventAttributes);
    expect(signals).toHaveLength(1);
    expect((await metric('runbooks_started_total', '{runbook="serviceDown"}')) - startedBefore).toBe(1);
    expect((await metric('alerts_coalesced_total', '{runbook="serviceDown"}')) - coalescedBefore).toBe(9);
  });

  it('folds another alert for the same target into the running workflow as a signal', async () => {
    const labels = { alertname: 'ServiceDown', service: fx.api, severity: 'critical' };
    const foldedBefore = await metric('alerts_folded_total', '{runbook="serviceDown"}');
    // The incident the test above started is still open. A different fingerprint (another alert
    // naming the same target) is no copy: Temporal is asked, and the run hears of it.
    expect((await post(payload([{ labels, fingerprint: 'fp-api-2' }]))).json).toMatchObject({ started: 0, folded: 1, coalesced: 0 });
    const handle = client.workflow.getHandle(incidentWorkflowId('serviceDown', fx.api));
    expect(
      (
        await eventually(
          () => handle.query(statusQuery),
          (s) => s.alertsFolded === 1,
        )
      ).alertsFolded,
    ).toBe(1);
    expect((await metric('alerts_folded_total', '{runbook="serviceDown"}')) - foldedBefore).toBe(1);
  });

  it('signals the running workflow when the alert resolves, and it finishes', async () => {
    const labels = { alertname: 'DatabaseDown', service: 'anything' };
    const fired = await post(payload([{ labels, fingerprint: 'fp-db' }]));
    expect(fired.json).toMatchObject({ started: 1 });
    const resolved = await post(payload([{ labels, fingerprint: 'fp-db', status: 'resolved' }]));
    expect(resolved).toMatchObject({ status: 200, json: { resolved: 1, resolvedWithoutRun: 0 } });
    const result = (await client.workflow.getHandle(incidentWorkflowId('databaseConnection', fx.db)).result()) as RunbookResult;
    expect(result.outcome).toBe('resolved-externally');
    expect(result.timeline.map((e) => e.event)).toEqual(['firing', 'resolved']);
  });

  it('accepts a resolved alert whose incident is already over, and counts it', async () => {
    const before = await metric('alerts_resolved_without_run_total', '{runbook="serviceDown"}');
    const r = await post(payload([{ labels: { alertname: 'ServiceDown', service: fx.web }, status: 'resolved' }]));
    expect(r).toMatchObject({ status: 200, json: { resolved: 0, resolvedWithoutRun: 1 } });
    expect((await metric('alerts_resolved_without_run_total', '{runbook="serviceDown"}')) - before).toBe(1);
  });

  it('starts nothing for an alert whose label names a target the binding does not allow', async () => {
    const evil = `evil-${suffix()}`;
    const before = await metric('alerts_unmatched_total', '{reason="target-not-allowed"}');
    const r = await post(payload([{ labels: { alertname: 'ServiceDown', service: evil }, fingerprint: 'fp-evil' }]));
    expect(r.status).toBe(200);
    expect(r.json.started).toBe(0);
    expect(r.json.unmatched).toEqual([
      {
        alertname: 'ServiceDown',
        fingerprint: 'fp-evil',
        reason: `label service='${evil}' names no target this binding allows (allowed: ${fx.api}, ${fx.web})`,
      },
    ]);
    await expect(client.workflow.getHandle(incidentWorkflowId('serviceDown', evil)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    expect((await metric('alerts_unmatched_total', '{reason="target-not-allowed"}')) - before).toBe(1);
    expect(logLines.some((l) => l.includes('"decision":"unmatched"') && l.includes(evil))).toBe(true);
  });

  it('handles a mixed batch: unbound alerts are counted, bound ones started', async () => {
    const r = await post(
      payload([{ labels: { alertname: 'NobodyCares' } }, { labels: { alertname: 'ServiceDown', service: fx.web }, fingerprint: 'fp-web' }]),
    );
    expect(r).toMatchObject({
      status: 200,
      json: { alerts: 2, started: 1, unmatched: [{ alertname: 'NobodyCares', reason: "no binding for alert 'NobodyCares'" }] },
    });
    expect((await client.workflow.getHandle(incidentWorkflowId('serviceDown', fx.web)).describe()).status.name).toBe('RUNNING');
    // Answered: nothing of it waits to be started, and one batch is no storm to start first.
    expect(server.waitingToStart()).toBe(0);
    expect(server.startsFirst()).toBe(false);
  });

  it('never writes the webhook token to its log', () => {
    expect(logLines.length).toBeGreaterThan(5);
    expect(logLines.join('\n')).not.toContain(fx.token);
  });
});

describe('Alertmanager webhook: when Temporal is unreachable', () => {
  it('answers 503 within the deadline, so Alertmanager retries', async () => {
    // A port that was just free: nothing listens there.
    const connection = Connection.lazy({ address: `127.0.0.1:${await closedPort()}` });
    const down = createWebhookServer({
      config: fx.config,
      client: new Client({ connection, namespace: fx.config.temporal.namespace }),
      taskQueue,
      metrics: createMetrics({ processMetrics: false }),
      logger: pino({ level: 'silent' }),
      ready: async () => false,
      temporalTimeoutMs: 1_500,
    });
    const { port } = await down.listen();
    const body = JSON.stringify(payload([{ labels: { alertname: 'ServiceDown', service: fx.api } }]));
    const send = () =>
      fetch(`http://127.0.0.1:${port}/alertmanager`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${fx.token}` },
        body,
      });
    try {
      const began = Date.now();
      const res = await send();
      const elapsed = Date.now() - began;
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('10');
      expect(((await res.json()) as { error: string }).error).toMatch(/^Temporal did not accept 1 of 1 alert\(s\)/);
      expect(elapsed).toBeLessThan(5_000);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
      // A delivery Temporal never accepted is not remembered: the retry asks again, and fails again.
      expect((await send()).status).toBe(503);
    } finally {
      await down.close();
      await connection.close();
    }
  });
});

describe('Alertmanager webhook: a large batch while Temporal is unreachable', () => {
  const deadlineMs = 1_500;
  const batchOf = (n: number, tag: string) =>
    JSON.stringify(
      payload(
        Array.from({ length: n }, (_, i) => ({ labels: { alertname: 'ServiceDown', service: fx.api }, fingerprint: `fp-${tag}-${i}` })),
      ),
    );

  /** A webhook whose Temporal is at `port`, and the number of signal-with-start calls it has begun. */
  async function webhookOn(port: number) {
    const connection = Connection.lazy({ address: `127.0.0.1:${port}` });
    let calls = 0;
    const counting = new Client({
      connection,
      namespace: fx.config.temporal.namespace,
      interceptors: { workflow: [{ signalWithStart: (input, next) => (calls++, next(input)) }] },
    });
    const metrics = createMetrics({ processMetrics: false });
    const down = createWebhookServer({
      config: fx.config,
      client: counting,
      taskQueue,
      metrics,
      logger: pino({ level: 'silent' }),
      ready: async () => false,
      temporalTimeoutMs: deadlineMs,
    });
    const { port: webhookPort } = await down.listen();
    return {
      url: `http://127.0.0.1:${webhookPort}/alertmanager`,
      calls: () => calls,
      waiting: () => down.waitingToStart(),
      startsFirst: () => down.startsFirst(),
      metrics: () => metrics.registry.metrics(),
      close: async () => {
        await down.close();
        await connection.close();
      },
    };
  }

  it('answers 503 once the first call finds Temporal unreachable, and begins no call after', async () => {
    const hook = await webhookOn(await closedPort());
    try {
      const began = Date.now();
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${fx.token}` },
        body: batchOf(40, 'outage'),
      });
      const elapsed = Date.now() - began;
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('10');
      expect(((await res.json()) as { error: string }).error).toMatch(/^Temporal did not accept 40 of 40 alert\(s\)/);
      // One round of calls, each given up at its deadline; before, five rounds one after another (7.5 s).
      expect(elapsed).toBeLessThan(2 * deadlineMs + 1_000);
      const atAnswer = hook.calls();
      expect(atAnswer).toBeGreaterThan(0);
      expect(atAnswer).toBeLessThanOrEqual(8);
      // Waiting to start: only the calls still in flight; the alerts never begun are given back.
      expect(hook.waiting()).toBeLessThanOrEqual(atAnswer);
      await new Promise((r) => setTimeout(r, 2 * deadlineMs));
      expect(hook.calls()).toBe(atAnswer);
      expect(hook.waiting()).toBe(0);
    } finally {
      await hook.close();
    }
  });

  it('stops the batch when Alertmanager hangs up, and begins no call after', async () => {
    const temporal = await silentServer();
    const hook = await webhookOn(temporal.port);
    try {
      const hangUp = new AbortController();
      const answered = fetch(hook.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${fx.token}` },
        body: batchOf(40, 'gone'),
        signal: hangUp.signal,
      }).catch((err: Error) => err.name);
      // The first eight calls in flight, waiting on a Temporal that never answers.
      await eventually(
        async () => hook.calls(),
        (n) => n === 8,
        5_000,
        20,
      );
      const atHangUp = hook.calls();
      // The whole batch waits to be started while its first calls hang.
      expect(hook.waiting()).toBe(40);
      // More than one round of calls waits: the engine's worker would start them before acting.
      expect(hook.startsFirst()).toBe(true);
      hangUp.abort();
      expect(await answered).toBe('AbortError');
      // Past the deadline of the calls in flight: before, the next eight would have begun by now.
      await new Promise((r) => setTimeout(r, deadlineMs + 1_000));
      expect(hook.calls()).toBe(atHangUp);
      expect(hook.waiting()).toBe(0);
      expect(hook.startsFirst()).toBe(false);
      // Counted, as nginx logs a request whose client went first: 499, answer never delivered.
      expect(await hook.metrics()).toMatch(/webhook_request_duration_seconds_count\{code="499"\} 1\n/);
    } finally {
      await hook.close();
      await temporal.close();
    }
  });

  it('answers 503 at the batch deadline when Temporal takes each alert, but too slowly for the whole batch', async () => {
    // A Temporal that answers every signal-with-start, half a second late: 40 alerts take 2.5 s.
    let calls = 0;
    const connection = Connection.lazy({ address: `127.0.0.1:${await closedPort()}` });
    const slow = new Client({
      connection,
      namespace: fx.config.temporal.namespace,
      interceptors: {
        workflow: [{ signalWithStart: () => (calls++, new Promise<string>((resolve) => setTimeout(() => resolve('run-slow'), 500))) }],
      },
    });
    const hook = createWebhookServer({
      config: fx.config,
      client: slow,
      taskQueue,
      metrics: createMetrics({ processMetrics: false }),
      logger: pino({ level: 'silent' }),
      ready: async () => true,
      batchTimeoutMs: 1_000,
    });
    const hookUrl = `http://127.0.0.1:${(await hook.listen()).port}`;
    try {
      const began = Date.now();
      const r = await postToWebhook(hookUrl, fx.token, JSON.parse(batchOf(40, 'slow')));
      expect(r.status).toBe(503);
      expect(r.json.error).toMatch(/^Temporal did not accept \d+ of 40 alert\(s\) within the batch deadline of 1000 ms$/);
      expect(Date.now() - began).toBeLessThan(2_000);
      const atAnswer = calls;
      expect(atAnswer).toBeLessThan(40);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(calls).toBe(atAnswer);
      expect(hook.waitingToStart()).toBe(0);
    } finally {
      await hook.close();
      await connection.close();
    }
  });

  it('keeps what a stopped batch delivered: its retry is answered 200 and the incident hears each alert once', async () => {
    // Targets of its own: the incident starts in this test, so its history holds only these alerts.
    const own = triggerConfig({ taskQueue, temporalAddress: stack().temporalAddress });
    let outage = true;
    const flaky = new Client({
      connection: stackConnection,
      namespace: own.config.temporal.namespace,
      interceptors: {
        workflow: [
          {
            signalWithStart: (input, next) => {
              const { fingerprint } = input.signalArgs[0] as { fingerprint?: string };
              // What the gRPC client reports for a frontend it cannot reach, for the batch's first alert only.
              if (outage && fingerprint === 'fp-kept-0')
                return Promise.reject(Object.assign(new Error('14 UNAVAILABLE: no connection established'), { code: 14 }));
              return next(input);
            },
          },
        ],
      },
    });
    const hook = createWebhookServer({
      config: own.config,
      client: flaky,
      taskQueue,
      metrics: createMetrics({ processMetrics: false }),
      logger: pino({ level: 'silent' }),
      ready: async () => true,
    });
    const hookUrl = `http://127.0.0.1:${(await hook.listen()).port}`;
    const body = payload(
      Array.from({ length: 20 }, (_, i) => ({ labels: { alertname: 'ServiceDown', service: own.api }, fingerprint: `fp-kept-${i}` })),
    );
    const handle = client.workflow.getHandle(incidentWorkflowId('serviceDown', own.api));
    try {
      expect((await postToWebhook(hookUrl, own.token, body)).status).toBe(503);
      outage = false;
      const retry = await postToWebhook(hookUrl, own.token, body);
      expect(retry.status).toBe(200);
      expect(retry.json.alerts).toBe(20);
      expect(
        await eventually(
          () => executionsOf(handle.workflowId),
          (n) => n === 1,
        ),
      ).toBe(1);
      const firings = async () =>
        (await handle.fetchHistory()).events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'alertFiring')
          .length;
      // The history can trail the accepted signals by a moment; once all are there, there is no more.
      await eventually(firings, (n) => n >= 20);
      expect(await firings()).toBe(20);
    } finally {
      await hook.close();
    }
  });
});

describe('Alertmanager webhook: probes and metrics', () => {
  it('answers health always, and readiness from its dependency check', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    ready = false;
    try {
      expect((await fetch(`${url}/readyz`)).status).toBe(503);
    } finally {
      ready = true;
    }
  });

  it('exposes its own registry in Prometheus text format', async () => {
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('alerts_received_total{status="firing"}');
    expect(text).toMatch(/webhook_request_duration_seconds_count\{code="401"\} [1-9]/);
    expect(text).toMatch(/webhook_request_duration_seconds_count\{code="413"\} [1-9]/);
    expect(text).toContain('# TYPE runbook_duration_seconds histogram');
  });

  it('answers 405 for the wrong method and 404 for unknown paths', async () => {
    expect((await fetch(`${url}/alertmanager`)).status).toBe(405);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/nope`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('takes POST / as an alias of /alertmanager', async () => {
    const res = await fetch(`${url}/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${fx.token}` },
      body: JSON.stringify(payload([{ labels: { alertname: 'Unbound' } }])),
    });
    expect(res.status).toBe(200);
  });
});
