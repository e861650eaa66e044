// `remediate report`: how well the engine did over a period, computed from closed incidents.
// Pure, so the arithmetic is tested without a Temporal server.
import type { Outcome, TimelineEntry } from '../workflows/messages.js';

export interface ClosedIncident {
  workflowId: string;
  runbook: string;
  target: string;
  outcome: Outcome;
  startedAt: Date;
  endedAt: Date;
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
  /** Start of the incident workflow to its recovered outcome, over recovered incidents. */
  timeToRecover: { count: number; meanMs: number; p95Ms: number } | null;
}

export interface IncidentReport extends RecoveryStats {
  since: string;
  until: string;
  perTarget: Array<RecoveryStats & { target: string }>;
}

const noActionNeeded: ReadonlySet<Outcome> = new Set(['false-alarm', 'suppressed']);

export function buildReport(incidents: ClosedIncident[], options: { since: Date; until: Date; operators: string[] }): IncidentReport {
  const operators = new Set(options.operators);
  const targets = [...new Set(incidents.map((i) => i.target))].sort();
  return {
    since: options.since.toISOString(),
    until: options.until.toISOString(),
    ...stats(incidents, operators),
    perTarget: targets.map((target) => ({ target, ...stats(incidents.filter((i) => i.target === target), operators) })),
  };
}

function stats(incidents: ClosedIncident[], operators: ReadonlySet<string>): RecoveryStats {
  const byOutcome: Partial<Record<Outcome, number>> = {};
  for (const i of incidents) byOutcome[i.outcome] = (byOutcome[i.outcome] ?? 0) + 1;
  const recovered = incidents.filter((i) => i.outcome === 'recovered');
  const automatic = recovered.filter((i) => !(i.timeline ?? []).some((e) => operators.has(e.actor)));
  const needingAction = incidents.filter((i) => !noActionNeeded.has(i.outcome)).length;
  const durations = recovered.map((i) => Math.max(0, i.endedAt.getTime() - i.startedAt.getTime()));
  return {
    incidents: incidents.length,
    byOutcome,
    recovered: recovered.length,
    recoveredAutomatically: automatic.length,
    automaticRecoveryRate: needingAction > 0 ? automatic.length / needingAction : null,
    timeToRecover:
      durations.length > 0
        ? { count: durations.length, meanMs: durations.reduce((a, b) => a + b, 0) / durations.length, p95Ms: percentile(durations, 0.95) }
        : null,
  };
}

/** Nearest-rank percentile: always a duration that actually happened. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1]!;
}
