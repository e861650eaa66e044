import { describe, expect, it } from 'vitest';
import {
  evaluateCondition,
  evaluateValue,
  expressionProblem,
  maxExpressionLength,
  renderTemplate,
  templateExpressions,
  type ExpressionContext,
} from '../../config/expressions.js';

/** What a run of serviceDown sees after three failed restarts and an approval. */
function context(overrides: Partial<ExpressionContext> = {}): ExpressionContext {
  return {
    alert: { name: 'ServiceDown', severity: 'critical', labels: { service: 'api', severity: 'critical' }, summary: '', fingerprint: 'f1' },
    target: { name: 'api', kind: 'container', hasAction: false, labels: { service: 'api' } },
    steps: {
      verify: { status: 'ok', healthy: false, detail: 'http failed: connection refused' },
      restart: { status: 'ok', recovered: false, attempts: 3, detail: 'not healthy after 3 restarts' },
      approve_restart: { status: 'ok', decision: 'approved', by: 'alice', reason: '' },
      diagnose: { status: 'failed', error: 'diagnoseTarget failed: timeout' },
      skipped: { status: 'skipped' },
    },
    incident: {
      workflowId: 'incident:serviceDown:api',
      runbook: 'serviceDown',
      dryRun: false,
      targets: ['pg-1', 'my-1'],
      schedule: 'weekly',
    },
    item: {},
    check: {},
    ...overrides,
  };
}

describe('conditions', () => {
  it('read step outputs, statuses, the target and the alert', () => {
    const ctx = context();
    expect(evaluateCondition('steps.verify.healthy', ctx)).toBe(false);
    expect(evaluateCondition('!steps.restart.recovered', ctx)).toBe(true);
    expect(evaluateCondition("steps.approve_restart.decision == 'approved'", ctx)).toBe(true);
    expect(evaluateCondition("steps.diagnose.status == 'failed' && steps.diagnose.error.contains('timeout')", ctx)).toBe(true);
    expect(evaluateCondition("steps.skipped.status == 'skipped'", ctx)).toBe(true);
    expect(evaluateCondition("target.kind == 'container' && !target.hasAction", ctx)).toBe(true);
    expect(evaluateCondition('alert.labels.service == target.name', ctx)).toBe(true);
    expect(evaluateCondition("'severity' in alert.labels && !('team' in alert.labels)", ctx)).toBe(true);
  });

  it('compare integer outputs of steps as an SRE writes them', () => {
    const ctx = context();
    expect(evaluateCondition('steps.restart.attempts > 2', ctx)).toBe(true);
    expect(evaluateCondition('steps.restart.attempts == 3', ctx)).toBe(true);
    expect(evaluateCondition('steps.restart.attempts + 1 == 4', ctx)).toBe(true);
    expect(evaluateCondition('size(incident.targets) == 2', ctx)).toBe(true);
  });

  it('read the latest check inside waitUntil', () => {
    const ctx = context({ check: { healthy: true, detail: '200 OK' } });
    expect(evaluateCondition('check.healthy', ctx)).toBe(true);
    expect(evaluateCondition("check.detail.startsWith('200')", ctx)).toBe(true);
  });

  it('refuse a value that is not a bool when evaluated, naming the expression', () => {
    expect(() => evaluateCondition('steps.verify.detail', context())).toThrow('condition "steps.verify.detail" gave a string, not a bool');
    expect(() => evaluateCondition('steps.restart.attempts', context())).toThrow(
      'condition "steps.restart.attempts" gave the int 3, not a bool',
    );
  });

  it('fail on a missing key with an error naming the expression and the key', () => {
    expect(() => evaluateCondition('steps.rollback.healthy', context())).toThrow(
      /^expression "steps\.rollback\.healthy" failed: .*rollback/,
    );
    expect(() => evaluateCondition("alert.labels.team == 'db'", context())).toThrow(
      /^expression "alert\.labels\.team == 'db'" failed: .*team/,
    );
  });
});

describe('values and templates', () => {
  it('compute ints from step outputs and hand them back as plain numbers', () => {
    const ctx = context();
    expect(evaluateValue('steps.restart.attempts + 1', ctx)).toBe(4);
    expect(evaluateValue('steps.restart.attempts * 2 - 1', ctx)).toBe(5);
    expect(evaluateValue('size(incident.targets)', ctx)).toBe(2);
    expect(evaluateValue('[steps.restart.attempts, 1]', ctx)).toEqual([3, 1]);
    expect(evaluateValue('{"n": steps.restart.attempts}', ctx)).toEqual({ n: 3 });
  });

  it('render every ${{ }} part with its value as text', () => {
    const ctx = context();
    expect(renderTemplate("restart ${{ steps.restart.attempts + 1 }} of '${{ target.name }}'", ctx)).toBe("restart 4 of 'api'");
    expect(renderTemplate("${{ incident.targets.join(', ') }}${{ incident.dryRun ? ' (dry-run)' : '' }}", ctx)).toBe('pg-1, my-1');
    expect(
      renderTemplate(
        "restart rejected by ${{ steps.approve_restart.by }}${{ steps.approve_restart.reason != '' ? ': ' + steps.approve_restart.reason : '' }}",
        ctx,
      ),
    ).toBe('restart rejected by alice');
    expect(renderTemplate('${{ steps.verify.healthy }} / ${{ steps.restart }}', ctx)).toBe(
      'false / {"status":"ok","recovered":false,"attempts":3,"detail":"not healthy after 3 restarts"}',
    );
    expect(renderTemplate("levels: ${{ string(steps.restart.attempts) + ' level(s)' }}", ctx)).toBe('levels: 3 level(s)');
  });

  it('leave text without templates as it is, and split templates into their expressions', () => {
    expect(renderTemplate('plain text, $ and {{ braces }}', context())).toBe('plain text, $ and {{ braces }}');
    expect(templateExpressions('a ${{ x }} b ${{y.z}} ${{\n  steps.a\n}}')).toEqual(['x', 'y.z', 'steps.a']);
  });

  it('fail a template whose expression reads a missing key, naming the expression', () => {
    expect(() => renderTemplate('detail: ${{ steps.escalate.end }}', context())).toThrow(
      /^expression "steps\.escalate\.end" failed: .*escalate/,
    );
  });

  it('json() quotes and escapes a value for a request body: a hostile label stays one string', () => {
    const hostile = 'api", "admin": true, "x": "';
    const ctx = context({ alert: { name: 'ServiceDown', labels: { service: hostile }, count: 3 } });
    const body = renderTemplate(
      '{"service": ${{ json(alert.labels.service) }}, "n": ${{ json(alert.count) }}, "all": ${{ json(alert.labels) }}}',
      ctx,
    );
    expect(JSON.parse(body)).toEqual({ service: hostile, n: 3, all: { service: hostile } });
    expect(evaluateValue('json(1 + 2)', ctx)).toBe('3');
  });
});

describe('checks at load time', () => {
  it('accept what the shipped runbooks write', () => {
    for (const [text, as] of [
      ['steps.suppression_check.suppressed', 'condition'],
      ["(target.hasAction ? steps.approve_action : steps.approve_restart).decision == 'rejected'", 'condition'],
      [
        "steps.escalate.end == 'acknowledged' ? 'acknowledged by ' + steps.escalate.acknowledgedBy : 'nobody acknowledged after ' + string(steps.escalate.levels) + ' level(s)'",
        'value',
      ],
      ['steps.restart.attempts + 1', 'value'],
      // Step outputs are maps of unknown type: a condition over them is checked when it runs.
      ['steps.post_check.healthy', 'condition'],
    ] as const) {
      expect(expressionProblem(text, as), text).toBeUndefined();
    }
  });

  it('refuse an expression that does not parse', () => {
    expect(expressionProblem('steps.verify.healthy ==', 'condition')).toMatch(/Unexpected token/);
    expect(expressionProblem('steps.(', 'value')).toMatch(/Expected IDENTIFIER/);
    expect(expressionProblem("'unterminated", 'value')).toBeDefined();
  });

  it('refuse a variable that is not one of alert, target, steps, incident, item, check', () => {
    expect(expressionProblem("alerts.name == 'x'", 'condition')).toMatch(/Unknown variable: alerts/);
    expect(expressionProblem('env.HOME', 'value')).toMatch(/Unknown variable: env/);
  });

  it('refuse a condition whose type is known not to be a bool', () => {
    expect(expressionProblem('1 + 2', 'condition')).toBe('a condition must be a bool, this is a int');
    expect(expressionProblem("'yes'", 'condition')).toBe('a condition must be a bool, this is a string');
    expect(expressionProblem('size(incident.targets)', 'condition')).toBe('a condition must be a bool, this is a int');
    // The same expressions are fine as values.
    expect(expressionProblem('1 + 2', 'value')).toBeUndefined();
  });

  it('refuse expressions past the size limits before they cost anything', () => {
    const huge = `steps.restart.attempts == 1${' || steps.restart.attempts == 1'.repeat(40)}`;
    expect(huge.length).toBeGreaterThan(maxExpressionLength);
    expect(expressionProblem(huge, 'condition')).toBe(`expression longer than ${maxExpressionLength} characters`);
    expect(() => evaluateCondition(huge, context())).toThrow(`expression longer than ${maxExpressionLength} characters`);
    // Short enough, but too many nodes, too deep, too many list elements.
    expect(expressionProblem(`1${'+1'.repeat(420)}`, 'value')).toMatch(/maxAstNodes/);
    expect(expressionProblem(`${'('.repeat(30)}1${')'.repeat(30)}`, 'value')).toMatch(/maxDepth/);
    expect(expressionProblem(`[${Array.from({ length: 150 }, (_, i) => i).join(',')}]`, 'value')).toMatch(/maxListElements/);
  });
});
