// The dashboard and the self-alerts against a real Prometheus scraping a real engine: the engine
// runs as an operator runs it (a process, its config file, the stack's Temporal, reached through a
// relay the test can cut), a Prometheus of the test's own scrapes it every second with the shipped
// rules loaded (their `for:` and windows shortened in a copy), and the test asserts what Prometheus
// answers: every dashboard query, and alerts going to firing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuardrailActivities } from '../../activities/guardrails.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { guardrailsTaskQueue } from '../../workflows/guardrails.js';
import { e2eConfigInput } from '../e2e/engine.js';
import { alertmanagerPayload, postAlerts, postToWebhook, type AlertInit } from '../support/alertmanagerPayload.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { reservedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { temporalClient, temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { startPrometheus, type TestPrometheus } from '../support/testPrometheus.js';
import { until } from '../support/wait.js';
import { dashboard, dashboardExpressions, rulesFile, substitute } from './observabilityFiles.js';

const job = 'remediation-engine';
const queue = uniqueQueue('obs');
const token = 'self-monitoring-token';

/**
 * The shipped rules with their waits shortened, so each alert fires within seconds: every `for:`
 * to 2 s, the spool's 5-minute windows to 10 s, an approval "too long" after 5 s instead of 20 minutes.
 */
function quickRules(): string {
  const text = readFileSync(rulesFile, 'utf8')
    .replace(/for: \d+m/g, 'for: 2s')
    .replace(
      /webhook_spool_pending_alerts\{job="remediation-engine"\}\[5m\]/g,
      'webhook_spool_pending_alerts{job="remediation-engine"}[10s]',
    )
    .replace(
      'runbook_approval_oldest_wait_seconds{job="remediation-engine"}) > 1200',
      'runbook_approval_oldest_wait_seconds{job="remediation-engine"}) > 5',
    );
  // Each rewrite must have taken: a rule left with its real wait would make its test time out, not fail clearly.
  expect(text).not.toMatch(/for: \d+m/);
  expect(text).toContain('[10s]');
  expect(text).toContain('> 5\n');
  return text;
}

/** Three runbooks whose ends the test chooses: one recovers, one fails at a step, one waits for an approval. */
function writeRunbooks(dir: string): void {
  const file = (name: string, text: string) => writeFileSync(join(dir, `${name}.yaml`), text);
  file(
    'quickFix',
    `name: quickFix
description: Recovers at once (stands in for a remediation that worked).
appliesTo: [http]
steps:
  - id: fixed
    uses: end
    with: { outcome: recovered, detail: "fixed by the test" }
`,
  );
  file(
    'brokenStep',
    `name: brokenStep
description: Fails at its only step (stands in for a runbook whose step cannot run).
appliesTo: [http]
steps:
  - id: precondition
    uses: assert
    with: { that: "1 == 2", message: "the precondition never holds" }
`,
  );
  file(
    'needsApproval',
    `name: needsApproval
description: Waits for an operator to approve.
appliesTo: [http]
steps:
  - id: approve-action
    uses: approval
    with: { action: "nothing: the test only waits", timeout: 10m }
  - id: done
    uses: end
    with: { outcome: completed }
`,
  );
}

let dir: string;
let proxy: TcpProxy;
let enginePort: number;
let engineConfig: EngineConfigInput;
let engine: EngineProcess | undefined;
let prometheus: TestPrometheus;
let temporal: { client: Client; connection: Connection };
const alive: EngineProcess[] = [];

async function startEngine(): Promise<EngineProcess> {
  const e = await spawnEngine(engineConfig, { env: { TEMPORAL_ADDRESS: proxy.address } });
  alive.push(e);
  return e;
}

const http = (service: string) => ({ kind: 'http' as const, labels: { service } });
const alert = (alertname: string, service: string, extra: Partial<AlertInit> = {}): AlertInit => ({
  labels: { alertname, service },
  ...extra,
});

async function post(alerts: AlertInit[]): Promise<{ status: number; json: any }> {
  return postAlerts(engine!.webhookUrl, token, alerts);
}

async function firing(alertname: string, on: TestPrometheus = prometheus): Promise<Array<Record<string, string>>> {
  return (await on.alerts()).filter((a) => a.labels.alertname === alertname && a.state === 'firing').map((a) => a.labels);
}

async function untilFiring(alertname: string, ms: number, on: TestPrometheus = prometheus): Promise<Array<Record<string, string>>> {
  return until(`${alertname} firing in the test's Prometheus`, ms, async () => {
    const found = await firing(alertname, on);
    return found.length > 0 ? found : undefined;
  });
}

/** This queue's guard, as a restart reaches it: slots taken here show on the engine's gauges. */
const guard = () => createGuardrailActivities({ client: temporal.client, taskQueue: queue, guardQueue: guardrailsTaskQueue(queue) });

/** The first value of an instant query once it satisfies `ok`. */
async function untilValue(expr: string, ok: (v: number) => boolean, ms = 30_000): Promise<number> {
  return until(`${expr} to reach the expected value`, ms, async () => {
    const [v] = await prometheus.values(expr);
    return v !== undefined && ok(v) ? v : undefined;
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remediation-obs-'));
  writeRunbooks(dir);
  temporal = await temporalClient();
  proxy = await startTcpProxy(stack().temporalAddress);
  enginePort = await reservedPort();
  engineConfig = e2eConfigInput({
    temporal: { ...temporalConfigInput(), address: proxy.address, taskQueue: queue },
    // Tiny on purpose: a batch of a few large alerts fills it, for RemediationSpoolRefusingAlerts.
    webhook: { listen: `127.0.0.1:${enginePort}`, token, spool: true, spoolMaxBytes: 60_000, spoolMinFreeBytes: 0 },
    runbooks: dir,
    targets: { 'obs-quick': http('obs-quick'), 'obs-broken': http('obs-broken'), 'obs-approval': http('obs-approval') },
    bindings: [
      { alert: 'ObsQuickFix', targetLabel: 'service', targets: ['obs-quick'], runbook: 'quickFix' },
      { alert: 'ObsBroken', targetLabel: 'service', targets: ['obs-broken'], runbook: 'brokenStep' },
      { alert: 'ObsApproval', targetLabel: 'service', targets: ['obs-approval'], runbook: 'needsApproval' },
    ],
  });
  engine = await startEngine();
  prometheus = await startPrometheus({ job, targets: [`127.0.0.1:${enginePort}`], rules: quickRules() });
  await untilValue(`up{job="${job}"}`, (v) => v === 1);
});

afterAll(async () => {
  await Promise.all(alive.map((e) => e.stop(5_000)));
  await prometheus?.stop();
  await proxy?.close();
  if (temporal) {
    await terminateRunning(temporal.client, queue).catch(() => 0);
    await temporal.connection.close();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard against a real Prometheus scraping the engine', () => {
  it('answers every query without error, and with data for every series the alerts handled must have made', async () => {
    const vars = { job, instance: '.*', rateInterval: '1m', range: '10m' };
    // The template variables find the engine before it received any alert.
    const variables = dashboard().templating.list.filter((v) => v.type === 'query');
    for (const v of variables) {
      const m = /^label_values\((.+), (\w+)\)$/.exec((v.query as { query: string }).query);
      expect(m, v.name).not.toBeNull();
      const found = await prometheus.labelValues(m![2]!, substitute(m![1]!, vars));
      expect(found, v.name).toContain(v.name === 'job' ? job : `127.0.0.1:${enginePort}`);
    }

    // Each way a firing alert can go, and one of each outcome the panels show. The spool answers
    // every batch "queued" and its forwarder decides in order: the counters say what happened.
    const fixed = alert('ObsQuickFix', 'obs-quick', { fingerprint: 'obsquick00000001' });
    const waiting = alert('ObsApproval', 'obs-approval', { fingerprint: 'obsapproval00001', startsAt: new Date().toISOString() });
    for (const batch of [
      [fixed, alert('NoSuchAlert', 'nowhere'), waiting],
      [waiting],
      [alert('ObsApproval', 'obs-approval', { fingerprint: 'obsapproval00002' })],
    ])
      expect((await post(batch)).json.status).toBe('queued');
    // A slot held on this queue's guard, as a restart holds it: the gauge reads the guard's state.
    const grant = await guard().acquireSlot({
      requestId: 'obs-slot',
      holder: 'self-monitoring test',
      target: 'obs-quick',
      action: 'restart',
      max: 2,
      leaseMs: 600_000,
    });
    expect(grant.acquired).toBe(true);
    await untilValue(`sum(runbook_outcomes_total{job="${job}", runbook="quickFix", outcome="recovered"})`, (v) => v === 1);
    expect((await post([{ ...fixed, status: 'resolved' }])).json.status).toBe('queued');
    for (const [series, expected] of [
      ['runbooks_started_total', 2],
      ['alerts_coalesced_total', 1],
      ['alerts_folded_total', 1],
      ['alerts_unmatched_total', 1],
      ['alerts_resolved_without_run_total', 1],
    ] as const)
      await untilValue(`sum(${series}{job="${job}"})`, (v) => v === expected);
    await untilValue(`sum(runbook_approvals_waiting{job="${job}", runbook="needsApproval"})`, (v) => v === 1);
    await untilValue(`max(guard_destructive_slots_in_use{job="${job}"})`, (v) => v === 1);
    await untilValue(`max(runbooks_open{job="${job}"})`, (v) => v === 1);

    // The one panel that may honestly be empty: nothing of the engine's is wrong yet.
    const mayBeEmpty = (e: { panel: string; expr: string }) => e.expr.includes('ALERTS{');
    const problems: string[] = [];
    const expressions = dashboardExpressions();
    expect(expressions.length).toBeGreaterThan(25);
    for (const e of expressions) {
      const expr = substitute(e.expr, vars);
      expect(expr).not.toContain('$');
      const answer = await prometheus.query(expr);
      if (answer.status !== 'success') problems.push(`${e.panel} ${e.refId}: ${answer.error}`);
      else if (!mayBeEmpty(e) && answer.data!.result.length === 0) problems.push(`${e.panel} ${e.refId}: no data for ${expr}`);
    }
    expect(problems).toEqual([]);
  });
});

describe('the self-alerts, fired for real', () => {
  it('RemediationRunbookFailed fires for the runbook that failed, and only for it', async () => {
    expect(await firing('RemediationRunbookFailed')).toEqual([]);
    expect((await post([alert('ObsBroken', 'obs-broken')])).status).toBe(200);
    const labels = await untilFiring('RemediationRunbookFailed', 30_000);
    expect(labels.map((l) => l.runbook)).toEqual(['brokenStep']);
    expect(labels[0]!.severity).toBe('warning');
  });

  it("RemediationRunbooksMostlyEscalating fires once most of a runbook's last three runs failed, and only for it", async () => {
    // The run above failed; two more of the same runbook, each a new firing once the last has ended.
    const failed = `sum(runbook_outcomes_total{job="${job}", runbook="brokenStep", outcome="failed"})`;
    await untilValue(failed, (v) => v === 1);
    expect(await firing('RemediationRunbooksMostlyEscalating')).toEqual([]);
    for (const n of [2, 3]) {
      const again = alert('ObsBroken', 'obs-broken', { fingerprint: `obsbroken${n}0000000`, startsAt: new Date().toISOString() });
      expect((await post([again])).status).toBe(200);
      await untilValue(failed, (v) => v === n);
    }
    const labels = await untilFiring('RemediationRunbooksMostlyEscalating', 30_000);
    // quickFix recovered its one run: it is no part of this.
    expect(labels.map((l) => l.runbook)).toEqual(['brokenStep']);
    expect(labels[0]!.severity).toBe('warning');
  });

  it('RemediationApprovalWaitingTooLong fires while the approval waits', async () => {
    const [labels] = await untilFiring('RemediationApprovalWaitingTooLong', 30_000);
    expect(labels!.severity).toBe('warning');
    const [wait] = await prometheus.values(`max(runbook_approval_oldest_wait_seconds{job="${job}"})`);
    expect(wait).toBeGreaterThan(5);
  });

  it('RemediationSpoolBacklogGrowing, then RemediationSpoolRefusingAlerts, fire while Temporal is out of reach', async () => {
    expect(await firing('RemediationSpoolBacklogGrowing')).toEqual([]);
    proxy.cut();
    // Alertmanager keeps sending while Temporal is away: each batch is spooled (200) and waits.
    let n = 0;
    const labels = await until(
      'RemediationSpoolBacklogGrowing firing',
      45_000,
      async () => {
        const r = await post([alert('ObsQuickFix', 'obs-quick', { fingerprint: `obsspool${String(n++).padStart(8, '0')}` })]);
        expect(r.json.status, JSON.stringify(r.json)).toBe('queued');
        const found = await firing('RemediationSpoolBacklogGrowing');
        return found.length > 0 ? found : undefined;
      },
      700,
    );
    expect(labels[0]!.instance).toBe(`127.0.0.1:${enginePort}`);
    expect(labels[0]!.severity).toBe('warning');
    // Temporal out of reach costs the durable gauges their fresh reads, never a scrape: the engine stays up.
    expect(await prometheus.values(`min_over_time(up{job="${job}"}[10s])`)).toEqual([1]);
    await untilValue(`sum(engine_state_read_failures_total{job="${job}"})`, (v) => v > 0);

    // One batch bigger than what the spool has left: refused with 503, and counted.
    const big = Array.from({ length: 20 }, (_, i) =>
      alert('ObsQuickFix', 'obs-quick', { annotations: { description: 'x'.repeat(3_000) }, fingerprint: `obsbig${i}` }),
    );
    const refused = await postToWebhook(engine!.webhookUrl, token, alertmanagerPayload(big));
    expect(refused.status).toBe(503);
    const [refusing] = await untilFiring('RemediationSpoolRefusingAlerts', 20_000);
    expect(refusing).toMatchObject({ reason: 'bytes', severity: 'critical', instance: `127.0.0.1:${enginePort}` });
    // The gauges read from Temporal could not be refreshed all this while: said, by source.
    const unreadable = await untilFiring('RemediationEngineStateUnreadable', 30_000);
    expect(unreadable[0]).toMatchObject({ severity: 'warning', instance: `127.0.0.1:${enginePort}` });
    expect(unreadable[0]!.source).toMatch(/^[a-z-]+$/);
  });

  it('RemediationEngineDown fires when the engine is killed, and the next engine reports the same durable state', async () => {
    expect(await firing('RemediationEngineDown')).toEqual([]);
    engine!.kill('SIGKILL');
    await engine!.exited;
    proxy.restore();
    const [labels] = await untilFiring('RemediationEngineDown', 20_000);
    expect(labels).toMatchObject({ severity: 'critical', instance: `127.0.0.1:${enginePort}`, job });

    // A new process starts from nothing in memory; the slot and the approval live in Temporal.
    engine = await startEngine();
    await until('RemediationEngineDown to resolve', 20_000, async () =>
      (await firing('RemediationEngineDown')).length === 0 ? true : undefined,
    );
    await untilValue(`max(guard_destructive_slots_in_use{job="${job}"})`, (v) => v === 1);
    await untilValue(`sum(runbook_approvals_waiting{job="${job}", runbook="needsApproval"})`, (v) => v === 1);
  });

  it('RemediationDestructiveSlotsSaturated fires when every slot is held, and clears when one is freed', async () => {
    expect(await firing('RemediationDestructiveSlotsSaturated')).toEqual([]);
    // One slot is held since the first test; the config allows two (guardrails.maxConcurrentDestructive).
    await untilValue(`max(guard_destructive_slots_limit{job="${job}"})`, (v) => v === 2);
    const grant = await guard().acquireSlot({
      requestId: 'obs-slot-2',
      holder: 'self-monitoring test',
      target: 'obs-approval',
      action: 'restart',
      max: 2,
      leaseMs: 600_000,
    });
    expect(grant.acquired).toBe(true);
    const [labels] = await untilFiring('RemediationDestructiveSlotsSaturated', 30_000);
    expect(labels).toMatchObject({ severity: 'warning', job });
    await guard().releaseSlot(grant.leaseId!);
    await until('RemediationDestructiveSlotsSaturated to clear', 30_000, async () =>
      (await firing('RemediationDestructiveSlotsSaturated')).length === 0 ? true : undefined,
    );
  });

  it('RemediationEngineNotScraped fires in a Prometheus whose scrape job finds no engine', async () => {
    const blind = await startPrometheus({ job: 'some-other-job', targets: [], rules: quickRules() });
    try {
      const [labels] = await untilFiring('RemediationEngineNotScraped', 30_000, blind);
      expect(labels!.severity).toBe('warning');
      // The Prometheus that does scrape the engine never says so.
      expect(await firing('RemediationEngineNotScraped')).toEqual([]);
    } finally {
      await blind.stop();
    }
  });
});
