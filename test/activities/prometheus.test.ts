// The metric step against the stack's real Prometheus, which scrapes the demo container (`up`,
// `demo_up`) and the systemd host's unit: instant queries compared with thresholds, placeholders
// filled in escaped, and the refusals a runbook author should see.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureTypes } from '../../activities/failures.js';
import { compare, createPrometheusActivities } from '../../activities/prometheus.js';
import { escapeForString, queryProblems, renderQuery } from '../../config/promql.js';
import { engineConfig, type EngineConfig } from '../../config/schema.js';
import { failureOf } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';

function config(): EngineConfig {
  const parsed = engineConfig.parse({
    webhook: { token: 'unused-token' },
    prometheus: { url: stack().prometheusUrl, timeout: '5s' },
    targets: {
      demo: { kind: 'container', container: stack().demoContainer, labels: { service: 'demo' } },
      'demo-web': { kind: 'systemd', unit: stack().systemdUnit, host: 'h1', labels: { service: 'demo-web' } },
      // A label value an alert could never set, written to break out of its string if it were pasted in.
      hostile: { kind: 'container', container: 'x', labels: { service: 'x"} or vector(1) or up{job="demo' } },
      quiet: { kind: 'container', container: 'quiet', labels: { service: 'nothing-scrapes-this' } },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
  });
  return { ...parsed, runbookDefinitions: {} };
}

let prometheus: ReturnType<typeof createPrometheusActivities>;
beforeAll(async () => {
  const c = config();
  prometheus = createPrometheusActivities({ url: c.prometheus!.url, timeoutMs: 5_000, targets: c.targets, secrets: [] });
  await untilPromSeesUp('demo');
  await untilPromSeesUp('demo-web');
});
afterAll(() => undefined);

describe('a metric query against the real Prometheus', () => {
  it('fills {{target}} in and compares the one series with the threshold', async () => {
    const r = await prometheus.queryMetric({ query: 'up{service="{{target}}"}', target: 'demo', op: '==', threshold: 1 });
    expect(r).toEqual({ value: 1, holds: true, series: 1, detail: '1 == 1 holds' });
    const below = await prometheus.queryMetric({ query: 'demo_up{job="{{target}}"}', target: 'demo', op: '<', threshold: 0.5 });
    expect(below).toMatchObject({ value: 1, holds: false, series: 1, detail: '1 < 0.5 does not hold' });
  });

  it("fills {{target.labels.NAME}} in from the target's configured labels", async () => {
    const r = await prometheus.queryMetric({
      query: "sum(up{service='{{target.labels.service}}'})",
      target: 'demo-web',
      op: '>=',
      threshold: 1,
    });
    expect(r).toMatchObject({ value: 1, holds: true, series: 1 });
  });

  it('answers null and not holding when the query returns nothing', async () => {
    const r = await prometheus.queryMetric({ query: 'up{service="{{target.labels.service}}"}', target: 'quiet', op: '<', threshold: 1 });
    expect(r).toEqual({ value: null, holds: false, series: 0, detail: 'no series: the query returned nothing (< 1 cannot hold)' });
  });

  it('with several series holds only when every one does, and quotes the one farthest from holding', async () => {
    const all = await prometheus.queryMetric({ query: 'up{job=~"demo|demo-web"}', target: '', op: '>', threshold: 0.5 });
    expect(all).toMatchObject({ value: 1, holds: true, series: 2 });
    expect(all.detail).toMatch(/^1 > 0.5 holds \(\{.*\}, the closest of 2 series\)$/);
    // One series made to fail: 1 - up for demo is 0, for demo-web it is kept at 1.
    const mixed = await prometheus.queryMetric({ query: 'up{job="demo"} - 1 or up{job="demo-web"}', target: '', op: '>=', threshold: 1 });
    expect(mixed).toMatchObject({ value: 0, holds: false, series: 2 });
    expect(mixed.detail).toContain('the worst of 2 series');
  });

  it('compares a scalar, and a fraction as an error rate would be', async () => {
    const r = await prometheus.queryMetric({ query: 'scalar(vector(0.03))', target: '', op: '<', threshold: 0.05 });
    expect(r).toEqual({ value: 0.03, holds: true, series: 1, detail: '0.03 < 0.05 holds' });
  });

  it('escapes a label value so that it stays one string: nothing is added to the query', async () => {
    const query = 'up{service="{{target.labels.service}}"}';
    expect(renderQuery(query, { name: 'hostile', labels: config().targets.hostile!.labels })).toBe(
      'up{service="x\\"} or vector(1) or up{job=\\"demo"}',
    );
    // Pasted in as it is, the value would have made this query return the demo's `up` and a vector(1).
    const r = await prometheus.queryMetric({ query, target: 'hostile', op: '>=', threshold: 0 });
    expect(r).toMatchObject({ value: null, holds: false, series: 0 });
  });

  it('refuses, without retrying, a query Prometheus rejects, a range vector and an unknown label', async () => {
    const bad = await failureOf(prometheus.queryMetric({ query: 'up{', target: '', op: '>', threshold: 0 }));
    expect(bad.type).toBe(failureTypes.badInput);
    expect(bad.nonRetryable).toBe(true);
    expect(bad.message).toMatch(/^metric query refused: Prometheus at http:\/\/127\.0\.0\.1:\d+ rejected the query: /);
    const range = await failureOf(prometheus.queryMetric({ query: 'up[5m]', target: '', op: '>', threshold: 0 }));
    expect(range.message).toContain('the query gives a matrix, not an instant vector or a scalar');
    expect(range.nonRetryable).toBe(true);
    const label = await failureOf(
      prometheus.queryMetric({ query: 'up{x="{{target.labels.team}}"}', target: 'demo', op: '>', threshold: 0 }),
    );
    expect(label.message).toBe(
      "metric query for target 'demo' refused: {{target.labels.team}}: target 'demo' has no label 'team' in the config",
    );
    const outside = await failureOf(prometheus.queryMetric({ query: 'up{service={{target}}}', target: 'demo', op: '>', threshold: 0 }));
    expect(outside.message).toContain('{{target}} must stand inside a quoted label value');
    const ghost = await failureOf(prometheus.queryMetric({ query: 'up{service="{{target}}"}', target: 'ghost', op: '>', threshold: 0 }));
    expect(ghost.type).toBe(failureTypes.targetNotFound);
  });

  it('reports an unreachable Prometheus as retryable', async () => {
    const c = config();
    const down = createPrometheusActivities({
      url: `http://127.0.0.1:${await closedPort()}`,
      timeoutMs: 2_000,
      targets: c.targets,
      secrets: [],
    });
    const f = await failureOf(down.queryMetric({ query: 'up', target: '', op: '>', threshold: 0 }));
    expect(f.type).toBe(failureTypes.transient);
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/connection refused/);
  });
});

describe('PromQL placeholders (pure)', () => {
  it('may stand only inside a quoted label value', () => {
    expect(queryProblems('rate(http_requests_total{service="{{target}}",code=~"5.."}[5m])')).toEqual([]);
    expect(queryProblems("up{service='{{ target }}'}")).toEqual([]);
    expect(queryProblems('up{service="x"} # {{target}} in a comment is text')).toEqual([]);
    expect(queryProblems('up{service={{target}}}')).toEqual([expect.stringContaining('must stand inside a quoted label value')]);
    expect(queryProblems('up{service=`{{target}}`}')).toEqual([expect.stringContaining('cannot stand in a `raw` string')]);
    expect(queryProblems('up{service="{{alert.labels.service}}"}')).toEqual([
      expect.stringContaining('unknown placeholder {{alert.labels.service}}'),
    ]);
    expect(queryProblems('up{service="{{target}}')).toEqual(['a " string is not closed']);
  });

  it('escapes backslashes, quotes and control characters for the string they stand in', () => {
    expect(escapeForString('a\\b"c\'d\ne\u0001', '"')).toBe('a\\\\b\\"c\'d\\ne\\x01');
    expect(escapeForString('it\'s "x"', "'")).toBe('it\\\'s "x"');
  });

  it('picks the value farthest from holding among several series', () => {
    const s = (value: number) => ({ labels: {}, value });
    expect(compare([s(0.01), s(0.2), s(0.03)], '<', 0.05)).toMatchObject({ value: 0.2, holds: false, series: 3 });
    expect(compare([s(3), s(1), s(2)], '>=', 2)).toMatchObject({ value: 1, holds: false });
    expect(compare([s(NaN)], '<', 1)).toMatchObject({ value: null, holds: false, detail: 'NaN < 1 does not hold' });
    expect(compare([s(1), s(2)], '!=', 2)).toMatchObject({ value: 2, holds: false });
  });
});
