// `remediate report`: how well the engine did over a period, computed from closed incidents —
// outcomes, time to recover counted from when the outage began (the alert's startsAt), and each
// target's availability against its objective with the downtime budget left. Pure, so the
// arithmetic is tested without a Temporal server.
import type { Outcome, TimelineEntry } from '../../workflows/messages.js';

export interface ClosedIncident {
  workflowId: string;
  runbook: string;
  target: string;
  outcome: Outcome;
  startedAt: Date;
  endedAt: Date;
  /** When the outage began (the opening alert's startsAt); absent in older runs. */
  alertStartsAt?: Date;
  /** From the workflow result; absent when the run failed or was terminated. */
  timeline?: TimelineEntry[];
}

export interface RecoveryStats {
  incidents: number;
  byOutcome: Partial<Record<Outcome, number>>;
  recovered: number;
  /** Recovered with no configured operator in the timeline: nobody approved, rejected or acknowledged. */
  recoveredAutomatically: number;
  /**
   * recoveredAutomatically / incidents that needed action. False alarms and suppressed alerts
   * never needed remediation, so they do not dilute (or flatter) the rate. Null with no such incidents.
   */
  automaticRecoveryRate: number | null;
  /**
   * From when the outage began (the alert's startsAt; the run's start for runs that did not record
   * it) to the recovered outcome, over recovered incidents.
   */
  timeToRecover: { count: number; meanMs: number; p50Ms: number; p95Ms: number; fromAlert: number } | null;
}

export interface Availability {
  /** 0..1 over the period: 1 - downtime / period. */
  availability: number;
  downtimeMs: number;
  /** The objective, 0..1 (0.999 = 43.2 min a month). */
  objective: number;
  /** Downtime the objective allows over the period. */
  budgetMs: number;
  /** budgetMs - downtimeMs: negative when the objective is missed. */
  budgetLeftMs: number;
  met: boolean;
}

export interface IncidentReport extends RecoveryStats {
  since: string;
  until: string;
  /** Incidents per runbook. */
  byRunbook: Record<string, number>;
  perTarget: Array<RecoveryStats & Availability & { target: string }>;
  /** Outcomes per UTC day of the period, oldest first (what the HTML report charts). */
  daily: Array<{ day: string; byOutcome: Partial<Record<Outcome, number>> }>;
}

export interface ReportOptions {
  since: Date;
  until: Date;
  operators: string[];
  /** The availability objective, 0..1; 0.999 unless given. */
  objective?: number;
}

const noActionNeeded: ReadonlySet<Outcome> = new Set(['false-alarm', 'suppressed']);
/** Outcomes whose run spans no outage: the alert was false or silenced on purpose. */
const noOutage = noActionNeeded;
const dayMs = 86_400_000;
/** Days charted at most: a year. */
const maxDays = 366;

export function buildReport(incidents: ClosedIncident[], options: ReportOptions): IncidentReport {
  const operators = new Set(options.operators);
  const objective = options.objective ?? 0.999;
  const targets = [...new Set(incidents.map((i) => i.target))].sort();
  const byRunbook: Record<string, number> = {};
  for (const i of incidents) byRunbook[i.runbook] = (byRunbook[i.runbook] ?? 0) + 1;
  return {
    since: options.since.toISOString(),
    until: options.until.toISOString(),
    ...stats(incidents, operators),
    byRunbook,
    perTarget: targets.map((target) => {
      const mine = incidents.filter((i) => i.target === target);
      return { target, ...stats(mine, operators), ...availability(mine, options.since, options.until, objective) };
    }),
    daily: daily(incidents, options.since, options.until),
  };
}

/** When an incident's outage began: the alert's startsAt when recorded, else the run's start. */
export function outageStart(i: ClosedIncident): Date {
  return i.alertStartsAt && i.alertStartsAt.getTime() <= i.startedAt.getTime() ? i.alertStartsAt : i.startedAt;
}

function stats(incidents: ClosedIncident[], operators: ReadonlySet<string>): RecoveryStats {
  const byOutcome: Partial<Record<Outcome, number>> = {};
  for (const i of incidents) byOutcome[i.outcome] = (byOutcome[i.outcome] ?? 0) + 1;
  const recovered = incidents.filter((i) => i.outcome === 'recovered');
  const automatic = recovered.filter((i) => !(i.timeline ?? []).some((e) => operators.has(e.actor)));
  const needingAction = incidents.filter((i) => !noActionNeeded.has(i.outcome)).length;
  const durations = recovered.map((i) => Math.max(0, i.endedAt.getTime() - outageStart(i).getTime()));
  return {
    incidents: incidents.length,
    byOutcome,
    recovered: recovered.length,
    recoveredAutomatically: automatic.length,
    automaticRecoveryRate: needingAction > 0 ? automatic.length / needingAction : null,
    timeToRecover:
      durations.length > 0
        ? {
            count: durations.length,
            meanMs: durations.reduce((a, b) => a + b, 0) / durations.length,
            p50Ms: percentile(durations, 0.5),
            p95Ms: percentile(durations, 0.95),
            fromAlert: recovered.filter((i) => outageStart(i) !== i.startedAt).length,
          }
        : null,
  };
}

/**
 * A target's availability over [since, until]: its incidents' outages (from the alert's startsAt to
 * the run's end, false alarms and suppressed alerts excluded), overlaps counted once, clipped to
 * the period.
 */
export function availability(incidents: ClosedIncident[], since: Date, until: Date, objective: number): Availability {
  const from = since.getTime();
  const to = until.getTime();
  const periodMs = Math.max(1, to - from);
  const spans = incidents
    .filter((i) => !noOutage.has(i.outcome))
    .map((i) => [Math.max(from, outageStart(i).getTime()), Math.min(to, i.endedAt.getTime())] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let downtimeMs = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    downtimeMs += b - Math.max(a, end);
    end = b;
  }
  const budgetMs = (1 - objective) * periodMs;
  return {
    availability: 1 - downtimeMs / periodMs,
    downtimeMs,
    objective,
    budgetMs,
    budgetLeftMs: budgetMs - downtimeMs,
    met: downtimeMs <= budgetMs,
  };
}

function daily(incidents: ClosedIncident[], since: Date, until: Date): IncidentReport['daily'] {
  const first = Math.floor(since.getTime() / dayMs);
  const last = Math.min(Math.floor((until.getTime() - 1) / dayMs), first + maxDays - 1);
  const days: IncidentReport['daily'] = [];
  for (let d = first; d <= last; d++) days.push({ day: new Date(d * dayMs).toISOString().slice(0, 10), byOutcome: {} });
  for (const i of incidents) {
    const slot = days[Math.floor(i.endedAt.getTime() / dayMs) - first];
    if (slot) slot.byOutcome[i.outcome] = (slot.byOutcome[i.outcome] ?? 0) + 1;
  }
  return days;
}

/** Nearest-rank percentile: always a duration that actually happened. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1]!;
}
