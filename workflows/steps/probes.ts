// Looking before touching: a metric compared with a threshold, the health of what a target depends
// on, and the host it runs on. Each is a finding for the runbook to judge, never an action.
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { Diagnostics, HostDiagnostics, MetricRequest, MetricResult } from '../../activities/contract.js';
import type { TargetRef } from '../messages.js';
import { targetActivities, type EngineSteps } from './activities.js';
import { cap, describeFailure, type Incident } from './incident.js';
import { checkOnce } from './verify.js';

/** The metric request of a step: the target is sent only when the query's placeholders need it. */
export function metricRequest(p: { query: string; op: MetricRequest['op']; threshold: number }, target: () => TargetRef): MetricRequest {
  return { query: p.query, op: p.op, threshold: p.threshold, target: p.query.includes('{{') ? target().name : '' };
}

/**
 * One poll of a waitUntil on a metric: a query Prometheus could not answer (after its retries) is
 * "not holding" and the poll goes on; a query it refuses, or a bad request, fails the step.
 */
export async function pollMetric(engine: EngineSteps, req: MetricRequest): Promise<MetricResult> {
  try {
    return await engine.queryMetric(req);
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : err;
    if (cause instanceof ApplicationFailure && cause.nonRetryable) throw err;
    return { value: null, holds: false, series: 0, detail: `the query could not run: ${describeFailure(err)}` };
  }
}

export interface DependencyReport {
  ok: boolean;
  failed: string[];
  detail: string;
}

/**
 * Every dependency of the target checked at once, each by its own verification on its own queue (a
 * unit's on its host agent's). A check that cannot run counts as down, with the reason.
 */
export async function checkDependencies(incident: Incident, target: TargetRef, planned: TargetRef[]): Promise<DependencyReport> {
  const names = target.dependsOn ?? [];
  if (names.length === 0) return { ok: true, failed: [], detail: `'${target.name}' has no dependsOn in the config: nothing to check` };
  const results = await Promise.all(
    names.map(async (name) => {
      const ref = planned.find((t) => t.name === name);
      if (!ref) return { name, healthy: false, detail: 'not planned for this run' };
      return { name, ...(await checkOnce(targetActivities(ref.queue), name)) };
    }),
  );
  const failed = results.filter((r) => !r.healthy).map((r) => r.name);
  const detail = cap(results.map((r) => `${r.name} ${r.healthy ? 'ok' : 'DOWN'}: ${r.detail}`).join('; '), 1_000);
  incident.record(
    failed.length === 0 ? 'dependencies healthy' : 'dependencies down',
    failed.length === 0 ? detail : `${failed.join(', ')}: ${detail}`,
  );
  return { ok: failed.length === 0, failed, detail };
}

/** Host figures join the run's diagnosis (what later pages carry), after what `diagnose` found. */
export function withHostDiagnostics(previous: Diagnostics | undefined, host: HostDiagnostics): Diagnostics {
  const tagged = host.sections.map((s) => ({ ...s, title: `host ${s.title}` }));
  // The activity's summary is one "ok: disk: …" line per section, in order.
  const summary = host.summary
    .split('\n')
    .map((line) => line.replace(/^(ok|FAILED): /, '$1: host '))
    .join('\n');
  if (!previous || previous.target !== host.target) return { target: host.target, sections: tagged, summary };
  const kept = previous.sections.filter((s) => !s.title.startsWith('host '));
  const keptSummary = previous.summary
    .split('\n')
    .filter((l) => !/^(ok|FAILED): host /.test(l))
    .join('\n');
  return {
    target: host.target,
    sections: [...kept, ...tagged].slice(0, 20),
    summary: cap([keptSummary, summary].filter(Boolean).join('\n'), 2_000),
  };
}
