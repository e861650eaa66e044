// Escalation as the teams' matrices describe it (runbook files; the compiled runbooks keep
// escalate.ts): each level is paged at its delay and again every `repeat` until someone
// acknowledges or the alerts clear. An acknowledged incident whose alerts still fire stays open
// until they clear (at most `keepOpen`), so its pages are resolved then, and escalates again if it
// is still unresolved `reescalateAfterAck` after the acknowledgement.
//
// Every page has a key of its own: a level's first page is keyed by its name, later ones (repeats,
// re-escalations) `<level>#<n>`. With the run chain's first run id in the idempotency key and the
// progress carried across continue-as-new, a retried activity or a continued run never pages twice.
import { formatDuration } from '../../config/duration.js';
import type { EscalationPlanInput, EscalationProgress } from '../messages.js';
import type { EngineSteps } from './activities.js';
import { acknowledge, trigger, type EscalationEnd } from './escalate.js';
import { waitFor, type Incident } from './incident.js';
import { catchesUpMissedRepeats, followPatch, isPatched, takesDayChanges } from './patchesFirst.js';

export interface PolicyEscalation {
  escalation: EscalationPlanInput;
  severity: string;
  title: string;
  text: string;
  dryRun: boolean;
  /** Where the escalation stands; updated as it goes, and carried whole by a run continued as new. */
  progress: EscalationProgress;
  /** Ends a wait early ('interrupted') so the run can continue as new. */
  interruptWhen?: () => boolean;
}

/** How long an acknowledged incident stays open for its alerts to clear, unless the policy says. */
export const defaultKeepOpenMs = 24 * 3_600_000;

export async function escalateByPolicy(
  incident: Incident,
  engine: EngineSteps,
  plan: PolicyEscalation,
  reason: string,
): Promise<EscalationEnd> {
  incident.enter('escalate');
  const p = plan.progress;
  const levels = plan.escalation.levels;
  if (!p.paged && !p.following) incident.record('escalating', reason);
  // Runs continued from before repeats existed carry no page counts: each level paged so far, once.
  const pages = (p.pages ??= levels.map((_, i) => (i < p.paged ? 1 : 0)));
  const answered = () => incident.acknowledgement !== undefined || incident.resolved;
  const waitUntil = (at: number, done: () => boolean) => {
    const interrupt = plan.interruptWhen;
    return waitFor(interrupt ? () => done() || interrupt() : done, at - Date.now());
  };

  const page = async (i: number, lead: string, label: string) => {
    const level = levels[i]!;
    const n = (pages[i] = (pages[i] ?? 0) + 1);
    if (p.levelPagedAt && n === 1) p.levelPagedAt[i] = Date.now();
    await trigger(incident, engine, {
      channels: level.channels,
      key: n === 1 ? level.name : `${level.name}#${n}`,
      label,
      severity: plan.severity,
      title: plan.title,
      text: `${lead}${reason}\n\n${plan.text}`,
      dryRun: plan.dryRun,
      actions: ['acknowledge'],
    });
    incident.status.escalationLevel = level.name;
  };

  const keepOpenMs = plan.escalation.keepOpenMs ?? defaultKeepOpenMs;

  const passOnAcknowledgement = async () => {
    const n = (p.acks = (p.acks ?? 0) + 1);
    await acknowledge(incident, engine, plan.dryRun, n === 1 ? 'acknowledge' : `acknowledge#${n}`);
  };

  /** Pages level after level, repeating the latest at its interval, until answered or every level had its time. */
  const pageLevels = async (): Promise<'answered' | 'interrupted' | 'exhausted'> => {
    for (;;) {
      if (answered()) return 'answered';
      const next = levels[p.paged];
      const current = p.paged > 0 ? levels[p.paged - 1] : undefined;
      if (!next && !current) return 'exhausted';
      const repeats = p.repeats ?? 0;
      // A level paged later than it fell due (from: incident) repeats from when it was paged.
      const pagedAt = p.levelPagedAt?.[p.paged - 1];
      const levelAt0 = current ? Math.max(p.startedAt + current.afterMs, pagedAt ?? -Infinity) : p.startedAt;
      const lastPageAt = current ? levelAt0 + repeats * (current.repeatMs ?? 0) : p.startedAt;
      // A re-escalation pages its level at once; the level before it is not repeated first.
      const repeating =
        current?.repeatMs !== undefined && !p.reescalating && (current.repeatTimes === undefined || repeats < current.repeatTimes);
      const repeatAt = repeating ? lastPageAt + current.repeatMs! : Infinity;
      const levelAt = next ? p.startedAt + next.afterMs : Infinity;
      let at = Math.min(levelAt, repeatAt);
      const last = at === Infinity;
      // The last level gets the time its plan gives it to answer (never none). Runs planned before
      // gave it its repeat interval, or as long as the level before it had: none for a single
      // level at 0 s, which ended the escalation as it paged.
      if (last) {
        const answerMs = plan.escalation.lastAnswerMs;
        at =
          answerMs !== undefined
            ? lastPageAt + answerMs
            : current!.repeatMs !== undefined
              ? lastPageAt + current!.repeatMs
              : p.startedAt + 2 * current!.afterMs - (levels[p.paged - 2]?.afterMs ?? 0);
      }
      if (await waitUntil(at, answered)) return answered() ? 'answered' : 'interrupted';
      if (last) return 'exhausted';
      if (levelAt <= repeatAt) {
        if (p.reescalating) {
          const n = p.reescalations ?? 0;
          await page(
            p.paged,
            `Escalated again (re-escalation ${n}): acknowledged, but still not resolved.\n`,
            `${next!.name} (re-escalation ${n})`,
          );
          delete p.reescalating;
        } else await page(p.paged, '', next!.name);
        p.paged += 1;
        p.repeats = 0;
      } else {
        // Due while nothing ran this incident (every engine down, Temporal away): one page stands
        // for every repeat missed, rather than one page each in a burst.
        const missed = catchesUpMissedRepeats() ? missedRepeats(current!, repeatAt, Math.min(Date.now(), levelAt - 1), repeats) : 0;
        if (missed > 0) {
          incident.record(
            'repeats caught up',
            `${missed} repeat(s) of ${current!.name} fell due while no engine ran this incident: one page is sent for them`,
          );
        }
        p.repeats = repeats + missed + 1;
        await page(
          p.paged - 1,
          `Paged again (repeat ${p.repeats}${missed > 0 ? `; ${missed} before it fell due while no engine ran` : ''}): nobody has acknowledged yet.\n`,
          `${current!.name} (repeat ${p.repeats})`,
        );
      }
    }
  };

  /** Waits, acknowledged, for the alerts to clear; the acknowledgement may lapse into a re-escalation. */
  const follow = async (ackedAt: number): Promise<'resolved' | 'interrupted' | 'reescalate' | 'closed'> => {
    const reescalateMs = plan.escalation.reescalateAfterAckMs;
    const closeAt = (p.openSince ?? Date.now()) + keepOpenMs;
    const reescalateAt = reescalateMs === undefined || levels.length === 0 ? Infinity : ackedAt + reescalateMs;
    const woke = await waitUntil(Math.min(closeAt, reescalateAt), () => incident.resolved);
    if (incident.resolved) return 'resolved';
    if (woke) return 'interrupted';
    return reescalateAt <= closeAt ? 'reescalate' : 'closed';
  };

  /** The acknowledgement lapsed with the incident unresolved: the next level (or the last again) is due now. */
  const reescalate = () => {
    const n = (p.reescalations = (p.reescalations ?? 0) + 1);
    const since = p.following?.ackedAt;
    const ack = incident.withdrawAcknowledgement();
    const i = Math.min(p.paged, levels.length - 1);
    p.startedAt = Date.now() - levels[i]!.afterMs;
    p.paged = i;
    p.repeats = 0;
    p.reescalating = true;
    delete p.following;
    const ago = since === undefined ? '' : ` ${formatDuration(Date.now() - since)} ago`;
    incident.record(
      're-escalating',
      `acknowledged by ${ack?.operator ?? 'an operator'}${ago} and not resolved: paging ${levels[i]!.name} (re-escalation ${n})`,
    );
  };

  // Acknowledged before the escalation began (while an approval waited, say): the acknowledgement
  // stands, so no level is escalated to, but the first level hears once why the runbook gave up.
  const ack = incident.acknowledgement;
  if (ack && !p.paged && !p.following && !p.toldEarlyAck && levels.length > 0 && takesDayChanges()) {
    p.toldEarlyAck = true;
    await page(
      0,
      `Acknowledged earlier by ${ack.operator}; the runbook has now given up on its own:\n`,
      `${levels[0]!.name} (acknowledged earlier)`,
    );
  }

  for (;;) {
    if (!p.following) {
      const paged = await pageLevels();
      if (paged === 'interrupted') return 'interrupted';
      if (!incident.acknowledgement) {
        if (incident.resolved) return 'resolved';
        incident.record('escalation exhausted', `no acknowledgement after ${levels.length} level(s)`);
        return 'exhausted';
      }
      await passOnAcknowledgement();
      // Nothing to wait for in a run by hand (no alert held) or one whose alerts already cleared.
      if (!(incident.firing || incident.resolved) || !isPatched(followPatch)) return 'acknowledged';
      const now = Date.now();
      p.openSince ??= now;
      p.following = { ackedAt: now };
      const again =
        plan.escalation.reescalateAfterAckMs !== undefined
          ? `; escalates again if not resolved ${formatDuration(plan.escalation.reescalateAfterAckMs)} after the acknowledgement`
          : '';
      const until = formatDuration(Math.max(0, p.openSince + keepOpenMs - now));
      incident.record(
        'following',
        `acknowledged: the incident stays open until its alerts clear (at most ${until} more), then its pages are resolved${again}`,
      );
    }
    const end = await follow(p.following.ackedAt);
    if (end === 'resolved') return 'resolved';
    if (end === 'interrupted') return 'interrupted';
    if (end === 'reescalate') {
      reescalate();
      continue;
    }
    incident.record(
      'no longer following',
      `alerts still firing ${formatDuration(Date.now() - p.openSince!)} after the first acknowledgement: the pages stay open for people to close`,
    );
    return 'acknowledged';
  }
}

/**
 * How many of a level's repeats due by `by`, after the one due at `dueAt`, were missed: they are
 * skipped, and the page sent now counts as the latest of them. Never more than the level's
 * repeatTimes allows.
 */
function missedRepeats(level: { repeatMs?: number; repeatTimes?: number }, dueAt: number, by: number, sent: number): number {
  const every = level.repeatMs;
  if (every === undefined || every <= 0 || by < dueAt + every) return 0;
  const due = Math.floor((by - dueAt) / every);
  return level.repeatTimes === undefined ? due : Math.max(0, Math.min(due, level.repeatTimes - sent - 1));
}
