// A database runbook end to end with real activities: a Redis server in a container goes down, the
// alert reaches the engine's webhook, the runbook confirms it, diagnoses, and waits for an operator.
// Operators answer through the real CLI, as a separate process; only a configured operator's
// approval restarts the container, and a rejection leaves it alone.
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import type { EngineConfigInput } from '../../config/schema.js';
import type { RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { approveSignal, incidentWorkflowId, type RunbookResult, type RunbookStatus } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { writeConfig } from '../support/engineProcess.js';
import { remediate } from '../support/operatorCli.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { startRedisContainer, type RedisContainer } from '../support/redisContainer.js';
import { pendingApproval, statusWhen } from '../support/runStatus.js';
import { temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { e2eConfigInput, startTestEngine } from './engine.js';

const suffix = randomUUID().slice(0, 8);
const cache = `cache-${suffix}`;
const cacheServer = `cache-server-${suffix}`;
const alertname = 'RedisConnectionFailed';
const token = randomUUID();
const workflowId = incidentWorkflowId('databaseConnection', cache);

let redis: RedisContainer;
let receiver: Receiver;
let engine: RunningEngine;
let configFile: string;
let queue: string;

async function fireAlert(): Promise<void> {
  const { status, json } = await postAlerts(engine.webhookUrl, token, [
    { labels: { alertname, severity: 'critical', service: cache }, annotations: { summary: 'cache does not accept connections' } },
  ]);
  expect(status, JSON.stringify(json)).toBe(200);
  expect(json.started).toBe(1);
}

const handle = (): WorkflowHandle => engine.client.workflow.getHandle(workflowId);

beforeAll(async () => {
  queue = uniqueQueue('e2e-approval');
  [redis, receiver] = await Promise.all([startRedisContainer(), startReceiver()]);
  const overrides: Partial<EngineConfigInput> = {
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token },
    targets: {
      [cacheServer]: { kind: 'container', container: redis.name, stopTimeout: '5s' },
      [cache]: { kind: 'redis', host: '127.0.0.1', port: redis.port, password: redis.password, timeout: '2s', restartVia: cacheServer },
    },
    bindings: [{ alert: alertname, target: cache, runbook: 'databaseConnection' }],
    channels: { ops: { type: 'webhook', url: `${receiver.url}/ops` } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['ops'] }] } } },
    operators: [{ name: 'alice', role: 'operator' }],
  };
  configFile = writeConfig(e2eConfigInput(overrides));
  engine = await startTestEngine(overrides);
});

afterAll(async () => {
  if (engine) {
    await handle()
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.client.workflow
      .getHandle(guardrailsWorkflowId(queue))
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.stop();
  }
  await Promise.all([redis?.remove(), receiver?.close()]);
  if (configFile) rmSync(dirname(configFile), { recursive: true, force: true });
});

describe('a database runbook waits for an operator', () => {
  it('restarts the stopped Redis container only after a configured operator approves from the CLI', async () => {
    await redis.stop();
    const stoppedAt = await redis.startedAt();
    expect(await redis.ping()).toBe(false);

    await fireAlert();
    const waiting = await pendingApproval(handle());
    expect(waiting.pendingApproval!.step).toBe('approve-restart');
    // The runbook confirmed the outage and diagnosed it before asking: the server behind the cache is stopped.
    expect(waiting.timeline.some((e) => e.step === 'verify' && e.event === 'unhealthy')).toBe(true);
    expect(waiting.diagnosticsSummary).toContain('redis clients');
    expect(waiting.diagnosticsSummary).toContain(`container ${redis.name} state`);
    // The approval request was paged to the first level, with the diagnostics.
    const [page] = await receiver.waitFor('/ops', 1, 30_000);
    const request = page!.body as { event: string; title: string; text: string };
    expect(request.event).toBe('trigger');
    expect(request.title).toBe(`Approval needed: restart database '${cache}'`);
    expect(request.text).toContain(`container ${redis.name} state`);

    // Someone not in the operator list is refused by the CLI, and nothing changes.
    const refused = await remediate(configFile, 'approve', workflowId, '--as', 'mallory', '--reason', 'looks fine to me');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("'mallory' is not a configured operator");
    const shown = await remediate(configFile, '--json', 'show', workflowId);
    expect(shown.code, shown.stderr).toBe(0);
    expect((shown.json as { live: RunbookStatus }).live.pendingApproval?.step).toBe('approve-restart');
    // A signal sent around the CLI is no better: the workflow itself ignores non-operators.
    await handle().signal(approveSignal, { operator: 'mallory', reason: 'straight to Temporal' });
    const ignored = await statusWhen(handle(), 'the stray approval to be recorded as ignored', 15_000, (s) =>
      s.timeline.some((e) => e.event === 'approval ignored' && e.actor === 'mallory'),
    );
    expect(ignored.pendingApproval?.step).toBe('approve-restart');
    expect(ignored.approvedBy).toBeUndefined();
    expect(await redis.state()).toBe('exited');
    expect(await redis.startedAt()).toBe(stoppedAt);

    const approved = await remediate(configFile, 'approve', workflowId, '--as', 'alice', '--reason', 'cache is down, restart it');
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`approve by alice sent to ${workflowId}`);

    const result = (await handle().result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the restart approved by alice');
    expect(await redis.ping()).toBe(true);
    expect(await redis.state()).toBe('running');
    expect(await redis.startedAt()).not.toBe(stoppedAt);
    const byAlice = result.timeline.filter((e) => e.actor === 'alice').map((e) => e.event);
    expect(byAlice).toEqual(['approved', 'restarting', 'restarted']);
    expect(result.timeline.find((e) => e.event === 'restarted')!.detail).toContain(`restarted container '${redis.name}'`);
    // The channel that was asked for approval hears that it is over.
    const pages = await receiver.waitFor('/ops', 2);
    expect(pages.map((p) => (p.body as { event: string }).event)).toEqual(['trigger', 'resolve']);
  }, 90_000);

  it('ends the run as rejected when the operator rejects, and leaves the container stopped', async () => {
    receiver.reset();
    await redis.stop();
    const stoppedAt = await redis.startedAt();

    await fireAlert();
    await pendingApproval(handle());
    const rejected = await remediate(configFile, 'reject', workflowId, '--as', 'alice', '--reason', 'planned outage, leave it down');
    expect(rejected.code, rejected.stderr).toBe(0);

    const result = (await handle().result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('rejected');
    expect(result.detail).toBe('restart rejected by alice: planned outage, leave it down');
    expect(result.timeline.find((e) => e.event === 'rejected')?.actor).toBe('alice');
    expect(result.timeline.some((e) => e.event === 'restarting')).toBe(false);
    expect(await redis.state()).toBe('exited');
    expect(await redis.startedAt()).toBe(stoppedAt);
    expect(await redis.ping()).toBe(false);
    // The approval page is closed by the decision, naming who decided and why.
    const pages = receiver.requestsTo('/ops');
    expect(pages.map((p) => (p.body as { event: string }).event)).toEqual(['trigger', 'resolve']);
    expect((pages[1]!.body as { text: string }).text).toBe('restart rejected by alice: planned outage, leave it down');
  }, 90_000);
});
