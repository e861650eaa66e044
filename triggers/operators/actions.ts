// What an authenticated operator may ask of the engine, whichever door they came through (the API,
// the CLI through it, the console, chat): each action is authorised against the operator policy,
// taken as the verified operator, and written to the audit log; an action refused on an incident
// is also put on that incident's timeline.
import { WorkflowNotFoundError } from '@temporalio/client';
import { mayDo, type ActionScope, type OperatorAction } from '../../config/operatorPolicy.js';
import type { EngineConfig, MaintenanceSchedule } from '../../config/schema.js';
import { maintenanceWorkflowId, operatorRefusedSignal, runbookAttribute, targetAttribute } from '../../workflows/messages.js';
import {
  cancelIncident,
  closedIncidentsSince,
  listIncidents,
  listSchedules,
  runMaintenanceNow,
  sendDecision,
  DecisionRefused,
  showIncident,
  type DecisionKind,
  type IncidentDetail,
  type IncidentFilter,
  type IncidentRow,
  type ScheduleRow,
} from './operatorCommands.js';
import { CommandError, type Temporal } from './operatorTemporal.js';
import { buildReport, type IncidentReport } from '../reports/report.js';
import { startRunbookByHand, type StartedRun } from '../cli/runbookRun.js';
import type { AuditLog, AuditResult } from './audit.js';
import type { Identity } from './credentials.js';
import {
  closeMaintenanceWindow,
  openMaintenanceWindows,
  windowSilencesOf,
  type ClosedWindows,
  type OpenWindow,
} from './maintenanceWindows.js';
import { heldSlots, releaseSlotsOf, slotTargetsOf, type HeldSlot, type ReleasedSlots } from './destructiveSlots.js';
import { actedOnTargets } from '../plan.js';

/** An action that did not happen, with the HTTP status that says why. */
export class ActionError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 429 | 503,
    message: string,
  ) {
    super(message);
  }
}

const workflowIdPattern = /^(incident|maintenance):[A-Za-z0-9_.:-]{1,200}$/;
const maxReasonChars = 500;
/** Refusals put on one incident's timeline per minute; past it, the audit log alone has them. */
const refusalsPerMinute = 10;

export interface OperatorActionsDeps {
  config: EngineConfig;
  temporal: Temporal;
  audit: AuditLog;
}

export interface RunRequest {
  runbook: string;
  target: string;
  dryRun?: boolean;
  reason?: string;
  severity?: string;
}

/** Reports made at once, over all operators. */
const maxReportsAtOnce = 2;

export class OperatorActions {
  private readonly refusals = new Map<string, { minute: number; count: number }>();
  private reportsRunning = 0;

  constructor(private readonly deps: OperatorActionsDeps) {}

  async listIncidents(who: Identity, filter: IncidentFilter, remote?: string): Promise<IncidentRow[]> {
    this.allow(who, 'read', {}, 'list incidents', undefined, remote);
    return this.perform(who, 'list incidents', undefined, remote, () => listIncidents(this.deps.temporal, filter), { quiet: true });
  }

  async showIncident(who: Identity, workflowId: string, remote?: string): Promise<IncidentDetail> {
    const id = checkedWorkflowId(workflowId);
    this.allow(who, 'read', {}, 'show incident', id, remote);
    return this.perform(who, 'show incident', id, remote, () => showIncident(this.deps.temporal, id), { quiet: true });
  }

  async listSchedules(who: Identity, remote?: string): Promise<ScheduleRow[]> {
    this.allow(who, 'read', {}, 'list schedules', undefined, remote);
    return this.perform(who, 'list schedules', undefined, remote, () => listSchedules(this.deps.temporal), { quiet: true });
  }

  /** Closed incidents of the last `sinceMs` (a minute to 366 days), against an availability objective (0..1). */
  async report(
    who: Identity,
    sinceMs: number,
    remote?: string,
    target?: string,
    objective = 0.999,
  ): Promise<IncidentReport & { truncated: boolean }> {
    this.allow(who, 'read', {}, 'report', undefined, remote);
    if (!Number.isFinite(sinceMs) || sinceMs < 60_000 || sinceMs > 366 * 86_400_000)
      throw new ActionError(400, 'since: expected a period from 1m to 366d');
    if (!Number.isFinite(objective) || objective <= 0 || objective >= 1)
      throw new ActionError(400, 'objective: expected a percentage above 0 and below 100, e.g. 99.9');
    // A report reads up to 5,000 histories over the engine's own Temporal client, the one alerts
    // start incidents with: a few viewers' tabs must not crowd them out.
    if (this.reportsRunning >= maxReportsAtOnce)
      throw new ActionError(429, `${maxReportsAtOnce} reports are being made already; ask again in a minute`);
    this.reportsRunning++;
    return this.perform(
      who,
      'report',
      `${Math.round(sinceMs / 60_000)}m`,
      remote,
      async () => {
        const until = new Date();
        const since = new Date(until.getTime() - sinceMs);
        const { incidents, truncated } = await closedIncidentsSince(this.deps.temporal, since, { target });
        return {
          ...buildReport(incidents, { since, until, objective, operators: this.deps.config.operators.map((o) => o.name) }),
          truncated,
        };
      },
      { quiet: true },
    ).finally(() => this.reportsRunning--);
  }

  /**
   * Approve, reject or acknowledge: signalled with the verified name and the door it came through.
   * `about` (a chat button's page): the run chain and approval step the page was about; a run that
   * is not that chain, or waits on another step, is refused rather than decided for.
   */
  async decide(
    who: Identity,
    workflowId: string,
    kind: DecisionKind,
    reason: unknown,
    remote?: string,
    about?: { chain?: string; step?: string },
  ): Promise<{ workflowId: string; decision: DecisionKind; operator: string }> {
    const id = checkedWorkflowId(workflowId);
    const text = checkedReason(reason);
    const scope = await this.scopeOf(id, who, kind, remote);
    await this.allowOnIncident(who, kind, scope, id, remote);
    return this.perform(
      who,
      kind,
      id,
      remote,
      async () => {
        if (about?.chain !== undefined && scope.chain !== undefined && about.chain !== scope.chain)
          throw new ActionError(
            409,
            `this page is about an earlier run of '${id}', which has ended; the current one has pages of its own (or use the console)`,
          );
        requireRunning(scope, id, kind);
        // The run's own validator refuses what cannot take effect (nothing pending, decided
        // already, another step) against its state when the update arrives.
        await sendDecision(
          this.deps.temporal,
          this.deps.config,
          id,
          kind,
          {
            operator: who.operator.name,
            reason: text,
            via: who.via,
            ...(kind !== 'acknowledge' && about?.step ? { step: about.step } : {}),
          },
          { chain: scope.chain },
        ).catch((err: unknown) => {
          // The run itself said no (someone decided first, nothing pending any more): nothing was recorded.
          if (err instanceof DecisionRefused) throw new ActionError(409, `'${id}' did not take the ${kind}: ${err.message}`);
          throw err;
        });
        return { workflowId: id, decision: kind, operator: who.operator.name };
      },
      { reason: text },
    );
  }

  async cancel(who: Identity, workflowId: string, reason: unknown, remote?: string): Promise<{ workflowId: string; cancelled: true }> {
    const id = checkedWorkflowId(workflowId);
    const text = checkedReason(reason);
    const scope = await this.scopeOf(id, who, 'cancel', remote);
    await this.allowOnIncident(who, 'cancel', scope, id, remote);
    return this.perform(
      who,
      'cancel',
      id,
      remote,
      async () => {
        requireRunning(scope, id, 'cancel');
        await cancelIncident(this.deps.temporal, id, { operator: who.operator.name, reason: text, via: who.via }, scope);
        return { workflowId: id, cancelled: true as const };
      },
      { reason: text },
    );
  }

  async run(who: Identity, request: RunRequest, remote?: string): Promise<StartedRun> {
    const subject = `${String(request.runbook).slice(0, 64)} on ${String(request.target).slice(0, 64)}`;
    this.allow(
      who,
      'run',
      { runbook: request.runbook, target: request.target, targets: this.actedOn(request.runbook) },
      'run',
      subject,
      remote,
    );
    const reason = request.reason === undefined ? undefined : checkedReason(request.reason);
    return this.perform(who, 'run', subject, remote, () =>
      startRunbookByHand(this.deps.temporal, this.deps.config, {
        runbook: request.runbook,
        target: request.target,
        operator: who.operator.name,
        severity: request.severity ?? 'warning',
        dryRun: request.dryRun === true,
        ...(reason ? { reason } : {}),
      }),
    );
  }

  async runMaintenance(who: Identity, schedule: string, remote?: string): Promise<{ workflowId: string; runId: string }> {
    this.allow(who, 'maintenance', this.maintenanceScope(schedule), 'run maintenance', schedule.slice(0, 64), remote);
    return this.perform(who, 'run maintenance', schedule, remote, () =>
      runMaintenanceNow(this.deps.temporal, this.deps.config, schedule, who.operator.name),
    );
  }

  /** The open maintenance windows, and whether the run that holds each still runs. */
  async maintenanceWindows(who: Identity, remote?: string): Promise<OpenWindow[]> {
    this.allow(who, 'read', {}, 'list maintenance windows', undefined, remote);
    return this.perform(
      who,
      'list maintenance windows',
      undefined,
      remote,
      () => openMaintenanceWindows(this.deps.temporal, this.deps.config),
      {
        quiet: true,
      },
    );
  }

  /** Closes the window (guard entry and silence) a maintenance run left behind when it ended without closing it. */
  async closeMaintenance(who: Identity, schedule: string, dryRun: boolean, remote?: string): Promise<ClosedWindows> {
    this.allow(who, 'maintenance', this.maintenanceScope(schedule), 'close maintenance window', schedule.slice(0, 64), remote);
    return this.perform(who, dryRun ? 'close maintenance window (dry run)' : 'close maintenance window', schedule, remote, () =>
      closeMaintenanceWindow(this.deps.temporal, this.deps.config, schedule, {
        alertmanager: windowSilencesOf(this.deps.config),
        dryRun,
      }),
    );
  }

  /** The destructive slots the guard holds, and whether the run holding each still runs. */
  async slots(who: Identity, remote?: string): Promise<HeldSlot[]> {
    this.allow(who, 'read', {}, 'list destructive slots', undefined, remote);
    return this.perform(who, 'list destructive slots', undefined, remote, () => heldSlots(this.deps.temporal, this.deps.config), {
      quiet: true,
    });
  }

  /** Releases the destructive slots a run kept when it ended without releasing them (terminated). */
  async releaseSlots(who: Identity, workflowId: unknown, dryRun: boolean, remote?: string): Promise<ReleasedSlots> {
    const id = checkedWorkflowId(workflowId);
    const what = dryRun ? 'release destructive slots (dry run)' : 'release destructive slots';
    // Cancelling a run is what releases its slot; releasing it by hand needs the same role, on the
    // run's runbook and the targets its slots are for.
    const targets = await this.perform(who, what, id, remote, () => slotTargetsOf(this.deps.temporal, this.deps.config, id), {
      quiet: true,
    });
    this.allow(who, 'release', { runbook: this.runbookOf(id), targets }, what, id, remote);
    return this.perform(who, what, id, remote, () => releaseSlotsOf(this.deps.temporal, this.deps.config, id, { dryRun }));
  }

  /** The runbook a workflow id names: incident:<runbook>:<target>, or a configured schedule's. */
  private runbookOf(workflowId: string): string | undefined {
    if (workflowId.startsWith('incident:')) return workflowId.split(':')[1];
    // By hand maintenance:<name>; from its schedule maintenance:<name>-<time>.
    const schedule = workflowId.replace(/-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, '');
    return this.deps.config.maintenance.find((m) => maintenanceWorkflowId(m.name) === schedule)?.runbook;
  }

  /** A schedule's runbook and every target its runs act on; {} for a schedule the config lacks (refused later, by name). */
  private maintenanceScope(schedule: string): ActionScope {
    const found = this.deps.config.maintenance.find((m) => m.name === schedule);
    return found ? { runbook: found.runbook, targets: [...found.targets, ...this.actedOn(found.runbook)] } : {};
  }

  /** Throws 403 (after auditing it) unless the policy allows the action. */
  private allow(
    who: Identity,
    action: OperatorAction,
    scope: ActionScope,
    what: string,
    subject: string | undefined,
    remote: string | undefined,
  ): void {
    const verdict = mayDo(who.operator, action, scope);
    if (verdict.allowed) return;
    this.deps.audit({
      operator: who.operator.name,
      via: who.via,
      action: what,
      subject,
      result: 'refused',
      reason: verdict.reason,
      remote,
    });
    throw new ActionError(403, verdict.reason);
  }

  /** As allow(), and a refusal also goes on the incident's own timeline (a few per minute at most). */
  private async allowOnIncident(
    who: Identity,
    action: OperatorAction,
    scope: ActionScope,
    workflowId: string,
    remote: string | undefined,
  ): Promise<void> {
    try {
      this.allow(who, action, scope, action, workflowId, remote);
    } catch (err) {
      if (err instanceof ActionError && this.mayNoteRefusal(workflowId)) {
        const t = this.deps.temporal;
        await t
          .call(
            () =>
              t.client.workflow
                .getHandle(workflowId)
                .signal(operatorRefusedSignal, { operator: who.operator.name, action, reason: err.message, via: who.via }),
            5_000,
          )
          .catch(() => undefined);
      }
      throw err;
    }
  }

  private mayNoteRefusal(workflowId: string): boolean {
    const minute = Math.floor(Date.now() / 60_000);
    const seen = this.refusals.get(workflowId);
    if (!seen || seen.minute !== minute) {
      if (this.refusals.size > 10_000) this.refusals.clear();
      this.refusals.set(workflowId, { minute, count: 1 });
      return true;
    }
    seen.count += 1;
    return seen.count <= refusalsPerMinute;
  }

  /** The runbook and target(s) an incident is about, from its search attributes (set by the engine). */
  private async scopeOf(
    workflowId: string,
    who: Identity,
    action: string,
    remote: string | undefined,
  ): Promise<ActionScope & DescribedScope> {
    const t = this.deps.temporal;
    let description;
    try {
      description = await t.call(() => t.client.workflow.getHandle(workflowId).describe());
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || (err as { code?: number }).code === 5) {
        this.deps.audit({ operator: who.operator.name, via: who.via, action, subject: workflowId, result: 'not-found', remote });
        throw new ActionError(404, `no workflow '${workflowId}'`);
      }
      const failure = toActionError(err);
      this.deps.audit({
        operator: who.operator.name,
        via: who.via,
        action,
        subject: workflowId,
        result: 'failed',
        reason: failure.message,
        remote,
      });
      throw failure;
    }
    const sa = description.typedSearchAttributes;
    const runbook = sa.get(runbookAttribute);
    const target = sa.get(targetAttribute);
    // The first run of the chain: the same across continue-as-new, another for the next incident.
    const firstRun = description.raw.workflowExecutionInfo?.firstRunId;
    const chain = { ...(firstRun ? { chain: firstRun } : {}), runId: description.runId, state: description.status.name };
    const schedule = workflowId.startsWith('maintenance:') ? this.scheduleOf(workflowId, target) : undefined;
    if (schedule) {
      const name = runbook ?? schedule.runbook;
      return { runbook: name, targets: [...schedule.targets, ...this.actedOn(name)], ...chain };
    }
    const acted = runbook ? this.actedOn(runbook) : [];
    return { ...(runbook ? { runbook } : {}), ...(target ? { target } : {}), ...(acted.length ? { targets: acted } : {}), ...chain };
  }

  /** The other targets a runbook file changes (the config's definition of it; none for a compiled one). */
  private actedOn(runbook: unknown): string[] {
    const def =
      typeof runbook === 'string' && Object.hasOwn(this.deps.config.runbookDefinitions, runbook)
        ? this.deps.config.runbookDefinitions[runbook]
        : undefined;
    return def ? actedOnTargets(this.deps.config, def) : [];
  }

  /**
   * A maintenance run's schedule: a run started by hand has the schedule's own id; Temporal gives a
   * scheduled run that id and `-<its scheduled time>`, and the engine sets its target attribute to
   * the schedule's name (which tells `weekly` from `weekly-db`).
   */
  private scheduleOf(workflowId: string, target: string | undefined): MaintenanceSchedule | undefined {
    return this.deps.config.maintenance.find((m) => {
      const id = maintenanceWorkflowId(m.name);
      return workflowId === id || (target === m.name && workflowId.startsWith(`${id}-`));
    });
  }

  /** Runs the action, audits how it ended, and turns failures into ActionErrors. */
  private async perform<T>(
    who: Identity,
    action: string,
    subject: string | undefined,
    remote: string | undefined,
    work: () => Promise<T>,
    opts: { quiet?: boolean; reason?: string } = {},
  ): Promise<T> {
    try {
      const out = await work();
      // Reads are not actions: auditing each would bury the decisions in a console's polling.
      if (!opts.quiet)
        this.deps.audit({
          operator: who.operator.name,
          via: who.via,
          action,
          subject,
          result: 'done',
          ...(opts.reason ? { reason: opts.reason } : {}),
          remote,
        });
      return out;
    } catch (err) {
      const failure = toActionError(err);
      const result: AuditResult =
        failure.status === 404 ? 'not-found' : failure.status === 409 ? 'conflict' : failure.status === 400 ? 'invalid' : 'failed';
      this.deps.audit({ operator: who.operator.name, via: who.via, action, subject, result, reason: failure.message, remote });
      throw failure;
    }
  }
}

/** What scopeOf read of the run besides its scope: its chain and its state then. */
interface DescribedScope {
  chain?: string;
  runId: string;
  state: string;
}

/** A run the describe found ended: nothing to decide or cancel (the run's id may start again later). */
function requireRunning(scope: DescribedScope, workflowId: string, what: string): void {
  if (scope.state !== 'RUNNING')
    throw new ActionError(409, `workflow '${workflowId}' is ${scope.state.toLowerCase()}; there is nothing to ${what}`);
}

function toActionError(err: unknown): ActionError {
  if (err instanceof ActionError) return err;
  if (err instanceof CommandError) {
    if (err.exitCode === 2) return new ActionError(404, err.message);
    if (err.exitCode === 3) return new ActionError(503, err.message);
    return new ActionError(/already running|still running|there is nothing to/.test(err.message) ? 409 : 400, err.message);
  }
  return new ActionError(503, `the engine could not complete this: ${(err as Error).message?.slice(0, 200) ?? String(err)}`);
}

export function checkedWorkflowId(id: unknown): string {
  if (typeof id !== 'string' || !workflowIdPattern.test(id))
    throw new ActionError(400, 'expected an incident or maintenance workflow id (incident:… or maintenance:…)');
  return id;
}

function checkedReason(reason: unknown): string {
  if (reason === undefined || reason === null) return '';
  if (typeof reason !== 'string') throw new ActionError(400, 'reason: expected a string');
  if (reason.length > maxReasonChars) throw new ActionError(400, `reason: at most ${maxReasonChars} characters`);
  // Control characters would rewrite a terminal that prints the timeline.
  return reason.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
}
