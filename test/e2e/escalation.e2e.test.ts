// A service that cannot be brought back, end to end with real activities: its container exits as
// soon as it starts. The runbook restarts it three times (each verified and failing), gathers its
// state and logs, and pages level after level on a real webhook receiver until an operator
// acknowledges from the CLI; then the paging stops, the paged channels hear who has it, and once the
// alert clears they hear it is resolved.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Diagnostics } from '../../activities/contract.js';
import type { EngineConfigInput } from '../../config/schema.js';
import type { RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { acknowledgeSignal, incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { busyboxRun, containerActions, docker } from '../support/docker.js';
import { writeConfig } from '../support/engineProcess.js';
import { activityResults } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { remediate } from '../support/operatorCli.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { statusWhen } from '../support/runStatus.js';
import { temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { until } from '../support/wait.js';
import { e2eConfigInput, startTestEngine } from './engine.js';

const suffix = randomUUID().slice(0, 8);
const target = `orders-${suffix}`;
const container = `remediation-e2e-broken-${suffix}`;
const fatal = 'fatal: cannot read /etc/orders/config.yaml: no such file or directory';
const token = randomUUID();
const workflowId = incidentWorkflowId('serviceDown', target);
const managerAfterMs = 60_000;
const alertFingerprint = `orders-${suffix}`;

let receiver: Receiver;
let engine: RunningEngine;
let configFile: string;
let queue: string;

interface Page {
  event: string;
  title: string;
  text: string;
  idempotencyKey: string;
}
const pagesTo = (path: string) => receiver.requestsTo(path).map((r) => ({ ...(r.body as Page), at: r.at }));

beforeAll(async () => {
  queue = uniqueQueue('e2e-escalation');
  receiver = await startReceiver();
  // A service whose every start fails at once, explaining why on stderr: no restart can fix it.
  await docker(...busyboxRun(container, { command: ['sh', '-c', `echo "orders-api starting"; echo "${fatal}" >&2; exit 78`] }));
  await until(`${container} to exit`, 15_000, async () =>
    (await docker('inspect', '-f', '{{.State.Status}}', container)) === 'exited' ? true : undefined,
  );
  const overrides: Partial<EngineConfigInput> = {
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token },
    targets: {
      [target]: {
        kind: 'container',
        container,
        stopTimeout: '2s',
        health: { url: `http://127.0.0.1:${await closedPort()}/health`, timeout: '1s' },
      },
    },
    bindings: [{ alert: 'ServiceDown', target, runbook: 'serviceDown' }],
    channels: {
      oncall: { type: 'webhook', url: `${receiver.url}/oncall` },
      senior: { type: 'webhook', url: `${receiver.url}/senior` },
      manager: { type: 'webhook', url: `${receiver.url}/manager` },
    },
    escalation: {
      default: 'standard',
      policies: {
        standard: {
          levels: [
            { name: 'on-call', after: '0s', channels: ['oncall'] },
            { name: 'senior', after: '5s', channels: ['senior'] },
            { name: 'manager', after: `${managerAfterMs / 1_000}s`, channels: ['manager'] },
          ],
        },
      },
    },
    operators: [{ name: 'alice', role: 'operator' }],
    // Short verification and backoff keep three failing restarts within seconds.
    guardrails: {
      restarts: { max: 1000, window: '1h' },
      restartAttempts: 3,
      restartBackoff: '500ms',
      verifyDeadline: '3s',
      verifyInterval: '500ms',
    },
  };
  configFile = writeConfig(e2eConfigInput(overrides));
  engine = await startTestEngine(overrides);
});

afterAll(async () => {
  if (engine) {
    await engine.client.workflow
      .getHandle(workflowId)
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.client.workflow
      .getHandle(guardrailsWorkflowId(queue))
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.stop();
  }
  await docker('rm', '-f', container).catch(() => undefined);
  await receiver?.close();
  if (configFile) rmSync(dirname(configFile), { recursive: true, force: true });
});

describe('a service that cannot be brought back', () => {
  it('restarts it three times, diagnoses it, pages on-call then senior (a non-operator cannot stop it), stops paging when an operator acknowledges from the CLI, and resolves the pages when the alert clears', async () => {
    // Docker timestamps with a fraction: the container's own creation a moment ago must not count.
    const since = Date.now();
    const fired = await postAlerts(engine.webhookUrl, token, [
      {
        labels: { alertname: 'ServiceDown', severity: 'critical', service: target },
        annotations: { summary: 'orders API is down' },
        fingerprint: alertFingerprint,
      },
    ]);
    expect(fired.status).toBe(200);
    expect(fired.json.started).toBe(1);

    // Someone not in the operator list acknowledges after level 1: the paging must go on regardless.
    await receiver.waitFor('/oncall', 1, 60_000);
    const handle = engine.client.workflow.getHandle(workflowId);
    const stray = await remediate(configFile, 'ack', workflowId, '--as', 'mallory', '--reason', 'mine');
    expect(stray.code, stray.stderr).toBe(1);
    expect(stray.stderr).toContain("'mallory' is not a configured operator");
    // Past the CLI, straight to Temporal: the workflow records the stranger and keeps paging.
    await handle.signal(acknowledgeSignal, { operator: 'mallory', reason: 'mine' });
    await statusWhen(handle, 'the stray acknowledgement to be recorded as ignored', 15_000, (s) =>
      s.timeline.some((e) => e.event === 'acknowledgement ignored' && e.actor === 'mallory'),
    );

    // Level 2 comes 5 s into the escalation; only then does an operator answer.
    await receiver.waitFor('/senior', 1, 60_000);
    // The page lands a moment before the activity that sent it reports back to the workflow.
    const status = await statusWhen(handle, 'the run to record that it paged senior', 15_000, (s) => s.escalationLevel === 'senior');
    expect(status.step).toBe('escalate');
    expect(status.restartAttempts).toBe(3);
    expect(status.acknowledgedBy).toBeUndefined();

    const ack = await remediate(configFile, 'ack', workflowId, '--as', 'alice', '--reason', 'looking at the config');
    expect(ack.code, ack.stderr).toBe(0);
    // Acknowledged, the paging stops but the incident stays open while its alert fires; when the
    // alert clears, every page is resolved.
    const following = await statusWhen(handle, 'the run to follow the acknowledged incident', 15_000, (s) =>
      s.timeline.some((e) => e.event === 'following'),
    );
    expect(following.acknowledgedBy).toBe('alice');
    await receiver.waitFor('/senior', 2, 15_000);
    const cleared = await postAlerts(engine.webhookUrl, token, [
      { labels: { alertname: 'ServiceDown', severity: 'critical', service: target }, status: 'resolved', fingerprint: alertFingerprint },
    ]);
    expect(cleared.status).toBe(200);
    const result = (await handle.result()) as RunbookResult;
    const restarts = await containerActions(container, since, ['restart']);

    expect(result.outcome, result.detail).toBe('resolved-externally');
    expect(result.detail).toBe('the alert resolved during escalate');
    // Three real restarts by the engine, each verified and found wanting, with backoff between them.
    expect(restarts.split('\n').filter(Boolean)).toHaveLength(3);
    const events = result.timeline.map((e) => e.event);
    expect(events.filter((e) => e === 'restarting')).toHaveLength(3);
    expect(events.filter((e) => e === 'backing off')).toHaveLength(2);
    expect(events.filter((e) => e === 'unhealthy')).toHaveLength(4);
    expect(result.timeline.find((e) => e.event === 'acknowledged')).toMatchObject({
      actor: 'alice',
      detail: 'looking at the config (via admin)',
    });
    expect(events).toContain('paged on-call');
    expect(events).toContain('paged senior');
    expect(events).not.toContain('paged manager');
    // The run ended well before the manager's level would have been paged.
    const escalatingAt = Date.parse(result.timeline.find((e) => e.event === 'escalating')!.at);
    expect(Date.parse(result.endedAt) - escalatingAt).toBeLessThan(managerAfterMs);

    // Diagnostics: the container's state and its own logs (why it cannot start) were gathered.
    const diagnosed = result.timeline.find((e) => e.event === 'diagnosed')!.detail!;
    expect(diagnosed).toContain(`container ${container} state`);
    expect(diagnosed).toContain(`container ${container} logs`);
    expect(diagnosed).toContain(fatal);
    const [diagnostics] = await activityResults<Diagnostics>(handle, 'diagnoseTarget');
    const section = (title: string) => diagnostics!.sections.find((s) => s.title.startsWith(title));
    expect(section(`container ${container} state`)!.text).toContain('exitCode: 78');
    expect(section(`container ${container} logs`)!.text).toContain(fatal);
    expect(section(`container ${container} resources`)!.text).toContain('running: false');

    // The receiver got level 1, then level 2 five seconds into the escalation, each with the diagnosis, then the acknowledgement.
    const oncall = pagesTo('/oncall');
    const senior = pagesTo('/senior');
    expect(oncall.map((p) => p.event)).toEqual(['trigger', 'acknowledge', 'resolve']);
    expect(senior.map((p) => p.event)).toEqual(['trigger', 'acknowledge', 'resolve']);
    expect(receiver.requestsTo('/manager')).toHaveLength(0);
    // Level delays count from when escalation began (not from the previous page, which may have been slow to land).
    expect(oncall[0]!.at).toBeLessThan(senior[0]!.at);
    expect(senior[0]!.at - escalatingAt).toBeGreaterThanOrEqual(5_000);
    for (const page of [oncall[0]!, senior[0]!]) {
      expect(page.title).toBe(`[critical] ServiceDown on '${target}'`);
      expect(page.text).toContain('not healthy after 3 restarts');
      expect(page.text).toContain(`container ${container} logs`);
      // The page names why it cannot start: the end of its log, not the tail's first line.
      expect(page.text).toContain(fatal);
    }
    expect(oncall[1]!.title).toBe(`serviceDown on '${target}' acknowledged by alice`);
    expect(oncall[1]!.text).toBe('looking at the config');
  }, 90_000);
});
