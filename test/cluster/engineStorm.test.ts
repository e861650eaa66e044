// Three engines on one task queue of the cluster, each behind its own webhook address, and a storm
// of 1,000 distinct alerts sent round-robin the way a load balancer in front of them would: an
// engine that refuses or is down gets the alert retried on the next one (every tenth alert is also
// delivered to a second engine at once, as an Alertmanager HA pair does). Meanwhile engines are
// SIGKILLed at random points and started again on their address. Every alert must become exactly
// one incident, restarted once and paged once (by idempotency key); nothing may be lost.
// Only with TEMPORAL_MODE=cluster; alone (scripts/test-cluster.sh runs test/cluster after test/e2e).
import { randomBytes } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inFlightLimit } from '../../activities/limits.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { alertmanagerPayload } from '../support/alertmanagerPayload.js';
import { clusterUp } from '../support/cluster.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { historyEvents, type HistoryEvent } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack, temporalMode } from '../support/stack.js';
import { temporalClient, temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { until } from '../support/wait.js';

const alerts = Number(process.env.STORM_ALERTS ?? 1_000);
/** Alertmanager-like pacing: one notification every 40 ms (25/s), the storm lasting ~40 s. */
const spacingMs = 40;
/** A seed for the kill points, printed so a failing run can be repeated (STORM_SEED=...). */
const seed = Number(process.env.STORM_SEED ?? randomBytes(4).readUInt32LE());
/** workflows/steps/activities.ts: a restart is tried at most twice, a page up to eight times. */
const restartMaxAttempts = 2;
const notifyMaxAttempts = 8;

/** mulberry32: a small seeded PRNG, so the kill schedule of a run can be replayed. */
function random(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Delivery {
  alert: number;
  /** Which engine answered 2xx. */
  engine: number;
  /** Posts it took (1: the first engine asked took it). */
  posts: number;
}

describe.skipIf(temporalMode() !== 'cluster')('three engines on one queue of the cluster, one killed at random during a storm', () => {
  const taskQueue = uniqueQueue('storm');
  const prefix = `storm-${randomBytes(3).toString('hex')}`;
  const names = Array.from({ length: alerts }, (_, i) => `${prefix}-${i}`);
  const engines: EngineProcess[] = [];
  let configs: EngineConfigInput[] = [];
  let receiver: Receiver;
  let client: Client;
  let connection: Connection;

  beforeAll(async () => {
    // Whatever a fault test before this one left down comes back first.
    await clusterUp();
    receiver = await startReceiver();
    ({ client, connection } = await temporalClient());
    // http targets whose health URL nobody answers and which cannot be restarted (no restartVia):
    // each incident verifies, asks the guard and tries its one restart, diagnoses, pages on-call,
    // and then sits on the next level's one-hour timer, so every step of it is countable.
    const closed = `http://127.0.0.1:${await closedPort()}/health`;
    const base: EngineConfigInput = {
      // Room for every incident across the three engines: an evicted run is replayed from its whole
      // history at its next task, and with a storm's worth evicted that replaying is most of the CPU.
      temporal: { ...temporalConfigInput('engine'), taskQueue, maxCachedWorkflows: Math.ceil(alerts / 2) },
      webhook: { listen: '127.0.0.1:0', token: stack().webhookToken },
      targets: Object.fromEntries(names.map((n) => [n, { kind: 'http' as const, health: { url: closed, timeout: '1s' } }])),
      bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: names, runbook: 'serviceDown' }],
      channels: { pager: { type: 'webhook', url: `${receiver.url}/storm` } },
      escalation: {
        default: 'standard',
        policies: {
          standard: {
            levels: [
              { name: 'on-call', after: '0s', channels: ['pager'] },
              { name: 'senior', after: '1h', channels: ['pager'] },
            ],
          },
        },
      },
      guardrails: {
        restarts: { max: 100_000, window: '1h' },
        maxConcurrentDestructive: 100_000,
        restartAttempts: 1,
        verifyDeadline: '2s',
        verifyInterval: '500ms',
      },
    };
    // Each engine its own fixed address, as a load balancer's backends: a restarted engine comes back on it.
    configs = [];
    for (let i = 0; i < 3; i++) configs.push({ ...base, webhook: { ...base.webhook, listen: `127.0.0.1:${await closedPort()}` } });
    engines.push(...(await Promise.all(configs.map((c) => spawnEngine(c)))));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(engines.map((e) => e.stop(10_000)));
    if (client) await terminateRunning(client, taskQueue, 'end of the engine storm test');
    await connection?.close();
    await receiver?.close();
  }, 180_000);

  const urls = () => configs.map((c) => `http://${c.webhook!.listen}/alertmanager`);

  /** Posts one notification, starting at engine `first`, moving to the next engine on anything but a 2xx. */
  async function deliver(alert: number, first: number): Promise<Delivery> {
    const body = JSON.stringify(
      alertmanagerPayload([
        { labels: { alertname: 'ServiceDown', service: names[alert]!, severity: 'critical' }, fingerprint: `${prefix}-fp-${alert}` },
      ]),
    );
    const deadline = Date.now() + 180_000;
    for (let posts = 1; ; posts++) {
      const engine = (first + posts - 1) % 3;
      try {
        const res = await fetch(urls()[engine]!, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack().webhookToken}` },
          body,
          signal: AbortSignal.timeout(20_000),
        });
        await res.arrayBuffer();
        if (res.ok) return { alert, engine, posts };
      } catch {
        // Refused, reset or timed out: the engine is down or dying; the next one is asked.
      }
      if (Date.now() > deadline) throw new Error(`alert ${alert} not accepted by any engine within 180 s (${posts} posts)`);
      // Having asked all three: back off a little, as Alertmanager does.
      await sleep(posts % 3 === 0 ? 500 : 20);
    }
  }

  it('handles every alert exactly once: one incident, one restart, one page each; nothing lost', async () => {
    const rng = random(seed);
    const kills: string[] = [];
    const t0 = Date.now();
    let storming = true;

    // The killer: at random points while the storm lasts, SIGKILL one of the engines that run (never
    // the last one), and start it again on its address in the background: the next kill does not
    // wait for a slow start.
    const restarting = new Map<number, Promise<void>>();
    const killer = (async () => {
      while (storming) {
        await sleep(2_000 + rng() * 4_000);
        const up = [0, 1, 2].filter((k) => !restarting.has(k));
        if (!storming || up.length < 2) continue;
        const k = up[Math.floor(rng() * up.length)]!;
        engines[k]!.kill('SIGKILL');
        await engines[k]!.exited;
        const killedAt = Date.now();
        const delay = rng() * 1_500;
        restarting.set(
          k,
          sleep(delay)
            .then(() => spawnEngine(configs[k]!, { startTimeoutMs: 120_000 }))
            .then((e) => {
              engines[k] = e;
              kills.push(
                `engine ${k} at ${((killedAt - t0) / 1000).toFixed(1)} s, serving again ${((Date.now() - killedAt) / 1000).toFixed(1)} s later`,
              );
              restarting.delete(k);
            }),
        );
      }
      await Promise.all(restarting.values());
    })();

    const deliveries = await Promise.all(
      names.flatMap((_, i) => {
        const at = sleep(i * spacingMs);
        const first = i % 3;
        const once = at.then(() => deliver(i, first));
        // An HA pair: the same notification to a second engine at the same moment.
        return i % 10 === 0 ? [once, at.then(() => deliver(i, (first + 1) % 3))] : [once];
      }),
    ).finally(() => (storming = false));
    await killer;
    const stormS = (Date.now() - t0) / 1000;
    const context = `seed ${seed} (STORM_SEED to repeat); kills: ${kills.join(', ')}`;
    console.info(`storm: ${deliveries.length} notifications in ${stormS.toFixed(1)} s; ${context}`);

    // The storm really met dead engines, and every engine took its share.
    expect(kills.length, context).toBeGreaterThanOrEqual(alerts >= 1_000 ? 2 : 1);
    expect(deliveries.filter((d) => d.posts > 1).length, context).toBeGreaterThan(0);
    for (let e = 0; e < 3; e++)
      expect(
        deliveries.some((d) => d.engine === e),
        `engine ${e} answered some`,
      ).toBe(true);

    // Nothing lost: every target paged on-call, once per idempotency key.
    const keysOf = () => {
      const byTarget = new Map<string, Map<string, number>>();
      for (const r of receiver.requestsTo('/storm')) {
        const key = (r.body as { idempotencyKey: string }).idempotencyKey;
        const target = key.split(':')[2]!;
        const keys = byTarget.get(target) ?? new Map<string, number>();
        keys.set(key, (keys.get(key) ?? 0) + 1);
        byTarget.set(target, keys);
      }
      return byTarget;
    };
    // Paced by the guard (~16 updates/s here, two per incident): 3–4 minutes on a quiet machine, more on a busy one.
    await until(`all ${alerts} incidents paged (${context})`, 420_000, async () => (keysOf().size >= alerts ? true : undefined), 1_000);
    const pagedS = (Date.now() - t0) / 1000;
    const pagedAt = receiver
      .requestsTo('/storm')
      .map((r) => (r.at - t0) / 1000)
      .sort((a, b) => a - b);
    const at = (p: number) => pagedAt[Math.floor((pagedAt.length - 1) * p)]!.toFixed(1);

    // One incident per alert, one run each: visibility lists every execution the queue ever had.
    const runs = await until(
      'every incident visible',
      60_000,
      async () => {
        const seen = new Map<string, number>();
        for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` }))
          seen.set(wf.workflowId, (seen.get(wf.workflowId) ?? 0) + 1);
        return names.every((n) => seen.has(incidentWorkflowId('serviceDown', n))) ? seen : undefined;
      },
      2_000,
    );
    const incidentRuns = names.map((n) => runs.get(incidentWorkflowId('serviceDown', n)));
    expect(
      incidentRuns.filter((c) => c !== 1),
      'incidents with more than one run',
    ).toEqual([]);
    expect(
      [...runs.keys()].filter((id) => id.startsWith('incident:') && !names.some((n) => id === incidentWorkflowId('serviceDown', n))),
    ).toEqual([]);

    // From each history: one restart scheduled and within its retry policy; one page scheduled, and
    // a page delivered twice only where its activity was retried (a SIGKILLed engine mid-delivery).
    const pages = keysOf();
    const inTurn = inFlightLimit(10);
    const problems = (
      await Promise.all(
        names.map((n) =>
          inTurn(async () => {
            const events = await historyEvents(client.workflow.getHandle(incidentWorkflowId('serviceDown', n)));
            return incidentProblems(n, events, pages.get(n) ?? new Map());
          }),
        ),
      )
    ).flat();
    expect(problems.slice(0, 20), `${problems.length} problems; ${context}`).toEqual([]);
    console.info(
      `storm: all ${alerts} paged ${pagedS.toFixed(1)} s after the first alert (pages at p50 ${at(0.5)} s, p90 ${at(0.9)} s, p99 ${at(0.99)} s); ` +
        `histories checked at ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }, 720_000);
});

/** What is wrong with one incident's history and pages; empty when it was handled exactly once. */
function incidentProblems(target: string, events: HistoryEvent[], pageKeys: Map<string, number>): string[] {
  const problems: string[] = [];
  const scheduled = (type: string) =>
    new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type).map((e) => String(e.eventId)));
  const attempts = (ids: Set<string>) =>
    events
      .filter((e) => ids.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
  const restarts = scheduled('restartTarget');
  if (restarts.size !== 1) problems.push(`${target}: ${restarts.size} restarts scheduled`);
  if (Math.max(0, ...attempts(restarts)) > restartMaxAttempts)
    problems.push(`${target}: a restart beyond its ${restartMaxAttempts} attempts`);
  const notifies = scheduled('notify');
  if (notifies.size !== 1) problems.push(`${target}: ${notifies.size} pages scheduled`);
  const notifyAttempts = Math.max(0, ...attempts(notifies));
  if (notifyAttempts > notifyMaxAttempts) problems.push(`${target}: a page beyond its ${notifyMaxAttempts} attempts`);
  if (pageKeys.size !== 1) problems.push(`${target}: ${pageKeys.size} page keys (${[...pageKeys.keys()].join(', ')})`);
  for (const [key, deliveries] of pageKeys) {
    if (deliveries > 1 && notifyAttempts < deliveries)
      problems.push(`${target}: page ${key} delivered ${deliveries} times by ${notifyAttempts} attempt(s)`);
  }
  return problems;
}
