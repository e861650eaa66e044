// Scheduled maintenance: silence the targets' alerts for the window, then per target back up,
// maintain (VACUUM / OPTIMIZE) and check it afterwards. The silence is expired however the run
// ends (a failed step, a cancellation), so alerts are never left muted after the work stops.
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { formatDuration } from '../config/duration.js';
import type { MaintenanceInput, Outcome, RunbookResult } from './messages.js';
import { engineActivities, targetActivities, type EngineSteps } from './steps/activities.js';
import { withDestructiveSlot } from './steps/destructiveSlot.js';
import { trigger, resolve } from './steps/escalate.js';
import { describeFailure, Incident } from './steps/incident.js';
import { MaintenanceWindow } from './steps/maintenanceWindow.js';
import { verify } from './steps/verify.js';

class MaintenanceStepFailed extends Error {}

export async function maintenance(input: MaintenanceInput): Promise<RunbookResult> {
  const incident = Incident.open({ runbook: 'maintenance', target: input.schedule, operators: [] });
  const engine = engineActivities();
  const window = new MaintenanceWindow(incident, engine, {
    schedule: input.schedule,
    targets: input.targets.map((t) => t.name),
    windowMs: input.windowMs,
    silence: input.silence,
    dryRun: input.dryRun,
  });
  const done: string[] = [];
  let ending: { outcome: Outcome; detail: string } = { outcome: 'cancelled', detail: 'the workflow was cancelled' };
  let result: RunbookResult | undefined;
  try {
    await window.open();
    await trigger(incident, engine, {
      channels: input.channels,
      key: 'opened',
      severity: 'info',
      title: `maintenance '${input.schedule}' started`,
      text: `${input.targets.map((t) => t.name).join(', ')}; window ${formatDuration(input.windowMs)}${input.dryRun ? ' (dry-run)' : ''}`,
      dryRun: input.dryRun,
    });
    for (const t of input.targets) {
      if (Date.now() >= window.endsAt) throw new MaintenanceStepFailed(`the window ended before '${t.name}' was maintained`);
      await maintainOne(incident, engine, window, input, t);
      done.push(t.name);
    }
    ending = { outcome: 'completed', detail: `maintained ${done.join(', ')}` };
  } catch (err) {
    if (isCancellation(err)) throw err;
    const finished = done.length ? ` (finished: ${done.join(', ')})` : '';
    ending = { outcome: 'failed', detail: `${describeFailure(err)}${finished}` };
  } finally {
    // Runs to the end even when the workflow is being cancelled.
    result = await CancellationScope.nonCancellable(async () => {
      await window.close();
      await report(incident, engine, input, ending);
      return incident.finish(ending.outcome, ending.detail);
    });
  }
  return result;
}

async function maintainOne(
  incident: Incident,
  engine: EngineSteps,
  window: MaintenanceWindow,
  input: MaintenanceInput,
  t: MaintenanceInput['targets'][number],
): Promise<void> {
  const remaining = Math.max(1_000, window.endsAt - Date.now());
  const target = targetActivities(t.queue, remaining);
  const ctx = { incidentId: incident.workflowId, reason: `maintenance '${input.schedule}'`, actor: 'engine', dryRun: input.dryRun };
  const slotted = await withDestructiveSlot(
    incident,
    engine,
    {
      target: t.name,
      action: 'maintenance',
      key: t.name,
      max: input.maxConcurrentDestructive ?? 2,
      leaseMs: remaining + 300_000,
      waitMs: remaining,
      dryRun: input.dryRun,
    },
    async () => {
      incident.enter(`backup:${t.name}`);
      const backup = await target.backupTarget(t.name, ctx);
      incident.record('backed up', backup.summary);
      incident.enter(`maintain:${t.name}`);
      const maintained = await target.maintainTarget(t.name, ctx);
      incident.record('maintained', maintained.summary);
      const check = await verify(incident, target, t.name);
      if (!check.healthy) throw new MaintenanceStepFailed(`post-check of '${t.name}' failed: ${check.detail}`);
    },
  );
  if (!slotted.ran) throw new MaintenanceStepFailed(`'${t.name}' not maintained: ${slotted.reason}`);
}

async function report(
  incident: Incident,
  engine: EngineSteps,
  input: MaintenanceInput,
  ending: { outcome: Outcome; detail: string },
): Promise<void> {
  const title = `maintenance '${input.schedule}' ${ending.outcome}`;
  if (ending.outcome === 'failed') {
    await trigger(incident, engine, {
      channels: input.channels,
      key: 'failed',
      severity: 'critical',
      title,
      text: ending.detail,
      dryRun: input.dryRun,
    });
  } else {
    await resolve(incident, engine, `${title}: ${ending.detail}`, input.dryRun);
  }
}
