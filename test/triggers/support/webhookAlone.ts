// A webhook server for tests of what it does before Temporal is involved (refusals, bounds, the
// spool's limits, its event loop): its Temporal client points at a port nobody listens on.
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { createWebhookServer, type WebhookDeps, type WebhookServer } from '../../../triggers/alerts/alertmanager.js';
import type { WebhookAlert } from '../../../triggers/alerts/alertmanagerPayload.js';
import { createMetrics, type EngineMetrics } from '../../../triggers/metrics/metrics.js';
import { closedPort } from '../../support/ports.js';
import { triggerConfig, type TriggerFixture } from './config.js';

export interface LoneWebhook {
  url: string;
  port: number;
  fx: TriggerFixture;
  webhook: WebhookServer;
  metrics: EngineMetrics;
  /** Every line it logged, as written. */
  log: string[];
  close(): Promise<void>;
}

export async function startLoneWebhook(options: { maxBodyBytes?: number; deps?: Partial<WebhookDeps> } = {}): Promise<LoneWebhook> {
  const fx = triggerConfig({ taskQueue: 'nobody-polls' });
  if (options.maxBodyBytes) fx.config.webhook.maxBodyBytes = options.maxBodyBytes;
  const connection = Connection.lazy({ address: `127.0.0.1:${await closedPort()}` });
  const metrics = createMetrics({ processMetrics: false });
  const log: string[] = [];
  const webhook = createWebhookServer({
    config: fx.config,
    client: new Client({ connection }),
    taskQueue: 'nobody-polls',
    metrics,
    logger: pino({ level: 'debug' }, { write: (line: string) => void log.push(line) }),
    ready: async () => true,
    temporalTimeoutMs: 1_000,
    spoolBackoffMs: { first: 1_000, max: 5_000 },
    ...options.deps,
  });
  const { port } = await webhook.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    fx,
    webhook,
    metrics,
    log,
    async close() {
      await webhook.close();
      await connection.close();
    },
  };
}

/** The value of one sample of a metric ("" labels: the unlabelled one), 0 when absent. */
export async function metricValue(metrics: EngineMetrics, name: string, labels = ''): Promise<number> {
  const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** A notification of ServiceDown alerts for `service`, as Alertmanager sends it (no stack needed). */
export function notification(service: string, alerts: WebhookAlert[]) {
  return {
    version: '4',
    groupKey: '{}:{alertname="ServiceDown"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'remediation',
    groupLabels: { alertname: 'ServiceDown' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:19093',
    alerts: alerts.map((a) => ({ ...a, labels: { ...a.labels, service } })),
  };
}
