// The cluster's own processes failing in the middle of a runbook: history, matching and the frontend
// SIGKILLed, and its PostgreSQL crashed, each while a runbook restarts a container that never gets
// healthy and then escalates by timer. The runbook must complete, no activity may run more often
// than its retry policy allows, and every level is paged exactly once.
// Runs only with TEMPORAL_MODE=cluster, and alone (scripts/test-cluster.sh runs it after test/e2e):
// it takes down services every other test on the cluster depends on.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineConfigInput } from '../../config/schema.js';
import { incidentWorkflowId, statusQuery, type RunbookResult } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { clusterUp, crashClusterPostgres, killClusterService, type ClusterService } from '../support/cluster.js';
import { dockerSync } from '../support/docker.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { historyEvents } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack, temporalMode } from '../support/stack.js';
import { temporalConfigInput, temporalConnectOptions, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { until, untilHttpOk } from '../support/wait.js';
import { e2eConfigInput } from '../e2e/engine.js';

const levels = [
  { name: 'on-call', after: '0s' },
  { name: 'senior', after: '6s' },
  { name: 'manager', after: '12s' },
];
const restartAttempts = 3;
/** workflows/steps/activities.ts: a restart is tried at most twice. */
const restartMaxAttempts = 2;

describe.skipIf(temporalMode() !== 'cluster')('the Temporal cluster failing mid-runbook', () => {
  const containers: string[] = [];
  const engines: EngineProcess[] = [];
  let receiver: Receiver;
  let connection: Connection;
  let client: Client;

  beforeAll(async () => {
    await clusterUp();
    receiver = await startReceiver();
    connection = await Connection.connect(temporalConnectOptions());
    client = new Client({ connection, namespace: stack().temporalNamespace });
  }, 200_000);

  afterAll(async () => {
    // Whatever a failed test left down comes back for whoever uses the cluster next.
    await clusterUp().catch((err: unknown) => console.error(`cluster-up after the fault tests: ${String(err)}`));
    await Promise.all(engines.map((e) => e.stop(10_000)));
    for (const c of containers) {
      try {
        dockerSync('rm', '-f', c);
      } catch {
        // Already gone.
      }
    }
    await connection?.close();
    await receiver?.close();
  }, 200_000);

  /** A container that serves, and a health URL nothing answers: every restart "works" and none helps. */
  async function unhealable(target: string): Promise<{ container: string; config: EngineConfigInput }> {
    const port = await closedPort();
    const container = `remediation-cluster-${target}`;
    containers.push(container);
    // Each start writes a line to the container's log, which outlives restarts: the count of starts
    // from the container itself (Docker's event log keeps only its last 256 events, which a busy
    // machine turns over within one of these tests).
    dockerSync(
      'run',
      '-d',
      '--name',
      container,
      '--network',
      'host',
      '--label',
      'remediation.stack=1',
      '-e',
      `PORT=${port}`,
      stack().busyboxImage,
      'sh',
      '-c',
      'echo started; exec /bin/serve',
    );
    await untilHttpOk(`http://127.0.0.1:${port}/health`, 'the container serving');
    const base = e2eConfigInput();
    const config: EngineConfigInput = {
      ...base,
      temporal: { ...temporalConfigInput(), taskQueue: uniqueQueue(`cluster-${target}`) },
      webhook: { ...base.webhook, listen: '127.0.0.1:0' },
      targets: {
        [target]: {
          kind: 'container',
          container,
          stopTimeout: '2s',
          labels: { service: target },
          health: { url: `http://127.0.0.1:${await closedPort()}/health`, timeout: '1s' },
        },
      },
      bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: [target], runbook: 'serviceDown' }],
      channels: { pager: { type: 'webhook', url: `${receiver.url}/${target}` } },
      escalation: { default: 'standard', policies: { standard: { levels: levels.map((l) => ({ ...l, channels: ['pager'] })) } } },
      guardrails: {
        restarts: { max: 1000, window: '1h' },
        restartAttempts,
        restartBackoff: '500ms',
        verifyDeadline: '3s',
        verifyInterval: '500ms',
      },
    };
    return { container, config };
  }

  /** How often the container was started again after it was created. */
  function restarts(container: string): number {
    return (
      dockerSync('logs', container)
        .split('\n')
        .filter((l) => l === 'started').length - 1
    );
  }

  /** Every notification the receiver got for the target: event, level and idempotency key. */
  function pages(target: string): Array<{ level: string; key: string }> {
    return receiver.requestsTo(`/${target}`).map((r) => {
      const body = r.body as { event: string; idempotencyKey: string };
      return { level: `${body.event} ${body.idempotencyKey.split(':').at(-1)}`, key: body.idempotencyKey };
    });
  }

  /**
   * Fires the alert, waits for `moment`, injects the fault, brings the cluster back, and checks the
   * run from the outside (Docker's events, the pages) and from its history.
   */
  async function survives(what: string, moment: 'restarting' | 'escalating', fault: () => Promise<void>): Promise<void> {
    const target = `${what}-${randomUUID().slice(0, 6)}`;
    const { container, config } = await unhealable(target);
    const workflowId = incidentWorkflowId('serviceDown', target);
    const engine = await spawnEngine(config);
    engines.push(engine);
    const labels = { alertname: 'ServiceDown', service: target, severity: 'critical' };
    const { status } = await postAlerts(engine.webhookUrl, stack().webhookToken, [
      { labels, annotations: { summary: `${target} is down` } },
    ]);
    expect(status).toBe(200);

    if (moment === 'restarting') {
      await until('the first restart', 60_000, async () => (restarts(container) >= 1 ? true : undefined));
    } else {
      await receiver.waitFor(`/${target}`, 1, 90_000);
      await until('the first level recorded', 20_000, async () =>
        (await client.workflow.getHandle(workflowId).query(statusQuery)).escalationLevel === 'on-call' ? true : undefined,
      );
    }
    const faultAt = Date.now();
    await fault();
    await clusterUp();
    const backAfterMs = Date.now() - faultAt;

    let result: RunbookResult;
    try {
      result = (await Promise.race([
        client.workflow.getHandle(workflowId).result(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`${workflowId} did not finish within 120 s of the cluster being back`)), 120_000),
        ),
      ])) as RunbookResult;
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n--- pages: ${JSON.stringify(pages(target))}\n--- engine log:\n${engine.output().slice(-3_000)}`,
      );
    }
    expect(result.outcome, `cluster back ${backAfterMs} ms after the fault`).toBe('escalated');
    console.info(`${what}: the cluster served again ${backAfterMs} ms after the fault; the run ended ${Date.now() - faultAt} ms after it`);

    // Every level paged exactly once, in order: one request per idempotency key.
    expect(pages(target).map((p) => p.level)).toEqual(levels.map((l) => `trigger ${l.name}`));
    expect(new Set(pages(target).map((p) => p.key)).size).toBe(levels.length);

    // Three restarts scheduled; no attempt of any beyond its policy's maximum; each attempt is one start.
    const events = await historyEvents(client.workflow.getHandle(workflowId));
    const restartIds = new Set(
      events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget').map((e) => String(e.eventId)),
    );
    expect(restartIds.size).toBe(restartAttempts);
    const attempts = events
      .filter((e) => restartIds.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    expect(Math.max(...attempts)).toBeLessThanOrEqual(restartMaxAttempts);
    const started = restarts(container);
    expect(started).toBeGreaterThanOrEqual(restartAttempts);
    expect(started).toBeLessThanOrEqual(restartAttempts * restartMaxAttempts);
    // The same engine process carried the run through: its worker outlived the outage.
    const stillRunning = await Promise.race([engine.exited.then(() => false), new Promise((r) => setTimeout(() => r(true), 100))]);
    expect(stillRunning, engine.output().slice(-4_000)).toBe(true);
    await terminateRunning(client, config.temporal!.taskQueue!, 'end of the cluster fault test');
    await engine.stop(10_000);
  }

  const kill = (service: ClusterService) => () => killClusterService(service);

  it('completes the runbook when history is SIGKILLed while it waits for the next level', async () => {
    await survives('history', 'escalating', kill('history'));
  }, 300_000);

  it('completes the runbook when matching is SIGKILLed during the restarts', async () => {
    await survives('matching', 'restarting', kill('matching'));
  }, 300_000);

  it('completes the runbook when the frontend is SIGKILLed while it waits for the next level', async () => {
    await survives('frontend', 'escalating', kill('frontend'));
  }, 300_000);

  it('completes the runbook when PostgreSQL crashes during the restarts and comes back 5 s later', async () => {
    await survives('postgres', 'restarting', async () => {
      await crashClusterPostgres();
      await new Promise((r) => setTimeout(r, 5_000));
    });
  }, 300_000);
});
