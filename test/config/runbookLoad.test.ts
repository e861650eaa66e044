import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../config/load.js';
import { actionSteps, loadRunbookDir, loadRunbookFile, parseRunbook, RunbookError } from '../../config/runbookLoad.js';
import type { EngineConfigInput } from '../../config/schema.js';

/** A runbook file: the header, then the step lines given (line 5 is the first step line). */
function runbook(...stepLines: string[]): string {
  return ['name: probe', 'description: a runbook under test', 'appliesTo: [container]', 'steps:', ...stepLines, ''].join('\n');
}

function problemsOf(text: string, source = 'bad.yaml'): string[] {
  try {
    parseRunbook(text, source);
  } catch (err) {
    if (err instanceof RunbookError) return err.problems;
    throw err;
  }
  throw new Error('the runbook was accepted');
}

/** The one problem of a file, which must start with `file:line: step "id":`. */
function onlyProblem(text: string, line: number, step: string | undefined): string {
  const problems = problemsOf(text);
  expect(problems, problems.join('\n')).toHaveLength(1);
  expect(problems[0]!.startsWith(`bad.yaml:${line}:${step ? ` step "${step}":` : ''}`), problems[0]).toBe(true);
  return problems[0]!;
}

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runbooks-'));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('the shipped runbooks', () => {
  it('load, each recording its file, the hash of its text and the line of every step', () => {
    const defs = loadRunbookDir('runbooks');
    expect(Object.keys(defs).sort()).toEqual([
      'databaseConnection',
      'highErrorRate',
      'maintenance',
      'resourcePressure',
      'serviceDown',
      'slaBreach',
    ]);
    for (const def of Object.values(defs)) {
      const text = readFileSync(join('runbooks', def.source), 'utf8');
      expect(def.sha256).toBe(createHash('sha256').update(text).digest('hex'));
      for (const step of actionSteps(def)) expect(text.split('\n')[step.line! - 1], step.id).toContain(`id: ${step.id}`);
    }
    expect(defs.maintenance!.kind).toBe('maintenance');
    expect(defs.serviceDown!.kind).toBe('incident');
    expect(defs.serviceDown!.steps.map((s) => s.id)).toEqual([
      'suppression-check',
      'stand-down',
      'verify',
      'false-alarm',
      'restart',
      'recovered',
      'diagnose',
      'escalate',
      'escalated',
    ]);
  });

  it('carry durations in milliseconds and defaults filled in', () => {
    const def = parseRunbook(
      runbook(
        '  - id: wait',
        '    uses: waitUntil',
        '    timeout: 2m',
        '    retry: { attempts: 2 }',
        '    with: { until: check.healthy, deadline: 1m30s }',
      ),
      'ok.yaml',
    );
    expect(def.steps[0]).toMatchObject({
      kind: 'action',
      id: 'wait',
      uses: 'waitUntil',
      timeoutMs: 120_000,
      retry: { attempts: 2, backoffMs: 5_000 },
      onFailure: 'fail',
      line: 5,
      with: { until: 'check.healthy', deadline: 90_000, every: 5_000, check: 'verify' },
    });
  });
});

describe('a runbook file is refused with its file, line and step named', () => {
  it('for an unknown step type, listing the known ones', () => {
    const p = onlyProblem(runbook('  - id: verify', '    uses: verify', '  - id: boom', '    uses: explode'), 8, 'boom');
    expect(p).toContain('steps.1.uses: unknown step type "explode" (known: checkSuppression, verify, restart');
  });

  it('for a parameter of the wrong type, showing the value', () => {
    const p = onlyProblem(runbook('  - id: restart', '    uses: restart', '    with:', '      attempts: three'), 8, 'restart');
    expect(p).toContain('steps.0.with.attempts: Expected number, received string (got "three")');
  });

  it("for a maintain step's analyzeOnly that is not a bool, naming the key; true, false or absent load", () => {
    const p = onlyProblem(runbook('  - id: analyze', '    uses: maintain', '    with:', '      analyzeOnly: "yes"'), 8, 'analyze');
    expect(p).toContain('steps.0.with.analyzeOnly: Expected boolean, received string (got "yes")');
    const step = (w: string) => parseRunbook(runbook('  - id: analyze', '    uses: maintain', `    with: ${w}`), 'ok.yaml').steps[0];
    expect(step('{ analyzeOnly: true }')).toMatchObject({ uses: 'maintain', with: { analyzeOnly: true } });
    expect(step('{ analyzeOnly: false }')).toMatchObject({ with: { analyzeOnly: false } });
    // Absent stays absent: the steps of runbooks written before it read as they did.
    expect(step('{}')).toMatchObject({ with: {} });
    expect((step('{}') as { with: object }).with).not.toHaveProperty('analyzeOnly');
  });

  it('for a parameter out of range or not a duration', () => {
    expect(onlyProblem(runbook('  - id: restart', '    uses: restart', '    with: { attempts: 50 }'), 7, 'restart')).toContain(
      'steps.0.with.attempts:',
    );
    expect(onlyProblem(runbook('  - id: nap', '    uses: sleep', '    with: { duration: soon }'), 7, 'nap')).toContain(
      'steps.0.with.duration: expected a duration such as "30s", "15m" or "1h" (got "soon")',
    );
  });

  it('for an unknown parameter', () => {
    const p = onlyProblem(runbook('  - id: verify', '    uses: verify', '    with:', '      tries: 3'), 8, 'verify');
    expect(p).toContain('steps.0.with: unknown key(s) "tries"');
  });

  it('for an unknown key of the step itself', () => {
    // The line of the unknown key itself, not of the step it sits in.
    const p = onlyProblem(runbook('  - id: verify', '    uses: verify', '    retries: 3'), 7, 'verify');
    expect(p).toContain('steps.0: unknown key(s) "retries"');
  });

  it('for a condition that does not parse', () => {
    const p = onlyProblem(
      runbook('  - id: verify', '    uses: verify', '  - id: again', '    when: steps.verify.healthy ==', '    uses: verify'),
      8,
      'again',
    );
    expect(p).toContain('steps.1.when: condition "steps.verify.healthy ==" cannot be used: Unexpected token');
  });

  it("for a waitUntil's or an assert's condition that does not parse", () => {
    expect(
      onlyProblem(runbook('  - id: wait', '    uses: waitUntil', '    with: { until: "check.healthy &&", deadline: 1m }'), 7, 'wait'),
    ).toContain('steps.0.with.until: condition "check.healthy &&" cannot be used');
    expect(
      onlyProblem(runbook('  - id: check', '    uses: assert', '    with:', '      that: steps.(', '      message: no'), 8, 'check'),
    ).toContain('steps.0.with.that: condition "steps.(" cannot be used');
  });

  it('for a condition that can never be a bool', () => {
    expect(onlyProblem(runbook('  - id: verify', '    when: "1 + 2"', '    uses: verify'), 6, 'verify')).toContain(
      'steps.0.when: condition "1 + 2" cannot be used: a condition must be a bool, this is a int',
    );
  });

  it('for a template expression that does not parse', () => {
    const p = onlyProblem(
      runbook('  - id: tell', '    uses: notify', '    with:', '      key: k', '      title: "restarted ${{ steps.restart. }}"'),
      9,
      'tell',
    );
    expect(p).toContain('steps.0.with.title: expression "steps.restart." cannot be used');
  });

  it('for an unknown variable, in a condition and in a template', () => {
    expect(onlyProblem(runbook('  - id: verify', '    when: "alerts.name == \'x\'"', '    uses: verify'), 6, 'verify')).toContain(
      'cannot be used: Unknown variable: alerts',
    );
    expect(
      onlyProblem(
        runbook('  - id: done', '    uses: end', '    with: { outcome: recovered, detail: "${{ stepz.verify.detail }}" }'),
        7,
        'done',
      ),
    ).toContain('steps.0.with.detail: expression "stepz.verify.detail" cannot be used: Unknown variable: stepz');
  });

  it('for an expression where a literal is required (what is touched never comes from an alert)', () => {
    expect(
      onlyProblem(
        runbook('  - id: call', '    uses: http', '    with: { url: "https://api.example/${{ alert.labels.path }}" }'),
        7,
        'call',
      ),
    ).toContain('steps.0.with.url: is used as written: only body of http may hold ${{ }} expressions');
    expect(
      onlyProblem(runbook('  - id: verify', '    uses: verify', '    with: { target: "${{ alert.labels.service }}" }'), 7, 'verify'),
    ).toContain('steps.0.with.target: expected a configured target name');
  });

  it('for a goto to a step that does not exist', () => {
    const p = onlyProblem(runbook('  - id: verify', '    uses: verify', '    onFailure: { goto: nowhere }'), 7, 'verify');
    expect(p).toContain('steps.0.onFailure.goto: jumps to step "nowhere", which is not a step of steps at this level');
  });

  it('for a goto backwards or to itself: a runbook cannot loop', () => {
    const back = onlyProblem(
      runbook('  - id: verify', '    uses: verify', '  - id: restart', '    uses: restart', '    onFailure: { goto: verify }'),
      9,
      'restart',
    );
    expect(back).toContain('steps.1.onFailure.goto: jumps back to step "verify": jumps go forward only, so a runbook cannot loop');
    expect(onlyProblem(runbook('  - id: verify', '    uses: verify', '    onFailure: { goto: verify }'), 7, 'verify')).toContain(
      'jumps back to step "verify"',
    );
  });

  it('for a goto from inside a group, or from a finally step', () => {
    expect(
      onlyProblem(
        runbook(
          '  - id: gather',
          '    parallel:',
          '      - id: diagnose',
          '        uses: diagnose',
          '        onFailure: { goto: tell }',
          '  - id: tell',
          '    uses: escalate',
          '    with: { reason: r }',
        ),
        9,
        'diagnose',
      ),
    ).toContain('steps.0.parallel.0.onFailure: a step inside a group cannot jump');
    const text = runbook(
      '  - id: verify',
      '    uses: verify',
      'finally:',
      '  - id: a',
      '    uses: closeWindow',
      '    onFailure: { goto: b }',
      '  - id: b',
      '    uses: closeWindow',
    );
    expect(onlyProblem(text, 10, 'a')).toContain('finally.0.onFailure: a finally step cannot jump');
  });

  it('for a duplicate step id, anywhere in the file', () => {
    expect(onlyProblem(runbook('  - id: verify', '    uses: verify', '  - id: verify', '    uses: verify'), 7, 'verify')).toContain(
      'steps.1.id: step id "verify" is used twice (first at steps.0)',
    );
    expect(
      onlyProblem(
        runbook('  - id: verify', '    uses: verify', '  - id: gather', '    parallel:', '      - id: verify', '        uses: verify'),
        9,
        'verify',
      ),
    ).toContain('steps.1.parallel.0.id: step id "verify" is used twice (first at steps.0)');
    expect(
      onlyProblem(runbook('  - id: verify', '    uses: verify', 'finally:', '  - id: verify', '    uses: verify'), 8, 'verify'),
    ).toContain('finally.0.id: step id "verify" is used twice (first at steps.0)');
  });

  it('for `a_b` beside `a-b`: both read as steps.a_b, and "_" is not allowed in an id', () => {
    const p = onlyProblem(runbook('  - id: post-check', '    uses: verify', '  - id: post_check', '    uses: verify'), 7, 'post_check');
    expect(p).toContain('steps.1.id: expected a step id of lower-case letters, digits and "-"');
  });

  it('for an `end` inside a group', () => {
    const parallel = runbook(
      '  - id: gather',
      '    parallel:',
      '      - id: verify',
      '        uses: verify',
      '      - id: done',
      '        uses: end',
      '        with: { outcome: recovered }',
    );
    expect(onlyProblem(parallel, 10, 'done')).toContain(
      'steps.0.parallel.1.uses: a run ends from its top-level steps, not from inside a group',
    );
    const forEach = runbook(
      '  - id: each',
      '    forEach: targets',
      '    steps:',
      '      - id: done',
      '        uses: end',
      '        with: { outcome: completed }',
    );
    expect(onlyProblem(forEach, 9, 'done')).toContain('steps.0.steps.0.uses: a run ends from its top-level steps');
  });

  it("for a bad key of a step inside a group, naming that step and the key, not 'Invalid input' under the group", () => {
    const problems = problemsOf(
      runbook(
        '  - id: g',
        '    parallel:',
        '      - { id: a, uses: verify }',
        '      - { id: b, uses: verify, onFailure: contnue }',
        '      - { id: c, uses: verify, timeout: 5 }',
      ),
    );
    expect(problems).toEqual([
      'bad.yaml:8: step "b": steps.0.parallel.1.onFailure: expected fail, continue or { goto: <step id> } (got "contnue")',
      'bad.yaml:9: step "c": steps.0.parallel.2.timeout: Expected string, received number (got 5)',
    ]);
  });

  it('for nested groups and a retry on a group', () => {
    expect(
      onlyProblem(
        runbook(
          '  - id: outer',
          '    parallel:',
          '      - id: inner',
          '        parallel:',
          '          - id: verify',
          '            uses: verify',
        ),
        7,
        'inner',
      ),
    ).toContain('steps.0.parallel.0: groups do not nest');
    expect(
      onlyProblem(
        runbook('  - id: gather', '    retry: { attempts: 2 }', '    parallel:', '      - id: verify', '        uses: verify'),
        6,
        'gather',
      ),
    ).toContain('steps.0.retry: retry applies to single steps, not groups');
  });

  it('for an approval or an escalation inside a group or in finally, and a second openWindow: they wait, or hold, for the whole run', () => {
    const grouped = problemsOf(
      runbook(
        '  - id: ask',
        '    parallel:',
        '      - { id: approve-db, uses: approval, with: { action: restart the database } }',
        '      - { id: approve-app, uses: approval, with: { action: restart the app } }',
        '      - { id: page, uses: escalate, with: { reason: down } }',
      ),
    );
    expect(grouped).toEqual([
      expect.stringMatching(
        /^bad\.yaml:7: step "approve-db": steps\.0\.parallel\.0\.uses: approval is a top-level step, not one inside a group: a run waits on one approval at a time/,
      ),
      expect.stringMatching(/^bad\.yaml:8: step "approve-app": steps\.0\.parallel\.1\.uses: approval is a top-level step/),
      expect.stringMatching(
        /^bad\.yaml:9: step "page": steps\.0\.parallel\.2\.uses: escalate is a top-level step, not one inside a group: only a top-level escalation carries over/,
      ),
    ]);
    const inFinally = [
      ...runbook('  - { id: check, uses: verify }').trimEnd().split('\n'),
      'finally:',
      '  - { id: page, uses: escalate, with: { reason: down } }',
      '',
    ].join('\n');
    expect(onlyProblem(inFinally, 7, 'page')).toContain("finally.0.uses: escalate is a step of the runbook's steps, not of finally");
    const twoWindows = runbook('  - { id: first, uses: openWindow }', '  - { id: second, uses: openWindow }');
    expect(problemsOf(twoWindows)).toContainEqual(
      expect.stringContaining('step "second": steps.1.uses: a second openWindow (the first is step "first")'),
    );
  });

  it("for an http step's status read as if it were the HTTP status", () => {
    const text = runbook(
      '  - { id: live, uses: http, with: { url: "http://127.0.0.1:8080/health" } }',
      '  - { id: page, uses: escalate, with: { reason: "live: HTTP ${{ string(steps.live.status) }}" } }',
    );
    expect(onlyProblem(text, 6, 'page')).toContain(
      "reads steps.live.status outside a comparison: that is the step's status ('ok', 'failed', ...), not the HTTP status, which is steps.live.code",
    );
    // Compared with a status, or the code read, is what was meant.
    parseRunbook(
      runbook(
        '  - { id: live, uses: http, with: { url: "http://127.0.0.1:8080/health" } }',
        `  - { id: page, uses: escalate, with: { reason: "live: \${{ steps.live.status == 'ok' ? 'HTTP ' + string(steps.live.code) : 'failed' }}" } }`,
      ),
      'good.yaml',
    );
  });

  it('for approvedBy naming a step that is not an approval, a later approval, or nothing', () => {
    expect(
      onlyProblem(
        runbook('  - id: verify', '    uses: verify', '  - id: restart', '    uses: restart', '    with: { approvedBy: verify }'),
        9,
        'restart',
      ),
    ).toContain('steps.1.with.approvedBy: names "verify", which is not an earlier approval step');
    const later = runbook(
      '  - id: restart',
      '    uses: restart',
      '    with: { approvedBy: ok }',
      '  - id: ok',
      '    uses: approval',
      '    with: { action: restart it }',
    );
    expect(onlyProblem(later, 7, 'restart')).toContain('names "ok", which is not an earlier approval step');
    expect(onlyProblem(runbook('  - id: act', '    uses: runAction', '    with: { approvedBy: ghost }'), 7, 'act')).toContain(
      'names "ghost"',
    );
  });

  it('for YAML that does not parse, with its line', () => {
    const p = problemsOf(runbook('  - id: verify', '    uses: verify', '   with: {'));
    expect(p[0]).toMatch(/^bad\.yaml:7: not valid YAML: /);
    expect(problemsOf(runbook('  - id: verify', '    uses: [verify'))[0]).toMatch(/^bad\.yaml:7: not valid YAML: /);
    // A key given twice is an error, not "the last one wins".
    expect(problemsOf(runbook('  - id: verify', '    uses: verify', '    uses: restart'))).toEqual([
      expect.stringMatching(/^bad\.yaml:7: not valid YAML: Map keys must be unique/),
    ]);
  });

  it('for a bad top level: no steps, an unknown key', () => {
    expect(problemsOf(['name: probe', 'description: d', 'appliesTo: [container]', 'steps: []', ''].join('\n'))).toEqual([
      expect.stringMatching(/^bad\.yaml:4: steps: Array must contain at least 1 element/),
    ]);
    expect(problemsOf(runbook('  - id: verify', '    uses: verify') + 'kinds: maintenance\n')).toEqual([
      'bad.yaml:7: (top level): unknown key(s) "kinds"',
    ]);
  });

  it('accepts timeout and retry on a step inside a group', () => {
    const def = parseRunbook(
      runbook(
        '  - id: gather',
        '    parallel:',
        '      - id: logs',
        '        uses: logs',
        '        timeout: 1m',
        '        retry: { attempts: 2, backoff: 5s }',
        '      - id: look',
        '        uses: diagnose',
      ),
      'ok.yaml',
    );
    const group = def.steps[0]!;
    expect(group.kind).toBe('parallel');
    expect(group.kind !== 'action' && group.steps[0]).toMatchObject({
      id: 'logs',
      timeoutMs: 60_000,
      retry: { attempts: 2, backoffMs: 5_000 },
    });
  });

  it('for a condition or template naming a step the runbook does not have', () => {
    const p = problemsOf(
      runbook(
        '  - id: verify',
        '    uses: verify',
        '  - id: done',
        '    when: steps.verfy.healthy',
        '    uses: end',
        '    with: { outcome: recovered, detail: "${{ steps.nope.detail }}" }',
      ),
    );
    expect(p).toEqual([
      expect.stringMatching(/^bad\.yaml:8: step "done": steps\.1\.when: refers to steps\.verfy, which is not a step of this runbook/),
      expect.stringMatching(
        /^bad\.yaml:10: step "done": steps\.1\.with\.detail: refers to steps\.nope, which is not a step of this runbook/,
      ),
    ]);
  });

  it('with every problem of the file at once', () => {
    const p = problemsOf(
      runbook(
        '  - id: boom',
        '    uses: explode',
        '  - id: verify',
        '    when: nope.x',
        '    uses: verify',
        '  - id: wait',
        '    uses: sleep',
        '    with: { duration: soon }',
      ),
    );
    expect(p.map((x) => x.split(' step')[0])).toEqual(['bad.yaml:6:', 'bad.yaml:8:', 'bad.yaml:12:']);
  });

  it('when the file is too big, and a folder reports the problems of all its files', () => {
    const dir = tempDir();
    const big = runbook('  - id: verify', '    uses: verify') + `# ${'x'.repeat(300 * 1024)}\n`;
    writeFileSync(join(dir, 'big.yaml'), big);
    writeFileSync(join(dir, 'broken.yaml'), runbook('  - id: boom', '    uses: explode').replace('name: probe', 'name: broken'));
    writeFileSync(join(dir, 'good.yaml'), runbook('  - id: verify', '    uses: verify').replace('name: probe', 'name: good'));
    writeFileSync(join(dir, 'notes.txt'), 'not a runbook');
    expect(() => loadRunbookFile(join(dir, 'big.yaml'))).toThrow(`${join(dir, 'big.yaml')}: larger than 262144 bytes`);
    let problems: string[] = [];
    try {
      loadRunbookDir(dir);
    } catch (err) {
      problems = (err as RunbookError).problems;
    }
    expect(problems).toEqual([
      `${join(dir, 'big.yaml')}: larger than 262144 bytes`,
      expect.stringMatching(
        new RegExp(`^${join(dir, 'broken.yaml').replace(/[.]/g, '\\.')}:6: step "boom": steps\\.0\\.uses: unknown step type "explode"`),
      ),
    ]);
  });

  it('when two files use one runbook name', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.yaml'), runbook('  - id: verify', '    uses: verify'));
    writeFileSync(join(dir, 'b.yml'), runbook('  - id: verify', '    uses: verify'));
    expect(() => loadRunbookDir(dir)).toThrow(`${join(dir, 'b.yml')}: runbook name "probe" is already used by a.yaml`);
  });
});

describe('runbook files against the config', () => {
  function configWith(files: Record<string, string>, extra: Partial<EngineConfigInput> = {}): string[] {
    const dir = tempDir();
    mkdirSync(join(dir, 'runbooks'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'runbooks', name), text);
    const raw: EngineConfigInput = {
      webhook: { token: 'tok' },
      runbooks: 'runbooks',
      targets: {
        api: { kind: 'container', container: 'api', labels: { service: 'api' }, health: { url: 'http://127.0.0.1:18080/health' } },
        cache: { kind: 'http', labels: { service: 'cache' }, action: { url: 'http://127.0.0.1:18090/flush' } },
        db: { kind: 'postgres', port: 15432, labels: { service: 'db' } },
      },
      channels: { oncall: { type: 'log' } },
      secrets: { cacheToken: 'secret-value' },
      escalation: { policies: { standard: { levels: [{ name: 'oncall', after: '0s', channels: ['oncall'] }] } }, default: 'standard' },
      alertmanager: { url: 'http://127.0.0.1:19093' },
      operators: [{ name: 'alice', role: 'operator' }],
      ...extra,
    };
    try {
      parseConfig(raw, 'engine.yaml', dir);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  }

  const incident = (name: string, appliesTo: string, ...stepLines: string[]) =>
    ['name: ' + name, 'description: d', `appliesTo: [${appliesTo}]`, 'steps:', ...stepLines, ''].join('\n');
  const maintenanceFile = [
    'name: weekly',
    'description: d',
    'appliesTo: [postgres]',
    'kind: maintenance',
    'steps:',
    '  - id: backup',
    '    uses: backup',
    '',
  ].join('\n');

  it('accept a folder whose files name only what the config has', () => {
    const ok = incident(
      'checks',
      'container',
      '  - id: verify-db',
      '    uses: verify',
      '    with: { target: db }',
      '  - id: tell',
      '    uses: notify',
      '    with: { key: k, title: t, channels: [oncall] }',
      '  - id: flush',
      '    uses: http',
      '    with:',
      '      method: POST',
      '      url: http://127.0.0.1:18090/flush?all=1',
      '      headers: { Authorization: { secret: cacheToken } }',
    );
    expect(
      configWith(
        { 'checks.yaml': ok, 'weekly.yaml': maintenanceFile },
        { bindings: [{ alert: 'Down', runbook: 'checks', target: 'api' }] },
      ),
    ).toEqual([]);
  });

  it('refuse a step naming a target the config does not have', () => {
    expect(
      configWith({ 'r.yaml': incident('r', 'container', '  - id: verify-db', '    uses: verify', '    with: { target: ghost }') }),
    ).toEqual(['r.yaml:5: step "verify-db": with.target: no target named "ghost" (known: api, cache, db)']);
  });

  it('refuse a notify step naming an unknown channel', () => {
    expect(
      configWith({
        'r.yaml': incident(
          'r',
          'container',
          '  - id: tell',
          '    uses: notify',
          '    with: { key: k, title: t, channels: [oncall, slack] }',
        ),
      }),
    ).toEqual(['r.yaml:5: step "tell": with.channels: no channel named "slack" (known: oncall)']);
  });

  it('refuse an http step to an origin the config does not already name', () => {
    expect(
      configWith({
        'r.yaml': incident('r', 'container', '  - id: call', '    uses: http', '    with: { url: "https://evil.example/steal" }'),
      }),
    ).toEqual([
      'r.yaml:5: step "call": with.url: https://evil.example is not the origin of any target\'s health or action URL in the config (known: http://127.0.0.1:18080, http://127.0.0.1:18090)',
    ]);
  });

  it('refuse an http header naming an unknown secret', () => {
    const text = incident(
      'r',
      'container',
      '  - id: call',
      '    uses: http',
      '    with:',
      '      url: http://127.0.0.1:18080/admin',
      '      headers: { Authorization: { secret: adminToken } }',
    );
    expect(configWith({ 'r.yaml': text })).toEqual([
      'r.yaml:5: step "call": with.headers.Authorization: no secret named "adminToken" in the config\'s secrets (known: cacheToken)',
    ]);
  });

  it('refuse a binding naming a runbook there is no file for', () => {
    expect(
      configWith(
        { 'r.yaml': incident('r', 'container', '  - id: verify', '    uses: verify') },
        { bindings: [{ alert: 'Down', runbook: 'serviceDown', target: 'api' }] },
      ),
    ).toEqual(['bindings[0].runbook: no runbook file named "serviceDown" (known: r)']);
  });

  it("refuse a binding to a target whose kind is not in the runbook's appliesTo", () => {
    expect(
      configWith(
        { 'r.yaml': incident('r', 'container, http', '  - id: verify', '    uses: verify') },
        { bindings: [{ alert: 'Down', runbook: 'r', targetLabel: 'service', targets: ['api', 'db'] }] },
      ),
    ).toEqual(['bindings[0]: runbook "r" applies to container, http, and target "db" is a postgres']);
  });

  it('refuse a binding to a maintenance runbook, and a schedule naming an incident runbook', () => {
    const files = { 'r.yaml': incident('r', 'postgres', '  - id: verify', '    uses: verify'), 'weekly.yaml': maintenanceFile };
    expect(
      configWith(files, {
        bindings: [{ alert: 'Down', runbook: 'weekly', target: 'db' }],
        maintenance: [
          { name: 'nightly', targets: ['db'], runbook: 'r' },
          { name: 'sunday', targets: ['db'], runbook: 'weekly' },
        ],
      }),
    ).toEqual([
      'bindings[0].runbook: "weekly" is a maintenance runbook; alerts start incident runbooks',
      'maintenance[0].runbook: "r" is an incident runbook; schedules start maintenance runbooks',
    ]);
  });

  it('refuse the config when a runbook file of its folder is broken, naming the file', () => {
    const problems = configWith({ 'r.yaml': incident('r', 'container', '  - id: boom', '    uses: explode') });
    expect(problems).toEqual([expect.stringMatching(/runbooks\/r\.yaml:6: step "boom": steps\.0\.uses: unknown step type "explode"/)]);
  });

  // The metric, dependencies, command and hostDiagnostics steps: what they name must be in the config.
  const probeTargets: EngineConfigInput['targets'] = {
    api: {
      kind: 'container',
      container: 'api',
      labels: { service: 'api' },
      health: { url: 'http://127.0.0.1:18080/health' },
      dependsOn: ['db'],
      commands: { env: { argv: ['/bin/busybox', 'env'], readOnly: true }, flush: { argv: ['/usr/local/bin/flush-cache', '--all'] } },
    },
    web: { kind: 'systemd', unit: 'web.service', host: 'h1', commands: { df: { argv: ['df', '-P'], readOnly: true } } },
    db: { kind: 'postgres', port: 15432, labels: { service: 'db' } },
  };
  const probes = (bindings: EngineConfigInput['bindings'] = [], more: Partial<EngineConfigInput> = {}) => ({
    targets: probeTargets,
    hosts: { h1: {} },
    prometheus: { url: 'http://127.0.0.1:19090' },
    bindings,
    ...more,
  });

  it('accept the new steps when what they name is configured', () => {
    const ok = incident(
      'looks',
      'container',
      '  - id: rate',
      '    uses: metric',
      '    with: { query: \'sum(rate(http_requests_total{service="{{target.labels.service}}"}[5m]))\', op: "<", threshold: 0.05 }',
      '  - id: recovered',
      '    uses: waitUntil',
      '    with: { check: metric, query: \'up{service="{{target}}"}\', op: "==", threshold: 1, deadline: 5m }',
      '  - id: deps',
      '    uses: dependencies',
      '  - id: env',
      '    uses: command',
      '    with: { command: env }',
      '  - id: df',
      '    uses: command',
      '    with: { target: web, command: df }',
      '  - id: host',
      '    uses: hostDiagnostics',
      '    with: { target: web, tcp: ["127.0.0.1:15432"] }',
    );
    expect(configWith({ 'looks.yaml': ok }, probes([{ alert: 'Down', runbook: 'looks', target: 'api' }]))).toEqual([]);
  });

  it('refuse a command the target does not list, and one on a kind that has nowhere to run it', () => {
    const text = incident(
      'r',
      'container',
      '  - id: wipe',
      '    uses: command',
      '    with: { target: api, command: rm-rf }',
      '  - id: db-env',
      '    uses: command',
      '    with: { target: db, command: env }',
    );
    expect(configWith({ 'r.yaml': text }, probes())).toEqual([
      'r.yaml:5: step "wipe": with.command: target "api" has no command "rm-rf" in the config (known: env, flush)',
      'r.yaml:8: step "db-env": with: command runs in a container or on a systemd unit\'s host, and target "db" is a postgres',
    ]);
  });

  it('refuse a command without a target: of its own that a bound target does not list', () => {
    const text = incident('r', 'container, systemd', '  - id: flush', '    uses: command', '    with: { command: flush }');
    expect(
      configWith({ 'r.yaml': text }, probes([{ alert: 'Down', runbook: 'r', targetLabel: 'service', targets: ['api', 'web'] }])),
    ).toEqual(['r.yaml:5: step "flush": with.command: target "web" has no command "flush" in the config (known: df)']);
  });

  it('refuse a TCP check of a host the config does not name, and host diagnostics of a database', () => {
    const text = incident(
      'r',
      'container',
      '  - id: host',
      '    uses: hostDiagnostics',
      '    with: { target: api, tcp: ["127.0.0.1:15432", "10.0.0.7:22"] }',
      '  - id: db-host',
      '    uses: hostDiagnostics',
      '    with: { target: db }',
    );
    expect(configWith({ 'r.yaml': text }, probes())).toEqual([
      'r.yaml:5: step "host": with.tcp: 10.0.0.7:22: "10.0.0.7" is not a host the config names (known: 127.0.0.1)',
      'r.yaml:8: step "db-host": with: hostDiagnostics runs in a container or on a systemd unit\'s host, and target "db" is a postgres',
    ]);
  });

  it('refuse a metric check without a Prometheus, and a placeholder reading a label the target does not have', () => {
    const text = incident(
      'r',
      'container',
      '  - id: rate',
      '    uses: metric',
      '    with: { target: api, query: \'up{team="{{target.labels.team}}"}\', op: ">", threshold: 0 }',
    );
    expect(configWith({ 'r.yaml': text }, { ...probes(), prometheus: undefined })).toEqual([
      'r.yaml:5: step "rate": with.query: a metric check needs prometheus.url in the config, which has none',
      'r.yaml:5: step "rate": with.query: {{target.labels.team}}: target "api" has no label "team" in the config',
    ]);
  });

  it('refuse an alerts step without an Alertmanager, a template in its labels, and a limit past 50', () => {
    const text = incident('r', 'container', '  - id: firing', '    uses: alerts', '    with: { labels: { team: genesis } }');
    expect(configWith({ 'r.yaml': text }, { ...probes(), alertmanager: undefined })).toEqual([
      'r.yaml:5: step "firing": uses: alerts reads the alerts firing in Alertmanager, and the config has no alertmanager.url',
    ]);
    expect(configWith({ 'r.yaml': text }, probes())).toEqual([]);
    expect(
      onlyProblem(runbook('  - id: firing', '    uses: alerts', '    with: { labels: { team: "${{ alert.labels.team }}" } }'), 7, 'firing'),
    ).toContain('steps.0.with.labels.team: is used as written: labels of alerts may hold no ${{ }} expressions');
    expect(onlyProblem(runbook('  - id: firing', '    uses: alerts', '    with: { limit: 500 }'), 7, 'firing')).toContain(
      'steps.0.with.limit',
    );
  });

  it('refuse in the file a placeholder outside a quoted label value, and a waitUntil on a metric without its comparison', () => {
    expect(
      onlyProblem(
        runbook('  - id: rate', '    uses: metric', '    with: { query: "up{service={{target}}}", op: ">", threshold: 0 }'),
        7,
        'rate',
      ),
    ).toContain(
      'steps.0.with.query: {{target}} must stand inside a quoted label value, e.g. up{service="{{target}}"}: outside a string it could change the query',
    );
    expect(
      onlyProblem(
        runbook('  - id: wait', '    uses: waitUntil', '    with: { check: metric, query: up, threshold: 1, deadline: 1m }'),
        7,
        'wait',
      ),
    ).toContain('steps.0.with.op: check: metric needs op');
  });

  it('refuse a target depending on a target the config does not have, or on itself', () => {
    const deps: EngineConfigInput['targets'] = { ...probeTargets, api: { ...probeTargets.api!, dependsOn: ['db', 'ghost', 'api'] } };
    expect(
      configWith({ 'r.yaml': incident('r', 'container', '  - id: deps', '    uses: dependencies') }, probes([], { targets: deps })),
    ).toEqual([
      'targets.api.dependsOn[1]: no target named "ghost" (known: api, web, db)',
      'targets.api.dependsOn[2]: a target cannot depend on itself',
    ]);
  });
});
