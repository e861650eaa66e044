// A runbook's `metric` step (and `waitUntil` with `check: metric`): one instant query against the
// configured Prometheus, compared with a threshold. "Recovered" can then mean what the alert meant
// (the error rate is back under 5 %), not merely that /health answers.
//
// The query is the runbook file's literal text; its `{{target}}` placeholders are filled in here,
// with the target's configured name or labels escaped for the string literal they stand in
// (config/promql.ts). Refused connections, timeouts and 5xx are retryable; Prometheus refusing the
// query (400, 422) is an answer no retry changes.
import type { EngineConfig } from '../config/schema.js';
import { maxQueryLength, renderQuery } from '../config/promql.js';
import { redact, type Secret } from '../config/secret.js';
import type { MetricRequest, MetricResult } from './contract.js';
import { badInput, targetNotFound, transient } from './failures.js';
import { readStart, unreachable } from './http.js';
import { activitySignal } from './limits.js';

export interface PrometheusDeps {
  /** Base URL such as http://127.0.0.1:9090 (a path prefix is kept; user:password becomes basic auth). */
  url: string;
  timeoutMs: number;
  targets: EngineConfig['targets'];
  secrets: Secret[];
}

const ops = {
  '<': (a: number, b: number) => a < b,
  '<=': (a: number, b: number) => a <= b,
  '>': (a: number, b: number) => a > b,
  '>=': (a: number, b: number) => a >= b,
  '==': (a: number, b: number) => a === b,
  '!=': (a: number, b: number) => a !== b,
} as const;

/** An answer larger than this is a query that forgot to aggregate: it is refused, not read. */
const maxAnswerBytes = 4 * 1_048_576;

interface Sample {
  labels: Record<string, string>;
  value: number;
}

export function createPrometheusActivities(deps: PrometheusDeps): { queryMetric(req: MetricRequest): Promise<MetricResult> } {
  const base = new URL(deps.url);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
    'user-agent': 'remediation-engine',
  };
  if (base.username || base.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`;
    base.username = '';
    base.password = '';
  }
  const endpoint = new URL(`${base.pathname.replace(/\/+$/, '')}/api/v1/query`, base.origin);
  const where = `Prometheus at ${base.origin}`;

  async function ask(what: string, query: string): Promise<{ resultType: string; result: unknown }> {
    const cancelled = activitySignal();
    const timeout = AbortSignal.timeout(deps.timeoutMs);
    const signal = cancelled ? AbortSignal.any([timeout, cancelled]) : timeout;
    let res: Response;
    let read: { text: string; cut: boolean };
    try {
      // POST: a long query stays out of URLs and access logs. `timeout` bounds the evaluation too.
      const body = new URLSearchParams({ query, timeout: `${Math.max(1, Math.floor(deps.timeoutMs / 1_000))}s` });
      res = await fetch(endpoint, { method: 'POST', headers, body, redirect: 'manual', signal });
      read = await readStart(res, maxAnswerBytes);
    } catch (err) {
      if (cancelled?.aborted) throw cancelled.reason ?? err;
      throw transient(what, `${where}: ${unreachable(err, deps.timeoutMs)}`);
    }
    if (read.cut)
      throw badInput(
        what,
        `the answer is larger than ${maxAnswerBytes} bytes: aggregate the query (sum, max, topk) so it returns a few series`,
      );
    let doc: { status?: string; error?: string; errorType?: string; data?: { resultType: string; result: unknown } };
    try {
      doc = JSON.parse(read.text);
    } catch {
      doc = {};
    }
    const says = redact(
      String(doc.error ?? read.text.slice(0, 200))
        .split('\n')[0]!
        .slice(0, 300),
      deps.secrets,
    );
    if (res.status === 401 || res.status === 403) throw badInput(what, `${where} refused access (HTTP ${res.status})`);
    if (res.status === 400 || res.status === 422) throw badInput(what, `${where} rejected the query: ${says}`);
    if (res.status >= 500 || res.status === 429) throw transient(what, `${where} answered HTTP ${res.status}: ${says}`);
    if (res.status !== 200 || doc.status !== 'success' || !doc.data)
      throw transient(what, `${where} answered HTTP ${res.status} without a result: ${says}`);
    return doc.data;
  }

  async function queryMetric(req: MetricRequest): Promise<MetricResult> {
    const what = `metric query${req?.target ? ` for target '${String(req.target)}'` : ''}`;
    if (typeof req?.query !== 'string' || req.query.length === 0 || req.query.length > maxQueryLength)
      throw badInput(what, `the query must be 1 to ${maxQueryLength} characters`);
    if (!Object.hasOwn(ops, req.op)) throw badInput(what, `op must be one of ${Object.keys(ops).join(' ')}`);
    if (typeof req.threshold !== 'number' || !Number.isFinite(req.threshold)) throw badInput(what, 'threshold must be a finite number');
    // Sent only when the query's placeholders need it.
    const target = req.target && Object.hasOwn(deps.targets, req.target) ? deps.targets[req.target] : undefined;
    if (req.target && !target) throw targetNotFound(what, 'no such target in the config');
    let query: string;
    try {
      query = renderQuery(req.query, target ? { name: req.target, labels: target.labels } : undefined);
    } catch (err) {
      throw badInput(what, (err as Error).message);
    }
    const data = await ask(what, query);
    const samples = samplesOf(what, data);
    return compare(samples, req.op, req.threshold);
  }

  return { queryMetric };
}

function samplesOf(what: string, data: { resultType: string; result: unknown }): Sample[] {
  const number = (v: unknown) => (typeof v === 'string' ? Number(v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : v) : NaN);
  switch (data.resultType) {
    case 'scalar': {
      const [, v] = data.result as [number, string];
      return [{ labels: {}, value: number(v) }];
    }
    case 'vector':
      return (data.result as Array<{ metric: Record<string, string>; value?: [number, string]; histogram?: unknown }>)
        .filter((s) => s.value !== undefined)
        .map((s) => ({ labels: s.metric ?? {}, value: number(s.value![1]) }));
    default:
      throw badInput(
        what,
        `the query gives a ${data.resultType}, not an instant vector or a scalar: drop the range selector ([5m]) or wrap it in rate()`,
      );
  }
}

/**
 * `holds` when there is at least one series and every one holds. `value` is the one series', or of
 * several the one farthest from holding (the largest for < and <=, the smallest for > and >=, the
 * first that fails for == and !=), so a message quotes the number that matters.
 */
export function compare(samples: Sample[], op: MetricRequest['op'], threshold: number): MetricResult {
  if (samples.length === 0)
    return { value: null, holds: false, series: 0, detail: `no series: the query returned nothing (${op} ${threshold} cannot hold)` };
  const test = ops[op];
  const holding = (v: number) => !Number.isNaN(v) && test(v, threshold);
  let pick: Sample;
  if (op === '<' || op === '<=') pick = samples.reduce((a, b) => (Number.isNaN(b.value) || b.value > a.value ? b : a));
  else if (op === '>' || op === '>=') pick = samples.reduce((a, b) => (Number.isNaN(b.value) || b.value < a.value ? b : a));
  else pick = samples.find((s) => !holding(s.value)) ?? samples[0]!;
  const holds = samples.every((s) => holding(s.value));
  const finite = Number.isFinite(pick.value);
  const shown = finite ? String(Number(pick.value.toPrecision(12))) : String(pick.value);
  const labels = Object.entries(pick.labels)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');
  const series =
    samples.length === 1 ? '' : ` (${labels ? `{${labels}}, ` : ''}the ${holds ? 'closest' : 'worst'} of ${samples.length} series)`;
  return {
    value: finite ? pick.value : null,
    holds,
    series: samples.length,
    detail: `${shown} ${op} ${threshold} ${holds ? 'holds' : 'does not hold'}${series}`.slice(0, 500),
  };
}
