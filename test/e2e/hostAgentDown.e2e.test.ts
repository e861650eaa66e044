// A systemd unit down on a host whose agent is not running: the engine cannot reach the unit, and
// the runbook must say so and page, not wait for an agent that never comes. Real engine, real
// Temporal, a real webhook receiver for the page; no agent polls the host's queue.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { incidentWorkflowId, statusQuery } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { historyEvents } from '../support/history.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { startTestEngine } from './engine.js';

const suffix = randomUUID().slice(0, 8);
const target = `payments-${suffix}`;
const token = randomUUID();
const workflowId = incidentWorkflowId('serviceDown', target);

let receiver: Receiver;
let engine: RunningEngine;
let queue: string;

beforeAll(async () => {
  queue = uniqueQueue('e2e-no-agent');
  receiver = await startReceiver();
  engine = await startTestEngine({
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token },
    hosts: { [`db-${suffix}`]: {} },
    targets: {
      [target]: { kind: 'systemd', unit: 'payments.service', host: `db-${suffix}`, labels: { service: target } },
    },
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: [target], runbook: 'serviceDown' }],
    channels: { oncall: { type: 'webhook', url: `${receiver.url}/oncall` } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['oncall'] }] } } },
    guardrails: { restarts: { max: 1000, window: '1h' }, agentWait: '5s' },
  });
});

afterAll(async () => {
  if (engine) {
    for (const id of [workflowId, guardrailsWorkflowId(queue)])
      await engine.client.workflow
        .getHandle(id)
        .terminate('end-to-end test finished')
        .catch(() => undefined);
    await engine.stop();
  }
  await receiver?.close();
});

describe('a systemd unit on a host whose agent is not running', () => {
  it('pages on-call saying no agent took the check, and asks the host for no restart', async () => {
    const fired = await postAlerts(engine.webhookUrl, token, [
      { labels: { alertname: 'ServiceDown', severity: 'critical', service: target }, fingerprint: `pay-${suffix}` },
    ]);
    expect(fired.status).toBe(200);

    const [page] = await receiver.waitFor('/oncall', 1, 60_000);
    expect((page!.body as { text: string }).text).toMatch(/no host agent took it in time \(guardrails\.agentWait\)/);

    const handle = engine.client.workflow.getHandle(workflowId);
    const status = await handle.query(statusQuery);
    expect(status.timeline.find((e) => e.event === 'restart skipped')?.detail).toMatch(/no host agent took it/);
    const asked = (await historyEvents(handle)).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    expect(asked).toContain('verifyTarget');
    expect(asked).not.toContain('restartTarget');
  }, 90_000);
});
