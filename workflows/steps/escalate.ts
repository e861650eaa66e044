// Pages and the compiled runbooks' escalation. Notifications use PagerDuty semantics: trigger,
// then acknowledge or resolve on exactly the channels triggered. The compiled runbooks page each
// level in turn (its delay counted from when escalation began) until an operator acknowledges, the
// alert resolves, or every level has been paged; runbook files escalate by escalationPolicy.ts.
import type { PageAction } from '../../activities/contract.js';
import type { EscalationLevelPlan } from '../messages.js';
import type { EngineSteps } from './activities.js';
import { cap, describeFailure, waitFor, type Incident } from './incident.js';

export interface Page {
  channels: string[];
  /** Names this message within the incident, e.g. the level name; part of the idempotency key. */
  key: string;
  /** What the timeline calls it ("senior (repeat 2)"); the key when unset. */
  label?: string;
  severity: string;
  title: string;
  text: string;
  dryRun: boolean;
  /** What the person paged may answer from the page itself (chat buttons). */
  actions?: PageAction[];
  /** The approval this page asks for: its buttons act on that step only. */
  approvalStep?: string;
}

export interface EscalationPlan {
  levels: EscalationLevelPlan[];
  /** The last level's time to answer after its page; absent in runs planned before (then: the gap before it). */
  lastAnswerMs?: number;
  severity: string;
  title: string;
  text: string;
  dryRun: boolean;
}

export type EscalationEnd = 'acknowledged' | 'resolved' | 'exhausted' | 'interrupted';

const maxText = 4_000;

/** The compiled runbooks' escalation: their recorded histories replay against exactly these waits. */
export async function escalate(incident: Incident, engine: EngineSteps, plan: EscalationPlan, reason: string): Promise<EscalationEnd> {
  incident.enter('escalate');
  incident.record('escalating', reason);
  const started = Date.now();
  const answered = () => incident.acknowledgement !== undefined || incident.resolved;
  let previousAfter = 0;
  let lastGap = 0;
  for (const level of plan.levels) {
    if (await waitFor(answered, started + level.afterMs - Date.now())) break;
    await trigger(incident, engine, {
      channels: level.channels,
      key: level.name,
      severity: plan.severity,
      title: plan.title,
      text: `${reason}\n\n${plan.text}`,
      dryRun: plan.dryRun,
      actions: ['acknowledge'],
    });
    incident.status.escalationLevel = level.name;
    lastGap = level.afterMs - previousAfter;
    previousAfter = level.afterMs;
  }
  // The last level gets the time its plan gives it; in runs planned before, as long as the one
  // before it had (none for a single level at 0 s).
  if (!answered()) await waitFor(answered, started + previousAfter + (plan.lastAnswerMs ?? lastGap) - Date.now());

  if (incident.acknowledgement) {
    await acknowledge(incident, engine, plan.dryRun);
    return 'acknowledged';
  }
  if (incident.resolved) return 'resolved';
  incident.record('escalation exhausted', `no acknowledgement after ${plan.levels.length} level(s)`);
  return 'exhausted';
}

/** Opens or updates the incident on the given channels. A failed page is recorded, not fatal. */
export async function trigger(incident: Incident, engine: EngineSteps, page: Page): Promise<boolean> {
  if (page.channels.length === 0) {
    incident.record('page skipped', `${page.key}: no channels configured`);
    return false;
  }
  // Counted as paged even if delivery failed: some channels may have got it, and a resolve to a
  // channel that never saw the trigger is harmless.
  for (const c of page.channels) incident.triggered.add(c);
  return send(incident, engine, 'trigger', page);
}

/** Tells the channels that were paged that someone has it (`key`: a later acknowledgement's own). */
export async function acknowledge(incident: Incident, engine: EngineSteps, dryRun: boolean, key = 'acknowledge'): Promise<void> {
  const by = incident.acknowledgement?.operator ?? 'an operator';
  if (incident.triggered.size === 0) return;
  await send(incident, engine, 'acknowledge', {
    channels: [...incident.triggered],
    key,
    severity: 'info',
    title: `${incident.status.runbook} on '${incident.status.target}' acknowledged by ${by}`,
    text: incident.acknowledgement?.reason ?? '',
    dryRun,
  });
}

/** Closes the loop on every channel that was paged, if any was. */
export async function resolve(incident: Incident, engine: EngineSteps, text: string, dryRun: boolean): Promise<void> {
  if (incident.triggered.size === 0) return;
  await send(incident, engine, 'resolve', {
    channels: [...incident.triggered],
    key: 'resolve',
    severity: 'info',
    title: `${incident.status.runbook} on '${incident.status.target}' resolved`,
    text,
    dryRun,
  });
}

async function send(incident: Incident, engine: EngineSteps, event: 'trigger' | 'acknowledge' | 'resolve', page: Page): Promise<boolean> {
  try {
    const result = await engine.notify({
      channels: page.channels,
      event,
      incidentKey: incident.workflowId,
      ...(incident.pagesKeyedByRun ? { incidentRun: incident.chainId } : {}),
      // The run id matters: the next incident on this target reuses the workflow id, and its
      // pages must not be taken for repeats of this one's.
      idempotencyKey: `${incident.workflowId}:${incident.pageRunId}:${page.key}`,
      severity: page.severity,
      title: cap(page.title, 200),
      text: cap(page.text, maxText),
      dryRun: page.dryRun,
      ...(page.actions
        ? { actions: page.actions, about: { chain: incident.chainId, ...(page.approvalStep ? { step: page.approvalStep } : {}) } }
        : {}),
    });
    const delivered = result.delivered.map((d) => `${d.channel} (${d.status})`).join(', ');
    incident.record(event === 'trigger' ? `paged ${page.label ?? page.key}` : `notified ${event}`, delivered || 'no channel delivered');
    return true;
  } catch (err) {
    incident.record(`notification failed`, `${event} ${page.key}: ${describeFailure(err)}`);
    return false;
  }
}
