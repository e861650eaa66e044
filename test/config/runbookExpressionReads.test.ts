// What conditions and templates read is checked at load: a step output that does not exist, a
// status compared with what it never is, and the alert steering what a write acts on.
import { describe, expect, it } from 'vitest';
import { expressionReads } from '../../config/expressionReads.js';
import { onlyProblem, problemsOf, runbook } from './support/runbookText.js';

const verify = ['  - id: verify', '    uses: verify'];
const call = ['  - id: call', '    uses: http', '    with: { url: "http://127.0.0.1:18080/health" }'];

describe('a step output that the step does not give is refused at load', () => {
  it('in a condition, naming the field and the fields that exist', () => {
    const p = onlyProblem(
      runbook(...verify, '  - id: done', '    when: steps.verify.helthy', '    uses: end', '    with: { outcome: recovered }'),
      8,
      'done',
    );
    expect(p).toBe(
      'bad.yaml:8: step "done": steps.1.when: reads steps.verify.helthy, which a verify step does not give (it gives status, error, healthy, detail)',
    );
  });

  it('in a template, and in an assert or waitUntil condition', () => {
    const detail = runbook(
      '  - id: restart',
      '    uses: restart',
      '  - id: done',
      '    uses: end',
      '    with: { outcome: recovered, detail: "back after ${{ steps.restart.attempt }} attempts" }',
    );
    expect(onlyProblem(detail, 9, 'done')).toContain(
      'steps.1.with.detail: reads steps.restart.attempt, which a restart step does not give (it gives status, error, recovered, attempts, detail)',
    );
    const assert = runbook(...verify, '  - id: check', '    uses: assert', '    with: { that: "steps.verify.ok", message: m }');
    expect(onlyProblem(assert, 9, 'check')).toContain('steps.1.with.that: reads steps.verify.ok, which a verify step does not give');
    const until = runbook(
      ...verify,
      '  - id: wait',
      '    uses: waitUntil',
      '    with: { until: "check.healthy || steps.verify.heathy", deadline: 1m }',
    );
    expect(onlyProblem(until, 9, 'wait')).toContain('steps.1.with.until: reads steps.verify.heathy');
  });

  it('through an id with "-", written either way, and inside has() (which is false on every run for it)', () => {
    const text = runbook(
      '  - id: post-check',
      '    uses: verify',
      '  - id: a',
      '    when: "steps[\'post-check\'].helthy"',
      '    uses: verify',
      '  - id: b',
      '    when: has(steps.post_check.helthy)',
      '    uses: verify',
    );
    expect(problemsOf(text)).toEqual([
      expect.stringContaining('bad.yaml:8: step "a": steps.1.when: reads steps.post-check.helthy, which a verify step'),
      expect.stringContaining('bad.yaml:11: step "b": steps.2.when: reads steps.post_check.helthy, which a verify step'),
    ]);
  });

  it("of a group: a parallel group gives failed, a forEach done, and neither the other's", () => {
    const text = runbook(
      '  - id: gather',
      '    parallel:',
      '      - id: logs',
      '        uses: logs',
      '  - id: each',
      '    forEach: targets',
      '    steps:',
      '      - id: look',
      '        uses: diagnose',
      '  - id: tell',
      '    uses: notify',
      '    with:',
      '      key: k',
      '      title: "${{ steps.gather.failed }} ${{ steps.each.done }} ${{ steps.logs.matched }} ${{ steps.look.summary }}"',
      '      text: "${{ steps.gather.done }}"',
    );
    expect(problemsOf(text)).toEqual([
      'bad.yaml:19: step "tell": steps.2.with.text: reads steps.gather.done, which a parallel group does not give (it gives status, error, failed)',
    ]);
  });

  it("for a status compared with what it never is: an old http step's `status == 200`", () => {
    const p = onlyProblem(runbook(...call, '  - id: ok', '    when: steps.call.status == 200', '    uses: verify'), 9, 'ok');
    expect(p).toContain(
      "steps.1.when: compares steps.call.status with 200, which it never is: a step's status is 'ok', 'failed', 'skipped' (the HTTP status is steps.call.code)",
    );
    expect(
      onlyProblem(runbook(...verify, '  - id: x', "    when: steps.verify.status in ['ok', 'done']", '    uses: verify'), 8, 'x'),
    ).toContain("compares steps.verify.status with 'done', which it never is");
  });
});

describe('what is read correctly, or cannot be known before the run, loads', () => {
  it('every output, status and error, compared as they are', () => {
    const text = runbook(
      ...call,
      ...verify,
      '  - id: done',
      "    when: steps.call.code == 200 && steps.call.ok && steps.call.status == 'ok' && steps.verify.status != 'skipped'",
      '    uses: end',
      '    with: { outcome: recovered, detail: "${{ has(steps.verify.error) ? steps.verify.error : steps.verify.detail }}" }',
    );
    expect(problemsOf(text)).toEqual([]);
  });

  it('an index, `in`, a method, a comprehension variable and a string are not field reads', () => {
    const text = runbook(
      ...verify,
      '  - id: look',
      '    uses: diagnose',
      '  - id: x',
      "    when: steps.verify['helthy'] == true || 'helthy' in steps.verify || steps.verify.size() > 9",
      '    uses: verify',
      '  - id: y',
      "    when: \"steps.look.sections.exists(s, s == 'logs') && [{'a': 1}].exists(steps, steps.a == 1) && 'steps.verify.helthy' != ''\"",
      '    uses: verify',
    );
    expect(problemsOf(text)).toEqual([]);
  });

  it('what a reference in a literal parameter says is not read (it is never evaluated)', () => {
    const text = runbook(...verify, '  - id: tell', '    uses: notify', '    with: { key: k, title: "see steps.nothing.here" }');
    expect(problemsOf(text)).toEqual([]);
  });
});

describe('alert labels choose nothing: what picks the object of a write never reads the alert', () => {
  it("refuses expireSilence's silenceId from the alert, however it is written", () => {
    const expire = (silenceId: string) =>
      runbook(
        '  - id: mute',
        '    uses: silence',
        '    with: { duration: 1h }',
        '  - id: unmute',
        '    uses: expireSilence',
        `    with: { silenceId: "${silenceId}" }`,
      );
    expect(onlyProblem(expire('${{ alert.labels.x }}'), 10, 'unmute')).toBe(
      'bad.yaml:10: step "unmute": steps.1.with.silenceId: expression "alert.labels.x" reads something other than steps.<step>.silenceId: silenceId picks what expireSilence acts on, and only what this run made may pick it (alert labels, and text that may carry them, choose nothing)',
    );
    expect(onlyProblem(expire("${{ steps.mute.status == 'ok' ? steps.mute.silenceId : alert.labels['x'] }}"), 10, 'unmute')).toContain(
      'reads something other than steps.<step>.silenceId',
    );
    // Alert text carried through the run's own state: an assert's message, an end's detail.
    for (const carried of ['${{ steps.mute.error }}', '${{ incident.outcomeDetail }}', "${{ string(target.labels['x']) }}"])
      expect(onlyProblem(expire(carried), 10, 'unmute'), carried).toContain('reads something other than steps.<step>.silenceId');
    expect(problemsOf(expire('${{ steps.mute.silenceId }}'))).toEqual([]);
    expect(problemsOf(expire("${{ steps.mute.status == 'ok' ? steps.mute.silenceId : '' }}"))).toEqual([]);
  });

  it('lets texts read the alert: a comment, a page, an http body', () => {
    const text = runbook(
      '  - id: mute',
      '    uses: silence',
      '    with: { duration: 1h, comment: "for ${{ alert.labels.service }}" }',
      '  - id: tell',
      '    uses: notify',
      '    with: { key: k, title: "${{ alert.name }}", severity: "${{ alert.labels.severity }}" }',
      '  - id: post',
      '    uses: http',
      `    with: { method: POST, url: "http://127.0.0.1:18080/hook", body: '{"summary": \${{ json(alert.summary) }}}' }`,
    );
    expect(problemsOf(text)).toEqual([]);
  });

  it('refuses alert text in an http body unless json(…) quotes it: a label could shape the request around it', () => {
    const text = runbook(
      '  - id: post',
      '    uses: http',
      `    with: { method: POST, url: "http://127.0.0.1:18080/hook", body: '{"summary": "\${{ alert.summary }}"}' }`,
    );
    expect(problemsOf(text).join('\n')).toMatch(
      /steps\.0\.with\.body: expression "alert\.summary" puts text that may carry the alert's .* into a request body as it is: .* write json\(alert\.summary\)/,
    );
    // The same text carried through the run's state: an assert's message, an end's detail.
    const carried = runbook(
      '  - id: carry',
      '    uses: assert',
      `    with: { that: "false", message: "\${{ alert.labels.x }}" }`,
      '    onFailure: continue',
      '  - id: post',
      '    uses: http',
      `    with: { method: POST, url: "http://127.0.0.1:18080/hook", body: '{"why": "\${{ steps.carry.error }}"}' }`,
    );
    expect(problemsOf(carried).join('\n')).toMatch(
      /steps\.1\.with\.body: expression "steps\.carry\.error" puts text that may carry the alert's/,
    );
  });
});

describe('expressionReads', () => {
  it('finds step fields, whole steps, status comparisons and the alert in the syntax tree', () => {
    expect(expressionReads("steps.a.b.c && has(steps['x-y'].z) && 'k' in steps.m && steps.s.status != 'ok'")).toEqual({
      steps: [
        { step: 'a', field: 'b', comparedWith: [] },
        { step: 'x-y', field: 'z', comparedWith: [] },
        { step: 'm', comparedWith: [] },
        { step: 's', field: 'status', comparedWith: ['ok'] },
      ],
      alert: false,
      alertUnquoted: false,
      untrustedUnquoted: false,
      variables: [],
    });
    expect(expressionReads('cel.bind(alert, steps.q.r, alert.x)')).toEqual({
      steps: [{ step: 'q', field: 'r', comparedWith: [] }],
      alert: false,
      alertUnquoted: false,
      untrustedUnquoted: false,
      variables: [],
    });
    // The run's variables read, and text that may carry the alert's outside json(…).
    expect(expressionReads('target.name + incident.outcomeDetail')).toMatchObject({
      variables: ['target', 'incident'],
      untrustedUnquoted: true,
    });
    expect(expressionReads('json(steps.a.error) + json(incident.outcomeDetail)')).toMatchObject({ untrustedUnquoted: false });
    expect(expressionReads('steps.a.error')).toMatchObject({ untrustedUnquoted: true, alert: false });
    expect(expressionReads('cel.bind(x, alert.labels, x.y)')!.alert).toBe(true);
    // Inside json(…) the alert is read quoted; anywhere else, as it is.
    expect(expressionReads('json(alert.labels.service)')).toMatchObject({ alert: true, alertUnquoted: false });
    expect(expressionReads("json(alert.name) + alert.labels['x']")).toMatchObject({ alert: true, alertUnquoted: true });
    expect(expressionReads('steps.(')).toBeUndefined();
  });
});
