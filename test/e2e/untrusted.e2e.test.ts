// Alert labels are untrusted: whoever can reach Alertmanager (or writes a careless rule) controls
// them. A label may only select among the targets a binding lists. Here real containers sit next to
// the engine — one it is configured for, one it is not — and firing alerts name the stranger every
// way a label can, or name the configured one on bindings whose matchers do not fit. The webhook
// accepts them (an unmatched alert is not an error: Alertmanager must not retry it), counts them,
// starts nothing, and neither container is touched.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnmatchedCode } from '../../triggers/alerts/binding.js';
import type { RunningEngine } from '../../worker/engine.js';
import { incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { postAlerts, type AlertInit } from '../support/alertmanagerPayload.js';
import { busyboxRun, containerActions, docker } from '../support/docker.js';
import { engineMetric } from '../support/engineMetrics.js';
import { closedPort } from '../support/ports.js';
import { temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { httpOk, until, untilHttpOk } from '../support/wait.js';
import { startTestEngine } from './engine.js';

const tag = randomBytes(3).toString('hex');
const stranger = `remediation-e2e-stranger-${tag}`;
const guardedContainer = `remediation-e2e-guarded-${tag}`;
const token = `tok-${randomBytes(12).toString('hex')}`;
const queue = uniqueQueue('e2e-untrusted');
let strangerPort: number;
let guardedPort: number;
let engine: RunningEngine;

/** What the engine could have changed about a container: its state and its start/stop history. */
const stateOf = (name: string) => docker('inspect', '-f', '{{json .State}} restarts={{.RestartCount}}', name);

async function post(alerts: AlertInit[]) {
  const { status, json } = await postAlerts(
    engine.webhookUrl,
    token,
    alerts.map((a, i) => ({ annotations: { summary: 'untrusted labels' }, fingerprint: `fp-untrusted-${i}`, ...a })),
  );
  return { status, json: json as { started: number; folded: number; unmatched: Array<{ reason: string }> } };
}

const metric = (series: string) => engineMetric(engine.webhookUrl, series);

async function runsOnQueue(): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of engine.client.workflow.list({ query: `TaskQueue = '${queue}'` })) ids.push(wf.workflowId);
  return ids.sort();
}

/** The next whole second (as epoch ms), from which on docker's event log is ours alone (the setup's kills came before it). */
async function freshSecond(): Promise<number> {
  const next = (Math.floor(Date.now() / 1_000) + 1) * 1_000;
  await new Promise((r) => setTimeout(r, next - Date.now()));
  return next;
}

beforeAll(async () => {
  [strangerPort, guardedPort] = [await closedPort(), await closedPort()];
  for (const [name, port] of [
    [stranger, strangerPort],
    [guardedContainer, guardedPort],
  ] as const) {
    await docker(...busyboxRun(name, { port }));
    await untilHttpOk(`http://127.0.0.1:${port}/health`, `${name} serving`);
    await docker('kill', name);
  }
  engine = await startTestEngine({
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token },
    targets: {
      // The target's name is not its container's name: labels must use the former, and only it.
      guarded: {
        kind: 'container',
        container: guardedContainer,
        stopTimeout: '2s',
        labels: { service: 'guarded' },
        health: { url: `http://127.0.0.1:${guardedPort}/health`, timeout: '1s' },
      },
    },
    bindings: [
      {
        alert: 'ServiceDown',
        matchers: [{ name: 'team', value: 'payments' }],
        targetLabel: 'service',
        targets: ['guarded'],
        runbook: 'serviceDown',
      },
      { alert: 'ContainerDown', targetLabel: 'container', targets: ['guarded'], runbook: 'serviceDown' },
      { alert: 'UnitFailed', targetLabel: 'unit', targets: ['guarded'], runbook: 'serviceDown' },
      { alert: 'HostDown', matchers: [{ name: 'env', value: 'prod' }], target: 'guarded', runbook: 'serviceDown' },
    ],
  });
});

afterAll(async () => {
  if (engine) {
    await terminateRunning(engine.client, queue);
    await engine.stop();
  }
  await docker('rm', '-f', stranger, guardedContainer).catch(() => '');
});

describe('alerts whose labels name what the config does not allow', () => {
  const instance = () => `127.0.0.1:${strangerPort}`;
  // Each alert, and the reason the binding matcher must give for ignoring it.
  const cases = (): Array<[UnmatchedCode, Record<string, string>]> => [
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: stranger }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: guardedContainer }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: 'Guarded' }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: 'guarded ' }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: `guarded,${stranger}` }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: '../guarded' }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: 'constructor' }],
    ['target-not-allowed', { alertname: 'ServiceDown', team: 'payments', service: '__proto__' }],
    ['target-not-allowed', { alertname: 'ContainerDown', container: stranger }],
    ['target-not-allowed', { alertname: 'ContainerDown', container: guardedContainer }],
    ['target-not-allowed', { alertname: 'UnitFailed', unit: `${stranger}.service` }],
    [
      'no-target-label',
      { alertname: 'ServiceDown', team: 'payments', container: stranger, unit: `${stranger}.service`, instance: instance(), job: stranger },
    ],
    ['no-target-label', { alertname: 'ServiceDown', team: 'payments', service: '', container: stranger }],
    ['no-target-label', { alertname: 'ContainerDown', service: 'guarded', name: stranger }],
    // A configured target named on a binding whose matchers do not fit.
    ['matchers', { alertname: 'ServiceDown', team: 'search', service: 'guarded' }],
    ['matchers', { alertname: 'ServiceDown', service: 'guarded', container: stranger }],
    ['matchers', { alertname: 'HostDown', env: 'staging', service: 'guarded', container: stranger }],
    ['matchers', { alertname: 'HostDown', instance: instance() }],
    ['no-binding', { alertname: 'RestartContainer', container: stranger }],
    ['no-binding', { alertname: 'servicedown', team: 'payments', service: 'guarded' }],
    ['no-alertname', { container: stranger, service: 'guarded' }],
  ];

  it('accepts them, counts each as unmatched with its reason, starts nothing, and touches no container', async () => {
    const since = await freshSecond();
    const before = { stranger: await stateOf(stranger), guarded: await stateOf(guardedContainer) };
    const list = cases();
    const codes = [...new Set(list.map(([code]) => code))];
    const countsBefore = Object.fromEntries(
      await Promise.all(codes.map(async (c) => [c, await metric(`alerts_unmatched_total{reason="${c}"}`)] as const)),
    );

    // One batch as Alertmanager groups them, and each alone (a batch is judged alert by alert),
    // plus the resolved form of the first: a resolution selects nothing either.
    const batch = await post(list.map(([, labels]) => ({ labels })));
    expect(batch.status).toBe(200);
    expect(batch.json.started + batch.json.folded).toBe(0);
    expect(batch.json.unmatched).toHaveLength(list.length);
    for (const [, labels] of list) {
      const one = await post([{ labels }]);
      expect(one.status).toBe(200);
      expect(one.json.unmatched).toHaveLength(1);
    }
    const resolved = await post([{ labels: list[0]![1], status: 'resolved' }]);
    expect(resolved).toMatchObject({ status: 200, json: { started: 0, unmatched: [{}] } });

    for (const code of codes) {
      const expected = 2 * list.filter(([c]) => c === code).length + (code === list[0]![0] ? 1 : 0);
      expect({ code, counted: (await metric(`alerts_unmatched_total{reason="${code}"}`)) - countsBefore[code]! }).toEqual({
        code,
        counted: expected,
      });
    }
    expect(await metric('runbooks_started_total{runbook="serviceDown"}')).toBe(0);

    // Long enough for a run started by mistake to have verified and restarted something.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await runsOnQueue()).toEqual([]);
    expect(await stateOf(stranger)).toBe(before.stranger);
    expect(await stateOf(guardedContainer)).toBe(before.guarded);
    expect(await containerActions(stranger, since)).toBe('');
    expect(await containerActions(guardedContainer, since)).toBe('');
  }, 60_000);

  it('still acts on the configured target when an alert selects it properly, and the stranger stays untouched', async () => {
    // The control: the same engine, the same binding, a label that names an allowed target.
    const since = await freshSecond();
    const strangerBefore = await stateOf(stranger);
    const guardedStarted = JSON.parse((await stateOf(guardedContainer)).split(' restarts=')[0]!).StartedAt as string;
    const r = await post([{ labels: { alertname: 'ServiceDown', team: 'payments', service: 'guarded', container: stranger } }]);
    expect(r).toMatchObject({ status: 200, json: { started: 1, unmatched: [] } });
    const id = incidentWorkflowId('serviceDown', 'guarded');
    // The counter the test above found at 0 does count a start: its 0 meant none, not a missing series.
    expect(await metric('runbooks_started_total{runbook="serviceDown"}')).toBe(1);
    const result = (await engine.client.workflow.getHandle(id).result()) as RunbookResult;
    expect(result.outcome).toBe('recovered');
    expect(await httpOk(`http://127.0.0.1:${guardedPort}/health`)).toBe(true);
    expect(JSON.parse((await stateOf(guardedContainer)).split(' restarts=')[0]!).StartedAt).not.toBe(guardedStarted);

    // Visibility sees this run (and the guard it consulted), so the empty list above was not blindness.
    const runs = await until('the run visible on the queue', 30_000, async () => {
      const ids = await runsOnQueue();
      return ids.includes(id) ? ids : undefined;
    });
    expect(runs.filter((wid) => wid.startsWith('incident:'))).toEqual([id]);
    expect(await stateOf(stranger)).toBe(strangerBefore);
    expect(await containerActions(stranger, since)).toBe('');
    // ...and docker's event log does record what the engine did, so its silence above means something.
    expect((await containerActions(guardedContainer, since)).split('\n')).toContain('start');
  }, 60_000);
});
