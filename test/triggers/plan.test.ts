import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { matchBinding } from '../../triggers/alerts/binding.js';
import { planMaintenance, planRunbook, silenceForTargets } from '../../triggers/plan.js';

const raw: EngineConfigInput = {
  temporal: { taskQueue: 'engine-q' },
  dryRun: true,
  webhook: { token: 'test-token' },
  alertmanager: { url: 'http://127.0.0.1:19093' },
  hosts: { 'host-a': {}, 'host-b': { taskQueue: 'agent-b' } },
  targets: {
    api: { kind: 'container', container: 'api', labels: { service: 'api', team: 'web' }, verifyDeadline: '2m' },
    'web-unit': { kind: 'systemd', unit: 'web.service', host: 'host-a', labels: { service: 'web', team: 'web' } },
    'b-unit': { kind: 'systemd', unit: 'b.service', host: 'host-b' },
    cache: { kind: 'http', action: { url: 'http://127.0.0.1:18080/purge' }, labels: { service: 'cache' } },
    plain: { kind: 'http' },
    db: { kind: 'postgres', port: 15432, labels: { service: 'db', team: 'data' } },
  },
  bindings: [
    { alert: 'Down', runbook: 'serviceDown', targetLabel: 'service_name', targets: ['api', 'web-unit', 'b-unit', 'cache', 'plain'] },
    { alert: 'Errors', runbook: 'highErrorRate', target: 'cache', escalation: 'quiet' },
  ],
  channels: {
    pager: { type: 'webhook', url: 'http://127.0.0.1:9/pager' },
    chat: { type: 'slack', url: 'http://127.0.0.1:9/chat' },
  },
  escalation: {
    policies: {
      standard: {
        levels: [
          { name: 'oncall', after: '0s', channels: ['chat'] },
          { name: 'senior', after: '15m', channels: ['pager', 'chat'] },
        ],
      },
      urgent: { levels: [{ name: 'page', after: '0s', channels: ['pager'] }] },
      quiet: { levels: [{ name: 'chat', after: '1h30m', channels: ['chat'] }] },
    },
    bySeverity: { critical: 'urgent' },
    default: 'standard',
  },
  operators: [
    { name: 'alice', role: 'operator' },
    { name: 'bob', role: 'admin' },
  ],
  guardrails: { restartAttempts: 4, restartBackoff: '5s', verifyDeadline: '45s', restarts: { max: 2, window: '30m' } },
  maintenance: [
    { name: 'weekly', targets: ['db'], window: '2h' },
    { name: 'web-tier', targets: ['api', 'web-unit'] },
    { name: 'mixed', targets: ['api', 'db', 'cache'] },
    { name: 'explicit', targets: ['db'], silence: [{ name: 'alertname', value: 'Disk.*', isRegex: true }] },
    { name: 'bare', targets: ['plain'] },
  ],
};
const config = parseConfig(raw, 'plan test');

function plan(labels: Record<string, string>, annotations: Record<string, string> = {}) {
  const m = matchBinding(config, { labels });
  if (!m.matched) throw new Error(m.reason);
  return planRunbook(config, m, { labels, annotations, fingerprint: 'fp1', startsAt: '2025-01-05T02:00:00Z' });
}

describe('runbook plan', () => {
  it('escalates by the severity label when the binding names no policy', () => {
    const p = plan({ alertname: 'Down', service_name: 'api', severity: 'critical' });
    expect(p.escalation).toEqual({
      policy: 'urgent',
      levels: [{ name: 'page', afterMs: 0, channels: ['pager'] }],
      // One level at 0 s: 15 min to answer, not none.
      lastAnswerMs: 15 * 60_000,
    });
  });

  it('falls back to the default policy for unlisted severities, with level delays in milliseconds', () => {
    const p = plan({ alertname: 'Down', service_name: 'api', severity: 'warning' });
    expect(p.escalation.policy).toBe('standard');
    expect(p.escalation.levels.map((l) => l.afterMs)).toEqual([0, 15 * 60_000]);
    // A severity named like an Object.prototype member must not find a "policy" there.
    expect(plan({ alertname: 'Down', service_name: 'api', severity: 'constructor' }).escalation.policy).toBe('standard');
  });

  it('prefers the binding’s own escalation policy over the severity', () => {
    const p = plan({ alertname: 'Errors', severity: 'critical' });
    expect(p.escalation).toEqual({
      policy: 'quiet',
      levels: [{ name: 'chat', afterMs: 5_400_000, channels: ['chat'] }],
      // One level at 90 min: as long again to answer.
      lastAnswerMs: 5_400_000,
    });
  });

  it('resolves guardrails to milliseconds, with the target’s own verify deadline', () => {
    expect(plan({ alertname: 'Down', service_name: 'api' }).guardrails).toEqual({
      restartAttempts: 4,
      restartBackoffMs: 5_000,
      verifyDeadlineMs: 120_000,
      verifyIntervalMs: 2_000,
      approvalTimeoutMs: 30 * 60_000,
      restartsPerWindow: { max: 2, windowMs: 30 * 60_000 },
      maxConcurrentDestructive: 2,
      // A host agent that does not take a step within a minute is not running.
      agentWaitMs: 60_000,
    });
    expect(plan({ alertname: 'Down', service_name: 'cache' }).guardrails.verifyDeadlineMs).toBe(45_000);
  });

  it('sends systemd targets to their host agent’s queue and everything else to the engine’s', () => {
    expect(plan({ alertname: 'Down', service_name: 'api' })).toMatchObject({ targetKind: 'container', targetQueue: 'engine-q' });
    expect(plan({ alertname: 'Down', service_name: 'web-unit' })).toMatchObject({
      targetKind: 'systemd',
      targetQueue: 'engine-q-host-host-a',
    });
    expect(plan({ alertname: 'Down', service_name: 'b-unit' })).toMatchObject({ targetQueue: 'agent-b' });
  });

  it('offers the HTTP action only to targets that configure one', () => {
    expect(plan({ alertname: 'Down', service_name: 'cache' }).hasAction).toBe(true);
    expect(plan({ alertname: 'Down', service_name: 'plain' }).hasAction).toBe(false);
    expect(plan({ alertname: 'Down', service_name: 'api' }).hasAction).toBe(false);
  });

  it('carries operators, dry-run and the alert as received', () => {
    const p = plan({ alertname: 'Down', service_name: 'api', severity: 'page' }, { summary: 'api is down', description: 'long text' });
    expect(p.operators).toEqual(['alice', 'bob']);
    expect(p.dryRun).toBe(true);
    expect(p.runbook).toBe('serviceDown');
    expect(p.alert).toEqual({
      name: 'Down',
      severity: 'page',
      labels: { alertname: 'Down', service_name: 'api', severity: 'page' },
      fingerprint: 'fp1',
      startsAt: '2025-01-05T02:00:00Z',
      summary: 'api is down',
    });
    expect(plan({ alertname: 'Down', service_name: 'api' }).alert.severity).toBe('unknown');
  });

  it('caps what an alert can push into workflow history', () => {
    const labels: Record<string, string> = { alertname: 'Down', service_name: 'api' };
    for (let i = 0; i < 200; i++) labels[`l${i}`] = 'x'.repeat(5_000);
    const p = plan(labels, { summary: 's'.repeat(10_000) });
    expect(Object.keys(p.alert.labels).length).toBe(64);
    expect(Math.max(...Object.values(p.alert.labels).map((v) => v.length))).toBeLessThanOrEqual(1_024);
    expect(p.alert.summary!.length).toBeLessThanOrEqual(500);
    expect(JSON.stringify(p).length).toBeLessThan(80_000);
  });
});

describe('maintenance plan', () => {
  const schedule = (name: string) => config.maintenance.find((m) => m.name === name)!;

  it('lists each target with the queue its activities run on, and the window in milliseconds', () => {
    const p = planMaintenance(config, schedule('web-tier'));
    expect(p.targets).toEqual([
      { name: 'api', kind: 'container', queue: 'engine-q' },
      { name: 'web-unit', kind: 'systemd', queue: 'engine-q-host-host-a' },
    ]);
    expect(p.windowMs).toBe(3_600_000);
    expect(planMaintenance(config, schedule('weekly')).windowMs).toBe(7_200_000);
    expect(p).toMatchObject({ schedule: 'web-tier', dryRun: true, maxConcurrentDestructive: 2 });
  });

  it('notifies the first level of the default escalation policy', () => {
    expect(planMaintenance(config, schedule('weekly')).channels).toEqual(['chat']);
  });

  it('silences a single target by its labels', () => {
    expect(planMaintenance(config, schedule('weekly')).silence).toEqual([
      { name: 'service', value: 'db', isRegex: false, isEqual: true },
      { name: 'team', value: 'data', isRegex: false, isEqual: true },
    ]);
  });

  it('silences several targets with one silence: shared values stay exact, differing ones become an alternation', () => {
    expect(planMaintenance(config, schedule('web-tier')).silence).toEqual([
      { name: 'service', value: 'api|web', isRegex: true, isEqual: true },
      { name: 'team', value: 'web', isRegex: false, isEqual: true },
    ]);
    // `team` is not on every target, so only `service` is used.
    expect(planMaintenance(config, schedule('mixed')).silence).toEqual([
      { name: 'service', value: 'api|cache|db', isRegex: true, isEqual: true },
    ]);
  });

  it('escapes label values that look like regular expressions', () => {
    const c = parseConfig(
      {
        ...raw,
        targets: { a: { kind: 'http', labels: { instance: 'a.example:80' } }, b: { kind: 'http', labels: { instance: 'b+(1)' } } },
        bindings: [],
        maintenance: [],
      },
      't',
    );
    expect(silenceForTargets(c, ['a', 'b'])).toEqual([
      { name: 'instance', value: 'a\\.example:80|b\\+\\(1\\)', isRegex: true, isEqual: true },
    ]);
  });

  it('uses the schedule’s own matchers when it has them', () => {
    expect(planMaintenance(config, schedule('explicit')).silence).toEqual([
      { name: 'alertname', value: 'Disk.*', isRegex: true, isEqual: true },
    ]);
  });

  it('creates no silence rather than one that would silence every alert', () => {
    expect(planMaintenance(config, schedule('bare')).silence).toEqual([]);
    const c = parseConfig({ ...raw, targets: { e: { kind: 'http', labels: { env: '' } } }, bindings: [], maintenance: [] }, 't');
    expect(silenceForTargets(c, ['e'])).toEqual([]);
  });
});
