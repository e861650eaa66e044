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
import {
  closeMaintenanceWindow,
  openMaintenanceWindows,
  windowSilencesOf,
  type ClosedWindows,
  type OpenWindow,
} from '../operators/maintenanceWindows.js';
import { heldSlots, releaseSlotsOf, type HeldSlot, type ReleasedSlots } from '../operators/destructiveSlots.js';
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
  cancel(workflowId: string, reason?: string, as?: string): Promise<void>;
  run(request: ManualRunRequest, as?: string): Promise<StartedRun>;
  runMaintenance(schedule: string, as?: string): Promise<{ workflowId: string; runId: string }>;
  closeMaintenance(schedule: string, dryRun: boolean, as?: string): Promise<ClosedWindows>;
  maintenanceWindows(): Promise<OpenWindow[]>;
  slots(): Promise<HeldSlot[]>;
  releaseSlots(workflowId: string, dryRun: boolean, as?: string): Promise<ReleasedSlots>;
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
    closeMaintenance: (name, dryRun) => client.closeMaintenance(name, dryRun),
    maintenanceWindows: () => client.maintenanceWindows(),
    slots: () => client.slots(),
    releaseSlots: (id, dryRun) => client.releaseSlots(id, dryRun),
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

/** At most this many characters of reason, as the operator API takes (triggers/operators/actions.ts). */
const maxReasonChars = 500;

/**
 * A reason given in admin mode, bounded and cleaned as the operator API's checkedReason does
 * (triggers/operators/actions.ts): control characters would rewrite a terminal that prints the timeline.
 */
function adminReason(reason: string | undefined): string {
  if (reason === undefined) return '';
  if (reason.length > maxReasonChars) throw new CliError(1, `--reason: at most ${maxReasonChars} characters`);
  return reason.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}

export async function directToTemporal(config: EngineConfig, env: NodeJS.ProcessEnv): Promise<OperatorAccess> {
  const t = await connectTemporal(config, env, adminIdentity(env));
  const named = (as: string | undefined): string => {
    if (as === undefined) throw new CliError(1, 'admin mode needs --as <operator>: the configured operator this is done as');
    return as;
  };
  // As a decision is (sendDecision): the run would record a name its config does not know.
  const configured = (as: string | undefined, what: string): string => {
    const operator = named(as);
    if (!config.operators.some((o) => o.name === operator)) {
      const known = config.operators.map((o) => o.name).join(', ') || 'none configured';
      throw new CliError(1, `'${operator}' is not a configured operator and cannot ${what} (operators: ${known})`);
    }
    return operator;
  };
  return {
    incidents: (filter) => listIncidents(t, filter),
    show: (id) => showIncident(t, id),
    decide: async (id, kind, reason, as) => {
      const operator = named(as);
      await sendDecision(t, config, id, kind, { operator, reason: adminReason(reason), via: 'admin' });
      return { workflowId: id, decision: kind, operator };
    },
    cancel: async (id, reason, as) => {
      const operator = configured(as, 'cancel');
      // Told first, so the run's timeline and outcome say "cancelled by <operator>: <reason>".
      await cancelIncident(t, id, { operator, reason: adminReason(reason), via: 'admin' });
    },
    run: (r, as) => {
      const reason = r.reason === undefined ? undefined : adminReason(r.reason);
      return startRunbookByHand(t, config, { ...r, reason: reason || undefined, operator: named(as) });
    },
    runMaintenance: (name, as) => runMaintenanceNow(t, config, name, configured(as, 'start maintenance')),
    maintenanceWindows: () => openMaintenanceWindows(t, config),
    closeMaintenance: (name, dryRun, as) => {
      configured(as, 'close a maintenance window');
      return closeMaintenanceWindow(t, config, name, { alertmanager: windowSilencesOf(config), dryRun });
    },
    slots: () => heldSlots(t, config),
    releaseSlots: (id, dryRun, as) => {
      configured(as, 'release destructive slots');
      return releaseSlotsOf(t, config, id, { dryRun });
    },
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
