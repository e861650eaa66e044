// The engine's self-alerts and dashboard, checked without the stack: promtool validates the rules
// and runs their unit tests (observability/prometheus/engine-alerts.test.yml), and every metric the
// rules and the dashboard name is one the engine really registers, so a renamed metric fails here
// rather than leaving a panel empty and an alert silent.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { createNotifyActivities } from '../../activities/notify.js';
import { loadRunbookDir } from '../../config/runbookLoad.js';
import { Secret } from '../../config/secret.js';
import { registerDurableGauges, runbooksWithApproval } from '../../triggers/metrics/durableGauges.js';
import { createMetrics } from '../../triggers/metrics/metrics.js';
import { repoRoot } from '../support/engineProcess.js';
import { startReceiver } from '../support/receiver.js';
import { dashboard, dashboardExpressions, dashboardFile, rulesFile, ruleExpressions } from './observabilityFiles.js';

const run = promisify(execFile);

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: join(repoRoot, 'observability', 'prometheus'), timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error("promtool not found: it comes with Debian's prometheus package, which the stack installs");
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Metric names an expression reads: identifiers followed by a label matcher. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]!);
}

describe('the engine self-alerts', () => {
  it('pass promtool check rules', async () => {
    const { code, output } = await promtool('check', 'rules', 'engine-alerts.yml');
    expect(output).toContain('SUCCESS: 14 rules found');
    expect(code).toBe(0);
  });

  it('pass their promtool unit tests: each alert fires on the series it is for and not on the others', async () => {
    const { code, output } = await promtool('test', 'rules', 'engine-alerts.test.yml');
    expect(output).toContain('SUCCESS');
    expect(code).toBe(0);
  });

  it('are refused by promtool when an expected alert does not fire (the unit tests can fail)', async () => {
    // The same tests against a copy whose EngineDown waits 10 minutes: the 3 m expectation must fail.
    const dir = mkdtempSync(join(tmpdir(), 'engine-alerts-'));
    writeFileSync(join(dir, 'engine-alerts.yml'), readFileSync(rulesFile, 'utf8').replace('for: 2m', 'for: 10m'));
    copyFileSync(join(repoRoot, 'observability', 'prometheus', 'engine-alerts.test.yml'), join(dir, 'engine-alerts.test.yml'));
    const { code, output } = await promtool('test', 'rules', join(dir, 'engine-alerts.test.yml'));
    rmSync(dir, { recursive: true, force: true });
    expect(code).not.toBe(0);
    expect(output).toContain('alertname: RemediationEngineDown');
  });
});

describe('the metrics the rules and the dashboard read', () => {
  const metrics = createMetrics({ processMetrics: false });
  registerDurableGauges(metrics.registry, {
    client: {} as Client,
    taskQueue: 'q',
    maxConcurrentDestructive: 2,
    approvalRunbooks: [],
    agentQueues: [{ host: 'web-1', queue: 'q-host-web-1' }],
  });
  const registered = (name: string) =>
    metrics.registry.getSingleMetric(name) !== undefined ||
    (/_(bucket|sum|count)$/.test(name) &&
      metrics.registry.getSingleMetric(name.replace(/_(bucket|sum|count)$/, ''))?.constructor.name === 'Histogram');
  // Prometheus's own: the scrape's up and the rule manager's ALERTS.
  const prometheusOwn = new Set(['up', 'ALERTS']);

  it('are all registered by the engine', () => {
    const used = [...new Set([...ruleExpressions(), ...dashboardExpressions().map((e) => e.expr)].flatMap(metricNames))];
    expect(used.length).toBeGreaterThan(15);
    expect(used.filter((n) => !prometheusOwn.has(n) && !registered(n))).toEqual([]);
  });
});

describe('local_reads_dropped_total', () => {
  it('counts what runs report through the metrics sink, from zero, for the local reads only', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const value = async (activity: string) =>
      (await metrics.localReadsDropped.get()).values.find((v) => v.labels.activity === activity)?.value;
    expect(await value('checkSuppression')).toBe(0);
    const sink = metrics.sinks().metrics.localReadDropped.fn;
    sink({} as never, 'checkSuppression');
    sink({} as never, 'checkSuppression');
    sink({} as never, 'claimRestart');
    sink({} as never, 'not-a-local-read');
    expect(await value('checkSuppression')).toBe(2);
    expect(await value('claimRestart')).toBe(1);
    expect(await value('not-a-local-read')).toBeUndefined();
    expect(await value('readsTogether')).toBe(0);
    expect((await metrics.localReadsDropped.get()).values).toHaveLength(5);
  });
});

describe('notification_failures_total', () => {
  it('counts each failed delivery by channel and kind, from zero for the configured channels', async () => {
    const receiver = await startReceiver();
    try {
      const metrics = createMetrics({ processMetrics: false });
      const notify = createNotifyActivities({
        channels: {
          hook: { type: 'webhook', url: Secret.of(`${receiver.url}/hook`) },
          slack: { type: 'slack', url: Secret.of(`${receiver.url}/slack`) },
          engineLog: { type: 'log' },
        },
        timeoutMs: 2_000,
        dryRun: false,
        failures: metrics.notificationFailures,
        log: () => {},
      }).notify;
      const value = async (channel: string, kind: string) =>
        (await metrics.notificationFailures.get()).values.find((v) => v.labels.channel === channel && v.labels.kind === kind)?.value;
      expect(await value('hook', 'permanent')).toBe(0);
      expect(await value('slack', 'transient')).toBe(0);
      expect(await value('engineLog', 'transient')).toBeUndefined();

      // An archived webhook (404) and a channel removed from the config, beside one that works.
      receiver.alwaysAnswer('/hook', 404);
      const req = {
        channels: ['hook', 'slack', 'gone'],
        event: 'trigger' as const,
        incidentKey: 'incident:serviceDown:api',
        idempotencyKey: 'incident:serviceDown:api:run:escalate-1',
        severity: 'critical',
        title: 'api is down',
        text: '',
        dryRun: false,
      };
      await expect(notify(req)).rejects.toThrow(/channel 'hook'/);
      expect(await value('hook', 'permanent')).toBe(1);
      expect(await value('gone', 'unknown-channel')).toBe(1);
      expect(await value('slack', 'permanent')).toBe(0);

      receiver.failNext('/slack', 1, 503);
      await expect(notify({ ...req, channels: ['slack'] })).rejects.toThrow(/answered 503/);
      expect(await value('slack', 'transient')).toBe(1);
      expect(await metrics.registry.metrics()).toContain('notification_failures_total{channel="hook",kind="permanent"} 1');
    } finally {
      await receiver.close();
    }
  });
});

describe('the dashboard file', () => {
  const text = readFileSync(dashboardFile, 'utf8');
  interface Target {
    refId: string;
    datasource?: unknown;
  }
  interface Panel {
    id: number;
    title: string;
    type: string;
    datasource?: unknown;
    gridPos: { x: number; w: number };
    targets?: Target[];
  }
  const board = JSON.parse(text) as { uid: string; panels: Panel[]; templating: ReturnType<typeof dashboard>['templating'] };

  it('asks for its Prometheus through a datasource variable, never a datasource uid of some other Grafana', () => {
    const variable = board.templating.list.find((v) => v.name === 'datasource');
    expect(variable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const uids = [...text.matchAll(/"uid": "([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(uids)).toEqual(new Set([board.uid, '${datasource}', '-- Grafana --']));
    for (const p of board.panels.filter((p) => p.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets ?? []) expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it("lays its panels out on Grafana's 24-column grid with unique ids and refIds", () => {
    const ids = board.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of board.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      const refs = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refs).size, p.title).toBe(refs.length);
    }
  });
});

describe('the approval gauges', () => {
  it('ask only incidents of runbooks that have an approval step', () => {
    const shipped = runbooksWithApproval(loadRunbookDir(join(repoRoot, 'runbooks')));
    expect(shipped).toEqual(expect.arrayContaining(['resourcePressure', 'highErrorRate', 'databaseConnection']));
    expect(shipped).not.toContain('serviceDown');
  });
});
