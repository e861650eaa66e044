import { describe, expect, it } from 'vitest';
import { buildReport, percentile, type ClosedIncident } from '../../triggers/report.js';
import type { Outcome } from '../../workflows/messages.js';

const t0 = new Date('2025-01-05T02:00:00Z');
function incident(target: string, outcome: Outcome, minutes: number, actors: string[] = ['engine']): ClosedIncident {
  return {
    workflowId: `incident:serviceDown:${target}:${Math.random()}`,
    runbook: 'serviceDown',
    target,
    outcome,
    startedAt: t0,
    endedAt: new Date(t0.getTime() + minutes * 60_000),
    timeline: actors.map((actor) => ({ at: t0.toISOString(), step: 's', event: 'e', actor })),
  };
}
const window = { since: new Date('2025-01-01T00:00:00Z'), until: new Date('2025-01-08T00:00:00Z'), operators: ['alice', 'bob'] };

describe('incident report', () => {
  it('counts incidents by outcome, overall and per target', () => {
    const r = buildReport(
      [incident('api', 'recovered', 2), incident('api', 'escalated', 30), incident('db', 'recovered', 4), incident('db', 'false-alarm', 0)],
      window,
    );
    expect(r.incidents).toBe(4);
    expect(r.byOutcome).toEqual({ recovered: 2, escalated: 1, 'false-alarm': 1 });
    expect(r.perTarget.map((p) => [p.target, p.incidents, p.byOutcome])).toEqual([
      ['api', 2, { recovered: 1, escalated: 1 }],
      ['db', 2, { recovered: 1, 'false-alarm': 1 }],
    ]);
  });

  it('counts a recovery an operator approved as recovered but not automatic', () => {
    const r = buildReport([incident('api', 'recovered', 2), incident('api', 'recovered', 10, ['engine', 'alice'])], window);
    expect(r.recovered).toBe(2);
    expect(r.recoveredAutomatically).toBe(1);
    expect(r.automaticRecoveryRate).toBe(0.5);
  });

  it('leaves false alarms and suppressed alerts out of the automatic recovery rate', () => {
    const r = buildReport(
      [incident('api', 'recovered', 1), incident('api', 'false-alarm', 0), incident('api', 'suppressed', 0), incident('api', 'escalated', 60)],
      window,
    );
    expect(r.automaticRecoveryRate).toBe(0.5);
    expect(buildReport([incident('api', 'false-alarm', 0)], window).automaticRecoveryRate).toBeNull();
  });

  it('measures mean and p95 time to recover over recovered incidents only', () => {
    const minutes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100];
    const r = buildReport([...minutes.map((m) => incident('api', 'recovered', m)), incident('api', 'escalated', 500)], window);
    expect(r.timeToRecover).toEqual({ count: 20, meanMs: (minutes.reduce((a, b) => a + b) / 20) * 60_000, p95Ms: 19 * 60_000 });
    expect(buildReport([incident('api', 'escalated', 5)], window).timeToRecover).toBeNull();
  });

  it('takes the nearest-rank percentile, a value that actually occurred', () => {
    expect(percentile([5], 0.95)).toBe(5);
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([4, 1, 3, 2], 0.95)).toBe(4);
  });

  it('reports an empty period without dividing by zero', () => {
    const r = buildReport([], window);
    expect(r).toMatchObject({ incidents: 0, recovered: 0, automaticRecoveryRate: null, timeToRecover: null, perTarget: [] });
    expect(r.since).toBe('2025-01-01T00:00:00.000Z');
  });
});
