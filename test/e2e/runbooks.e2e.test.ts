// The approval runbooks other than the database one, end to end with real activities: a high error
// rate on an HTTP service fixed by its configured action (a cache clear), resource pressure on a
// container fixed by a restart, and the same restart under dryRun, which must change nothing.
// Alerts enter through the engine's webhook; the operator approves through the real CLI.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Diagnostics } from '../../activities/contract.js';
import type { EngineConfigInput } from '../../config/schema.js';
import type { RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { busyboxRun, containerActions, docker } from '../support/docker.js';
import { writeConfig } from '../support/engineProcess.js';
import { activityResults } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { remediate } from '../support/operatorCli.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { pendingApproval } from '../support/runStatus.js';
import { temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { httpOk, untilHttpOk } from '../support/wait.js';
import { e2eConfigInput, startTestEngine } from './engine.js';

/**
 * A web service failing half its requests because of a poisoned cache: /health answers 500 and
 * /health/detailed names the cache, until its admin endpoint clears the cache.
 */
async function startFailingService(): Promise<{ url: string; clears: IncomingHttpHeaders[]; close: () => Promise<void> }> {
  const clears: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    const cleared = clears.length > 0;
    if (req.method === 'POST' && req.url === '/admin/cache/clear') {
      clears.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('cache cleared');
    } else if (req.url === '/health') {
      res.writeHead(cleared ? 200 : 500, { 'content-type': 'text/plain' }).end(cleared ? 'ok' : 'error rate 48% over 5m');
    } else if (req.url === '/health/detailed') {
      const cache = cleared ? { status: 'pass' } : { status: 'fail', output: 'stale entries served: 48% of responses are 500' };
      res
        .writeHead(cleared ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: cleared ? 'pass' : 'fail', checks: { cache, database: { status: 'pass' } } }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clears,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const suffix = randomUUID().slice(0, 8);
const web = `web-${suffix}`;
const worker = `worker-${suffix}`;
const workerDry = `worker-dry-${suffix}`;
const container = `remediation-e2e-worker-${suffix}`;
const token = randomUUID();

interface TestEngine {
  engine: RunningEngine;
  configFile: string;
  queue: string;
}

let receiver: Receiver;
let service: Awaited<ReturnType<typeof startFailingService>>;
let workerHealth: string;
let live: TestEngine;
let dry: TestEngine;
const engines: TestEngine[] = [];

async function engineFor(prefix: string, overrides: Partial<EngineConfigInput>): Promise<TestEngine> {
  const queue = uniqueQueue(prefix);
  const input: Partial<EngineConfigInput> = {
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token },
    channels: { ops: { type: 'webhook', url: `${receiver.url}/ops` } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['ops'] }] } } },
    operators: [{ name: 'alice', role: 'operator' }],
    ...overrides,
  };
  const configFile = writeConfig(e2eConfigInput(input));
  const engine = await startTestEngine(input);
  const started = { engine, configFile, queue };
  engines.push(started);
  return started;
}

async function fireAlert(e: TestEngine, labels: Record<string, string>): Promise<void> {
  const { status, json } = await postAlerts(e.engine.webhookUrl, token, [{ labels }]);
  expect(status, JSON.stringify(json)).toBe(200);
  expect(json.started).toBe(1);
}

const startedAt = () => docker('inspect', '-f', '{{.State.StartedAt}}', container);

beforeAll(async () => {
  [receiver, service] = await Promise.all([startReceiver(), startFailingService()]);
  const port = await closedPort();
  workerHealth = `http://127.0.0.1:${port}/health`;
  await docker(...busyboxRun(container, { port }));
  await untilHttpOk(workerHealth, `${container} serving /health`);

  const workerTarget = { kind: 'container' as const, container, stopTimeout: '5s', health: { url: workerHealth, timeout: '1s' } };
  [live, dry] = await Promise.all([
    engineFor('e2e-runbooks', {
      targets: {
        [web]: {
          kind: 'http',
          health: { url: `${service.url}/health`, detailedUrl: `${service.url}/health/detailed`, timeout: '1s' },
          action: { method: 'POST', url: `${service.url}/admin/cache/clear` },
        },
        [worker]: workerTarget,
      },
      bindings: [
        { alert: 'HighErrorRate', target: web, runbook: 'highErrorRate' },
        { alert: 'ContainerMemoryHigh', target: worker, runbook: 'resourcePressure' },
      ],
    }),
    engineFor('e2e-runbooks-dry', {
      dryRun: true,
      targets: { [workerDry]: workerTarget },
      bindings: [{ alert: 'ContainerMemoryHigh', target: workerDry, runbook: 'resourcePressure' }],
    }),
  ]);
});

afterAll(async () => {
  for (const { engine, queue } of engines) {
    for (const id of [
      incidentWorkflowId('highErrorRate', web),
      incidentWorkflowId('resourcePressure', worker),
      incidentWorkflowId('resourcePressure', workerDry),
      guardrailsWorkflowId(queue),
    ]) {
      await engine.client.workflow
        .getHandle(id)
        .terminate('end-to-end test finished')
        .catch(() => undefined);
    }
  }
  await Promise.all(engines.map(({ engine }) => engine.stop()));
  for (const { configFile } of engines) rmSync(dirname(configFile), { recursive: true, force: true });
  await docker('rm', '-f', container).catch(() => undefined);
  await Promise.all([receiver?.close(), service?.close()]);
});

describe('runbooks that act only with approval', () => {
  it('high error rate: diagnoses the failing service, clears its cache once approved from the CLI, and sees it healthy', async () => {
    const workflowId = incidentWorkflowId('highErrorRate', web);
    const handle = live.engine.client.workflow.getHandle(workflowId);
    await fireAlert(live, { alertname: 'HighErrorRate', severity: 'warning', service: web });

    const waiting = await pendingApproval(handle);
    expect(waiting.pendingApproval!.step).toBe('approve-action');
    expect(waiting.diagnosticsSummary).toContain('health: http failed: expected status 200, got 500');
    expect(waiting.diagnosticsSummary).toContain(`detailed health ${service.url}/health/detailed`);
    const [diagnostics] = await activityResults<Diagnostics>(handle, 'diagnoseTarget');
    expect(diagnostics!.sections.find((s) => s.title.startsWith('detailed health'))!.text).toContain(
      'FAIL cache: fail: stale entries served',
    );
    // Nothing was done before an operator said so.
    expect(service.clears).toHaveLength(0);

    const approved = await remediate(live.configFile, 'approve', workflowId, '--as', 'alice', '--reason', 'clear the cache');
    expect(approved.code, approved.stderr).toBe(0);
    const result = (await handle.result()) as RunbookResult;

    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the action approved by alice');
    // The configured action ran exactly once, with a key that makes a retried POST harmless: this
    // run's and this activity's, so the next incident on the target is not answered from this one.
    expect(service.clears).toHaveLength(1);
    const runId = (await handle.describe()).runId;
    expect(service.clears[0]!['idempotency-key']).toMatch(
      new RegExp(`^${workflowId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${runId}:\\d+:action$`),
    );
    expect(result.timeline.find((e) => e.event === 'action ran')).toMatchObject({
      actor: 'alice',
      detail: `POST ${service.url}/admin/cache/clear → 200`,
    });
    expect(await httpOk(`${service.url}/health`)).toBe(true);
  }, 90_000);

  it('resource pressure: diagnoses the container, including its resource use, and restarts it once approved from the CLI', async () => {
    const workflowId = incidentWorkflowId('resourcePressure', worker);
    const handle = live.engine.client.workflow.getHandle(workflowId);
    const before = await startedAt();
    await fireAlert(live, { alertname: 'ContainerMemoryHigh', severity: 'warning', service: worker });

    const waiting = await pendingApproval(handle);
    expect(waiting.pendingApproval!.step).toBe('approve-restart');
    expect(waiting.diagnosticsSummary).toContain('health: ok');
    expect(waiting.diagnosticsSummary).toContain(`container ${container} resources`);
    const [diagnostics] = await activityResults<Diagnostics>(handle, 'diagnoseTarget');
    const resources = diagnostics!.sections.find((s) => s.title === `container ${container} resources`)!;
    // This daemon may have no cgroup data (available: false); the section is there either way.
    expect(resources.ok).toBe(true);
    expect(resources.text).toContain('running: true');
    expect(resources.text).toMatch(/^available: (true|false)$/m);
    expect(diagnostics!.sections.find((s) => s.title === `container ${container} state`)!.text).toContain('state: running');
    expect(await startedAt()).toBe(before);

    const approved = await remediate(live.configFile, 'approve', workflowId, '--as', 'alice', '--reason', 'memory at 97%, restart');
    expect(approved.code, approved.stderr).toBe(0);
    const result = (await handle.result()) as RunbookResult;

    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the restart approved by alice');
    expect(await startedAt()).not.toBe(before);
    expect(await httpOk(workerHealth)).toBe(true);
    expect(result.timeline.find((e) => e.event === 'restarted')).toMatchObject({ actor: 'alice' });
    expect(result.timeline.find((e) => e.event === 'restarted')!.detail).toContain(`restarted container '${container}'`);
  }, 90_000);

  it('dry run: the approved restart is recorded but the container is not restarted and nobody is paged', async () => {
    const workflowId = incidentWorkflowId('resourcePressure', workerDry);
    const handle = dry.engine.client.workflow.getHandle(workflowId);
    const before = await startedAt();
    const since = Date.now();
    receiver.reset();
    await fireAlert(dry, { alertname: 'ContainerMemoryHigh', severity: 'warning', service: workerDry });

    await pendingApproval(handle);
    const approved = await remediate(dry.configFile, 'approve', workflowId, '--as', 'alice', '--reason', 'see what it would do');
    expect(approved.code, approved.stderr).toBe(0);
    const result = (await handle.result()) as RunbookResult;

    expect(result.outcome, result.detail).toBe('recovered');
    const restarted = result.timeline.find((e) => e.event === 'restarted')!;
    expect(restarted.actor).toBe('alice');
    expect(restarted.detail).toMatch(new RegExp(`^would restart container '${container}'`));
    expect(result.timeline.find((e) => e.event === 'paged approval:approve-restart')!.detail).toBe('ops (dry-run)');
    const lifecycle = await containerActions(container, since, ['kill', 'stop', 'start']);
    expect(lifecycle).toBe('');
    expect(await startedAt()).toBe(before);
    expect(receiver.requests).toHaveLength(0);
  }, 90_000);
});
