// Which escalation policy an alert gets, and what a policy may say: a binding routes the severity
// label through a map the config writes (P1 pages at once, P4 mails next day), anything the map
// does not name falls back to a configured policy (never a value from the alert), and the repeat
// and after-acknowledgement keys reach the run in milliseconds, bounded at start-up.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { matchBinding } from '../../triggers/alerts/binding.js';
import { planRunbook } from '../../triggers/plan.js';

function raw(): Record<string, any> {
  const config: EngineConfigInput = {
    temporal: { taskQueue: 'routing' },
    webhook: { token: 'tok-routing-0123456789' },
    targets: {
      app: { kind: 'container', container: 'app', labels: { service: 'app' } },
      api: { kind: 'container', container: 'api', labels: { service: 'api' } },
    },
    bindings: [
      // Claude Code Manager's severities: P1 at once on the pager, P2 chat, P3/P4 mail; else the team's default.
      {
        alert: 'ServiceDown',
        runbook: 'serviceDown',
        target: 'app',
        escalation: 'ccm-default',
        escalationBySeverity: { P1: 'ccm-p1', P2: 'ccm-p2', P3: 'ccm-mail', P4: 'ccm-mail' },
      },
      // A binding with a map but no policy of its own: unnamed severities go to the config's routing.
      { alert: 'ApiDown', runbook: 'serviceDown', target: 'api', escalationBySeverity: { P1: 'ccm-p1' } },
    ],
    channels: { pager: { type: 'log' }, chat: { type: 'log' }, mail: { type: 'log' } },
    escalation: {
      policies: {
        'ccm-p1': {
          levels: [
            { name: 'on-call', after: '0s', channels: ['pager', 'chat'], repeat: '5m' },
            { name: 'manager', after: '15m', channels: ['chat'], repeat: '10m', repeatTimes: 3 },
          ],
          reescalateAfterAck: '30m',
          keepOpen: '12h',
        },
        'ccm-p2': {
          levels: [
            { name: 'team', after: '0s', channels: ['chat'] },
            { name: 'manager', after: '1h', channels: ['mail'] },
          ],
        },
        'ccm-mail': { levels: [{ name: 'team', after: '0s', channels: ['mail'] }] },
        'ccm-default': { levels: [{ name: 'team', after: '0s', channels: ['chat'] }] },
        critical: { levels: [{ name: 'pager', after: '0s', channels: ['pager'] }] },
        standard: { levels: [{ name: 'chat', after: '0s', channels: ['chat'] }] },
      },
      bySeverity: { critical: 'critical' },
      default: 'standard',
    },
  };
  return config;
}

const config = parseConfig(raw(), 'routing test');

function policyFor(alertname: string, severity?: string) {
  const labels = { alertname, ...(severity === undefined ? {} : { severity }) };
  const m = matchBinding(config, { labels });
  if (!m.matched) throw new Error(m.reason);
  return planRunbook(config, m, { labels }).escalation;
}

function problems(change: (c: ReturnType<typeof raw>) => void): string[] {
  const c = raw();
  change(c);
  try {
    parseConfig(c, 'routing test');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe('routing by severity', () => {
  it('routes each severity the binding names to its policy', () => {
    expect(policyFor('ServiceDown', 'P1').policy).toBe('ccm-p1');
    expect(policyFor('ServiceDown', 'P2').policy).toBe('ccm-p2');
    expect(policyFor('ServiceDown', 'P3').policy).toBe('ccm-mail');
    expect(policyFor('ServiceDown', 'P4').policy).toBe('ccm-mail');
  });

  it('falls back to the binding’s own policy for any other severity, never to a name from the alert', () => {
    for (const severity of ['P5', 'p1', 'critical', 'ccm-p1', 'constructor', '__proto__', 'x'.repeat(500)])
      expect(policyFor('ServiceDown', severity).policy, severity).toBe('ccm-default');
    expect(policyFor('ServiceDown').policy).toBe('ccm-default');
  });

  it('falls back to the config’s routing, then its default, when the binding names no policy of its own', () => {
    expect(policyFor('ApiDown', 'P1').policy).toBe('ccm-p1');
    expect(policyFor('ApiDown', 'critical').policy).toBe('critical');
    expect(policyFor('ApiDown', 'P2').policy).toBe('standard');
    expect(policyFor('ApiDown', 'hasOwnProperty').policy).toBe('standard');
  });

  it('refuses a map naming a policy the config does not have, naming the binding and the severity', () => {
    expect(problems((c) => (c.bindings[0].escalationBySeverity.P2 = 'nope'))).toEqual([
      expect.stringMatching(/^bindings\[0\]\.escalationBySeverity\.P2: .*"nope".*ccm-p1/),
    ]);
    expect(problems((c) => (c.bindings[0].escalation = 'toString'))).toEqual([
      expect.stringMatching(/^bindings\[0\]\.escalation: .*"toString"/),
    ]);
  });
});

describe('repeat and after-acknowledgement keys', () => {
  it('reach the run in milliseconds, and only where a policy sets them', () => {
    expect(policyFor('ServiceDown', 'P1')).toEqual({
      policy: 'ccm-p1',
      levels: [
        { name: 'on-call', afterMs: 0, channels: ['pager', 'chat'], repeatMs: 300_000 },
        { name: 'manager', afterMs: 900_000, channels: ['chat'], repeatMs: 600_000, repeatTimes: 3 },
      ],
      reescalateAfterAckMs: 1_800_000,
      keepOpenMs: 43_200_000,
      // Manager's repeats run out after 3: then it has one more interval to answer.
      lastAnswerMs: 600_000,
    });
    expect(policyFor('ServiceDown', 'P2')).toEqual({
      policy: 'ccm-p2',
      levels: [
        { name: 'team', afterMs: 0, channels: ['chat'] },
        { name: 'manager', afterMs: 3_600_000, channels: ['mail'] },
      ],
      // As long as the team had before it.
      lastAnswerMs: 3_600_000,
    });
  });

  it('gives the last level time to answer even when its delay and the levels before it give none', () => {
    // P3/P4 mail the team at once and nothing else: before, the run gave up as it sent the mail.
    expect(policyFor('ServiceDown', 'P3')).toEqual({
      policy: 'ccm-mail',
      levels: [{ name: 'team', afterMs: 0, channels: ['mail'] }],
      lastAnswerMs: 900_000,
    });
    const c = raw();
    c.escalation.policies['ccm-mail'].answerWithin = '4h';
    c.escalation.policies['ccm-p2'].levels.push({ name: 'director', after: '1h', channels: ['mail'] });
    const configured = parseConfig(c, 'routing test');
    const plan = (severity: string) => {
      const labels = { alertname: 'ServiceDown', severity };
      const m = matchBinding(configured, { labels });
      if (!m.matched) throw new Error(m.reason);
      return planRunbook(configured, m, { labels }).escalation.lastAnswerMs;
    };
    expect(plan('P3')).toBe(4 * 3_600_000);
    // Two last levels at the same delay: no gap between them, so the default.
    expect(plan('P2')).toBe(900_000);
  });

  it.each([
    [
      'a repeat under a minute (a flood, not an escalation)',
      (c: any) => (c.escalation.policies['ccm-p1'].levels[0].repeat = '30s'),
      'levels.0.repeat',
    ],
    ['a repeat over a day', (c: any) => (c.escalation.policies['ccm-p1'].levels[0].repeat = '2d'), 'levels.0.repeat'],
    ['repeatTimes without repeat', (c: any) => (c.escalation.policies['ccm-p2'].levels[0].repeatTimes = 2), 'levels.0.repeatTimes'],
    ['repeatTimes over 1,000', (c: any) => (c.escalation.policies['ccm-p1'].levels[0].repeatTimes = 1_001), 'levels.0.repeatTimes'],
    [
      'a re-escalation after less than a minute',
      (c: any) => (c.escalation.policies['ccm-p1'].reescalateAfterAck = '10s'),
      'reescalateAfterAck',
    ],
    ['keepOpen over 30 days', (c: any) => (c.escalation.policies['ccm-p1'].keepOpen = '31d'), 'keepOpen'],
    ['answerWithin under a minute', (c: any) => (c.escalation.policies['ccm-mail'].answerWithin = '0s'), 'answerWithin'],
    ['answerWithin over 7 days', (c: any) => (c.escalation.policies['ccm-mail'].answerWithin = '8d'), 'answerWithin'],
    [
      'two levels of one name (their pages would share keys)',
      (c: any) => (c.escalation.policies['ccm-p2'].levels[1].name = 'team'),
      'levels',
    ],
    [
      'a level name ending like a later page’s key',
      (c: any) => (c.escalation.policies['ccm-p2'].levels[1].name = 'team#2'),
      'levels.1.name',
    ],
  ])('refuses %s, naming the key', (_what, change, key) => {
    const found = problems(change);
    expect(
      found.some((p) => p.includes(key)),
      found.join('\n'),
    ).toBe(true);
  });
});
