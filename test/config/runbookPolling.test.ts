// Polling steps are bounded at load: each check is written to the run's history, and a run Temporal
// terminates at its history limit runs no finally (no closeWindow, no silence expiry, no page).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { onlyProblem, problemsOf, runbook } from './support/runbookText.js';
import { maxChecksPerRun, maxChecksPerStep } from '../../config/runbookPolling.js';

const wait = (id: string, params: string, ...more: string[]) => [`  - id: ${id}`, '    uses: waitUntil', ...more, `    with: ${params}`];
const metric = 'check: metric, query: up, op: ">", threshold: 0';

describe('a polling step is refused at load when it could fill the run history', () => {
  it('for a metric wait every second for two hours (7,201 checks: the history limit after ~78 minutes)', () => {
    const p = onlyProblem(runbook(...wait('back-under', `{ ${metric}, every: 1s, deadline: 2h }`)), 7, 'back-under');
    expect(p).toContain('steps.0.with.deadline: deadline 2h / every 1s is 7201 checks; a step may check at most 1000 times');
    expect(p).toContain('51,200 events runs no finally');
  });

  it('for a wait every millisecond for thirty days: below the shortest interval between checks', () => {
    expect(onlyProblem(runbook(...wait('wait', '{ every: 1ms, deadline: 30d }')), 7, 'wait')).toContain(
      'steps.0.with.every: expected at least 100ms between checks (got "1ms")',
    );
    expect(onlyProblem(runbook(...wait('wait', '{ every: 0s, deadline: 1m }')), 7, 'wait')).toContain(
      'steps.0.with.every: expected at least 100ms between checks (got "0s")',
    );
  });

  it('for a wait at the default interval (5s) for a day', () => {
    expect(onlyProblem(runbook(...wait('wait', '{ deadline: 1d }')), 7, 'wait')).toContain(
      'steps.0.with.deadline: deadline 1d / every 5s is 17281 checks',
    );
  });

  it('for a verify polling too often or too long, naming the interval it is counted at', () => {
    const verify = (params: string) => runbook('  - id: verify', '    uses: verify', `    with: ${params}`);
    expect(onlyProblem(verify('{ within: 1d, every: 1m }'), 7, 'verify')).toContain(
      'steps.0.with.within: within 1d / every 1m is 1441 checks; a step may check at most 1000 times',
    );
    expect(onlyProblem(verify('{ within: 1h }'), 7, 'verify')).toContain(
      'steps.0.with.within: within 1h / every unset (guardrails.verifyInterval, 2s by default) is 1801 checks',
    );
    expect(onlyProblem(verify('{ within: deadline, every: 1s }'), 7, 'verify')).toContain(
      'steps.0.with.within: within: deadline (guardrails.verifyDeadline, up to 1h) / every 1s is 3601 checks',
    );
    expect(onlyProblem(verify('{ within: 2m, every: 10ms }'), 7, 'verify')).toContain(
      'steps.0.with.every: expected at least 100ms between checks (got "10ms")',
    );
  });

  it('for retries that multiply an allowed step past the bound, at the retry', () => {
    const p = onlyProblem(runbook(...wait('wait', '{ every: 1s, deadline: 10m }', '    retry: { attempts: 3 }')), 7, 'wait');
    expect(p).toContain('steps.0.retry.attempts: retry.attempts 3 × (deadline 10m / every 1s) is 1803 checks');
    expect(p).toContain('fewer attempts, a longer every or a shorter deadline');
  });

  it('for polling steps that together could check more than a run may, at the step that passes the bound', () => {
    const steps = ['a', 'b', 'c', 'd'].flatMap((id) => wait(id, '{ every: 1s, deadline: 10m }'));
    const p = onlyProblem(runbook(...steps), 16, 'd');
    expect(p).toContain(
      `steps.3.with.deadline: the runbook's polling steps could check 2404 times in all (a 601, b 601, c 601, d 601); a run may check at most ${maxChecksPerRun} times`,
    );
    // Inside a group and in finally, they count too.
    const grouped = runbook(
      ...wait('a', '{ every: 1s, deadline: 10m }'),
      '  - id: each',
      '    forEach: targets',
      '    steps:',
      ...wait('b', '{ every: 1s, deadline: 10m }').map((l) => `    ${l}`),
      'finally:',
      ...wait('c', '{ every: 1s, deadline: 10m }'),
      ...wait('d', '{ every: 1s, deadline: 10m }'),
    );
    expect(problemsOf(grouped)).toEqual([
      expect.stringMatching(/^bad\.yaml:20: step "d": finally\.1\.with\.deadline: the runbook's polling/),
    ]);
  });
});

describe('polling steps within the bounds load', () => {
  it('as the shipped runbooks poll: every 30s or 1m for 10-15 minutes, verify within 2m or the deadline', () => {
    expect(
      problemsOf(
        runbook(
          ...wait('a', `{ ${metric}, every: 30s, deadline: 10m }`),
          ...wait('b', `{ ${metric}, every: 1m, deadline: 15m }`),
          '  - id: c',
          '    uses: verify',
          '    with: { within: 2m }',
          '  - id: d',
          '    uses: verify',
          '    with: { within: deadline }',
          '  - id: e',
          '    uses: verify',
        ),
      ),
    ).toEqual([]);
  });

  it('at exactly the bound, and at the shortest interval', () => {
    // 1 + 999s / 1s = 1,000 checks.
    expect(problemsOf(runbook(...wait('wait', '{ every: 1s, deadline: 999s }')))).toEqual([]);
    expect(problemsOf(runbook(...wait('wait', '{ every: 1s, deadline: 1000s }')))[0]).toContain(
      `is 1001 checks; a step may check at most ${maxChecksPerStep} times`,
    );
    expect(problemsOf(runbook(...wait('wait', '{ every: 100ms, deadline: 10s }')))).toEqual([]);
  });
});

describe('polling counted again against the config', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  /** The config's problems with one runbook file, ten container targets, and the extra config given. */
  function problemsWith(file: string, extra: Partial<EngineConfigInput>): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'polling-config-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'runbooks'));
    writeFileSync(join(dir, 'runbooks', 'r.yaml'), file);
    const targets = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`c${i}`, { kind: 'container' as const, container: `c${i}` }]));
    try {
      parseConfig(
        {
          webhook: { token: 'tok-polling-0123' },
          alertmanager: { url: 'http://127.0.0.1:19093' },
          prometheus: { url: 'http://127.0.0.1:19090' },
          runbooks: 'runbooks',
          targets,
          channels: { log: { type: 'log' } },
          escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
          ...extra,
        },
        'engine.yaml',
        dir,
      );
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  }

  it("multiplies a forEach's polling by the targets of the schedule that runs it", () => {
    const each = [
      'name: r',
      'description: d',
      'kind: maintenance',
      'appliesTo: [container]',
      'steps:',
      '  - id: each',
      '    forEach: targets',
      '    steps:',
      `      - { id: settle, uses: waitUntil, with: { ${metric}, every: 1s, deadline: 8m } }`,
      '',
    ].join('\n');
    // 481 checks: alone within the bounds; once per target of a ten-target schedule, 4,810.
    expect(problemsOf(each)).toEqual([]);
    expect(problemsWith(each, { maintenance: [{ name: 'weekly', runbook: 'r', targets: ['c0', 'c1'] }] })).toEqual([]);
    const ten = problemsWith(each, {
      maintenance: [{ name: 'weekly', runbook: 'r', targets: Array.from({ length: 10 }, (_, i) => `c${i}`) }],
    });
    expect(ten.join('\n')).toMatch(
      /maintenance\[0\]: runbook "r", step "settle": the runbook's polling steps could check 4810 times in all \(settle 4810\)/,
    );
  });

  it("counts a verify without every at the config's verifyInterval, not at the default", () => {
    const verify = [
      'name: r',
      'description: d',
      'appliesTo: [container]',
      'steps:',
      '  - { id: first, uses: verify, with: { within: 30m } }',
      '  - { id: second, uses: verify, with: { within: 30m } }',
      '',
    ].join('\n');
    const binding = { bindings: [{ alert: 'Down', target: 'c0', runbook: 'r' }] };
    // At 2 s: 901 checks each, 1,802 in all.
    expect(problemsWith(verify, binding)).toEqual([]);
    const fast = problemsWith(verify, { ...binding, guardrails: { verifyInterval: '100ms', verifyDeadline: '30s' } });
    expect(fast.join('\n')).toMatch(/bindings\[0\]: runbook "r", step "first": .*could check 36002 times in all/);
  });
});
