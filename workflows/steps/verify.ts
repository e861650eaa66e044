// Verification: is the target healthy now, and does it become healthy within a deadline after a
// restart. Only a passing check counts; a check that cannot run is treated as "not healthy yet".
import { sleep } from '@temporalio/workflow';
import type { Verification } from '../../activities/contract.js';
import { formatDuration } from '../../config/duration.js';
import type { TargetSteps } from './activities.js';
import { describeFailure, isPermanent, type Incident } from './incident.js';

export interface VerifyResult {
  healthy: boolean;
  detail: string;
  /**
   * The check could not run and asking again will not help (the engine's credentials refused, the
   * target's config wrong): "not healthy" then says nothing of the target itself.
   */
  uncheckable?: true;
}

/** One check of the target, recorded on the timeline. */
export async function verify(incident: Incident, target: TargetSteps, name: string): Promise<VerifyResult> {
  incident.enter('verify');
  return verified(incident, await checkOnce(target, name));
}

/** A check started earlier (beside the suppression check), recorded as verify() records its own. */
export async function verifyFrom(incident: Incident, check: Promise<VerifyResult>): Promise<VerifyResult> {
  incident.enter('verify');
  return verified(incident, await check);
}

function verified(incident: Incident, result: VerifyResult): VerifyResult {
  incident.record(result.healthy ? 'healthy' : 'unhealthy', result.detail);
  return result;
}

/**
 * Polls until the target passes or the deadline passes. Polling (rather than one late check)
 * notices recovery as soon as it happens and gives a slow starter the whole deadline.
 */
export async function verifyWithin(
  incident: Incident,
  target: TargetSteps,
  name: string,
  plan: { deadlineMs: number; intervalMs: number },
): Promise<VerifyResult> {
  const started = Date.now();
  const deadline = started + plan.deadlineMs;
  for (let polls = 1; ; polls++) {
    const result = await checkOnce(target, name);
    const elapsed = formatDuration(Date.now() - started);
    if (result.healthy) {
      incident.record('healthy', `after ${polls} check${polls === 1 ? '' : 's'} in ${elapsed}: ${result.detail}`);
      return result;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const detail = `still unhealthy after ${formatDuration(plan.deadlineMs)} (${polls} checks): ${result.detail}`;
      incident.record('unhealthy', detail);
      return { healthy: false, detail };
    }
    await sleep(Math.max(1, Math.min(plan.intervalMs, remaining)));
  }
}

/** One check, unrecorded; a check that cannot run is "not healthy" with the reason. */
export async function checkOnce(target: TargetSteps, name: string): Promise<VerifyResult> {
  try {
    const v = await target.verifyTarget(name);
    // Every failing check refused the engine (a 401 from a health endpoint whose token rotated): the
    // target answered, and nothing says it is down.
    const failing = v.checks.filter((c) => !c.ok);
    const refused = !v.healthy && failing.length > 0 && failing.every((c) => c.refused);
    return { healthy: v.healthy, detail: describeChecks(v), ...(refused ? { uncheckable: true as const } : {}) };
  } catch (err) {
    return {
      healthy: false,
      detail: `verification could not run: ${describeFailure(err)}`,
      ...(isPermanent(err) ? { uncheckable: true as const } : {}),
    };
  }
}

export function describeChecks(v: Verification): string {
  if (!v.checks.length) return v.healthy ? 'healthy' : 'unhealthy (no checks reported)';
  const shown = v.healthy ? v.checks : v.checks.filter((c) => !c.ok);
  return shown.map((c) => `${c.check} ${c.ok ? 'ok' : 'failed'}: ${c.detail}`).join('; ');
}
