// The runbooks' public surface: inputs, signals, queries, outcomes and ids. Triggers and the CLI
// import these same objects, so a message's name and payload type exist exactly once.
import { defineQuery, defineSignal, defineUpdate, type Sinks } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { TargetKind } from '../config/schema.js';
import type { RunbookDefinition } from '../config/runbookSchema.js';
import type { Diagnostics, SilenceMatcher } from '../activities/contract.js';
import type { IncidentSnapshot } from './steps/incident.js';

export interface AlertRef {
  name: string;
  severity: string;
  /** Labels as received: recorded for the timeline, never used to pick what is touched. */
  labels: Record<string, string>;
  fingerprint?: string;
  startsAt?: string;
  summary?: string;
}

export interface EscalationLevelPlan {
  name: string;
  afterMs: number;
  channels: string[];
  /** Page this level again this often while it is the latest paged and nobody has acknowledged. Absent in runs planned before. */
  repeatMs?: number;
  /** At most this many repeats of the level (absent: until the next level is due, or without end on the last). */
  repeatTimes?: number;
}

/** The escalation a run follows: the policy's levels and what happens after an acknowledgement. */
export interface EscalationPlanInput {
  policy: string;
  levels: EscalationLevelPlan[];
  /** An acknowledged incident still unresolved this long after the acknowledgement escalates again. */
  reescalateAfterAckMs?: number;
  /** How long an acknowledged incident stays open waiting for its alerts to clear; default 24 h. */
  keepOpenMs?: number;
  /**
   * How long the last level has to acknowledge after its last page before the run gives up. Absent
   * in runs planned before: they give it as long as the level before it had, which is no time at
   * all for a single level at 0 s (or two last levels at the same delay).
   */
  lastAnswerMs?: number;
}

/**
 * Where a runbook file's escalation stands, carried by a run continued as new. Only `startedAt` and
 * `paged` exist in runs started before repeats and re-escalation.
 */
export interface EscalationProgress {
  /** The clock the levels' delays count from; a re-escalation moves it so the next level is due at once. */
  startedAt: number;
  /** Levels paged in the current pass. */
  paged: number;
  /** Pages sent per level (first page, repeats, re-escalations): each is keyed by its number. */
  pages?: number[];
  /** Repeats of the latest paged level in the current pass. */
  repeats?: number;
  /** Acknowledgements passed on to the paged channels. */
  acks?: number;
  /** Set while an acknowledged escalation waits for the alerts to clear: when the acknowledgement came. */
  following?: { ackedAt: number };
  /** The first acknowledgement followed: how long the incident stays open counts from here. */
  openSince?: number;
  reescalations?: number;
  /** A re-escalation whose page is not yet sent. */
  reescalating?: boolean;
  /** An escalation that began acknowledged told the first level why, once. */
  toldEarlyAck?: boolean;
  /**
   * Set by an escalation counted from the incident's start (`from: incident`): when each level was
   * first paged. Its repeats count from then, not from when it fell due, so a level paged late is
   * not paged again at once.
   */
  levelPagedAt?: number[];
}

export interface GuardrailPlan {
  restartAttempts: number;
  restartBackoffMs: number;
  verifyDeadlineMs: number;
  verifyIntervalMs: number;
  approvalTimeoutMs: number;
  restartsPerWindow: { max: number; windowMs: number };
  maxConcurrentDestructive: number;
  /** How long a destructive action waits for a free slot before escalating instead (default 10 minutes). */
  slotWaitMs?: number;
  /**
   * How long an activity on a host agent's queue waits for an agent to take it before it fails
   * (steps/activities.ts). Absent in runs planned before: they wait as long as it takes.
   */
  agentWaitMs?: number;
}

export interface RunbookInput {
  /** The runbook's name (a runbook file's `name:`; the compiled runbooks' own names in old runs). */
  runbook: string;
  target: string;
  targetKind: TargetKind;
  /** Where the target's activities run: the engine's queue, or its host agent's. */
  targetQueue: string;
  /** Whether the target has a configured HTTP action (offered by the high-error-rate runbook). */
  hasAction: boolean;
  alert: AlertRef;
  escalation: EscalationPlanInput;
  /** Names allowed to approve or reject; anyone else's signal is recorded and ignored. */
  operators: string[];
  /** Names allowed only to acknowledge (the responder role). Absent in runs planned before roles. */
  responders?: string[];
  guardrails: GuardrailPlan;
  dryRun: boolean;
  /**
   * The alert that opened the incident, when the webhook started the run with it (an eager start,
   * whose first workflow task comes back in the start call's reply) instead of signal-with-start.
   * Absent in runs started by signal-with-start: their opening alert is the first alertFiring signal.
   */
  openingAlert?: AlertEvent;
}

/** A target a run may touch besides (or as) its own: resolved from config when the run was planned. */
export interface TargetRef {
  name: string;
  kind: TargetKind;
  queue: string;
  /** The target's configured labels: what a silence step matches. */
  labels: Record<string, string>;
  /** The targets it depends on (config `dependsOn`): what a dependencies step checks. Absent in runs planned before. */
  dependsOn?: string[];
  /** Its configured commands marked readOnly: tried again on a transient failure, and run in a dry run. */
  readOnlyCommands?: string[];
}

/**
 * The interpreter's input. The definition travels with the run, so a run replays against the
 * runbook it started with however the file changes afterwards.
 */
export interface RunbookRunInput extends RunbookInput {
  definition: RunbookDefinition;
  /** Every target the definition names, the run's own first: steps resolve their queue here. */
  targets: TargetRef[];
  /** Set for maintenance runbooks: the schedule, its targets (what forEach walks) and window. */
  maintenance?: {
    schedule: string;
    targets: string[];
    windowMs: number;
    silence: SilenceMatcher[];
    channels: string[];
  };
  /** Who started it: 'alertmanager', 'schedule', or the operator who ran it by hand. */
  startedBy: string;
  /** Set on a run continued as new: where the run before it stood. */
  resume?: RunbookResume;
}

/**
 * What a run continued as new carries (its history kept short under a storm of repeated alerts):
 * the incident's state and timeline, every step's outputs, and the step it was waiting in.
 */
export interface RunbookResume {
  incident: IncidentSnapshot;
  steps: Record<string, Record<string, unknown>>;
  /** The top-level step that was waiting (an escalation or an approval). */
  at: string;
  escalation?: EscalationProgress;
  approval?: { timeoutAt: number };
  diagnostics?: Diagnostics;
  /** Runs continued so far in this incident. */
  continued: number;
}

export interface MaintenanceInput {
  schedule: string;
  targets: Array<{ name: string; kind: TargetKind; queue: string }>;
  windowMs: number;
  silence: SilenceMatcher[];
  /** Channels told that the window opened and how it ended. */
  channels: string[];
  /** The cap shared with incidents' restarts (guardrails.maxConcurrentDestructive; default 2). */
  maxConcurrentDestructive?: number;
  dryRun: boolean;
}

export interface OperatorDecision {
  operator: string;
  reason: string;
  /**
   * The door it came through ('api', 'chat', 'console', 'cli'), set by the engine after it verified
   * the operator's credentials; absent from a signal sent straight to Temporal.
   */
  via?: string;
  /**
   * The approval step the decision is about (a chat button names the step of its page): ignored
   * when the run now waits on another step. Absent: whatever approval is pending.
   */
  step?: string;
}

/** An operator action the engine refused (no right to it): recorded on the incident's timeline. */
export interface RefusedAction {
  operator: string;
  action: string;
  reason: string;
  via?: string;
}

export interface AlertEvent {
  fingerprint?: string;
  at: string;
}

/** An operator's decision as the operator doors send it: the update's validator refuses one that cannot take effect. */
export interface DecisionRequest extends OperatorDecision {
  kind: 'approve' | 'reject' | 'acknowledge';
}

/** What the run did with a decision it took. */
export interface DecisionTaken {
  kind: DecisionRequest['kind'];
  operator: string;
  /** The approval step it decided (approve, reject). */
  step?: string;
}

/**
 * A decision as an update: taken, or refused with the reason (nothing pending, already decided,
 * another step, not a decider) before anything is recorded, so the door answers what really
 * happened. The signals stay for runs and tools that send them.
 */
export const decisionUpdate = defineUpdate<DecisionTaken, [DecisionRequest]>('decide');

/** Sent by the operator doors just before they cancel a run: who asked, and why, for its timeline. */
export const cancelRequestedSignal = defineSignal<[OperatorDecision]>('cancelRequested');

export const approveSignal = defineSignal<[OperatorDecision]>('approve');
export const rejectSignal = defineSignal<[OperatorDecision]>('reject');
export const acknowledgeSignal = defineSignal<[OperatorDecision]>('acknowledge');
export const operatorRefusedSignal = defineSignal<[RefusedAction]>('operatorRefused');
export const alertFiringSignal = defineSignal<[AlertEvent]>('alertFiring');
export const alertResolvedSignal = defineSignal<[AlertEvent]>('alertResolved');

export type Outcome =
  | 'recovered'
  | 'resolved-externally'
  | 'false-alarm'
  | 'escalated'
  | 'rejected'
  | 'suppressed'
  | 'failed'
  | 'completed'
  | 'cancelled'
  /** Never returned by a runbook: a run somebody terminated, as reports list it. */
  | 'terminated';

/** The reads that run as local activities (steps/activities.ts, steps/readsTogether.ts): the ones the worker can drop. */
export const localReadTypes = ['checkSuppression', 'maintenanceWindowFor', 'verifyTarget', 'claimRestart', 'readsTogether'] as const;

/**
 * How a closing runbook reports itself to the engine's metrics. A sink, because workflow code cannot
 * touch prom-client; the worker does not call it during replay, so a run replayed on another engine
 * is not counted twice.
 */
export interface RunbookMetricsSinks extends Sinks {
  metrics: {
    runbookOutcome(runbook: string, outcome: Outcome, durationMs: number): void;
    /** A local read the worker dropped (evicting the run from its cache), asked again (steps/activities.ts). */
    localReadDropped(activityType: string): void;
  };
}

export interface TimelineEntry {
  /** ISO time from the workflow clock. */
  at: string;
  step: string;
  event: string;
  actor: string;
  detail?: string;
}

export interface RunbookStatus {
  runbook: string;
  target: string;
  step: string;
  restartAttempts: number;
  pendingApproval?: { step: string; since: string; timeoutAt: string };
  escalationLevel?: string;
  acknowledgedBy?: string;
  approvedBy?: string;
  alertsFolded: number;
  diagnosticsSummary?: string;
  timeline: TimelineEntry[];
  outcome?: Outcome;
  outcomeDetail?: string;
  /** When the outage began: the opening alert's startsAt, when it was plausible. */
  alertStartsAt?: string;
}

export interface RunbookResult {
  outcome: Outcome;
  detail: string;
  startedAt: string;
  endedAt: string;
  timeline: TimelineEntry[];
  /** When the outage began (the opening alert's startsAt); absent in older runs and runs without an alert. */
  alertStartsAt?: string;
}

export const statusQuery = defineQuery<RunbookStatus>('status');

/** The workflow type of the runbook interpreter: every runbook file runs as this one workflow. */
export const interpreterWorkflowType = 'runbook';

/** One remediation per target and runbook: repeats of an alert signal the running workflow. */
export function incidentWorkflowId(runbook: string, target: string): string {
  return `incident:${runbook}:${target}`;
}

export function maintenanceWorkflowId(schedule: string): string {
  return `maintenance:${schedule}`;
}

/** Keyword search attributes registered on the Temporal namespace for listing incidents. */
export const targetAttribute = defineSearchAttributeKey('RemediationTarget', SearchAttributeType.KEYWORD);
export const alertNameAttribute = defineSearchAttributeKey('AlertName', SearchAttributeType.KEYWORD);
export const severityAttribute = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const outcomeAttribute = defineSearchAttributeKey('Outcome', SearchAttributeType.KEYWORD);
export const runbookAttribute = defineSearchAttributeKey('Runbook', SearchAttributeType.KEYWORD);

export const searchAttributeNames = ['RemediationTarget', 'AlertName', 'Severity', 'Outcome', 'Runbook'] as const;
