// Maintenance windows seen from both sides: an incident checks whether its target is under a
// silence or an open window (and then keeps its hands off), and the maintenance runbook opens a
// window (guard entry + Alertmanager silence) and must close it however the run ends.
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import type { SilenceMatcher, Suppression } from '../../activities/contract.js';

/** What createSilence answers in a dry run: no silence was made. */
export const dryRunSilenceId = 'dry-run';
import type { EngineSteps } from './activities.js';
import { describeFailure, type Incident } from './incident.js';
import { cancelledCheckStops, dryRunSilenceNotExpired, isPatched, takesLaterChanges } from './patchesFirst.js';

/**
 * Whether automatic action on the target is suppressed. Checked against both Alertmanager silences
 * and the guard's open windows. A check that fails does not suppress: the alert reached us, so
 * acting (and recording that the check failed) beats doing nothing at 3 a.m.
 */
export async function suppression(
  incident: Incident,
  engine: EngineSteps,
  target: string,
  alertLabels?: Record<string, string>,
  /** The window as the guard answered it with a claim asked ahead (checksAhead.ts): read only when it did not. */
  windowWithClaim?: Promise<Suppression | undefined>,
): Promise<Suppression> {
  incident.enter('suppression-check');
  const silenceRead = engine.checkSuppression(target, alertLabels);
  // Asked at once, as runs before asked it, unless the claim's answer may carry it.
  const windowRead = windowWithClaim
    ? windowWithClaim.then((w) => w ?? engine.maintenanceWindowFor(target))
    : engine.maintenanceWindowFor(target);
  const [silence, window] = await Promise.allSettled([silenceRead, windowRead]);
  // A cancelled run is not a failed check: it stops here, instead of going on to verify and restart
  // as if nothing were silenced. Runs recorded before went on; they replay that way.
  const cancelled = [silence, window].find((r): r is PromiseRejectedResult => r.status === 'rejected' && isCancellation(r.reason));
  if (cancelled && isPatched(cancelledCheckStops)) throw cancelled.reason;
  for (const [what, r] of [
    ['silence', silence],
    ['maintenance window', window],
  ] as const) {
    if (r.status === 'rejected') incident.record(`${what} check failed`, `${describeFailure(r.reason)}; proceeding as not suppressed`);
  }
  for (const r of [window, silence]) {
    if (r.status === 'fulfilled' && r.value.suppressed) {
      incident.record('suppressed', r.value.reason);
      return r.value;
    }
  }
  return { suppressed: false };
}

/** Who a window's silence says made it, and how its comment starts: found by these once its run is gone. */
export const windowSilenceAuthor = 'remediation-engine';
export function windowSilenceCommentStart(schedule: string, holder: string): string {
  return `maintenance '${schedule}' (${holder}): `;
}

export interface WindowPlan {
  schedule: string;
  targets: string[];
  windowMs: number;
  silence: SilenceMatcher[];
  dryRun: boolean;
}

/**
 * An open window: tracks what it opened so that close() undoes exactly that, even when opening
 * failed halfway. close() is safe to call more than once.
 */
export class MaintenanceWindow {
  silenceId?: string;
  private guardOpen = false;
  readonly endsAt: number;

  constructor(
    private readonly incident: Incident,
    private readonly engine: EngineSteps,
    private readonly plan: WindowPlan,
  ) {
    this.endsAt = Date.now() + plan.windowMs;
  }

  async open(): Promise<void> {
    const { incident, engine, plan } = this;
    incident.enter('open-window');
    // The guard's window first: from here on incidents on these targets stand back, even before
    // Alertmanager knows. A dry run opens nothing real.
    if (!plan.dryRun) {
      this.guardOpen = true;
      await engine.openWindow({ holder: incident.workflowId, schedule: plan.schedule, targets: plan.targets, untilMs: this.endsAt });
    }
    if (plan.silence.length === 0) {
      incident.record('no silence', 'the schedule names no matchers; alerts are not silenced');
      return;
    }
    const create = () =>
      engine.createSilence({
        matchers: plan.silence,
        durationMs: plan.windowMs,
        createdBy: windowSilenceAuthor,
        comment: `${windowSilenceCommentStart(plan.schedule, incident.workflowId)}${plan.targets.join(', ')}`,
        dryRun: plan.dryRun,
      });
    // A cancel (or the step's timeout) while Alertmanager is being asked would stop the run waiting
    // but not the activity: the silence would then exist with no id to expire, muting these targets'
    // alerts for the whole window. Waited out instead, so close() expires it; the cancel still lands.
    const silence = await (takesLaterChanges() ? CancellationScope.nonCancellable(create) : create());
    this.silenceId = silence.silenceId;
    incident.record('window opened', `silence ${silence.silenceId}${silence.dryRun ? ' (dry-run)' : ''} for ${plan.targets.join(', ')}`);
  }

  /** Its silence or its guard entry is still there to remove. */
  get holdsSomething(): boolean {
    return this.silenceId !== undefined || this.guardOpen;
  }

  /** Call inside CancellationScope.nonCancellable: it must run even when the workflow is cancelled. */
  async close(): Promise<void> {
    const { incident, engine, plan } = this;
    incident.enter('close-window');
    if (this.silenceId === dryRunSilenceId && plan.dryRun && isPatched(dryRunSilenceNotExpired)) {
      // A dry run created no silence: there is nothing to expire (Alertmanager would refuse the id).
      incident.record('silence expired', 'nothing to expire: the dry run created no silence');
      delete this.silenceId;
    }
    if (this.silenceId !== undefined) {
      const silenceId = this.silenceId;
      try {
        const r = await engine.expireSilence(silenceId, plan.dryRun);
        incident.record('silence expired', `${silenceId}${r.expired ? '' : ' (was already gone)'}`);
        delete this.silenceId;
      } catch (err) {
        incident.record('silence expiry failed', `${silenceId}: ${describeFailure(err)}; it ends by itself with the window`);
      }
    }
    if (this.guardOpen) {
      try {
        await engine.closeWindow(incident.workflowId);
        this.guardOpen = false;
        incident.record('window closed');
      } catch (err) {
        incident.record('window close failed', `${describeFailure(err)}; it lapses by itself with the window`);
      }
    }
  }
}
