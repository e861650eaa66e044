// The two ways `remediate` reaches the engine. Operators go through the operator API with their own
// token: the engine authenticates, authorises and audits, and they need no Temporal access and no
// database secret. Administrators (`remediate admin …`) go straight to Temporal with the engine
// config: they name the operator with --as, and only the workflow's own list of deciders stands in
// their way, so that mode is for the people who already hold the engine's Temporal credentials.
import { hostname, userInfo } from 'node:os';
import type { EngineConfig } from '../../config/schema.js';
import {
  cancelIncident,
  closedIncidentsSince,
  listIncidents,
  listSchedules,
  runMaintenanceNow,
  sendDecision,
  showIncident,
  type DecisionKind,
  type IncidentDetail,
  type IncidentFilter,
  type IncidentRow,
  type ScheduleRow,
} from '../operators/operatorCommands.js';
import { CliError, type Decided, type OperatorApiClient } from './operatorApiClient.js';
import { connectTemporal } from '../operators/operatorTemporal.js';
import { buildReport, type IncidentReport } from '../reports/report.js';
import { startRunbookByHand, type StartedRun } from './runbookRun.js';

export interface ManualRunRequest {
  runbook: string;
  target: string;
  severity: string;
  dryRun: boolean;
  reason?: string;
}

export type Report = IncidentReport & { truncated: boolean };

/** What the operator commands ask of the engine; `as` is the admin mode's named operator. */
export interface OperatorAccess {
  incidents(filter: IncidentFilter): Promise<IncidentRow[]>;
  show(workflowId: string): Promise<IncidentDetail>;
  decide(workflowId: string, kind: DecisionKind, reason: string, as?: string): Promise<Decided>;
  cancel(workflowId: string, reason?: string): Promise<void>;
  run(request: ManualRunRequest, as?: string): Promise<StartedRun>;
  runMaintenance(schedule: string, as?: string): Promise<{ workflowId: string; runId: string }>;
  schedules(): Promise<ScheduleRow[]>;
  report(sinceMs: number, sinceText: string, target?: string, objectivePercent?: number): Promise<Report>;
  close(): Promise<void>;
}

export function throughApi(client: OperatorApiClient): OperatorAccess {
  return {
    incidents: (filter) => client.incidents(filter),
    show: (id) => client.incident(id),
    decide: (id, kind, reason) => client.decide(id, kind, reason),
    cancel: (id, reason) => client.cancel(id, reason),
    run: (r) =>
      client.run(r.runbook, {
        target: r.target,
        dryRun: r.dryRun,
        severity: r.severity,
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
      }),
    runMaintenance: (name) => client.runMaintenance(name),
    schedules: () => client.schedules(),
    report: (_sinceMs, sinceText, target, objectivePercent) => client.report(sinceText, target, objectivePercent),
    close: async () => undefined,
  };
}

/**
 * Who an administrator's call to Temporal comes from, as Temporal records it in the run's history
 * (the identity of a signal, a cancel request, a start): the operating-system account and host
 * that ran the command, whatever name --as gives.
 */
export function adminIdentity(env: NodeJS.ProcessEnv = process.env): string {
  let user = env.USER || env.LOGNAME || 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (a container): the environment's name stands.
  }
  return `remediate admin ${user}@${hostname()} pid ${process.pid}`.slice(0, 200);
}

export async function directToTemporal(config: EngineConfig, env: NodeJS.ProcessEnv): Promise<OperatorAccess> {
  const t = await connectTemporal(config, env, adminIdentity(env));
  const named = (as: string | undefined): string => {
    if (as === undefined) throw new CliError(1, 'admin mode needs --as <operator>: the configured operator this is done as');
    return as;
  };
  return {
    incidents: (filter) => listIncidents(t, filter),
    show: (id) => showIncident(t, id),
    decide: async (id, kind, reason, as) => {
      const operator = named(as);
      await sendDecision(t, config, id, kind, { operator, reason, via: 'admin' });
      return { workflowId: id, decision: kind, operator };
    },
    cancel: (id) => cancelIncident(t, id),
    run: (r, as) => startRunbookByHand(t, config, { ...r, operator: named(as) }),
    runMaintenance: (name, as) => runMaintenanceNow(t, config, name, named(as)),
    schedules: () => listSchedules(t),
    report: async (sinceMs, _text, target, objectivePercent) => {
      const until = new Date();
      const since = new Date(until.getTime() - sinceMs);
      const { incidents, truncated } = await closedIncidentsSince(t, since, { target });
      const objective = objectivePercent === undefined ? undefined : objectivePercent / 100;
      return {
        ...buildReport(incidents, { since, until, operators: config.operators.map((o) => o.name), ...(objective ? { objective } : {}) }),
        truncated,
      };
    },
    close: () => t.close(),
  };
}
