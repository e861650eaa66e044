// Turns configuration plus a matched alert (or a maintenance schedule) into the workflow input.
// Everything a runbook needs is resolved here, once, into plain numbers and names: workflow code
// never reads configuration, and workflow history records exactly what the run was told.
import { deciders, type ActionScope } from '../config/operatorPolicy.js';
import type { EngineConfig, EscalationPolicy, MaintenanceSchedule, Target } from '../config/schema.js';
import { hostTaskQueue } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { matchesEverything } from '../config/matchers.js';
import type { SilenceMatcher } from '../activities/contract.js';
import { actionSteps, namedTargets, targetsNamedBy } from '../config/runbookLoad.js';
import { configMutatingSteps, mutatingSteps, type RunbookDefinition } from '../config/runbookSchema.js';
import {
  alertNameAttribute,
  runbookAttribute,
  severityAttribute,
  targetAttribute,
  type AlertRef,
  type GuardrailPlan,
  type MaintenanceInput,
  type RunbookInput,
  type RunbookRunInput,
  type TargetRef,
} from '../workflows/messages.js';
import type { BindingMatch } from './alerts/binding.js';

export interface IncomingAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  fingerprint?: string;
  startsAt?: string;
}

export interface PlanOptions {
  /** The engine's task queue; defaults to config.temporal.taskQueue. */
  engineQueue?: string;
  /** Who starts the run: 'alertmanager' (the default), 'schedule', or an operator's name. */
  startedBy?: string;
  /** Dry-run this run even when the config does not say so (`remediate run --dry-run`). */
  dryRun?: boolean;
}

type Matched = Extract<BindingMatch, { matched: true }>;

// Labels travel into workflow history and search attributes; an alert with a megabyte of labels
// must not become a megabyte per workflow start.
const maxLabels = 64;
const maxLabelValue = 1_024;
const maxSummary = 500;
const maxSeverity = 64;

/**
 * The interpreter's input for an incident: the runbook file's checked definition travels with the
 * run, with every target it may touch resolved to its queue and labels.
 */
export function planRunbook(
  config: EngineConfig,
  match: Matched,
  alert: IncomingAlert,
  options: PlanOptions = {},
): RunbookRunInput | RunbookInput {
  if (match.binding.compiled) return planIncident(config, match, alert, options);
  return planRunbookRun(config, match, alert, options);
}

export function planRunbookRun(config: EngineConfig, match: Matched, alert: IncomingAlert, options: PlanOptions = {}): RunbookRunInput {
  const definition = config.runbookDefinitions[match.runbook];
  if (!definition)
    throw new Error(`planning runbook '${match.runbook}' for target '${match.target}' failed: no such runbook file is loaded`);
  const base = planIncident(config, match, alert, options);
  return {
    ...base,
    // Whoever decides for the run must have in scope every target it changes, not only the incident's.
    ...decidersFor(config, { runbook: match.runbook, target: match.target, targets: actedOnTargets(config, definition) }),
    definition,
    targets: targetRefs(config, [match.target, ...namedTargets(definition)], options.engineQueue),
    startedBy: options.startedBy ?? 'alertmanager',
    ...(options.dryRun ? { dryRun: true } : {}),
  };
}

/** The search attributes an incident starts with, whoever starts it (an alert, an operator): what listings and reports find it by. */
export function incidentSearchAttributes(input: Pick<RunbookInput, 'target' | 'runbook' | 'alert'>) {
  return [
    { key: targetAttribute, value: input.target },
    { key: alertNameAttribute, value: input.alert.name },
    { key: severityAttribute, value: input.alert.severity },
    { key: runbookAttribute, value: input.runbook },
  ];
}

/** The input of the compiled runbooks (kept registered for the runs that started on them). */
export function planIncident(config: EngineConfig, match: Matched, alert: IncomingAlert, options: PlanOptions = {}): RunbookInput {
  const target = config.targets[match.target];
  if (!target) throw new Error(`planning ${match.runbook} for target '${match.target}' failed: no such target in the configuration`);
  const alertRef = alertRefOf(alert);
  const policyName = escalationPolicyName(config, match.binding, alertRef.severity);
  const policy = config.escalation.policies[policyName];
  if (!policy) throw new Error(`planning ${match.runbook} for target '${match.target}' failed: no escalation policy '${policyName}'`);
  return {
    runbook: match.runbook,
    target: match.target,
    targetKind: target.kind,
    targetQueue: targetQueue(config, target, options.engineQueue),
    hasAction: target.kind === 'http' && target.action !== undefined,
    alert: alertRef,
    escalation: escalationPlan(policyName, policy),
    ...decidersFor(config, { runbook: match.runbook, target: match.target }),
    guardrails: guardrailPlan(config, target),
    dryRun: config.dryRun,
  };
}

/**
 * The binding's policy for the alert's severity, else the binding's own policy, else the config's
 * for the severity, else the default: always a name the config gives, never one from the alert.
 */
export function escalationPolicyName(
  config: EngineConfig,
  binding: { escalation?: string; escalationBySeverity?: Record<string, string> } | undefined,
  severity: string,
): string {
  // Own-property checks: a severity label of "constructor" must not find Object.prototype's.
  const own = binding?.escalationBySeverity ?? {};
  if (Object.hasOwn(own, severity)) return own[severity]!;
  if (binding?.escalation) return binding.escalation;
  const bySeverity = config.escalation.bySeverity;
  if (Object.hasOwn(bySeverity, severity)) return bySeverity[severity]!;
  return config.escalation.default;
}

/** A policy in milliseconds; its repeat and after-acknowledgement keys only where set, so plans without them look as before. */
function escalationPlan(policyName: string, policy: EscalationPolicy): RunbookInput['escalation'] {
  return {
    policy: policyName,
    levels: policy.levels.map((l) => ({
      name: l.name,
      afterMs: parseDuration(l.after),
      channels: [...l.channels],
      ...(l.repeat ? { repeatMs: parseDuration(l.repeat) } : {}),
      ...(l.repeatTimes !== undefined ? { repeatTimes: l.repeatTimes } : {}),
    })),
    ...(policy.reescalateAfterAck ? { reescalateAfterAckMs: parseDuration(policy.reescalateAfterAck) } : {}),
    ...(policy.keepOpen ? { keepOpenMs: parseDuration(policy.keepOpen) } : {}),
    lastAnswerMs: lastAnswerMs(policy),
  };
}

/** The last level's time to answer when neither the policy nor the levels' spacing give it any. */
export const defaultLastAnswerMs = 15 * 60_000;

/**
 * How long the last level has to acknowledge after its last page before the runbook gives up: the
 * policy's `answerWithin`, else the level's `repeat` interval, else as long as the level before it
 * had (a single level: its own delay), else (a single level at 0 s, two last levels at the same
 * delay) defaultLastAnswerMs, never no time at all.
 */
export function lastAnswerMs(policy: EscalationPolicy): number {
  if (policy.answerWithin) return parseDuration(policy.answerWithin);
  const last = policy.levels.at(-1)!;
  if (last.repeat) return parseDuration(last.repeat);
  const before = policy.levels.at(-2);
  const gap = parseDuration(last.after) - (before ? parseDuration(before.after) : 0);
  return gap > 0 ? gap : defaultLastAnswerMs;
}

export function guardrailPlan(config: EngineConfig, target: Target): GuardrailPlan {
  const g = config.guardrails;
  return {
    restartAttempts: g.restartAttempts,
    restartBackoffMs: parseDuration(g.restartBackoff),
    verifyDeadlineMs: parseDuration(target.verifyDeadline ?? g.verifyDeadline),
    verifyIntervalMs: parseDuration(g.verifyInterval),
    approvalTimeoutMs: parseDuration(g.approvalTimeout),
    restartsPerWindow: { max: g.restarts.max, windowMs: parseDuration(g.restarts.window) },
    maxConcurrentDestructive: g.maxConcurrentDestructive,
    agentWaitMs: parseDuration(g.agentWait),
  };
}

/** Systemd units are touched by the agent on their host; everything else by the engine. */
export function targetQueue(config: EngineConfig, target: Target, engineQueue = config.temporal.taskQueue): string {
  return target.kind === 'systemd' ? hostTaskQueue(config, target.host) : engineQueue;
}

export function alertRefOf(alert: IncomingAlert): AlertRef {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(alert.labels).slice(0, maxLabels)) labels[k.slice(0, 128)] = cap(v, maxLabelValue);
  const summary = alert.annotations?.summary ?? alert.annotations?.description;
  return {
    name: alert.labels.alertname ?? '',
    severity: cap(alert.labels.severity || 'unknown', maxSeverity),
    labels,
    ...(alert.fingerprint ? { fingerprint: alert.fingerprint } : {}),
    ...(alert.startsAt ? { startsAt: alert.startsAt } : {}),
    ...(summary ? { summary: cap(summary, maxSummary) } : {}),
  };
}

/** The interpreter's input for a schedule's maintenance runbook. */
export function planMaintenanceRun(config: EngineConfig, schedule: MaintenanceSchedule, options: PlanOptions = {}): RunbookRunInput {
  const definition = config.runbookDefinitions[schedule.runbook];
  if (!definition) throw new Error(`planning maintenance '${schedule.name}' failed: no runbook file named '${schedule.runbook}' is loaded`);
  const m = planMaintenance(config, schedule, options);
  const first = schedule.targets[0]!;
  const policyName = config.escalation.default;
  return {
    runbook: definition.name,
    target: schedule.name,
    targetKind: config.targets[first]!.kind,
    targetQueue: options.engineQueue ?? config.temporal.taskQueue,
    hasAction: false,
    alert: { name: 'maintenance', severity: 'info', labels: {} },
    escalation: { policy: policyName, levels: m.channels.length ? [{ name: 'maintenance', afterMs: 0, channels: m.channels }] : [] },
    ...decidersFor(config, { runbook: definition.name, targets: [...schedule.targets, ...actedOnTargets(config, definition)] }),
    guardrails: guardrailPlan(config, config.targets[first]!),
    dryRun: options.dryRun || config.dryRun,
    definition,
    targets: targetRefs(config, [...schedule.targets, ...namedTargets(definition)], options.engineQueue),
    maintenance: {
      schedule: schedule.name,
      targets: [...schedule.targets],
      windowMs: m.windowMs,
      silence: m.silence,
      channels: m.channels,
    },
    startedBy: options.startedBy ?? 'schedule',
  };
}

/**
 * Who the run takes decisions from: the names the operator policy lets approve this runbook on these
 * targets, and those it lets only acknowledge (omitted when none, as runs planned before roles were).
 */
function decidersFor(config: EngineConfig, scope: ActionScope): { operators: string[]; responders?: string[] } {
  const { approvers, responders } = deciders(config.operators, scope);
  return { operators: approvers, ...(responders.length > 0 ? { responders } : {}) };
}

/**
 * Targets a definition changes beyond the run's own: those its mutating steps name (a restart of
 * the database a full-stack runbook also restarts). An operator deciding for the run, or starting
 * it, must have each of them in scope as well as the incident's target.
 */
export function actedOnTargets(config: EngineConfig, def: RunbookDefinition): string[] {
  const acted = actionSteps(def).filter((s) => {
    if (mutatingSteps.has(s.uses)) return true;
    if (!configMutatingSteps.has(s.uses)) return false;
    // A command changes something unless the config marks it read-only on the target it names.
    const named = typeof s.with.target === 'string' ? config.targets[s.with.target] : undefined;
    const command = named && 'commands' in named ? named.commands?.[s.with.command as string] : undefined;
    return command?.readOnly !== true;
  });
  return [...new Set(targetsNamedBy(acted))];
}

/**
 * The named targets, then what they depend on (a dependencies step checks each on its own queue).
 * `dependsOn` and `readOnlyCommands` only where configured, so runs planned without them look as before.
 */
function targetRefs(config: EngineConfig, names: string[], engineQueue?: string): TargetRef[] {
  const all = new Set(names);
  for (const name of names) for (const dep of config.targets[name]?.dependsOn ?? []) all.add(dep);
  return [...all].map((name) => {
    const t = config.targets[name];
    if (!t) throw new Error(`planning a run failed: no target '${name}' in the configuration`);
    const readOnly =
      'commands' in t
        ? Object.entries(t.commands)
            .filter(([, c]) => c.readOnly)
            .map(([n]) => n)
        : [];
    return {
      name,
      kind: t.kind,
      queue: targetQueue(config, t, engineQueue),
      labels: { ...t.labels },
      ...(t.dependsOn.length > 0 ? { dependsOn: [...t.dependsOn] } : {}),
      ...(readOnly.length > 0 ? { readOnlyCommands: readOnly } : {}),
    };
  });
}

/**
 * The maintenance window for one schedule. Notifications go to the first level of the default
 * escalation policy (the people paged first are the ones who should know a window opened);
 * the schedule has no channel list of its own.
 */
export function planMaintenance(config: EngineConfig, schedule: MaintenanceSchedule, options: PlanOptions = {}): MaintenanceInput {
  const targets = schedule.targets.map((name) => {
    const t = config.targets[name];
    if (!t) throw new Error(`planning maintenance '${schedule.name}' failed: no target '${name}' in the configuration`);
    return { name, kind: t.kind, queue: targetQueue(config, t, options.engineQueue) };
  });
  const firstLevel = config.escalation.policies[config.escalation.default]?.levels[0];
  return {
    schedule: schedule.name,
    targets,
    windowMs: parseDuration(schedule.window),
    silence: schedule.silence.length > 0 ? schedule.silence.map((m) => ({ ...m })) : silenceForTargets(config, schedule.targets),
    channels: firstLevel ? [...firstLevel.channels] : [],
    maxConcurrentDestructive: config.guardrails.maxConcurrentDestructive,
    dryRun: config.dryRun,
  };
}

/**
 * One silence covering every target's configured labels. A silence is a conjunction, so targets
 * with different values for a label become one anchored alternation (`service=~"api|db"`); labels
 * not shared by all targets are left out. Returns [] (no silence) rather than a silence that
 * would match every alert, e.g. when a target has no labels configured.
 */
export function silenceForTargets(config: EngineConfig, names: string[]): SilenceMatcher[] {
  const labelSets = names.map((n) => config.targets[n]?.labels ?? {});
  if (labelSets.length === 0) return [];
  const shared = Object.keys(labelSets[0]!).filter((k) => labelSets.every((ls) => Object.hasOwn(ls, k)));
  const matchers: SilenceMatcher[] = shared.sort().map((name) => {
    const values = [...new Set(labelSets.map((ls) => ls[name]!))].sort();
    if (values.length === 1) return { name, value: values[0]!, isRegex: false, isEqual: true };
    return { name, value: values.map(escapeRegex).join('|'), isRegex: true, isEqual: true };
  });
  if (matchers.length === 0 || matchesEverything(matchers)) return [];
  return matchers;
}

/** The text as a regular expression matching exactly it. */
export function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function cap(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
