// What Alertmanager posts to the engine's webhook (payload version 4), and posting it the way
// Alertmanager does: JSON to /alertmanager with the configured bearer token.
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
import { randomUUID } from 'node:crypto';
import { stack } from './stack.js';

export interface AlertInit {
  labels: Record<string, string>;
  /** Default firing. */
  status?: 'firing' | 'resolved';
  /** Default none. */
  annotations?: Record<string, string>;
  /** Default random: Alertmanager's fingerprint is a hash of the labels the engine never recomputes. */
  fingerprint?: string;
  /** Default now. */
  startsAt?: string;
  /** Default Alertmanager's zero time while firing, now once resolved. */
  endsAt?: string;
}

/** The entries every set has, with the same value: Alertmanager's commonLabels and commonAnnotations. */
function common(sets: Array<Record<string, string>>): Record<string, string> {
  const [first, ...rest] = sets;
  if (!first) return {};
  return Object.fromEntries(Object.entries(first).filter(([name, value]) => rest.every((s) => s[name] === value)));
}

/**
 * One group's notification, grouped by alertname as the stack's Alertmanager routes it.
 * `overrides` replaces top-level fields as they are, for payloads the receiver must refuse.
 */
export function alertmanagerPayload(alerts: AlertInit[], overrides: Record<string, unknown> = {}) {
  const now = new Date().toISOString();
  const groupLabels = common(alerts.map((a) => ({ alertname: a.labels.alertname ?? '' })));
  const annotations = alerts.map((a) => a.annotations ?? {});
  return {
    version: '4',
    groupKey: groupLabels.alertname ? `{}:{alertname="${groupLabels.alertname}"}` : '{}:{}',
    truncatedAlerts: 0,
    status: alerts.some((a) => (a.status ?? 'firing') === 'firing') ? 'firing' : 'resolved',
    receiver: 'remediation',
    groupLabels: groupLabels.alertname ? groupLabels : {},
    commonLabels: common(alerts.map((a) => a.labels)),
    commonAnnotations: common(annotations),
    externalURL: stack().alertmanagerUrl,
    alerts: alerts.map((a, i) => ({
      status: a.status ?? 'firing',
      labels: a.labels,
      annotations: annotations[i]!,
      startsAt: a.startsAt ?? now,
      endsAt: a.endsAt ?? (a.status === 'resolved' ? now : '0001-01-01T00:00:00Z'),
      generatorURL: `${stack().prometheusUrl}/graph`,
      fingerprint: a.fingerprint ?? randomUUID().replaceAll('-', '').slice(0, 16),
    })),
    ...overrides,
  };
}

/** What the webhook answers: its status and the JSON body it sent. */
export interface WebhookAnswer {
  status: number;
  json: any;
}

/**
 * Posts `body` (an object is sent as JSON, a string as it is) to `${webhookUrl}/alertmanager` with
 * the bearer token; `headers` are added last, so a test can replace or blank any of them.
 */
export async function postToWebhook(
  webhookUrl: string,
  token: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<WebhookAnswer> {
  const res = await fetch(`${webhookUrl}/alertmanager`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Posts these alerts as one notification, as Alertmanager would. */
export function postAlerts(webhookUrl: string, token: string, alerts: AlertInit[]): Promise<WebhookAnswer> {
  return postToWebhook(webhookUrl, token, alertmanagerPayload(alerts));
}

/**
 * A storm of ServiceDown alerts, one per service, each its own fingerprint, cut into notifications
 * of `size` alerts: post them at once with postAlerts.
 */
export function stormBatches(services: string[], size = 20): AlertInit[][] {
  const batches: AlertInit[][] = [];
  for (let i = 0; i < services.length; i += size) {
    batches.push(
      services.slice(i, i + size).map((service) => ({
        labels: { alertname: 'ServiceDown', service, severity: 'critical' },
        fingerprint: randomUUID().replaceAll('-', '').slice(0, 16),
      })),
    );
  }
  return batches;
}
