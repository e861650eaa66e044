// What an operator can ask of running and past incidents, as plain data. The CLI renders it; the
// same functions are usable from tests or another front end. Failures are CommandErrors whose
// exit code says what kind of problem it was (1 bad input, 2 not found, 3 Temporal unreachable).
import { outcomes as runbookOutcomes } from '../../config/runbookSchema.js';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import type { EngineConfig } from '../../config/schema.js';
import {
  acknowledgeSignal,
  alertNameAttribute,
  approveSignal,
  cancelRequestedSignal,
  decisionUpdate,
  interpreterWorkflowType,
  maintenanceWorkflowId,
  outcomeAttribute,
  rejectSignal,
  runbookAttribute,
  severityAttribute,
  statusQuery,
  targetAttribute,
  type Outcome,
  type RunbookResult,
  type RunbookStatus,
} from '../../workflows/messages.js';
import { CommandError, type Temporal } from './operatorTemporal.js';
import { planMaintenanceRun } from '../plan.js';
import type { ClosedIncident } from '../reports/report.js';
import { maintenanceScheduleId, maintenanceSchedulePrefix } from '../schedules/schedules.js';

export const incidentRunbooks = ['serviceDown', 'databaseConnection', 'highErrorRate', 'resourcePressure'] as const;
/** A runbook's outcomes (an `end` step may name any), and a cancelled run's. */
export const outcomes: readonly Outcome[] = [...runbookOutcomes, 'cancelled'];
export interface IncidentRow {
  workflowId: string;
  runId: string;
  status: string;
  runbook: string;
  target: string;
  alert: string;
  severity: string;
  outcome: string;
  startTime: string;
  closeTime?: string;
  durationMs?: number;
}

export interface IncidentFilter {
  open?: boolean;
  closed?: boolean;
  target?: string;
  alert?: string;
  outcome?: string;
  runbook?: string;
  closedAfter?: Date;
  limit: number;
}

/** A visibility query over the incident search attributes; values are checked, never spliced raw. */
export function incidentQuery(f: Omit<IncidentFilter, 'limit'>): string {
  if (f.open && f.closed) throw new CommandError(1, '--open and --closed exclude each other');
  if (f.outcome !== undefined && !outcomes.includes(f.outcome as Outcome))
    throw new CommandError(1, `--outcome ${JSON.stringify(f.outcome)} is not an outcome (one of: ${outcomes.join(', ')})`);
  if (f.runbook !== undefined && !/^[A-Za-z][A-Za-z0-9_-]{0,62}$/.test(f.runbook))
    throw new CommandError(1, `--runbook ${JSON.stringify(f.runbook)} is not a runbook name`);
  // Incidents are interpreter runs (a runbook file) or, for runs started before runbook files, the
  // compiled runbook workflows; the Runbook search attribute names the runbook either way.
  const types = [interpreterWorkflowType, ...incidentRunbooks].map((r) => `'${r}'`).join(', ');
  const clauses = [`WorkflowType IN (${types})`, `WorkflowId STARTS_WITH 'incident:'`];
  if (f.runbook !== undefined) clauses.push(`Runbook = ${literal('--runbook', f.runbook)}`);
  if (f.open) clauses.push(`ExecutionStatus = 'Running'`);
  if (f.closed) clauses.push(`ExecutionStatus != 'Running'`);
  if (f.target !== undefined) clauses.push(`RemediationTarget = ${literal('--target', f.target)}`);
  if (f.alert !== undefined) clauses.push(`AlertName = ${literal('--alert', f.alert)}`);
  if (f.outcome !== undefined) clauses.push(`Outcome = ${literal('--outcome', f.outcome)}`);
  if (f.closedAfter) clauses.push(`CloseTime > '${f.closedAfter.toISOString()}'`);
  return clauses.join(' AND ');
}

function literal(flag: string, value: string): string {
  if (!/^[A-Za-z0-9_.:@/-]{1,200}$/.test(value))
    throw new CommandError(1, `${flag} ${JSON.stringify(value.slice(0, 80))}: only letters, digits and . _ - : @ / are allowed`);
  return `'${value}'`;
}

export async function listIncidents(t: Temporal, filter: IncidentFilter): Promise<IncidentRow[]> {
  const query = incidentQuery(filter);
  const rows: IncidentRow[] = [];
  await t.call(async () => {
    for await (const info of t.client.workflow.list({ query, pageSize: Math.min(filter.limit, 1_000) })) {
      rows.push(incidentRow(info));
      if (rows.length >= filter.limit) break;
    }
  }, 30_000);
  return rows;
}

function incidentRow(info: Omit<WorkflowExecutionInfo, 'raw'>): IncidentRow {
  const sa = info.typedSearchAttributes;
  const closeTime = info.closeTime;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: info.status.name,
    runbook: sa.get(runbookAttribute) ?? info.type,
    target: sa.get(targetAttribute) ?? '',
    alert: sa.get(alertNameAttribute) ?? '',
    severity: sa.get(severityAttribute) ?? '',
    outcome: sa.get(outcomeAttribute) ?? '',
    startTime: info.startTime.toISOString(),
    ...(closeTime ? { closeTime: closeTime.toISOString(), durationMs: closeTime.getTime() - info.startTime.getTime() } : {}),
  };
}

export interface IncidentDetail extends IncidentRow {
  type: string;
  /** Live status from the running workflow's status query. */
  live?: RunbookStatus;
  liveError?: string;
  /** The closed workflow's result. */
  result?: RunbookResult;
  failure?: string;
}

export async function showIncident(t: Temporal, workflowId: string): Promise<IncidentDetail> {
  const handle = t.client.workflow.getHandle(workflowId);
  const description = await t.call(() => handle.describe()).catch(notFound(`no workflow '${workflowId}'`));
  const detail: IncidentDetail = { ...incidentRow(description), type: description.type };
  if (description.status.name === 'RUNNING') {
    // A query needs a worker; with none polling, say so instead of hanging.
    try {
      detail.live = await t.call(() => handle.query(statusQuery), 5_000);
    } catch (err) {
      detail.liveError = `status query failed (is an engine running?): ${(err as Error).message}`;
    }
  } else if (description.status.name === 'COMPLETED') {
    detail.result = (await t.call(() => handle.result())) as RunbookResult;
  } else {
    try {
      await t.call(() => handle.result());
    } catch (err) {
      detail.failure = err instanceof WorkflowFailedError && err.cause ? err.cause.message : (err as Error).message;
    }
  }
  return detail;
}

export type DecisionKind = 'approve' | 'reject' | 'acknowledge';
const decisionSignals = { approve: approveSignal, reject: rejectSignal, acknowledge: acknowledgeSignal } as const;

/** The run refused the decision (nothing pending, already decided, another step): nothing was recorded. */
export class DecisionRefused extends CommandError {
  constructor(message: string) {
    super(1, message);
  }
}

/**
 * The run a door has already described, found running and authorised the operator on: its chain
 * (the first run's id, the same across continue-as-new). A decision or cancel then goes to that
 * chain only, so an incident that ended meanwhile and a new one started under the same workflow
 * id is not decided for on the old authorisation, and no second describe is made.
 */
export interface DescribedRun {
  chain?: string;
  /** The run it was then: the cancel's who-and-why signal goes to it alone (a signal cannot name a chain). */
  runId?: string;
}

function runHandle(t: Temporal, workflowId: string, described?: DescribedRun) {
  return t.client.workflow.getHandle(workflowId, undefined, described?.chain ? { firstExecutionRunId: described.chain } : undefined);
}

/** The run a decision or cancel was about ended, and another may run under its id: nothing was sent to it. */
function endedMeanwhile(workflowId: string, what: string, described?: DescribedRun) {
  return (err: unknown): never => {
    if (described?.chain) {
      try {
        notFound('')(err);
      } catch (e) {
        if (e instanceof CommandError && e.exitCode === 2)
          throw new CommandError(1, `the run of '${workflowId}' this was about has ended; there is nothing to ${what}`);
      }
    }
    return notFound(`no running workflow '${workflowId}'`)(err);
  };
}

/**
 * Sends an operator's decision as an update, so the answer says whether the run took it: refused
 * (DecisionRefused) when it cannot take effect, an error when no worker answered in time (then it
 * was not taken). A run whose worker predates the update gets the signal, as before, once a query
 * shows it waits for what the decision is about.
 */
export async function sendDecision(
  t: Temporal,
  config: EngineConfig,
  workflowId: string,
  kind: DecisionKind,
  decision: { operator: string; reason: string; via?: string; step?: string },
  described?: DescribedRun,
): Promise<void> {
  // The workflow ignores decisions from names it does not know (and records them); telling the
  // operator so here beats a "sent" that changes nothing while the pages keep coming.
  if (!config.operators.some((o) => o.name === decision.operator)) {
    const known = config.operators.map((o) => o.name).join(', ') || 'none configured';
    throw new CommandError(1, `'${decision.operator}' is not a configured operator and cannot ${kind} (operators: ${known})`);
  }
  if (!described) await requireRunning(t, workflowId, kind);
  const handle = runHandle(t, workflowId, described);
  try {
    await t.call(() => handle.executeUpdate(decisionUpdate, { args: [{ ...decision, kind }] }), 15_000);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const said = err.cause?.message ?? err.message;
      // A worker from before the update: the signal, which that worker handles.
      if (!/no registered handler for update|unknown update/i.test(said)) throw new DecisionRefused(said);
      if (kind !== 'acknowledge') await requirePendingApproval(t, workflowId, kind, decision.step);
      await t.call(() => handle.signal(decisionSignals[kind], decision)).catch(notFound(`no running workflow '${workflowId}'`));
      return;
    }
    // Temporal answered the describe a moment ago: an update that times out found no worker to take it.
    if ((err instanceof CommandError && err.exitCode === 3) || /deadline|timed? ?out/i.test(String(err)))
      throw new CommandError(3, `no engine worker took the ${kind} of '${workflowId}' within 15 s: it was not taken; try again`);
    if (err instanceof CommandError) throw err;
    return endedMeanwhile(workflowId, kind, described)(err);
  }
}

/** For a worker from before the decision update: what its validator would refuse, asked by query. */
async function requirePendingApproval(t: Temporal, workflowId: string, kind: DecisionKind, step?: string): Promise<void> {
  let status: RunbookStatus | undefined;
  try {
    status = await t.call(() => t.client.workflow.getHandle(workflowId).query(statusQuery), 5_000);
  } catch {
    // No worker answering the query: the signal is still recorded, and the workflow decides.
    return;
  }
  if (status && !status.pendingApproval && status.outcome === undefined)
    throw new DecisionRefused(`nothing to ${kind}: the run is not waiting for an approval (it is at step ${status.step})`);
  if (step !== undefined && status?.pendingApproval && status.pendingApproval.step !== step)
    throw new DecisionRefused(`this is about step ${step}; the run waits on ${status.pendingApproval.step}`);
}

/**
 * Cancels a run. `by`: who asked and why, signalled first so the run's timeline and result name
 * them (Temporal's cancellation itself carries no one); best effort, the cancel goes ahead anyway.
 * `described`: as for sendDecision, the cancel goes to that run's chain only.
 */
export async function cancelIncident(
  t: Temporal,
  workflowId: string,
  by?: { operator: string; reason: string; via?: string },
  described?: DescribedRun,
): Promise<void> {
  if (!described) await requireRunning(t, workflowId, 'cancel');
  const handle = runHandle(t, workflowId, described);
  const tell = described?.runId ? t.client.workflow.getHandle(workflowId, described.runId) : handle;
  if (by) await t.call(() => tell.signal(cancelRequestedSignal, by), 5_000).catch(() => undefined);
  await t.call(() => handle.cancel()).catch(endedMeanwhile(workflowId, 'cancel', described));
}

async function requireRunning(t: Temporal, workflowId: string, what: string): Promise<void> {
  const d = await t.call(() => t.client.workflow.getHandle(workflowId).describe()).catch(notFound(`no workflow '${workflowId}'`));
  if (d.status.name !== 'RUNNING')
    throw new CommandError(1, `workflow '${workflowId}' is ${d.status.name.toLowerCase()}; there is nothing to ${what}`);
}

export async function runMaintenanceNow(
  t: Temporal,
  config: EngineConfig,
  name: string,
  startedBy = 'schedule',
): Promise<{ workflowId: string; runId: string }> {
  const schedule = config.maintenance.find((m) => m.name === name);
  if (!schedule) {
    const known = config.maintenance.map((m) => m.name).join(', ') || 'none';
    throw new CommandError(2, `no maintenance schedule '${name}' in the configuration (known: ${known})`);
  }
  const workflowId = maintenanceWorkflowId(name);
  // The schedule's own runs have ids of their own (…-<scheduled time>): the id conflict below does
  // not see them, and two windows on the same targets would back up and VACUUM side by side.
  const scheduled = await scheduledRunStillRunning(t, name);
  if (scheduled) throw new CommandError(1, `maintenance '${name}' is already running from its schedule (workflow ${scheduled})`);
  try {
    const handle = await t.call(() =>
      t.client.workflow.start(interpreterWorkflowType, {
        workflowId,
        taskQueue: config.temporal.taskQueue,
        args: [planMaintenanceRun(config, schedule, { startedBy })],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      }),
    );
    return { workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new CommandError(1, `maintenance '${name}' is already running (workflow ${workflowId})`);
    throw err;
  }
}

/**
 * A run the schedule started that is still running: the schedule's running actions, and its latest
 * actions looked up one by one (a run it started a moment ago may not be listed as running yet).
 */
async function scheduledRunStillRunning(t: Temporal, name: string): Promise<string | undefined> {
  let d;
  try {
    d = await t.call(() => t.client.schedule.getHandle(maintenanceScheduleId(name)).describe());
  } catch (err) {
    if (err instanceof ScheduleNotFoundError || (err as { code?: number }).code === 5) return undefined;
    throw err;
  }
  const running = d.info.runningActions[0];
  if (running) return running.workflow.workflowId;
  for (const a of d.info.recentActions.slice(-3)) {
    const w = a.action.workflow;
    const status = await t
      .call(() => t.client.workflow.getHandle(w.workflowId, w.firstExecutionRunId).describe())
      .then((r) => r.status.name)
      .catch(() => undefined);
    if (status === 'RUNNING') return w.workflowId;
  }
  return undefined;
}

export interface ScheduleRow {
  name: string;
  scheduleId: string;
  paused: boolean;
  note?: string;
  nextRun?: string;
  lastRun?: string;
}

export async function listSchedules(t: Temporal): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  await t.call(async () => {
    for await (const s of t.client.schedule.list()) {
      if (!s.scheduleId.startsWith(maintenanceSchedulePrefix)) continue;
      const last = s.info.recentActions.at(-1);
      rows.push({
        name: s.scheduleId.slice(maintenanceSchedulePrefix.length),
        scheduleId: s.scheduleId,
        paused: s.state.paused,
        ...(s.state.note ? { note: s.state.note } : {}),
        ...(s.info.nextActionTimes[0] ? { nextRun: s.info.nextActionTimes[0].toISOString() } : {}),
        ...(last ? { lastRun: last.takenAt.toISOString() } : {}),
      });
    }
  }, 30_000);
  return rows.sort((a, b) => a.name.localeCompare(b.name));
}

export async function changeSchedule(t: Temporal, name: string, action: 'pause' | 'unpause' | 'trigger', note?: string): Promise<void> {
  const handle = t.client.schedule.getHandle(maintenanceScheduleId(name));
  const missing = notFound(`no maintenance schedule '${name}' in Temporal (has the engine synced its config?)`);
  if (action === 'pause') await t.call(() => handle.pause(note ?? 'paused with remediate')).catch(missing);
  else if (action === 'unpause') await t.call(() => handle.unpause(note ?? 'unpaused with remediate')).catch(missing);
  // SKIP: a manual trigger while a window is open must not open a second one on the same targets.
  else await t.call(() => handle.trigger(ScheduleOverlapPolicy.SKIP)).catch(missing);
}

/** Runs that closed without a result: cancelled and terminated by a person, the rest failures. */
const closedWithout: Partial<Record<string, Outcome>> = { CANCELLED: 'cancelled', TERMINATED: 'terminated' };

/** Incidents one report reads (one history each) unless told otherwise: past this it is partial. */
export const reportLimit = 5_000;

/**
 * Closed incidents since a time, with their results, for `remediate report`: newest first, at most
 * `limit`, and `truncated` when there were more.
 */
export async function closedIncidentsSince(
  t: Temporal,
  since: Date,
  options: { target?: string; limit?: number } = {},
): Promise<{ incidents: ClosedIncident[]; truncated: boolean }> {
  const limit = options.limit ?? reportLimit;
  // One more than the limit tells "exactly the limit" from "more than that".
  const listed = await listIncidents(t, { closed: true, closedAfter: since, target: options.target, limit: limit + 1 });
  const rows = listed.slice(0, limit);
  const out: ClosedIncident[] = [];
  let next = 0;
  const fetchOne = async (row: IncidentRow): Promise<ClosedIncident> => {
    const base = {
      workflowId: row.workflowId,
      runbook: row.runbook,
      target: row.target,
      startedAt: new Date(row.startTime),
      endedAt: new Date(row.closeTime ?? row.startTime),
    };
    if (row.status !== 'COMPLETED') return { ...base, outcome: closedWithout[row.status] ?? 'failed' };
    const handle = t.client.workflow.getHandle(row.workflowId, row.runId);
    const result = (await t.call(() => handle.result())) as Partial<RunbookResult> | undefined;
    const outcome = (result?.outcome ?? (row.outcome || 'completed')) as Outcome;
    return {
      ...base,
      outcome,
      ...(result?.startedAt ? { startedAt: new Date(result.startedAt) } : {}),
      ...(result?.alertStartsAt ? { alertStartsAt: new Date(result.alertStartsAt) } : {}),
      ...(result?.endedAt ? { endedAt: new Date(result.endedAt) } : {}),
      ...(result?.timeline ? { timeline: result.timeline } : {}),
    };
  };
  await Promise.all(
    Array.from({ length: Math.min(8, rows.length) }, async () => {
      while (next < rows.length) out.push(await fetchOne(rows[next++]!));
    }),
  );
  return { incidents: out, truncated: listed.length > limit };
}

function notFound(message: string) {
  return (err: unknown): never => {
    if (err instanceof WorkflowNotFoundError || err instanceof ScheduleNotFoundError) throw new CommandError(2, message);
    if (err instanceof Error && 'code' in err && (err as { code?: number }).code === 5) throw new CommandError(2, message);
    throw err;
  };
}
