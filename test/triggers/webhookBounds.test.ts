// Every field the webhook accepts is bounded: a field that decides nothing is cut to its bound, an
// alert whose labels or fingerprint break theirs is left out and named, and a batch with nothing
// left (or a broken envelope) is refused with a 400 that names the field. Unbounded, a fingerprint of 900 KB sent 70 times got a running incident terminated for
// history size (and a fresh run paged again), and was written whole into every log line about it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWebhookBodyBytes } from '../../config/schema.js';
import { acceptanceGate } from '../../triggers/alerts/acceptanceFirst.js';
import { webhookLimits, webhookPayload } from '../../triggers/alerts/alertmanagerPayload.js';
import { openSpool, type Spool } from '../../triggers/alerts/spool.js';
import { postToWebhook } from '../support/alertmanagerPayload.js';
import { metricValue, startLoneWebhook, type LoneWebhook } from './support/webhookAlone.js';

type Payload = ReturnType<typeof notification>;

/** One ServiceDown notification as Alertmanager sends it, every field well within its bound. */
function notification(service: string) {
  return {
    version: '4',
    groupKey: '{}:{alertname="ServiceDown"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'remediation',
    groupLabels: { alertname: 'ServiceDown' } as Record<string, string>,
    commonLabels: { alertname: 'ServiceDown' } as Record<string, string>,
    commonAnnotations: {} as Record<string, string>,
    externalURL: 'http://127.0.0.1:19093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'ServiceDown', service, severity: 'critical' } as Record<string, string>,
        annotations: { summary: 'down' } as Record<string, string>,
        startsAt: '2026-01-05T02:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://127.0.0.1:19090/graph',
        fingerprint: 'a1b2c3d4e5f60718',
      },
    ],
  };
}

const many = (n: number, value: (i: number) => string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`n${i}`, value(i)]));

let w: LoneWebhook;
let spool: Spool;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remediation-bounds-'));
  spool = await openSpool(dir);
  // With a spool, an accepted batch is answered without Temporal: what is accepted shows as a 200.
  w = await startLoneWebhook({ maxBodyBytes: 4 * 1_048_576, deps: { spool } });
});

afterAll(async () => {
  await w?.close();
  await spool?.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (body: unknown) => postToWebhook(w.url, w.fx.token, body);

describe('Alertmanager webhook: the default body limit', () => {
  it('takes a full notification of 1,000 alerts labelled as Kubernetes labels them (1.1 KB each)', async () => {
    const own = mkdtempSync(join(tmpdir(), 'remediation-bounds-default-'));
    const ownSpool = await openSpool(own);
    // The fixture's own small limit off: the engine's default, as an operator gets it.
    const lone = await startLoneWebhook({ maxBodyBytes: defaultWebhookBodyBytes, deps: { spool: ownSpool } });
    try {
      const body = notification(lone.fx.api);
      body.alerts = Array.from({ length: webhookLimits.alerts }, (_, i) => ({
        ...notification(lone.fx.api).alerts[0]!,
        fingerprint: `k8s${i.toString(16).padStart(13, '0')}`,
        labels: {
          alertname: 'ServiceDown',
          service: lone.fx.api,
          severity: 'critical',
          namespace: 'payments-production',
          pod: `checkout-api-7f9c8d6b5-${String(i).padStart(5, 'x')}`,
          container: 'checkout-api',
          instance: `10.42.${i % 250}.${i % 200}:8080`,
          job: 'kubernetes-pods',
          node: `ip-10-0-${i % 250}-${i % 100}.eu-west-1.compute.internal`,
          cluster: 'prod-eu-west-1',
          team: 'payments',
        },
        annotations: {
          summary: `checkout-api pod ${i} in payments-production has been down for more than 1 minute`,
          description: 'The checkout API stopped answering its readiness probe; customers cannot pay. '.repeat(3),
          runbook_url: 'https://runbooks.example.internal/payments/checkout-api/service-down',
        },
        generatorURL: `http://prometheus.example.internal:9090/graph?g0.expr=${encodeURIComponent('up{job="kubernetes-pods",namespace="payments-production",container="checkout-api"} == 0')}&g0.tab=1`,
      }));
      const size = Buffer.byteLength(JSON.stringify(body));
      // Past the 1 MiB the default was.
      expect(size).toBeGreaterThan(1_048_576);
      expect(await postToWebhook(lone.url, lone.fx.token, body)).toMatchObject({ status: 200, json: { status: 'queued', alerts: 1_000 } });
    } finally {
      await lone.close();
      await ownSpool.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});

describe('Alertmanager webhook: who counts as arriving', () => {
  it('counts only authorised batches, so a flood without the token does not hold back spooled deliveries', async () => {
    const gate = acceptanceGate();
    const seen = { arrived: 0, answered: 0 };
    const counting = { ...gate, arrived: () => (seen.arrived++, gate.arrived()), answered: () => (seen.answered++, gate.answered()) };
    const own = mkdtempSync(join(tmpdir(), 'remediation-bounds-gate-'));
    const ownSpool = await openSpool(own);
    const lone = await startLoneWebhook({ deps: { spool: ownSpool, acceptance: counting } });
    try {
      const unauthorised = await Promise.all(
        Array.from({ length: 50 }, () => postToWebhook(lone.url, 'not-the-token', notification(lone.fx.api))),
      );
      expect(unauthorised.every((r) => r.status === 401)).toBe(true);
      expect(seen).toEqual({ arrived: 0, answered: 0 });
      expect((await postToWebhook(lone.url, lone.fx.token, notification(lone.fx.api))).status).toBe(200);
      expect(seen).toEqual({ arrived: 1, answered: 1 });
    } finally {
      await lone.close();
      await ownSpool.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});

describe('Alertmanager webhook: bounded fields', () => {
  it('refuses a 900 KB fingerprint with a 400 naming the field, and never writes it to the log', async () => {
    const body = notification(w.fx.api);
    body.alerts[0]!.fingerprint = 'f'.repeat(900_000);
    const logBefore = w.log.length;
    const r = await post(body);
    expect(r).toEqual({ status: 400, json: { error: 'invalid Alertmanager payload: alerts[0].fingerprint: longer than 128 characters' } });
    const lines = w.log.slice(logBefore);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.length).toBeLessThan(1_000);
    expect(await metricValue(w.metrics, 'alerts_received_total', '{status="firing"}')).toBe(0);
    expect(spool.pendingBatches()).toBe(0);
  });

  const refusals: Array<[what: string, change: (p: Payload) => void, error: string]> = [
    [
      '65 labels',
      (p) =>
        Object.assign(
          p.alerts[0]!.labels,
          many(62, () => 'x'),
        ),
      'alerts[0].labels: more than 64 labels',
    ],
    [
      'a label name of 129 characters',
      (p) => (p.alerts[0]!.labels[`l${'a'.repeat(128)}`] = 'x'),
      `alerts[0].labels["l${'a'.repeat(39)}..."]: name longer than 128 characters`,
    ],
    [
      'a label name with a control character',
      (p) => (p.alerts[0]!.labels['service\nname'] = 'x'),
      'alerts[0].labels["service\\nname"]: not a label name (empty, or holds a control or format character)',
    ],
    [
      'an empty label name',
      (p) => (p.alerts[0]!.labels[''] = 'x'),
      'alerts[0].labels[""]: not a label name (empty, or holds a control or format character)',
    ],
    [
      'a label value of 1,025 characters',
      (p) => (p.alerts[0]!.labels.service = 'v'.repeat(1_025)),
      'alerts[0].labels.service: longer than 1024 characters',
    ],
    [
      '65 annotations',
      (p) =>
        Object.assign(
          p.alerts[0]!.annotations,
          many(64, () => 'x'),
        ),
      'alerts[0].annotations: more than 64 annotations',
    ],
    [
      'an annotation name with a bidi override',
      (p) => (p.alerts[0]!.annotations['run\u202ebook'] = 'x'),
      'alerts[0].annotations["run\\u202ebook"]: not a label name (empty, or holds a control or format character)',
    ],
    ['a startsAt of 65 characters', (p) => (p.alerts[0]!.startsAt = '2'.repeat(65)), 'alerts[0].startsAt: longer than 64 characters'],
    ['an endsAt of 65 characters', (p) => (p.alerts[0]!.endsAt = '0'.repeat(65)), 'alerts[0].endsAt: longer than 64 characters'],
    [
      'group labels past their bounds',
      (p) => (p.groupLabels.alertname = 'a'.repeat(1_025)),
      'groupLabels.alertname: longer than 1024 characters',
    ],
    [
      'common labels past their bounds',
      (p) =>
        Object.assign(
          p.commonLabels,
          many(65, () => 'x'),
        ),
      'commonLabels: more than 64 labels',
    ],
    [
      '1,001 alerts in one notification',
      (p) => (p.alerts = Array.from({ length: 1_001 }, (_, i) => ({ ...p.alerts[0]!, fingerprint: `fp${i}` }))),
      'alerts: more than 1000 alerts in one notification (set max_alerts on the webhook receiver)',
    ],
  ];

  it.each(refusals)('refuses %s with a 400 naming the field', async (_what, change, error) => {
    const body = notification(w.fx.api);
    change(body);
    const r = await post(body);
    expect(r).toEqual({ status: 400, json: { error: `invalid Alertmanager payload: ${error}` } });
  });

  it('cuts to its bound, and takes, what decides nothing: URLs, annotation values, the group key, the receiver', async () => {
    const body = notification(w.fx.api);
    body.alerts[0]!.annotations.description = 'd'.repeat(8_193);
    body.alerts[0]!.generatorURL = `http://x/${'g'.repeat(40_000)}`;
    body.externalURL = `http://x/${'e'.repeat(2_040)}`;
    body.receiver = 'r'.repeat(257);
    body.groupKey = 'k'.repeat(8_193);
    body.commonAnnotations.summary = 's'.repeat(8_193);
    expect((await post(body)).status).toBe(200);
    const parsed = webhookPayload.parse(body);
    expect(parsed.alerts[0]!.annotations.description).toBe(`${'d'.repeat(8_191)}…`);
    expect(parsed.alerts[0]!.generatorURL).toHaveLength(2_048);
    expect([parsed.externalURL.length, parsed.receiver.length, parsed.groupKey.length]).toEqual([2_048, 256, 8_192]);
    expect(parsed.commonAnnotations.summary!.endsWith('…')).toBe(true);
  });

  it('leaves out an alert whose labels break their bounds, names it, and takes the rest of the batch', async () => {
    const body = notification(w.fx.api);
    body.alerts = Array.from({ length: 10 }, (_, i) => ({ ...notification(w.fx.api).alerts[0]!, fingerprint: `fp-part-${i}` }));
    body.alerts[3] = { ...body.alerts[3]!, labels: { ...body.alerts[3]!.labels, service: 'v'.repeat(1_025) } };
    body.alerts[7] = { ...body.alerts[7]!, fingerprint: 'f'.repeat(129) };
    const before = await metricValue(w.metrics, 'alerts_invalid_total');
    const r = await post(body);
    expect(r).toEqual({
      status: 200,
      json: {
        status: 'queued',
        alerts: 8,
        truncatedAlerts: 0,
        invalid: 2,
        invalidAlerts: [
          { index: 3, reason: 'alerts[3].labels.service: longer than 1024 characters' },
          { index: 7, reason: 'alerts[7].fingerprint: longer than 128 characters' },
        ],
      },
    });
    expect((await metricValue(w.metrics, 'alerts_invalid_total')) - before).toBe(2);
    expect(w.log.join('\n')).toMatch(/alerts left out of a batch/);
  });

  it('accepts the UTF-8 label names Prometheus 3 allows, so no such alert is refused for good', async () => {
    const body = notification(w.fx.api);
    Object.assign(body.alerts[0]!.labels, { 'service.name': 'checkout', 'http-route': '/api', 'k8s.pod/名前': 'x', '1st': 'y' });
    const r = await post(body);
    expect(r.status).toBe(200);
  });

  it('accepts every field at its bound', async () => {
    const body = notification(w.fx.api);
    const a = body.alerts[0]!;
    a.fingerprint = 'f'.repeat(webhookLimits.fingerprint);
    a.labels = {
      alertname: 'ServiceDown',
      service: w.fx.api,
      ...many(61, () => 'v'.repeat(webhookLimits.labelValue)),
      [`L${'a'.repeat(127)}`]: 'x',
    };
    a.annotations = many(webhookLimits.annotations, () => 'd'.repeat(webhookLimits.annotationValue));
    a.generatorURL = `http://x/${'g'.repeat(webhookLimits.url - 9)}`;
    a.startsAt = '2026-01-05T02:00:00.123456789+05:30'.padEnd(webhookLimits.time, ' ');
    body.externalURL = `http://x/${'e'.repeat(webhookLimits.url - 9)}`;
    body.receiver = 'r'.repeat(webhookLimits.receiver);
    body.groupKey = 'k'.repeat(webhookLimits.groupKey);
    body.alerts = [
      a,
      ...Array.from({ length: webhookLimits.alerts - 1 }, (_, i) => ({ ...notification(w.fx.api).alerts[0]!, fingerprint: `fp${i}` })),
    ];
    expect(Object.keys(a.labels)).toHaveLength(webhookLimits.labels);
    expect(webhookPayload.safeParse(body).success).toBe(true);
    const r = await post(body);
    expect(r).toMatchObject({ status: 200, json: { status: 'queued', alerts: webhookLimits.alerts } });
  });

  it('quotes a label name that is not plain text, escaped and cut short, in the error and the log', async () => {
    const body = notification(w.fx.api);
    const forged = `x\u001b[31m\nFORGED ROW\u202e${'z'.repeat(50_000)}`;
    body.alerts[0]!.labels[forged] = 'x';
    const logBefore = w.log.length;
    const r = await post(body);
    expect(r.status).toBe(400);
    // The first 40 characters, as a JSON string in printable ASCII.
    const shown = `"x\\u001b[31m\\nFORGED ROW\\u202e${'z'.repeat(22)}..."`;
    expect(r.json.error).toBe(
      `invalid Alertmanager payload: alerts[0].labels[${shown}]: name longer than 128 characters; ` +
        `alerts[0].labels[${shown}]: not a label name (empty, or holds a control or format character)`,
    );
    for (const line of w.log.slice(logBefore)) {
      expect(line.length).toBeLessThan(1_000);
      expect(line).not.toContain('\u001b');
    }
  });

  it('cuts short a refused value the validator would quote', async () => {
    const body = notification(w.fx.api);
    body.alerts[0]!.status = `pending${'p'.repeat(100_000)}`;
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(
      /^invalid Alertmanager payload: alerts\[0\]\.status: Invalid enum value\. Expected 'firing' \| 'resolved', received 'pendingp+…$/,
    );
    expect(r.json.error.length).toBeLessThan(300);
  });
});
