// Patches a run decides in its first activation, before it asks anything.
//
// A patched() call reached only once a local activity has answered is not safe. The worker may
// complete the workflow task that holds that activity's marker before the workflow has seen the
// answer: the patch marker then lands in the next task. Replay hands the answer over in the earlier
// task, where that patch is not yet known, so replay takes the unpatched branch and fails
// ("Non-deprecated patch marker encountered … but there is no corresponding change command"). A
// storm in CI produced exactly that for the first restart's patch. Asked here, the marker sits at
// the start of the first task, and a later call only reads the remembered answer.
import { patched } from '@temporalio/workflow';

/** One guard update claims the anti-flap reservation and the destructive slot (restartWithRetries). */
export const oneGuardCallPerRestart = 'one-guard-call-per-restart';
/** The guard's restart claim as a local activity (steps/activities.ts). */
export const localRestartClaim = 'local-restart-claim';
/** The interpreter asks the first check and claim beside its silence check (steps/checksAhead.ts). */
export const interpreterChecksAhead = 'interpreter-checks-ahead';
/** A cancelled silence check stops the run (steps/maintenanceWindow.ts). */
export const cancelledCheckStops = 'cancelled-suppression-check-stops';
/** A dry run's pretend silence is not expired (steps/maintenanceWindow.ts). */
export const dryRunSilenceNotExpired = 'dry-run-silence-not-expired';
/** A local read the worker dropped, not the run, is asked again (steps/activities.ts). */
export const droppedReadsAskedAgain = 'dropped-local-reads-asked-again';

const patchesFirst = 'patches-first';
/** The reads before a restart as local activities (steps/activities.ts). Asked before any read. */
export const localReads = 'local-reads';
/** serviceDown asks its first check and claim beside its silence check. Asked before any read. */
export const checksAndClaimTogether = 'checks-and-claim-together';
/** An http step's status is its `code` output (steps/catalog.ts). Asked after the step's activity. */
export const httpOutputCode = 'http-output-code';
/** A rejection resolves the approval page (steps/runbook.ts). Asked after the operator's signal. */
export const resolvePageOnReject = 'resolve-page-on-reject';
/** An acknowledged escalation follows its incident until the alerts clear (steps/escalationPolicy.ts). */
export const followPatch = 'escalation-follows-alerts';

/**
 * Every patch above in one marker. A run that records it takes every patched branch without asking
 * each: one marker and one search-attribute upsert in its first task instead of one of each per
 * patch (eight in serviceDown's first task; core upserts TemporalChangeVersion once per patch, each
 * a history event and a visibility write). Runs recorded before it asked each patch on its own and
 * replay that way.
 */
const allPatchesOfDecember = 'all-patches-2026-12';

/**
 * The patches the one marker stands for, and only those. A change made after it comes with a newer
 * marker that stands for it and all of these (allPatchesOfDecember5), never with an addition to this
 * list: a run recorded with the marker before that change existed would take its new branch on replay.
 */
export const coveredByOneMarker = [
  localReads,
  checksAndClaimTogether,
  httpOutputCode,
  resolvePageOnReject,
  followPatch,
  oneGuardCallPerRestart,
  localRestartClaim,
  interpreterChecksAhead,
  cancelledCheckStops,
  dryRunSilenceNotExpired,
  droppedReadsAskedAgain,
] as const;
export type PatchId = (typeof coveredByOneMarker)[number];

/**
 * Every patch of the one marker, and the changes made after it, still one marker and one upsert in a
 * new run's first task:
 * - a runbook file's `restart` step keys its guard requests by its step and target
 *   (steps/catalog.ts): restarts side by side in a parallel group each claim a slot and an
 *   anti-flap count of their own;
 * - a new alert firing after every alert of an incident resolved opens it again (steps/incident.ts);
 * - a backup or VACUUM in a maintenance window gets what is left of it once its slot is granted, not
 *   before the wait, and its retry cannot pass the window's end (steps/catalog.ts);
 * - a window's silence is created whole even when the run is cancelled meanwhile, so that closing
 *   the window expires it (steps/maintenanceWindow.ts);
 * - an automatic restart is skipped when the target's last check could not run for good (the
 *   engine's credentials refused, say): the target may be healthy (steps/catalog.ts);
 * - a run holding a maintenance window open does not continue as new, which would lose the window
 *   (runbook.ts).
 * Each asks takesLaterChanges(). Never widened either: a later change gets a marker of its own
 * kind, asked before this one.
 */
const allPatchesOfDecember5 = 'all-patches-2026-12-05';

/**
 * Everything allPatchesOfDecember5 stands for, and the change made after it:
 * - repeats of a level that fell due while no worker ran the incident (every engine down, Temporal
 *   away) are sent as one page when it runs again, not as one page each in a burst
 *   (steps/escalationPolicy.ts).
 * Asked via catchesUpMissedRepeats(). Never widened: a later change gets a marker of its own.
 */
const allPatchesOfDecember5Late = 'all-patches-2026-12-05-late';

/**
 * Everything allPatchesOfDecember5Late stands for, and the changes made after it:
 * - a restart step's claim asked ahead is withdrawn as soon as the run goes past that step without
 *   restarting (skipped, jumped over, or not restarted because the target could not be checked),
 *   not only when the run ends: the slot and the anti-flap count are not held meanwhile
 *   (runbook.ts, steps/checksAhead.ts);
 * - a `silence` step creates its silence whole even when the run is cancelled meanwhile, so its id
 *   reaches `steps.<id>.silenceId` and the runbook's finally can expire it (steps/catalog.ts).
 * Asked via cleansUpCutSteps(). Never widened: a later change gets a marker of its own.
 */
const allPatchesOfDecember5Night = 'all-patches-2026-12-05-night';

/**
 * Everything allPatchesOfDecember5Night stands for, and the changes made after it:
 * - a `silence` step cut off (its timeout, a cancellation) while Alertmanager took the silence
 *   expires that silence at once instead of handing its id on: a step that failed leaves nothing
 *   behind, and a silence nobody expires hides the target's alerts for its whole duration
 *   (steps/catalog.ts);
 * - its pages carry the run chain, so PagerDuty keeps one alert per incident instead of one per
 *   workflow id (steps/escalate.ts): a run keeps one key from its first page to its resolve;
 * - an escalation that starts already acknowledged (an acknowledgement given while, say, an
 *   approval waited) still tells the first level why the runbook gave up, once, before it follows
 *   the acknowledgement (steps/escalationPolicy.ts);
 * - a `checkSuppression` of the alert's own target matches silences against the alert's labels, as
 *   Alertmanager does, not the target's configured labels alone (steps/catalog.ts).
 * Each asks takesDayChanges(); the PagerDuty key is kept by the incident across continue-as-new
 * (steps/incident.ts). Never widened: a later change gets a marker of its own.
 */
const allPatchesOfDecember5Day = 'all-patches-2026-12-05-day';

/**
 * Everything allPatchesOfDecember5Day stands for, and the change made after it:
 * - a run that asks its first restart's claim ahead asks it first, before the target's check, and
 *   reads its target's maintenance window from the claim's answer (the guard answers the window
 *   with the claim) instead of a read of its own; when the answer carries none (a guard from
 *   before), it reads it as before (steps/checksAhead.ts, steps/maintenanceWindow.ts). One local
 *   activity less on the path from alert to restart.
 * Asked via readsWindowWithClaim(). Never widened: a later change gets a marker of its own.
 */
const allPatchesOfDecember5Afternoon = 'all-patches-2026-12-05-afternoon';

/**
 * Everything allPatchesOfDecember5Afternoon stands for, and the change made after it:
 * - the first reads a run asks in one turn (its silence check, its target's check, its first
 *   restart's claim) go out as one local activity, readsTogether, instead of one each: one answer
 *   to the run instead of one activation per answer (steps/readsTogether.ts). A read that failed
 *   in it is asked again on its own activity.
 * Asked via asksReadsTogether(). Never widened: a later change gets a marker of its own.
 */
const allPatchesOfDecember6 = 'all-patches-2026-12-06';

/**
 * Everything allPatchesOfDecember6 stands for, and the change made after it:
 * - the run's guard requests (restart claims, destructive slots) are asked with `once`, and a
 *   request id whose lease the run released or withdrew is never asked again: a later pass of the
 *   same step (a step's retry) asks with the id and `#2`, `#3`… So the guard can refuse a settled
 *   id asked again, which only a stalled worker's late duplicate does (activities/contract.ts
 *   SettlesOnce; steps/destructiveSlot.ts).
 * Asked via settlesOnce(). Never widened: a later change gets a marker of its own.
 */
const allPatchesOfDecember7 = 'all-patches-2026-12-07';

/**
 * Decides, in a new run's first activation, every patch a step may first ask after a local read
 * has answered (or been cancelled). The others are first asked before any local read (local-reads,
 * checks-and-claim-together) or after an event of the run's own history (an activity's completion,
 * an operator's signal), where replay sees what the run saw. Runs recorded before asked them
 * later; they replay that way.
 */
export function decidePatchesFirst(): void {
  // A run that records the newest marker does not ask the one before (asking records it).
  settlesRequestsOnce = patched(allPatchesOfDecember7);
  if (settlesRequestsOnce || patched(allPatchesOfDecember6)) {
    allPatched = laterPatched = repeatsCaughtUp = cutStepsCleaned = dayChanges = windowWithClaim = readsTogether = true;
    return;
  }
  if (patched(allPatchesOfDecember5Afternoon)) {
    allPatched = laterPatched = repeatsCaughtUp = cutStepsCleaned = dayChanges = windowWithClaim = true;
    return;
  }
  if (patched(allPatchesOfDecember5Day)) {
    allPatched = laterPatched = repeatsCaughtUp = cutStepsCleaned = dayChanges = true;
    return;
  }
  if (patched(allPatchesOfDecember5Night)) {
    allPatched = laterPatched = repeatsCaughtUp = cutStepsCleaned = true;
    return;
  }
  if (patched(allPatchesOfDecember5Late)) {
    allPatched = laterPatched = repeatsCaughtUp = true;
    return;
  }
  if (patched(allPatchesOfDecember5)) {
    allPatched = laterPatched = true;
    return;
  }
  // A run recorded before the newest marker: it replays as it ran, without the later changes.
  allPatched = patched(allPatchesOfDecember);
  if (allPatched) return;
  if (!patched(patchesFirst)) return;
  for (const id of [oneGuardCallPerRestart, localRestartClaim, interpreterChecksAhead, cancelledCheckStops, dryRunSilenceNotExpired])
    patched(id);
  asksDroppedReadsAgain = patched(droppedReadsAskedAgain);
}

// Module state is the run's own: each workflow run has its own module instances.
let asksDroppedReadsAgain = false;
let allPatched = false;
/** The marker of December 5: the patches made after the one marker, too. */
let laterPatched = false;
/** The late marker of December 5: missed repeats caught up with one page, too. */
let repeatsCaughtUp = false;
/** The night marker: claims withdrawn once passed, silences made whole, too. */
let cutStepsCleaned = false;
/** The day marker: a silence made after its step was cut off is expired at once, and pages keyed by run, too. */
let dayChanges = false;
/** The afternoon marker: the claim asked ahead first, and the window read from its answer, too. */
let windowWithClaim = false;
/** The marker of December 6: the first reads asked as one local activity, too. */
let readsTogether = false;
/** The newest marker: guard requests asked with `once`, a settled id never asked again, too. */
let settlesRequestsOnce = false;

/**
 * Whether this run takes a patch's new branch: yes without asking when its first activation
 * recorded the one marker for all of them (decided there only, so a run that started before never
 * records it later); otherwise patched(), as the run asked before. Workflows that do not call
 * decidePatchesFirst ask patched() each time, as they always did.
 */
export function isPatched(id: PatchId): boolean {
  return (allPatched && coveredByOneMarker.includes(id)) || patched(id);
}

/**
 * Whether this run recorded the one marker: a change that came with it, and has no patch of its
 * own, takes its new branch only then (steps/incident.ts: search attributes the start already set
 * are not upserted again).
 */
export function markedAllAtOnce(): boolean {
  return allPatched;
}

/**
 * Whether this run asks again a local read the worker dropped: decided in its first activation
 * only. A run that started before (its first task holds no marker) never asks it later, when the
 * marker would land after a read's answer, where replay cannot place it.
 */
export function dropsAskedAgain(): boolean {
  return allPatched || asksDroppedReadsAgain;
}

/**
 * Whether this run takes the changes made after the one marker (listed at allPatchesOfDecember5):
 * decided in its first activation only, so a run that started before never takes them later.
 */
export function takesLaterChanges(): boolean {
  return laterPatched;
}

/**
 * Whether this run sends repeats that fell due while it was not running as one page (listed at
 * allPatchesOfDecember5Late): decided in its first activation only.
 */
export function catchesUpMissedRepeats(): boolean {
  return repeatsCaughtUp;
}

/**
 * Whether this run withdraws a passed claim at once and makes a silence whole through a
 * cancellation (listed at allPatchesOfDecember5Night): decided in its first activation only.
 */
export function cleansUpCutSteps(): boolean {
  return cutStepsCleaned;
}

/**
 * Whether this run takes the changes listed at allPatchesOfDecember5Day: decided in its first
 * activation only. Workflows that do not decide patches first (the compiled runbooks) never do.
 */
export function takesDayChanges(): boolean {
  return dayChanges;
}

/**
 * Whether this run asks its claim ahead first and reads its target's window from the claim's answer
 * (listed at allPatchesOfDecember5Afternoon): decided in its first activation only.
 */
export function readsWindowWithClaim(): boolean {
  return windowWithClaim;
}

/**
 * Whether this run asks the reads of one turn as one local activity (listed at
 * allPatchesOfDecember6): decided in its first activation only.
 */
export function asksReadsTogether(): boolean {
  return readsTogether;
}

/**
 * Whether this run asks its guard requests with `once` and never asks a settled request id again
 * (listed at allPatchesOfDecember7): decided in its first activation only.
 */
export function settlesOnce(): boolean {
  return settlesRequestsOnce;
}
