// Crashes in the middle of a runbook: the engine killed with SIGKILL while a restart is under way
// or while escalation waits for its next level, and the Temporal server itself restarted. Each test
// runs the engine as a separate process on a task queue of its own, against a container of its own,
// and asserts from the outside (Docker's events, the notifications received) that nothing ran more
// often than the retry policies allow.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineConfigInput } from '../../config/schema.js';
import { incidentWorkflowId, statusQuery, type RunbookResult } from '../../workflows/messages.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { silentServer } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack } from '../support/stack.js';
import { temporalConfigInput, temporalConnectOptions, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { busyboxRun, dockerSync } from '../support/docker.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { httpOk, until, untilHttpOk } from '../support/wait.js';
import { e2eConfigInput } from './engine.js';

const containers: string[] = [];
const engines: EngineProcess[] = [];
const clients: Connection[] = [];
let receiver: Receiver;
let stackClient: Client;

beforeAll(async () => {
  receiver = await startReceiver();
  const connection = await Connection.connect(temporalConnectOptions());
  clients.push(connection);
  stackClient = new Client({ connection, namespace: stack().temporalNamespace });
});

afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop(5_000)));
  for (const c of containers) {
    try {
      dockerSync('rm', '-f', c);
    } catch {
      // Already gone.
    }
  }
  await Promise.all(clients.map((c) => c.close()));
  await receiver?.close();
});

/** A busybox container on the host network serving /health on 127.0.0.1:port. */
function runContainer(what: string, port: number, command: string[] = []): string {
  const name = `remediation-e2e-${what}-${randomUUID().slice(0, 8)}`;
  containers.push(name);
  dockerSync(...busyboxRun(name, { port, command }));
  return name;
}

/** A busybox container serving /health on a free port, once it answers. */
async function servingContainer(what: string): Promise<{ container: string; healthUrl: string }> {
  const port = await closedPort();
  const container = runContainer(what, port);
  const healthUrl = `http://127.0.0.1:${port}/health`;
  await untilHttpOk(healthUrl, 'the container serving');
  return { container, healthUrl };
}

/** The processes of a container, as host pids with their command lines. */
function processesOf(container: string): Array<{ pid: number; args: string }> {
  return dockerSync('top', container, '-eo', 'pid,args')
    .split('\n')
    .slice(1)
    .map((l) => {
      const [pid, ...args] = l.trim().split(/\s+/);
      return { pid: Number(pid), args: args.join(' ') };
    });
}

/** Docker's lifecycle events for one container between two instants, oldest first. */
function containerEvents(container: string, sinceMs: number, untilMs = Date.now()): Array<{ action: string; signal?: string }> {
  const out = dockerSync(
    'events',
    '--since',
    (sinceMs / 1000).toFixed(3),
    '--until',
    (untilMs / 1000).toFixed(3),
    '--filter',
    `container=${container}`,
    '--format',
    '{{json .}}',
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const e = JSON.parse(line) as { Action: string; Actor?: { Attributes?: Record<string, string> } };
      return { action: e.Action, signal: e.Actor?.Attributes?.signal };
    });
}

/** One target, one binding and one escalation policy, on a queue and webhook of the test's own. */
function faultConfig(opts: {
  target: string;
  container: string;
  healthUrl: string;
  stopTimeout?: string;
  levels: Array<{ name: string; after: string }>;
  restartAttempts?: number;
  /** A test's own dev server instead of the stack's Temporal. */
  server?: DevServer;
}): EngineConfigInput {
  const base = e2eConfigInput();
  return {
    ...base,
    temporal: {
      ...(opts.server ? { address: opts.server.address, namespace: opts.server.namespace } : temporalConfigInput()),
      taskQueue: uniqueQueue(`faults-${opts.target}`),
    },
    webhook: { ...base.webhook, listen: '127.0.0.1:0' },
    targets: {
      [opts.target]: {
        kind: 'container',
        container: opts.container,
        stopTimeout: opts.stopTimeout ?? '2s',
        labels: { service: opts.target },
        health: { url: opts.healthUrl, timeout: '1s' },
      },
    },
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: [opts.target], runbook: 'serviceDown' }],
    channels: { pager: { type: 'webhook', url: `${receiver.url}/${opts.target}` } },
    escalation: {
      default: 'standard',
      policies: { standard: { levels: opts.levels.map((l) => ({ ...l, channels: ['pager'] })) } },
    },
    guardrails: {
      restarts: { max: 1000, window: '1h' },
      restartAttempts: opts.restartAttempts ?? 3,
      restartBackoff: '500ms',
      verifyDeadline: '3s',
      verifyInterval: '500ms',
    },
  };
}

async function engineFor(config: EngineConfigInput): Promise<EngineProcess> {
  const engine = await spawnEngine(config);
  engines.push(engine);
  return engine;
}

/** What Alertmanager would post for a firing ServiceDown on the target. */
async function fire(engine: EngineProcess, target: string): Promise<void> {
  const labels = { alertname: 'ServiceDown', service: target, severity: 'critical' };
  const { status } = await postAlerts(engine.webhookUrl, stack().webhookToken, [{ labels, annotations: { summary: `${target} is down` } }]);
  expect(status).toBe(200);
}

/** The level each notification was about: the idempotency key ends with the level's name. */
function pagedLevels(target: string): string[] {
  return receiver.requestsTo(`/${target}`).map((r) => {
    const body = r.body as { event: string; idempotencyKey: string };
    return `${body.event} ${body.idempotencyKey.split(':').at(-1)}`;
  });
}

/** A failed wait says where the run was: its timeline, and the end of the engine's log. */
async function explained<T>(work: Promise<T>, client: Client, workflowId: string, engine?: EngineProcess): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const status = await client.workflow
      .getHandle(workflowId)
      .query(statusQuery)
      .catch((e: unknown) => String(e));
    const timeline =
      typeof status === 'string' ? status : status.timeline.map((e) => `${e.at} ${e.step}: ${e.event} ${e.detail ?? ''}`).join('\n');
    throw new Error(`${(err as Error).message}\n--- ${workflowId}:\n${timeline}\n--- engine log:\n${engine?.output().slice(-3_000) ?? ''}`);
  }
}

/** The run's result, or after ms a failure that says where it stopped. */
async function outcomeOf(client: Client, workflowId: string, ms: number, engine: EngineProcess): Promise<RunbookResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${workflowId} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await explained(
      Promise.race([client.workflow.getHandle(workflowId).result() as Promise<RunbookResult>, deadline]),
      client,
      workflowId,
      engine,
    );
  } finally {
    clearTimeout(timer);
  }
}

describe('the engine killed with SIGKILL', () => {
  it('finishes a restart that was under way when the engine died, restarting the container at most twice', async () => {
    const target = `slow-${randomUUID().slice(0, 6)}`;
    const port = await closedPort();
    // PID 1 ignores SIGTERM, so `docker restart` waits out the whole stop timeout before its SIGKILL:
    // a restart that is still in progress when the engine dies. Only a fresh start brings httpd back.
    const container = runContainer('slow-restart', port, [
      'sh',
      '-c',
      'trap "" TERM; /bin/busybox httpd -f -p "127.0.0.1:$PORT" -h /www & while :; do sleep 1; done',
    ]);
    const healthUrl = `http://127.0.0.1:${port}/health`;
    await untilHttpOk(healthUrl, 'the slow container healthy');
    const config = faultConfig({ target, container, healthUrl, stopTimeout: '8s', levels: [{ name: 'on-call', after: '0s' }] });
    const workflowId = incidentWorkflowId('serviceDown', target);
    const since = Date.now();

    // The web server dies; the container (and its PID 1) lives on, so only a restart helps.
    const httpd = processesOf(container).find((p) => p.args.startsWith('/bin/busybox httpd'))!;
    process.kill(httpd.pid, 'SIGKILL');
    await until('the health check failing', 10_000, async () => ((await httpOk(healthUrl)) ? undefined : true));
    expect(dockerSync('inspect', '-f', '{{.State.Status}}', container)).toBe('running');

    const first = await engineFor(config);
    await fire(first, target);
    // Docker has sent the SIGTERM of the restart and is waiting out the stop timeout.
    await explained(
      until('docker to be in the middle of the restart', 60_000, async () =>
        containerEvents(container, since).some((e) => e.action === 'kill' && e.signal === '15') ? true : undefined,
      ),
      stackClient,
      workflowId,
      first,
    );
    const pending = (await stackClient.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
    expect(pending.map((a) => a.activityType?.name)).toContain('restartTarget');
    first.kill('SIGKILL');
    await first.exited;

    const killedAt = Date.now();
    const second = await engineFor(config);
    // Temporal retries the restart once the dead attempt misses its heartbeat timeout (20 s,
    // workflows/steps/activities.ts), not at its 3-minute start-to-close limit.
    const result = await outcomeOf(stackClient, workflowId, 120_000, second);
    expect(result.outcome).toBe('recovered');
    expect(Date.now() - killedAt).toBeLessThan(60_000);
    expect(await httpOk(healthUrl)).toBe(true);

    // The bound: the runbook made one restart attempt (it verified healthy), and the restart activity
    // allows maximumAttempts 2 (workflows/steps/activities.ts, `restarts`); each attempt is one
    // `docker restart`, so at most two starts. The dead engine's restart went on in Docker (the request
    // had reached the daemon), and the retry restarted the container once more.
    const starts = containerEvents(container, since).filter((e) => e.action === 'start');
    expect(starts.length).toBeLessThanOrEqual(2);

    const history = await stackClient.workflow.getHandle(workflowId).fetchHistory();
    const restartsScheduled = (history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget',
    );
    expect(restartsScheduled).toHaveLength(1);
    const started = (history.events ?? []).find(
      (e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === restartsScheduled[0]!.eventId?.toString(),
    );
    // The attempt that completed was the retry: the dead engine's attempt never reported back.
    expect(started?.activityTaskStartedEventAttributes?.attempt).toBe(2);
    expect(pagedLevels(target)).toEqual([]);
    await terminateRunning(stackClient, config.temporal!.taskQueue!, 'end of the fault test');
  }, 180_000);

  it("carries on an incident whose first workflow task was handed to the engine in its start's reply when that engine dies", async () => {
    const target = `eager-${randomUUID().slice(0, 6)}`;
    const { container, healthUrl } = await servingContainer('eager');
    dockerSync('stop', '-t', '0', container);
    // The first engine's Alertmanager takes connections and never answers: its first task (the
    // silence check beside the other first reads) stays open until the engine is killed.
    const silent = await silentServer();
    const config = faultConfig({ target, container, healthUrl, levels: [{ name: 'on-call', after: '1h' }] });
    const workflowId = incidentWorkflowId('serviceDown', target);
    try {
      const first = await engineFor({ ...config, alertmanager: { url: `http://127.0.0.1:${silent.port}` } });
      await fire(first, target);
      await until('the silence check to reach the silent Alertmanager', 20_000, async () => (silent.connections() > 0 ? true : undefined));
      first.kill('SIGKILL');
      await first.exited;

      const second = await engineFor(config);
      const result = await outcomeOf(stackClient, workflowId, 90_000, second);
      expect(result.outcome, result.detail).toBe('recovered');
      expect(await httpOk(healthUrl)).toBe(true);
      const events = (await stackClient.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
      // Started eagerly: the first task was the dead engine's from the start, no signal carried the alert.
      expect(events.filter((e) => e.workflowExecutionSignaledEventAttributes)).toHaveLength(0);
      const tasksStarted = events.filter((e) => e.workflowTaskStartedEventAttributes);
      expect(tasksStarted[0]!.workflowTaskStartedEventAttributes!.identity).not.toBe(
        tasksStarted.at(-1)!.workflowTaskStartedEventAttributes!.identity,
      );
      expect(events.some((e) => e.workflowTaskTimedOutEventAttributes)).toBe(true);
      expect(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget')).toHaveLength(1);
    } finally {
      await silent.close();
    }
  }, 150_000);

  it('pages every escalation level exactly once, in order, when the engine dies between two levels', async () => {
    const target = `dead-${randomUUID().slice(0, 6)}`;
    const port = await closedPort();
    // Each start writes a line to the container's log, which outlives restarts (Docker's event log
    // keeps only its last 256 events: on a busy machine they do not reach back to this test's start).
    const container = runContainer('escalation', port, ['sh', '-c', 'echo started; exec /bin/serve']);
    // The container serves, but its health URL points at a port nothing listens on: restarts
    // "work" and never help, so the runbook restarts three times and escalates.
    const healthUrl = `http://127.0.0.1:${await closedPort()}/health`;
    await untilHttpOk(`http://127.0.0.1:${port}/health`, 'the container serving');
    const levels = [
      { name: 'on-call', after: '0s' },
      { name: 'senior', after: '6s' },
      { name: 'manager', after: '12s' },
    ];
    const config = faultConfig({ target, container, healthUrl, levels });
    const workflowId = incidentWorkflowId('serviceDown', target);

    const first = await engineFor(config);
    await fire(first, target);
    await explained(receiver.waitFor(`/${target}`, 1, 90_000), stackClient, workflowId, first);
    // The page's activity completion is in the history: the run now only waits for the next level.
    await until('the first level recorded', 10_000, async () =>
      (await stackClient.workflow.getHandle(workflowId).query(statusQuery)).escalationLevel === 'on-call' ? true : undefined,
    );
    first.kill('SIGKILL');
    await first.exited;
    const killedAt = Date.now();
    expect(pagedLevels(target)).toEqual(['trigger on-call']);

    const second = await engineFor(config);
    const result = await outcomeOf(stackClient, workflowId, 60_000, second);
    expect(result.outcome).toBe('escalated');
    expect(pagedLevels(target)).toEqual(['trigger on-call', 'trigger senior', 'trigger manager']);
    const [, senior] = receiver.requestsTo(`/${target}`);
    expect(senior!.at).toBeGreaterThan(killedAt);

    // Three restart attempts configured; each is one `docker restart`, one start after the first.
    const starts = dockerSync('logs', container)
      .split('\n')
      .filter((l) => l === 'started');
    expect(starts).toHaveLength(1 + 3);
    await terminateRunning(stackClient, config.temporal!.taskQueue!, 'end of the fault test');
  }, 120_000);
});

describe('the Temporal server restarted', () => {
  let server: DevServer;
  let engine: EngineProcess | undefined;

  beforeAll(async () => {
    server = await startDevServer();
  }, 90_000);

  afterAll(async () => {
    // Its worker drains against the server, so the engine goes first.
    await engine?.stop(10_000);
    await server?.close();
  });

  it('carries on escalating after its Temporal dev server stopped and started again with the same state', async () => {
    const target = `tsrv-${randomUUID().slice(0, 6)}`;
    const port = await closedPort();
    const container = runContainer('temporal-restart', port);
    const healthUrl = `http://127.0.0.1:${await closedPort()}/health`;
    await untilHttpOk(`http://127.0.0.1:${port}/health`, 'the container serving');
    const config = faultConfig({
      target,
      container,
      healthUrl,
      restartAttempts: 1,
      server,
      // The second level falls due while the server is down (it stops about a second after the first).
      levels: [
        { name: 'on-call', after: '0s' },
        { name: 'senior', after: '6s' },
      ],
    });
    const workflowId = incidentWorkflowId('serviceDown', target);
    const connection = await Connection.connect({ address: server.address });
    clients.push(connection);
    const client = new Client({ connection, namespace: server.namespace });

    engine = await engineFor(config);
    await fire(engine, target);
    await receiver.waitFor(`/${target}`, 1, 90_000);
    await until('the first level recorded', 10_000, async () =>
      (await client.workflow.getHandle(workflowId).query(statusQuery)).escalationLevel === 'on-call' ? true : undefined,
    );

    await server.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 8_000));
    expect(pagedLevels(target)).toEqual(['trigger on-call']);
    await server.start();

    const result = await outcomeOf(client, workflowId, 60_000, engine);
    expect(result.outcome).toBe('escalated');
    expect(pagedLevels(target)).toEqual(['trigger on-call', 'trigger senior']);

    // The same engine process did it: its worker outlived the server's absence.
    const stillRunning = await Promise.race([engine.exited.then(() => false), new Promise((r) => setTimeout(() => r(true), 100))]);
    expect(stillRunning, engine.output().slice(-4_000)).toBe(true);
    await terminateRunning(client, config.temporal!.taskQueue!, 'end of the fault test');
  }, 120_000);
});

describe('Temporal down and the engine killed, with alerts in its spool', () => {
  let server: DevServer;
  let dataDir: string;

  beforeAll(async () => {
    server = await startDevServer();
    dataDir = mkdtempSync(join(tmpdir(), 'remediation-faults-spool-'));
  }, 90_000);

  afterAll(async () => {
    for (const e of engines) await e.stop(10_000);
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('acknowledges the alert while Temporal is down, and the next engine remediates it once Temporal is back', async () => {
    const target = `spool-${randomUUID().slice(0, 6)}`;
    const { container, healthUrl } = await servingContainer('spool');
    const base = faultConfig({ target, container, healthUrl, server, levels: [{ name: 'on-call', after: '0s' }] });
    // The same dataDir for both engines: the second finds what the first spooled.
    const config = { ...base, dataDir, webhook: { ...base.webhook, spool: true } };

    const first = await engineFor(config);
    await server.stop('SIGKILL');
    dockerSync('kill', container);
    await fire(first, target);
    first.kill('SIGKILL');
    await first.exited;

    await server.start();
    const connection = await Connection.connect({ address: server.address });
    clients.push(connection);
    const client = new Client({ connection, namespace: server.namespace });
    const second = await engineFor(config);
    expect(second.output()).toContain('forwarding alerts spooled before this start');
    const workflowId = incidentWorkflowId('serviceDown', target);
    // The engine forwards its spool after it is running: until then the run does not exist, and
    // asking for its result would fail as not found (seen once on a loaded machine).
    await until('the spooled alert started its run', 30_000, () => client.workflow.getHandle(workflowId).describe());
    const result = await outcomeOf(client, workflowId, 90_000, second);
    expect(result.outcome).toBe('recovered');
    expect(await httpOk(healthUrl)).toBe(true);
    await terminateRunning(client, config.temporal!.taskQueue!, 'end of the fault test');
  }, 180_000);
});
