// One incident's state: what the status query shows, the timeline an SRE reads afterwards, and
// the operator and Alertmanager signals that steer the run. Every runbook opens one first thing,
// so signals that arrived with the start (signal-with-start) are handled before any step runs.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxySinks,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  acknowledgeSignal,
  alertFiringSignal,
  alertNameAttribute,
  alertResolvedSignal,
  approveSignal,
  operatorRefusedSignal,
  outcomeAttribute,
  rejectSignal,
  runbookAttribute,
  severityAttribute,
  statusQuery,
  targetAttribute,
  cancelRequestedSignal,
  decisionUpdate,
  type AlertEvent,
  type DecisionRequest,
  type DecisionTaken,
  type OperatorDecision,
  type Outcome,
  type RunbookMetricsSinks,
  type RunbookResult,
  type RunbookStatus,
  type TimelineEntry,
} from '../messages.js';
import { markedAllAtOnce, takesDayChanges, takesLaterChanges } from './patchesFirst.js';
import { noWorkerTookIt } from './activities.js';

/** Enough to read a long incident; a signal storm cannot grow history or the query without bound. */
const maxTimeline = 200;
const keptHead = 20;
/** Entries the timeline never drops: who decided what (each happens at most a few times a run). */
const keptWhole = new Set(['approved', 'rejected', 'acknowledged']);
const maxDetail = 1_000;

export interface Decision {
  approved: boolean;
  by: string;
  reason: string;
}

export interface IncidentOpening {
  runbook: string;
  target: string;
  operators: string[];
  /** Names that may acknowledge but not decide. */
  responders?: string[];
  alertName?: string;
  severity?: string;
  /** The opening alert's startsAt (Alertmanager's): when the outage began, for time-to-recover. */
  alertStartsAt?: string;
  /**
   * Runbook-file runs: alerts are held one by one (by fingerprint) and the incident is resolved only
   * when every alert it holds is; repeats of a firing alert fold silently. The compiled runbooks keep
   * the first-resolution rule their recorded histories replay with.
   */
  perAlert?: boolean;
  /** A run continued as new: the state of the run before it. */
  resumed?: IncidentSnapshot;
  /** The opening alert, when it came in the run's input instead of as the first alertFiring signal. */
  openingAlert?: AlertEvent;
}

/** What a run continued as new carries over: everything operators and pages have seen. */
export interface IncidentSnapshot {
  status: RunbookStatus;
  startedAt: string;
  alerts: Array<[string, 'firing' | 'resolved']>;
  alertsUntracked: number;
  decision?: Decision;
  acknowledgement?: OperatorDecision;
  /** A cancel asked for by a door whose cancellation reaches the run continued as new. */
  cancelRequest?: { operator: string; reason: string };
  /** Its pages carried the run chain for PagerDuty (takesDayChanges): the next run keeps the key. */
  pagesKeyedByRun?: boolean;
  resolution?: AlertEvent;
  triggered: string[];
  dropped: number;
}

/** Alerts held one by one; past this, further fingerprints are counted, not tracked. */
const maxTrackedAlerts = 500;

const { metrics } = proxySinks<RunbookMetricsSinks>();

export class Incident {
  readonly status: RunbookStatus;
  readonly workflowId: string;
  readonly runId: string;
  /**
   * The run pages are keyed by: this run, or for a runbook-file run the first run of its chain, so
   * a run continued as new never pages again for a level it already paged.
   */
  readonly pageRunId: string;
  /** The first run of this run's chain: the same across continue-as-new; chat buttons carry it. */
  readonly chainId: string;
  readonly startedAt: string;
  private decision?: Decision;
  acknowledgement?: OperatorDecision;
  /** Who asked the doors to cancel this run, and why (the cancellation itself names nobody). */
  cancelRequest?: { operator: string; reason: string };
  resolution?: AlertEvent;
  /** Channels that were sent a trigger: they, and only they, get the acknowledge and resolve. */
  readonly triggered = new Set<string>();
  /** Guard request ids this run released or withdrew: never asked again (steps/destructiveSlot.ts). */
  readonly settledRequests = new Set<string>();
  private readonly operators: Set<string>;
  private readonly responders: Set<string>;
  /** Refusals recorded on the timeline; past a few, only every 10th, 100th… is. */
  private refusals = 0;
  /** Operator signals that change nothing (a repeated acknowledgement, an ignored decision), by event: counted as refusals are. */
  private readonly noise = new Map<string, number>();
  private readonly firstTask: number;
  /** Set in a run continued as new: whether the run before keyed its pages by run (undefined: a first run). */
  private resumedKeyedByRun?: boolean;
  private startAlertSeen = false;
  private dropped = 0;
  private readonly perAlert: boolean;
  /** perAlert: every alert this incident holds, by fingerprint. */
  private readonly alerts = new Map<string, 'firing' | 'resolved'>();
  private alertsUntracked = 0;

  private constructor(opening: IncidentOpening) {
    const info = workflowInfo();
    this.workflowId = info.workflowId;
    this.runId = info.runId;
    this.perAlert = opening.perAlert === true;
    this.pageRunId = this.perAlert ? info.firstExecutionRunId : info.runId;
    this.chainId = info.firstExecutionRunId;
    this.firstTask = info.historyLength;
    this.operators = new Set(opening.operators);
    this.responders = new Set(opening.responders ?? []);
    const r = opening.resumed;
    if (r) {
      this.startedAt = r.startedAt;
      this.status = r.status;
      for (const [fp, state] of r.alerts) this.alerts.set(fp, state);
      this.alertsUntracked = r.alertsUntracked;
      if (r.decision) this.decision = r.decision;
      if (r.acknowledgement) this.acknowledgement = r.acknowledgement;
      if (r.cancelRequest) this.cancelRequest = r.cancelRequest;
      this.resumedKeyedByRun = r.pagesKeyedByRun === true;
      if (r.resolution) this.resolution = r.resolution;
      for (const c of r.triggered) this.triggered.add(c);
      this.dropped = r.dropped;
      // The alert that comes with a continued run's first task is a repeat, not an opening.
      this.startAlertSeen = true;
      return;
    }
    this.startedAt = now();
    const alertStartsAt = outageStart(opening.alertStartsAt, this.startedAt);
    this.status = {
      runbook: opening.runbook,
      target: opening.target,
      step: 'start',
      restartAttempts: 0,
      alertsFolded: 0,
      timeline: [],
      ...(alertStartsAt ? { alertStartsAt } : {}),
    };
  }

  /**
   * Whether pages carry the run chain for PagerDuty: decided by the run that first paged, so an
   * incident keeps one dedup key across continue-as-new whatever marker a later run records.
   */
  get pagesKeyedByRun(): boolean {
    return this.resumedKeyedByRun ?? takesDayChanges();
  }

  /** Everything a run continued as new needs to carry on where this one stopped. */
  snapshot(): IncidentSnapshot {
    return {
      status: this.status,
      startedAt: this.startedAt,
      alerts: [...this.alerts],
      alertsUntracked: this.alertsUntracked,
      ...(this.decision ? { decision: this.decision } : {}),
      ...(this.acknowledgement ? { acknowledgement: this.acknowledgement } : {}),
      ...(this.cancelRequest ? { cancelRequest: this.cancelRequest } : {}),
      ...(this.pagesKeyedByRun ? { pagesKeyedByRun: true } : {}),
      ...(this.resolution ? { resolution: this.resolution } : {}),
      triggered: [...this.triggered],
      dropped: this.dropped,
    };
  }

  /** Opens the incident: handlers first, then the search attributes that make it listable. */
  static open(opening: IncidentOpening): Incident {
    const incident = new Incident(opening);
    incident.listen();
    if (opening.resumed) {
      incident.record('continued', `history kept short: run ${incident.runId} carries on from where the last run stopped`);
      return incident;
    }
    // An opening alert in the input (an eager start) is taken where the signal that comes with
    // signal-with-start is: as soon as its handler is set, first on the timeline.
    if (opening.openingAlert) incident.alertFiringSignalled(opening.openingAlert);
    const attributes = [
      { key: runbookAttribute, value: opening.runbook },
      { key: targetAttribute, value: opening.target },
      ...(opening.alertName ? [{ key: alertNameAttribute, value: opening.alertName }] : []),
      ...(opening.severity ? [{ key: severityAttribute, value: opening.severity }] : []),
    ];
    // A run the webhook or the CLI started carries them from its start (triggers/plan.ts): it
    // upserts only what is missing, where each upsert is a history event and a visibility write.
    const given = workflowInfo().typedSearchAttributes;
    const toSet = markedAllAtOnce() ? attributes.filter((a) => given.get(a.key) !== a.value) : attributes;
    if (toSet.length > 0) upsertSearchAttributes(toSet);
    incident.record('opened', `${opening.runbook} for '${opening.target}'`);
    return incident;
  }

  /** The operator decision on the pending approval, if one arrived. */
  get decided(): Decision | undefined {
    return this.decision;
  }

  /** From here until closeApproval(), operators' approve/reject signals decide `step`. */
  openApproval(step: string, timeoutAt: string): void {
    delete this.decision;
    this.status.pendingApproval = { step, since: now(), timeoutAt };
  }

  closeApproval(): void {
    delete this.status.pendingApproval;
  }

  get resolved(): boolean {
    return this.resolution !== undefined;
  }

  /** Whether an alert this incident holds still fires: a resolution may yet come (a run by hand holds none). */
  get firing(): boolean {
    return this.firingCount() > 0;
  }

  /** A re-escalation: the acknowledgement no longer stands, so the next one counts again. */
  withdrawAcknowledgement(): OperatorDecision | undefined {
    const ack = this.acknowledgement;
    delete this.acknowledgement;
    delete this.status.acknowledgedBy;
    return ack;
  }

  enter(step: string): void {
    this.status.step = step;
  }

  /** The step a timeline entry is filed under. */
  protected currentStep(): string {
    return this.status.step;
  }

  /**
   * This incident as one of several steps running side by side (a parallel group) sees it: what it
   * records is filed under its own step, not under whichever sibling entered last. Everything else,
   * the status and the timeline included, is the incident's own.
   */
  lane(step: string): Incident {
    let current = step;
    return new Proxy(this, {
      get(incident, key, receiver) {
        if (key === 'enter')
          return (next: string) => {
            current = next;
            incident.enter(next);
          };
        if (key === 'currentStep') return () => current;
        return Reflect.get(incident, key, receiver) as unknown;
      },
    });
  }

  /**
   * An entry that changes nothing, which a script or a stuck button can send by the hundred: the
   * first five of each kind, then every 10th, 100th…, so it never pushes what mattered (who
   * approved, what was restarted) out of the timeline.
   */
  private recordNoise(event: string, detail: string | undefined, actor: string): void {
    const n = (this.noise.get(event) ?? 0) + 1;
    this.noise.set(event, n);
    if (n > 5 && !Number.isInteger(Math.log10(n))) return;
    this.record(event, n > 5 ? `${detail ?? ''} (${n} so far)` : detail, actor);
  }

  record(event: string, detail?: string, actor = 'engine'): void {
    const entry: TimelineEntry = { at: now(), step: this.currentStep(), event, actor };
    if (detail !== undefined) entry.detail = cap(detail, maxDetail);
    const timeline = this.status.timeline;
    timeline.push(entry);
    if (timeline.length <= maxTimeline) return;
    // Keep how the incident began and how it is going, and every operator decision; drop the
    // oldest of the rest. A run continued as new carries the marker (and its count) over.
    const marker = timeline[keptHead];
    if (marker?.step === 'timeline' && marker.event === 'entries dropped') {
      if (this.dropped === 0) this.dropped = Number(/^(\d+)/.exec(marker.detail ?? '')?.[1] ?? 0);
    } else timeline.splice(keptHead, 0, { at: entry.at, step: 'timeline', event: 'entries dropped', actor: 'engine' });
    while (timeline.length > maxTimeline) {
      let i = keptHead + 1;
      while (i < timeline.length - 1 && keptWhole.has(timeline[i]!.event)) i++;
      timeline.splice(i, 1);
      this.dropped += 1;
    }
    timeline[keptHead]!.detail = `${this.dropped} entries dropped to keep the timeline short`;
  }

  isOperator(name: string): boolean {
    return this.operators.has(name);
  }

  finish(outcome: Outcome, detail: string): RunbookResult {
    this.status.outcome = outcome;
    this.status.outcomeDetail = detail;
    delete this.status.pendingApproval;
    this.enter('done');
    this.record(outcome, detail);
    upsertSearchAttributes([{ key: outcomeAttribute, value: outcome }]);
    // The one log line per run: everything else is on the timeline.
    log.info('runbook finished', { runbook: this.status.runbook, target: this.status.target, outcome, detail });
    const endedAt = now();
    metrics.runbookOutcome(this.status.runbook, outcome, Date.parse(endedAt) - Date.parse(this.startedAt));
    const alertStartsAt = this.status.alertStartsAt;
    return {
      outcome,
      detail,
      startedAt: this.startedAt,
      endedAt,
      timeline: [...this.status.timeline],
      ...(alertStartsAt ? { alertStartsAt } : {}),
    };
  }

  /**
   * Runs the runbook body. An unexpected failure still ends with an outcome people can list
   * ('failed', and a best-effort page); a cancellation is recorded and then honoured.
   */
  async conclude(body: () => Promise<RunbookResult>, onFailure?: (detail: string) => Promise<void>): Promise<RunbookResult> {
    try {
      return await body();
    } catch (err) {
      if (isCancellation(err)) {
        this.finish('cancelled', this.cancelledDetail());
        throw err;
      }
      const detail = describeFailure(err);
      if (onFailure) {
        await CancellationScope.nonCancellable(() => onFailure(detail)).catch((notifyErr) =>
          this.record('failure notification failed', describeFailure(notifyErr)),
        );
      }
      return this.finish('failed', detail);
    }
  }

  private listen(): void {
    setHandler(statusQuery, () => this.status);
    setHandler(approveSignal, (d) => this.decide(true, d));
    setHandler(rejectSignal, (d) => this.decide(false, d));
    setHandler(acknowledgeSignal, (d) => this.acknowledge(d));
    setHandler(cancelRequestedSignal, (d) => {
      const who = nameOf(d);
      if (this.cancelRequest || !who) return;
      this.cancelRequest = { operator: who, reason: String(d.reason ?? '').slice(0, 500) };
      this.record('cancel requested', withDoor(d.reason || undefined, d), who);
    });
    setHandler(
      decisionUpdate,
      (d): DecisionTaken => {
        const pending = this.status.pendingApproval?.step;
        if (d.kind === 'acknowledge') this.acknowledge(d);
        else this.decide(d.kind === 'approve', d);
        return { kind: d.kind, operator: nameOf(d), ...(d.kind !== 'acknowledge' && pending ? { step: pending } : {}) };
      },
      { validator: (d) => this.refusal(d) },
    );
    setHandler(operatorRefusedSignal, (r) => {
      const n = (this.refusals += 1);
      if (n > 5 && !Number.isInteger(Math.log10(n))) return;
      const action = typeof r?.action === 'string' ? r.action.slice(0, 32) : 'action';
      const detail = `${String(r?.reason ?? '')}${n > 5 ? ` (${n} refusals so far)` : ''}`;
      this.record(`${action} refused`, withDoor(detail, r), nameOf(r) || 'unknown');
    });
    setHandler(alertFiringSignal, (e) => this.alertFiringSignalled(e));
    setHandler(alertResolvedSignal, (e) => {
      if (this.perAlert) return this.alertResolved(e);
      if (this.resolution) return;
      this.resolution = { fingerprint: e?.fingerprint, at: String(e?.at ?? now()) };
      this.record('alert resolved', 'the run ends at the next safe point', 'alertmanager');
    });
  }

  private alertFiringSignalled(e: AlertEvent | undefined): void {
    if (this.perAlert) return this.alertFiring(e);
    // The signal that came with signal-with-start is the alert that opened the incident, not a
    // repeat: it is delivered in the first workflow task.
    if (!this.startAlertSeen && workflowInfo().historyLength === this.firstTask) {
      this.startAlertSeen = true;
      return this.record('alert firing', e?.fingerprint, 'alertmanager');
    }
    this.status.alertsFolded += 1;
    this.record('alert repeated', `folded into this run (${this.status.alertsFolded} so far)`, 'alertmanager');
  }

  /**
   * A firing alert, runbook-file runs: a new fingerprint is held; a repeat of one already firing
   * changes nothing and is only counted (the timeline notes the 1st, 10th, 100th… so a storm of
   * repeats cannot crowd out what happened); one that resolved and fires again is held again.
   * Either opens again an incident whose alerts had all resolved.
   */
  private alertFiring(e: AlertEvent | undefined): void {
    const fp = fingerprintOf(e);
    const opening = !this.startAlertSeen && workflowInfo().historyLength === this.firstTask;
    this.startAlertSeen = true;
    const state = this.alerts.get(fp);
    if (state === 'firing' || (state === undefined && this.alerts.size >= maxTrackedAlerts)) {
      if (state === undefined) this.alertsUntracked += 1;
      const n = (this.status.alertsFolded += 1);
      if (Number.isInteger(Math.log10(n)))
        this.record('alert repeated', `${n} repeat${n === 1 ? '' : 's'} folded into this run so far`, 'alertmanager');
      return;
    }
    this.alerts.set(fp, 'firing');
    if (opening) return this.record('alert firing', e?.fingerprint, 'alertmanager');
    if (state === 'resolved') {
      if (this.resolution) {
        delete this.resolution;
        this.record('alert firing again', `${describeFingerprint(fp)}: the incident is open again`, 'alertmanager');
      } else this.record('alert firing again', describeFingerprint(fp), 'alertmanager');
      return;
    }
    // An alert the incident never held, after every one it held resolved: the outage is not over,
    // and ending now would leave this alert unhandled until Alertmanager repeats it (hours).
    if (this.resolution && takesLaterChanges()) {
      delete this.resolution;
      return this.record('alert firing', `another alert (${describeFingerprint(fp)}): the incident is open again`, 'alertmanager');
    }
    this.record('alert firing', `another alert (${describeFingerprint(fp)}); ${this.firingCount()} firing`, 'alertmanager');
  }

  /** A resolved alert, runbook-file runs: the incident is resolved once every alert it holds is. */
  private alertResolved(e: AlertEvent | undefined): void {
    const fp = fingerprintOf(e);
    if (this.resolution) return;
    if (this.alerts.has(fp)) this.alerts.set(fp, 'resolved');
    else if (this.alerts.size > 0)
      return this.record('alert resolved', `${describeFingerprint(fp)} is not one this incident holds; ignored`, 'alertmanager');
    const firing = this.firingCount();
    if (firing > 0)
      return this.record('alert resolved', `${describeFingerprint(fp)}; ${firing} still firing, the run carries on`, 'alertmanager');
    this.resolution = { ...(e?.fingerprint ? { fingerprint: e.fingerprint } : {}), at: String(e?.at ?? now()) };
    this.record('alert resolved', 'every alert of this incident resolved: the run ends at the next safe point', 'alertmanager');
  }

  private firingCount(): number {
    let n = 0;
    for (const s of this.alerts.values()) if (s === 'firing') n++;
    return n;
  }

  /** How a cancellation reads on the timeline and in the result: by whom and why, when a door said. */
  cancelledDetail(): string {
    const c = this.cancelRequest;
    if (!c) return 'the workflow was cancelled';
    return `cancelled by ${c.operator}${c.reason ? `: ${c.reason}` : ''}`;
  }

  private acknowledge(d: OperatorDecision): void {
    const who = nameOf(d);
    if (!this.isOperator(who) && !this.responders.has(who))
      return this.recordNoise('acknowledgement ignored', `'${who}' is not an operator`, who || 'unknown');
    if (this.acknowledgement) return this.recordNoise('acknowledgement repeated', withDoor(d.reason, d), who);
    this.acknowledgement = { operator: who, reason: String(d.reason ?? '') };
    this.status.acknowledgedBy = who;
    this.record('acknowledged', withDoor(d.reason, d), who);
  }

  /**
   * Why a decision sent as an update cannot take effect (thrown: the update is refused and nothing
   * is recorded), checked against the run's state when it arrives, not when a door last looked.
   */
  private refusal(d: DecisionRequest): void {
    const who = nameOf(d);
    const kind = d?.kind;
    if (kind !== 'approve' && kind !== 'reject' && kind !== 'acknowledge') throw new Error('expected approve, reject or acknowledge');
    if (kind === 'acknowledge') {
      if (!this.isOperator(who) && !this.responders.has(who)) throw new Error(`'${who}' may not acknowledge this run`);
      if (this.acknowledgement) throw new Error(`already acknowledged by ${this.acknowledgement.operator}`);
      return;
    }
    if (!this.isOperator(who)) throw new Error(`'${who}' may not decide for this run`);
    const pending = this.status.pendingApproval;
    if (!pending) throw new Error(`nothing to ${kind}: the run is not waiting for an approval (it is at step ${this.status.step})`);
    if (this.decision) throw new Error(`already ${this.decision.approved ? 'approved' : 'rejected'} by ${this.decision.by}`);
    if (d.step !== undefined && d.step !== pending.step)
      throw new Error(`this is about step ${String(d.step).slice(0, 41)}; the run waits on ${pending.step}`);
  }

  private decide(approved: boolean, d: OperatorDecision): void {
    const who = nameOf(d);
    const verb = approved ? 'approval' : 'rejection';
    if (!this.isOperator(who)) return this.recordNoise(`${verb} ignored`, `'${who}' is not an operator`, who || 'unknown');
    const pending = this.status.pendingApproval;
    if (!pending) return this.recordNoise(`${verb} ignored`, 'no approval is pending', who);
    if (d.step !== undefined && d.step !== pending.step)
      return this.record(`${verb} ignored`, `it was for step ${String(d.step).slice(0, 41)}, and the run waits on ${pending.step}`, who);
    if (this.decision) return this.recordNoise(`${verb} ignored`, `already decided by ${this.decision.by}`, who);
    this.decision = { approved, by: who, reason: String(d.reason ?? '') };
    if (approved) this.status.approvedBy = who;
    this.record(approved ? 'approved' : 'rejected', withDoor(`${pending.step}${d.reason ? `: ${d.reason}` : ''}`, d), who);
  }
}

/**
 * Waits up to `ms` for `done`; true if it came true. A zero wait only looks: `condition` with a
 * zero timeout would mean "forever" in old histories and needs a patch marker in new ones.
 */
export async function waitFor(done: () => boolean, ms: number): Promise<boolean> {
  if (done()) return true;
  if (ms <= 0) return false;
  return condition(done, ms);
}

export function now(): string {
  // The workflow clock: deterministic on replay.
  return new Date().toISOString();
}

export function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 12)} [… cut]`;
}

/** Keeps the end: the newest log lines are the ones that explain an outage. */
export function capTail(text: string, max: number): string {
  return text.length <= max ? text : `[cut …] ${text.slice(text.length - max + 8)}`;
}

/** The reason a step failed, as an SRE needs it: the activity and its own message. */
export function describeFailure(err: unknown): string {
  if (err instanceof ActivityFailure && noWorkerTookIt(err)) {
    return `${err.activityType} failed: no host agent took it in time (guardrails.agentWait): is the agent for this target's host running and polling its queue?`;
  }
  if (err instanceof ActivityFailure) {
    const cause = err.cause instanceof Error ? err.cause.message : err.message;
    return `${err.activityType} failed: ${cause}`;
  }
  if (err instanceof ApplicationFailure || err instanceof Error) return err.message;
  return String(err);
}

/**
 * Whether retrying the failed activity could ever help (a missing target or bad input cannot, and
 * neither can asking a host agent that did not take the step within the plan's wait: none is running).
 */
export function isPermanent(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return (cause instanceof ApplicationFailure && cause.nonRetryable === true) || noWorkerTookIt(err);
}

function fingerprintOf(e: AlertEvent | undefined): string {
  return typeof e?.fingerprint === 'string' ? e.fingerprint.slice(0, 128) : '';
}

function describeFingerprint(fp: string): string {
  return fp ? `fingerprint ${fp}` : 'an alert without fingerprint';
}

/**
 * The alert's startsAt as an outage start: an ISO time at most a day before the run started and not
 * after it (a sender's clock or a zero time must not turn a 6 s outage into years). Undefined otherwise.
 */
function outageStart(startsAt: string | undefined, runStartedAt: string): string | undefined {
  if (typeof startsAt !== 'string' || startsAt.length > 64) return undefined;
  const at = Date.parse(startsAt);
  const started = Date.parse(runStartedAt);
  if (!Number.isFinite(at) || at > started + 5_000 || at < started - 86_400_000) return undefined;
  return new Date(Math.min(at, started)).toISOString();
}

function nameOf(d: { operator?: unknown } | undefined): string {
  return typeof d?.operator === 'string' ? d.operator : '';
}

/**
 * The door a decision came through, after its detail: "(via chat)". A door is a short word the
 * engine sets; anything else (a hand-made signal) is left out rather than shown.
 */
function withDoor(detail: string | undefined, d: { via?: unknown } | undefined): string | undefined {
  const via = typeof d?.via === 'string' && /^[a-z-]{1,16}$/.test(d.via) ? d.via : undefined;
  if (!via) return detail;
  return detail ? `${detail} (via ${via})` : `via ${via}`;
}
