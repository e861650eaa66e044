// Notifications against a local receiver standing in for webhooks, Slack and PagerDuty, and the
// exactly-once-per-channel guarantee under a real Temporal retry on the stack's server.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NotificationRequest } from '../../activities/contract.js';
import { createNotifyActivities, pagerDutySeverity } from '../../activities/notify.js';
import type { Channel } from '../../config/schema.js';
import { Secret } from '../../config/secret.js';
import { createMetrics, type EngineMetrics } from '../../triggers/metrics/metrics.js';
import { failureOf } from '../support/net.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack } from '../support/stack.js';
import { temporalClient, temporalConnectOptions, uniqueQueue } from '../support/temporal.js';

const routingKey = 'R0UTINGKEY0123456789abcdef012345';
let receiver: Receiver;
let channels: Record<string, Channel>;

function request(overrides: Partial<NotificationRequest & { dryRun: boolean }> = {}): NotificationRequest & { dryRun: boolean } {
  return {
    channels: ['hook'],
    event: 'trigger',
    incidentKey: 'incident:serviceDown:api',
    idempotencyKey: `incident:serviceDown:api/escalate-1/${randomUUID().slice(0, 8)}`,
    severity: 'critical',
    title: 'api is down after 3 restarts',
    text: 'health check http://127.0.0.1:18080/health: connection refused',
    dryRun: false,
    ...overrides,
  };
}

beforeAll(async () => {
  receiver = await startReceiver();
  channels = {
    hook: { type: 'webhook', url: Secret.of(`${receiver.url}/hook/T0KEN-in-path`) },
    slack: { type: 'slack', url: Secret.of(`${receiver.url}/services/T000/B000/slackSECRET`) },
    pager: { type: 'pagerduty', routingKey: Secret.of(routingKey), url: `${receiver.url}/pd` },
  };
});

afterAll(async () => {
  await receiver?.close();
});

beforeEach(() => receiver.reset());

describe('message formats', () => {
  it('posts the generic webhook JSON with an Idempotency-Key per channel', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const req = request({ channels: ['hook'] });
    const before = Date.now();
    expect(await notify(req)).toEqual({ delivered: [{ channel: 'hook', status: 'sent' }] });

    const [r, ...more] = receiver.requestsTo('/hook/T0KEN-in-path');
    expect(more).toEqual([]);
    expect(r!.method).toBe('POST');
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers['idempotency-key']).toBe(`${req.idempotencyKey}:hook`);
    const body = r!.body as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(['event', 'idempotencyKey', 'incidentKey', 'sentAt', 'severity', 'text', 'title']);
    expect(body).toMatchObject({
      incidentKey: req.incidentKey,
      idempotencyKey: req.idempotencyKey,
      event: 'trigger',
      severity: 'critical',
      title: req.title,
      text: req.text,
    });
    expect(Date.parse(body.sentAt!)).toBeGreaterThanOrEqual(before - 1_000);
    expect(Date.parse(body.sentAt!)).toBeLessThanOrEqual(Date.now());
  });

  it('posts Slack text with a bold title and Slack control characters escaped', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const req = request({ channels: ['slack'], title: 'api <prod> down', text: 'errors & timeouts > 5%\nsecond line' });
    await notify(req);
    const [r] = receiver.requestsTo('/services/T000/B000/slackSECRET');
    expect(r!.body).toEqual({ text: '*api &lt;prod&gt; down*\nerrors &amp; timeouts &gt; 5%\nsecond line' });
    expect(r!.headers['idempotency-key']).toBe(`${req.idempotencyKey}:slack`);
  });

  it.each([
    ['acknowledge', ':eyes: '],
    ['resolve', ':white_check_mark: '],
  ] as const)('tells Slack, which has no incident to %s, in a message marked as such', async (event, mark) => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    await notify(request({ channels: ['slack', 'hook'], event, title: "serviceDown on 'api' <closed>", text: 'healthy again' }));
    const [r] = receiver.requestsTo('/services/T000/B000/slackSECRET');
    expect(r!.body).toEqual({ text: `${mark}*serviceDown on 'api' &lt;closed&gt;*\nhealthy again` });
    // A generic webhook carries the event itself.
    expect(receiver.requestsTo('/hook/T0KEN-in-path')[0]!.body).toMatchObject({ event, title: "serviceDown on 'api' <closed>" });
  });

  it('posts a PagerDuty trigger event deduplicated by the incident key', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const req = request({ channels: ['pager'], severity: 'warning' });
    await notify(req);
    const [r] = receiver.requestsTo('/pd');
    expect(r!.headers['idempotency-key']).toBe(`${req.idempotencyKey}:pager`);
    expect(r!.body).toEqual({
      routing_key: routingKey,
      event_action: 'trigger',
      dedup_key: req.incidentKey,
      payload: { summary: req.title, source: 'remediation-engine', severity: 'warning', custom_details: { text: req.text } },
    });
  });

  it('deduplicates PagerDuty by the incident, not the workflow id the next incident on the target reuses', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    await notify(request({ channels: ['pager'], incidentRun: 'run-1', idempotencyKey: 'incident:serviceDown:api:run-1:on-call' }));
    await notify(request({ channels: ['pager'], incidentRun: 'run-2', idempotencyKey: 'incident:serviceDown:api:run-2:on-call' }));
    await notify(
      request({ channels: ['pager'], event: 'resolve', incidentRun: 'run-1', idempotencyKey: 'incident:serviceDown:api:run-1:resolve' }),
    );
    expect(
      receiver
        .requestsTo('/pd')
        .map((r) => [(r.body as { event_action: string }).event_action, (r.body as { dedup_key: string }).dedup_key]),
    ).toEqual([
      ['trigger', 'incident:serviceDown:api:run-1'],
      ['trigger', 'incident:serviceDown:api:run-2'],
      ['resolve', 'incident:serviceDown:api:run-1'],
    ]);
  });

  it.each(['acknowledge', 'resolve'] as const)('posts a PagerDuty %s event with only routing key, action and dedup key', async (event) => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    await notify(request({ channels: ['pager'], event }));
    const [r] = receiver.requestsTo('/pd');
    expect(r!.body).toEqual({ routing_key: routingKey, event_action: event, dedup_key: 'incident:serviceDown:api' });
  });

  it('writes a log channel to the engine log instead of the network', async () => {
    const lines: Array<{ message: string; fields: Record<string, unknown> }> = [];
    const notify = createNotifyActivities({
      channels: { ...channels, engineLog: { type: 'log' } },
      timeoutMs: 2_000,
      dryRun: false,
      log: (message, fields) => lines.push({ message, fields }),
    }).notify;
    const req = request({ channels: ['engineLog', 'hook'] });
    expect((await notify(req)).delivered).toEqual([
      { channel: 'engineLog', status: 'sent' },
      { channel: 'hook', status: 'sent' },
    ]);
    expect(lines).toEqual([
      {
        message: `notification: ${req.title}`,
        fields: expect.objectContaining({ channel: 'engineLog', event: 'trigger', incidentKey: req.incidentKey, text: req.text }),
      },
    ]);
    expect(receiver.requests).toHaveLength(1);

    lines.length = 0;
    await notify({ ...req, dryRun: true });
    expect(lines).toEqual([]);
  });

  it('maps alert severities onto the four PagerDuty accepts, unknown ones to error', () => {
    expect(pagerDutySeverity('critical')).toBe('critical');
    expect(pagerDutySeverity('Page')).toBe('critical');
    expect(pagerDutySeverity('P1')).toBe('critical');
    expect(pagerDutySeverity('error')).toBe('error');
    expect(pagerDutySeverity('high')).toBe('error');
    expect(pagerDutySeverity('warning')).toBe('warning');
    expect(pagerDutySeverity(' warn ')).toBe('warning');
    expect(pagerDutySeverity('info')).toBe('info');
    expect(pagerDutySeverity('low')).toBe('info');
    expect(pagerDutySeverity('whatever')).toBe('error');
    expect(pagerDutySeverity('')).toBe('error');
  });

  it('sends to every channel of a request once, listing each in the result', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const result = await notify(request({ channels: ['hook', 'slack', 'pager', 'hook'] }));
    expect(result.delivered).toEqual([
      { channel: 'hook', status: 'sent' },
      { channel: 'slack', status: 'sent' },
      { channel: 'pager', status: 'sent' },
    ]);
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/hook/T0KEN-in-path', '/pd', '/services/T000/B000/slackSECRET']);
  });

  it('cuts a huge text down, keeping its beginning', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    await notify(request({ channels: ['hook'], text: `FIRST LINE\n${'x'.repeat(100_000)}` }));
    const body = receiver.requests[0]!.body as { text: string };
    expect(body.text.startsWith('FIRST LINE\n')).toBe(true);
    expect(body.text.length).toBeLessThan(10_000);
    expect(body.text).toMatch(/bytes cut\]$/);
  });
});

describe('dry run and refusals', () => {
  it('sends nothing in a dry-run request', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const result = await notify(request({ channels: ['hook', 'slack', 'pager'], dryRun: true }));
    expect(result.delivered).toEqual([
      { channel: 'hook', status: 'dry-run' },
      { channel: 'slack', status: 'dry-run' },
      { channel: 'pager', status: 'dry-run' },
    ]);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests).toEqual([]);
  });

  it('sends nothing when the engine runs dry, whatever the request says', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: true }).notify;
    const result = await notify(request({ channels: ['hook'], dryRun: false }));
    expect(result.delivered).toEqual([{ channel: 'hook', status: 'dry-run' }]);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests).toEqual([]);
  });

  it('refuses a notification whose channels are all unknown, sending nothing', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const f = await failureOf(notify(request({ channels: ['sms-oncall', 'gone'] })));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('BadInput');
    expect(f.message).toContain("no channel named 'sms-oncall', 'gone' in the config");
    expect(f.message).toContain('configured: hook, slack, pager');
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests).toEqual([]);
  });

  it('delivers to the channels the config knows, then fails for good naming the ones it does not', async () => {
    // A run's channels are fixed when it starts: one renamed in the config since must not stop PagerDuty.
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const req = request({ channels: ['pager', 'gone'] });
    const f = await failureOf(notify(req));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('BadInput');
    expect(f.message).toContain("notification to channel 'gone' refused: not in the config (configured: hook, slack, pager)");
    expect(f.message).toContain("delivered to 'pager'");
    const [r, ...more] = receiver.requestsTo('/pd');
    expect(more).toEqual([]);
    expect(r!.status).toBe(200);
    expect(r!.body).toMatchObject({ routing_key: routingKey, event_action: 'trigger', dedup_key: req.incidentKey });
  });

  it('sends nothing in a dry run naming an unknown channel, and says which', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const f = await failureOf(notify(request({ channels: ['pager', 'gone'], dryRun: true })));
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain("channel 'gone' refused: not in the config");
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.requests).toEqual([]);
  });

  it('refuses an event PagerDuty does not know', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const f = await failureOf(notify(request({ event: 'escalate' as never })));
    expect(f.nonRetryable).toBe(true);
    expect(receiver.requests).toEqual([]);
  });
});

describe('failures', () => {
  it('is retryable on a 5xx and final on a 4xx', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    receiver.failNext('/pd', 1, 503);
    const retry = await failureOf(notify(request({ channels: ['pager'] })));
    expect(retry.nonRetryable).toBe(false);
    expect(retry.message).toMatch(/channel 'pager' \(pagerduty\) failed: the receiver answered 503/);

    receiver.failNext('/pd', 1, 400, '{"status":"invalid event","message":"Event object is invalid"}');
    const final = await failureOf(notify(request({ channels: ['pager'] })));
    expect(final.nonRetryable).toBe(true);
    expect(final.type).toBe('BadInput');
    expect(final.message).toContain('Event object is invalid');

    receiver.failNext('/pd', 1, 429);
    expect((await failureOf(notify(request({ channels: ['pager'] })))).nonRetryable).toBe(false);
  });

  it('stays retryable when one channel fails for good and another only for now, so the second gets its retry', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    receiver.failNext('/pd', 1, 400);
    receiver.failNext('/services/T000/B000/slackSECRET', 1, 502);
    const f = await failureOf(notify(request({ channels: ['hook', 'slack', 'pager'] })));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toContain("channel 'pager'");
    expect(f.message).toContain("channel 'slack'");
    expect(f.message).toContain("delivered to 'hook'");
  });

  it('never shows a webhook URL or routing key in a failure, even when the receiver echoes them', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    receiver.alwaysAnswer('/hook/T0KEN-in-path', 404, `no route for POST /hook/T0KEN-in-path at ${receiver.url}/hook/T0KEN-in-path`);
    receiver.alwaysAnswer('/pd', 400, `bad routing_key ${routingKey}`);
    receiver.alwaysAnswer('/services/T000/B000/slackSECRET', 403, 'invalid_token');
    const f = await failureOf(notify(request({ channels: ['hook', 'slack', 'pager'] })));
    expect(f.nonRetryable).toBe(true);
    expect(f.message).not.toContain('T0KEN');
    expect(f.message).not.toContain('slackSECRET');
    expect(f.message).not.toContain(routingKey);
    expect(f.message).toContain('no route for POST [redacted]');
    expect(f.message).toContain('invalid_token');
  });

  it('keeps a secret out of a failure even where the answer is cut, across the cut', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    // The routing key starts just before the 300th character the failure keeps of the answer.
    receiver.alwaysAnswer('/pd', 400, `${'x'.repeat(290)} ${routingKey}`);
    const f = await failureOf(notify(request({ channels: ['pager'] })));
    expect(f.message).not.toContain(routingKey.slice(0, 8));
  });

  it('is retryable when the receiver refuses connections, without naming its path', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const notify = createNotifyActivities({
      channels: { down: { type: 'webhook', url: Secret.of(`http://127.0.0.1:${port}/secret-hook-path`) } },
      timeoutMs: 2_000,
      dryRun: false,
    }).notify;
    const f = await failureOf(notify(request({ channels: ['down'] })));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/ECONNREFUSED/);
    expect(f.message).not.toContain('secret-hook-path');
  });

  it('is retryable when the receiver does not answer in time', async () => {
    const hung = createServer(() => {});
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    try {
      const notify = createNotifyActivities({
        channels: { slow: { type: 'webhook', url: Secret.of(`http://127.0.0.1:${(hung.address() as AddressInfo).port}/x`) } },
        timeoutMs: 300,
        dryRun: false,
      }).notify;
      const f = await failureOf(notify(request({ channels: ['slow'] })));
      expect(f.nonRetryable).toBe(false);
      expect(f.message).toMatch(/no answer within 300 ms/);
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });
});

describe('under real Temporal retries', () => {
  let worker: Worker;
  let running: Promise<void>;
  let connection: NativeConnection;
  let client: Awaited<ReturnType<typeof temporalClient>>;
  let metrics: EngineMetrics;
  const taskQueue = uniqueQueue('notify-test');

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR') });
    } catch {
      // Installed by an earlier test in this process.
    }
    const c = (name: string): Channel => ({ type: 'webhook', url: Secret.of(`${receiver.url}/${name}`) });
    metrics = createMetrics({ processMetrics: false });
    connection = await NativeConnection.connect(temporalConnectOptions('engine'));
    worker = await Worker.create({
      connection,
      namespace: stack().temporalNamespace,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('../support/notifyWorkflow.ts', import.meta.url)),
      activities: createNotifyActivities({
        channels: { first: c('first'), second: c('second'), third: c('third'), rejecting: c('rejecting') },
        timeoutMs: 2_000,
        dryRun: false,
        failures: metrics.notificationFailures,
      }),
    });
    running = worker.run();
    client = await temporalClient();
  });

  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await connection?.close();
    await client?.connection.close();
  });

  let lastWorkflowId = '';
  const runNotify = (req: NotificationRequest & { dryRun: boolean }) => {
    lastWorkflowId = `notify-test-${randomUUID()}`;
    return client.client.workflow.execute('notifyWithRetries', { taskQueue, workflowId: lastWorkflowId, args: [req] });
  };

  /** How many times the server started the notify activity, from the workflow's history. */
  async function activityAttempts(): Promise<number> {
    const history = await client.client.workflow.getHandle(lastWorkflowId).fetchHistory();
    const failed = history.events?.filter((e) => e.activityTaskFailedEventAttributes).length ?? 0;
    const completed = history.events?.filter((e) => e.activityTaskCompletedEventAttributes).length ?? 0;
    const started = history.events?.find((e) => e.activityTaskStartedEventAttributes)?.activityTaskStartedEventAttributes;
    // Retries are not separate events: the started event of the final attempt carries the count.
    expect(failed + completed).toBe(1);
    return Number(started?.attempt ?? 0);
  }

  it('posts once to the channel that worked when a retry re-sends to the one that failed', async () => {
    receiver.failNext('/second', 1, 500);
    const req = request({ channels: ['first', 'second'] });
    const result = await runNotify(req);

    expect(result.delivered).toEqual([
      { channel: 'first', status: 'duplicate' },
      { channel: 'second', status: 'sent' },
    ]);
    expect(receiver.requestsTo('/first')).toHaveLength(1);
    const second = receiver.requestsTo('/second');
    expect(second.map((r) => r.status)).toEqual([500, 200]);
    expect(new Set(second.map((r) => r.headers['idempotency-key']))).toEqual(new Set([`${req.idempotencyKey}:second`]));
    expect(await activityAttempts()).toBe(2);
  });

  it('remembers every channel delivered before a failure, across several retries', async () => {
    // Two deliveries in one attempt: the second heartbeat is throttled and must still reach the retry.
    receiver.failNext('/third', 2, 502);
    const result = await runNotify(request({ channels: ['first', 'second', 'third'] }));

    expect(result.delivered).toEqual([
      { channel: 'first', status: 'duplicate' },
      { channel: 'second', status: 'duplicate' },
      { channel: 'third', status: 'sent' },
    ]);
    expect(receiver.requestsTo('/first')).toHaveLength(1);
    expect(receiver.requestsTo('/second')).toHaveLength(1);
    expect(receiver.requestsTo('/third').map((r) => r.status)).toEqual([502, 502, 200]);
    expect(await activityAttempts()).toBe(3);
  });

  it('does not retry a channel that answers 4xx', async () => {
    receiver.alwaysAnswer('/rejecting', 400, 'bad payload');
    const err = await runNotify(request({ channels: ['rejecting'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause?.cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    expect((cause as ApplicationFailure).message).toContain('bad payload');
    expect(receiver.requestsTo('/rejecting')).toHaveLength(1);
    expect(await activityAttempts()).toBe(1);
  });

  it('does not retry an unknown channel', async () => {
    const err = await runNotify(request({ channels: ['nowhere'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause?.cause as ApplicationFailure;
    expect(cause.nonRetryable).toBe(true);
    expect(cause.type).toBe('BadInput');
    expect(await activityAttempts()).toBe(1);
  });

  it('delivers the known channels once across retries and still fails for good naming the unknown one', async () => {
    receiver.failNext('/second', 1, 503);
    const req = request({ channels: ['first', 'second', 'gone'] });
    const err = await runNotify(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause?.cause as ApplicationFailure;
    expect(cause.nonRetryable).toBe(true);
    expect(cause.type).toBe('BadInput');
    expect(cause.message).toContain("notification to channel 'gone' refused: not in the config");
    expect(cause.message).toContain("delivered to 'first', 'second'");
    // The first attempt's 503 made it retryable; the retry skipped 'first' and delivered 'second'.
    expect(receiver.requestsTo('/first')).toHaveLength(1);
    expect(receiver.requestsTo('/second').map((r) => r.status)).toEqual([503, 200]);
    expect(await activityAttempts()).toBe(2);
  });

  it('counts a failing channel once per attempt, the last attempt as exhausted', async () => {
    const value = async (channel: string, kind: string) =>
      (await metrics.notificationFailures.get()).values.find((v) => v.labels.channel === channel && v.labels.kind === kind)?.value;
    // Series of every configured channel exist from the start (earlier tests here failed 'third' too).
    const before = { transient: await value('third', 'transient'), exhausted: await value('third', 'exhausted') };
    expect(before).toEqual({ transient: expect.any(Number), exhausted: 0 });
    receiver.alwaysAnswer('/third', 503);
    const err = await runNotify(request({ channels: ['first', 'third'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    // notifyWorkflow allows 4 attempts: 3 retried, the 4th lost.
    expect(receiver.requestsTo('/third')).toHaveLength(4);
    expect(await value('third', 'transient')).toBe(before.transient! + 3);
    expect(await value('third', 'exhausted')).toBe(1);
    expect(await value('first', 'transient')).toBe(0);
  });

  it('sends nothing in a dry run', async () => {
    const result = await runNotify(request({ channels: ['first', 'second'], dryRun: true }));
    expect(result.delivered.map((d: { status: string }) => d.status)).toEqual(['dry-run', 'dry-run']);
    expect(receiver.requests).toEqual([]);
  });
});
