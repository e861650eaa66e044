import { describe, expect, it } from 'vitest';
import { buildReport, percentile, type ClosedIncident } from '../../triggers/reports/report.js';
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
      [
        incident('api', 'recovered', 1),
        incident('api', 'false-alarm', 0),
        incident('api', 'suppressed', 0),
        incident('api', 'escalated', 60),
      ],
      window,
    );
    expect(r.automaticRecoveryRate).toBe(0.5);
    expect(buildReport([incident('api', 'false-alarm', 0)], window).automaticRecoveryRate).toBeNull();
  });

  it('measures mean and p95 time to recover over recovered incidents only', () => {
    const minutes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100];
    const r = buildReport([...minutes.map((m) => incident('api', 'recovered', m)), incident('api', 'escalated', 500)], window);
    expect(r.timeToRecover).toEqual({
      count: 20,
      meanMs: (minutes.reduce((a, b) => a + b) / 20) * 60_000,
      p50Ms: 10 * 60_000,
      p95Ms: 19 * 60_000,
      fromAlert: 0,
    });
    expect(buildReport([incident('api', 'escalated', 5)], window).timeToRecover).toBeNull();
  });

  it("counts time to recover from the alert's startsAt, not from when the run started", () => {
    // The outage began 6 s before the alert reached the engine; the run itself took 0.8 s.
    const i = { ...incident('api', 'recovered', 0), alertStartsAt: new Date(t0.getTime() - 6_000), endedAt: new Date(t0.getTime() + 800) };
    expect(buildReport([i], window).timeToRecover).toMatchObject({ count: 1, meanMs: 6_800, p50Ms: 6_800, fromAlert: 1 });
    // A startsAt after the run started (a sender's clock) is not believed.
    const late = { ...i, alertStartsAt: new Date(t0.getTime() + 60_000) };
    expect(buildReport([late], window).timeToRecover).toMatchObject({ meanMs: 800, fromAlert: 0 });
  });

  it('measures availability per target against the objective, overlapping outages counted once', () => {
    const day = { since: new Date('2025-01-05T00:00:00Z'), until: new Date('2025-01-06T00:00:00Z'), operators: [], objective: 0.999 };
    const at = (h: number, m = 0) => new Date(Date.UTC(2025, 0, 5, h, m));
    const outage = (from: Date, to: Date, outcome: Outcome = 'recovered'): ClosedIncident => ({
      workflowId: String(Math.random()),
      runbook: 'serviceDown',
      target: 'api',
      outcome,
      startedAt: from,
      endedAt: to,
    });
    const r = buildReport(
      [
        outage(at(1), at(1, 10)),
        outage(at(1, 5), at(1, 20), 'escalated'), // overlaps the first: 10 more minutes, not 15
        outage(at(3), at(3, 30), 'false-alarm'), // no outage
        outage(new Date('2025-01-04T23:50:00Z'), at(0, 5)), // only its 5 minutes inside the day count
      ],
      day,
    );
    const api = r.perTarget[0]!;
    expect(api.downtimeMs).toBe(25 * 60_000);
    expect(api.availability).toBeCloseTo(1 - 25 / 1_440, 10);
    expect(api.budgetMs).toBeCloseTo(86_400, 6); // 0.1 % of a day: 86.4 s
    expect(api.budgetLeftMs).toBeCloseTo(86_400 - 25 * 60_000, 6);
    expect(api.met).toBe(false);
    // 99.9 % of a 30-day month is 43.2 minutes of downtime.
    const month = buildReport([outage(at(1), at(1, 10))], {
      since: new Date('2025-01-01T00:00:00Z'),
      until: new Date('2025-01-31T00:00:00Z'),
      operators: [],
    });
    expect(month.perTarget[0]!.budgetMs).toBeCloseTo(43.2 * 60_000, 3);
    expect(month.perTarget[0]!.budgetLeftMs).toBeCloseTo(33.2 * 60_000, 3);
    expect(month.perTarget[0]!.met).toBe(true);
  });

  it('counts incidents per runbook and outcomes per day of the period', () => {
    const r = buildReport([incident('api', 'recovered', 2), { ...incident('db', 'escalated', 3), runbook: 'databaseConnection' }], window);
    expect(r.byRunbook).toEqual({ serviceDown: 1, databaseConnection: 1 });
    expect(r.daily.map((d) => d.day)).toEqual([
      '2025-01-01',
      '2025-01-02',
      '2025-01-03',
      '2025-01-04',
      '2025-01-05',
      '2025-01-06',
      '2025-01-07',
    ]);
    expect(r.daily[4]!.byOutcome).toEqual({ recovered: 1, escalated: 1 });
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
