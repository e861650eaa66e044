// The webhook with the intake in Temporal (webhook.intake), against a Temporal server of the test's
// own that it stops and starts: a batch is answered once its alerts are in the intake workflow, with
// nothing on the engine's disk, so an engine that answered and then went away leaves them to any
// engine on its queue; the intake hands them on in order; Temporal down is a 503.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import pino from 'pino';
import { createIntakeActivities } from '../../activities/intake.js';
import { createWebhookServer, type WebhookDeps, type WebhookServer } from '../../triggers/alerts/alertmanager.js';
import { IntakeFullError, intakeDoor } from '../../triggers/alerts/intake.js';
import { createMetrics, type EngineMetrics } from '../../triggers/metrics/metrics.js';
import { intakeWorkflowId } from '../../workflows/intake.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { alertmanagerPayload, postToWebhook } from '../support/alertmanagerPayload.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { uniqueQueue } from '../support/temporal.js';
import { eventually } from '../support/wait.js';
import { triggerConfig, type TriggerFixture } from './support/config.js';

const require = createRequire(import.meta.url);
let server: DevServer;
let connection: Connection;
let client: Client;
const token = `tok-${randomBytes(16).toString('hex')}`;
const open: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  server = await startDevServer();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
}, 90_000);

let serverKilled = false;
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
  if (serverKilled) await server.start();
  serverKilled = false;
});

afterAll(async () => {
  await connection?.close();
  await server?.close();
});

function fixture(intake: 'always' | 'storms' = 'always'): TriggerFixture {
  return triggerConfig({
    taskQueue: uniqueQueue('webhook-intake'),
    temporalAddress: server.address,
    temporalNamespace: server.namespace,
    extra: { webhook: { listen: '127.0.0.1:0', token, maxBodyBytes: 64 * 1024, intake } },
  });
}

async function startWebhook(
  fx: TriggerFixture,
  intakeQuietForMs?: number,
  deps: Partial<WebhookDeps> = {},
): Promise<{ url: string; webhook: WebhookServer; log: string[]; metrics: EngineMetrics }> {
  const log: string[] = [];
  const metrics = createMetrics({ processMetrics: false });
  const webhook = createWebhookServer({
    config: fx.config,
    client,
    taskQueue: fx.config.temporal.taskQueue,
    metrics,
    logger: pino({ level: 'info' }, { write: (line: string) => void log.push(line) }),
    ready: async () => true,
    temporalTimeoutMs: 1_000,
    ...(intakeQuietForMs ? { intakeQuietForMs } : {}),
    ...deps,
  });
  const { port } = await webhook.listen();
  open.push(webhook);
  return { url: `http://127.0.0.1:${port}`, webhook, log, metrics };
}

/** A worker on the queue running the intake (incidents only wait there), handing its alerts to this webhook. */
async function startIntakeWorker(fx: TriggerFixture, webhook: WebhookServer): Promise<void> {
  const native = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({
    connection: native,
    namespace: server.namespace,
    taskQueue: fx.config.temporal.taskQueue,
    workflowsPath: require.resolve('./support/intakeWorkflows.ts'),
    activities: createIntakeActivities(() => webhook.deliverer),
  });
  const running = worker.run();
  open.push({
    close: async () => {
      worker.shutdown();
      await running;
      await native.close();
    },
  });
}

/** Every alert the intake's signals carry, in the order they reached its history. */
async function intakeAlerts(
  fx: TriggerFixture,
): Promise<{ signals: number; alerts: Array<{ status: string; labels: Record<string, string> }> }> {
  const history = await client.workflow.getHandle(intakeWorkflowId(fx.config.temporal.taskQueue)).fetchHistory();
  const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'alerts');
  const { defaultPayloadConverter } = await import('@temporalio/common');
  const alerts = signals.flatMap(
    (e) =>
      (
        defaultPayloadConverter.fromPayload(e.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!) as {
          alerts: Array<{ status: string; labels: Record<string, string> }>;
        }
      ).alerts,
  );
  return { signals: signals.length, alerts };
}

const exists = async (workflowId: string) =>
  client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      },
    );

describe('webhook with the intake in Temporal', () => {
  it('answers once the alerts are in the intake, keeps unmatched ones out, and any engine on the queue starts them later', async () => {
    const fx = fixture();
    const first = await startWebhook(fx);
    const batches = [
      [{ labels: { alertname: 'ServiceDown', service: fx.api, severity: 'critical' } }],
      [{ labels: { alertname: 'ServiceDown', service: fx.web, severity: 'critical' } }],
      [{ labels: { alertname: 'NotOurs', service: fx.api } }],
      [{ labels: { alertname: 'DatabaseDown', severity: 'critical' } }],
    ];
    const answers = await Promise.all(batches.map((alerts) => postToWebhook(first.url, token, alertmanagerPayload(alerts))));
    for (const a of answers) expect(a.status).toBe(200);
    expect(answers.map((a) => a.json.intake)).toEqual([1, 1, 0, 1]);
    expect(answers[2]!.json.unmatched).toEqual([expect.objectContaining({ alertname: 'NotOurs' })]);

    // In Temporal, and nowhere else: no worker has run, no incident exists, the engine closes.
    const held = await intakeAlerts(fx);
    expect(held.alerts.map((a) => a.labels.alertname).sort()).toEqual(['DatabaseDown', 'ServiceDown', 'ServiceDown']);
    expect(held.signals).toBeLessThanOrEqual(3);
    expect(await exists(incidentWorkflowId('serviceDown', fx.api))).toBe(false);
    await first.webhook.close();

    // Another engine on the queue starts them.
    const second = await startWebhook(fx);
    await startIntakeWorker(fx, second.webhook);
    for (const id of [
      incidentWorkflowId('serviceDown', fx.api),
      incidentWorkflowId('serviceDown', fx.web),
      incidentWorkflowId('databaseConnection', fx.db),
    ]) {
      expect(await eventually(() => exists(id), Boolean, 30_000, 200)).toBe(true);
    }
  }, 90_000);

  it("hands the intake's alerts to Temporal 16 at once while a storm arrives and 48 after, whatever calls they come in, and no more wait for the storm's batches than that", async () => {
    // 120 targets: one incident each, so no two deliveries fold into one start.
    const names = Array.from({ length: 120 }, (_, i) => `svc${i}-${randomBytes(3).toString('hex')}`);
    const fx = triggerConfig({
      taskQueue: uniqueQueue('webhook-intake-pace'),
      temporalAddress: server.address,
      temporalNamespace: server.namespace,
      extra: {
        webhook: { listen: '127.0.0.1:0', token, intake: 'always' },
        targets: Object.fromEntries(names.map((n) => [n, { kind: 'container', container: n, labels: { service: n } }])),
        bindings: [{ alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: names }],
      },
    });
    // Each start held 300 ms at the client, so the deliveries under way pile up where they are counted.
    let inFlight = 0;
    let most = 0;
    let started = 0;
    const counting = new Client({
      connection,
      namespace: server.namespace,
      interceptors: {
        workflow: [
          {
            async signalWithStart(input, next) {
              // The intake's own signals go through this client too: only the incidents' starts count.
              if (input.options.workflowId === intakeWorkflowId(fx.config.temporal.taskQueue)) return next(input);
              most = Math.max(most, ++inFlight);
              try {
                await new Promise((r) => setTimeout(r, 300));
                return await next(input);
              } finally {
                inFlight--;
                started++;
              }
            },
          },
        ],
      },
    });
    const allStarted = (n: number) =>
      eventually(
        () => Promise.resolve(started),
        (s) => s >= n,
        30_000,
        50,
      );
    // The storm is the test's to say: the gate's own timing is acceptanceFirst.test.ts's.
    let storming = true;
    // Waiting for the storm's batches happens inside a delivery's turn: no more wait at once than go at once.
    let waiting = 0;
    let mostWaiting = 0;
    const quiet = async () => {
      mostWaiting = Math.max(mostWaiting, ++waiting);
      await new Promise((r) => setTimeout(r, 20));
      waiting--;
    };
    const acceptance = { arrived() {}, answered() {}, storming: () => storming, quiet };
    const hook = await startWebhook(fx, undefined, { client: counting, acceptance });
    await startIntakeWorker(fx, hook.webhook);
    const post = (services: string[]) =>
      postToWebhook(
        hook.url,
        token,
        alertmanagerPayload(services.map((service) => ({ labels: { alertname: 'ServiceDown', service, severity: 'critical' } }))),
      );

    // Two batches of 30 alerts: one forwardAlerts call or two, 16 at once across them.
    for (const a of await Promise.all([post(names.slice(0, 30)), post(names.slice(30, 60))])) expect(a.json).toMatchObject({ intake: 30 });
    await allStarted(60);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(16);
    expect(mostWaiting).toBeGreaterThan(1);
    expect(mostWaiting).toBeLessThanOrEqual(16);

    // After the storm, more at once.
    storming = false;
    most = 0;
    expect((await post(names.slice(60))).json).toMatchObject({ intake: 60 });
    await allStarted(120);
    expect(most).toBeGreaterThan(16);
    expect(most).toBeLessThanOrEqual(48);
    expect(started).toBe(120);
  }, 90_000);

  it('hands a firing and its resolution to the incident in the order they came', async () => {
    const fx = fixture();
    const hook = await startWebhook(fx);
    await startIntakeWorker(fx, hook.webhook);
    const labels = { alertname: 'ServiceDown', service: fx.api, severity: 'critical' };
    for (const status of ['firing', 'resolved', 'firing', 'resolved'] as const) {
      const answer = await postToWebhook(hook.url, token, alertmanagerPayload([{ labels, status, fingerprint: 'fp-order' }]));
      expect(answer.status).toBe(200);
    }
    const incident = client.workflow.getHandle(incidentWorkflowId('serviceDown', fx.api));
    // Incidents only wait here: the run stays open, and its history says what reached it, in order.
    const reached = await eventually(
      async () => {
        const events = (await incident.fetchHistory().catch(() => ({ events: [] }))).events ?? [];
        return events.flatMap((e) =>
          e.workflowExecutionStartedEventAttributes
            ? ['started']
            : e.workflowExecutionSignaledEventAttributes
              ? [e.workflowExecutionSignaledEventAttributes.signalName!]
              : [],
        );
      },
      (names) => names.filter((n) => n === 'alertResolved').length >= 2,
      30_000,
      200,
    );
    expect(reached[0]).toBe('started');
    expect(reached.slice(1)).toEqual(['alertFiring', 'alertResolved', 'alertFiring', 'alertResolved']);
  }, 60_000);

  it("with intake 'storms': answers synchronously until a storm, then through the intake until it has handed everything on and ended", async () => {
    const fx = fixture('storms');
    const hook = await startWebhook(fx, 2_000);
    await startIntakeWorker(fx, hook.webhook);
    const lone = (service: string, n: number) =>
      postToWebhook(
        hook.url,
        token,
        alertmanagerPayload([{ labels: { alertname: 'ServiceDown', service, severity: 'critical' }, fingerprint: `lone-${n}` }]),
      );
    // Calm: a lone alert is started before the answer, as without the intake.
    const calm = await lone(fx.api, 0);
    expect(calm).toMatchObject({ status: 200, json: { status: 'accepted', started: 1 } });
    expect(await exists(intakeWorkflowId(fx.config.temporal.taskQueue))).toBe(false);

    // A batch of more alerts than one batch's calls at once begins a storm: it goes to the intake,
    // and so does the lone alert after it, while the intake holds anything.
    const storm = Array.from({ length: 12 }, (_, i) => ({
      labels: { alertname: 'ServiceDown', service: fx.web, n: String(i) },
      fingerprint: `storm-${i}`,
    }));
    const big = await postToWebhook(hook.url, token, alertmanagerPayload(storm));
    expect(big).toMatchObject({ status: 200, json: { status: 'queued', intake: 12 } });
    expect(hook.log.some((l) => l.includes('a storm: batches go to the intake'))).toBe(true);
    expect((await lone(fx.api, 1)).json).toMatchObject({ status: 'queued', intake: 1 });

    // Once the intake has handed everything on and ended (2 s quiet here), lone alerts are answered synchronously again.
    const handle = client.workflow.getHandle(intakeWorkflowId(fx.config.temporal.taskQueue));
    await handle.result();
    const again = await eventually(
      () => lone(fx.api, 2),
      (a) => a.json.status === 'accepted',
      10_000,
      300,
    );
    expect(again.json).toMatchObject({ status: 'accepted' });
    expect(hook.log.some((l) => l.includes('batches are answered synchronously again'))).toBe(true);
  }, 60_000);

  it('answers 503 with Retry-After while Temporal is down, without waiting out every alert', async () => {
    const fx = fixture();
    const hook = await startWebhook(fx);
    serverKilled = true;
    await server.stop('SIGKILL');
    const t0 = performance.now();
    const pending = async () => (await hook.metrics.registry.getSingleMetricAsString('webhook_intake_pending_alerts')).split('\n').at(-1);
    const answer = fetch(`${hook.url}/alertmanager`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify(
        alertmanagerPayload([
          { labels: { alertname: 'ServiceDown', service: fx.api } },
          { labels: { alertname: 'ServiceDown', service: fx.web } },
        ]),
      ),
    });
    // While the signal waits out its deadline, the two alerts are pending here.
    expect(await eventually(pending, (line) => line?.endsWith(' 2') ?? false, 3_000, 20)).toMatch(/ 2$/);
    const res = await answer;
    expect(res.status).toBe(503);
    expect(await pending()).toMatch(/ 0$/);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(((await res.json()) as { error: string }).error).toMatch(/Temporal did not take 2 alert\(s\) into the intake/);
    expect(performance.now() - t0).toBeLessThan(5_000);
  }, 60_000);

  it('refuses batches once the intake holds more than it may (its alerts are not being forwarded)', async () => {
    const fx = fixture();
    const door = intakeDoor({ client, taskQueue: fx.config.temporal.taskQueue, timeoutMs: 2_000, maxHistoryEvents: 3 });
    const alert = (i: number) =>
      alertmanagerPayload([{ labels: { alertname: 'ServiceDown', service: fx.api, n: String(i) } }]).alerts[0] as never;
    await door.take([alert(0)]);
    await door.take([alert(1)]);
    // The history is looked at once a second, beside the answers: the refusal follows within moments.
    const refusal = await eventually(
      async () =>
        door.take([alert(2)]).then(
          () => undefined,
          (err: unknown) => err,
        ),
      (err) => err instanceof IntakeFullError,
      5_000,
      200,
    );
    expect(refusal).toBeInstanceOf(IntakeFullError);
    expect(String(refusal)).toMatch(/holds \d+ events.*not being forwarded/);
  }, 30_000);
});
