// Closing a maintenance window whose run is gone. A run that ends however it ends (done, failed,
// cancelled) closes its own window: its guard entry, which keeps incidents' hands off the targets,
// and its Alertmanager silence. A run that was terminated (or whose close failed) leaves both until
// the window's end, and the guard refuses the schedule's next run meanwhile. This closes them, and
// only them: never a window whose run is still running (cancelling that run closes it properly).
import { WorkflowNotFoundError } from '@temporalio/client';
import { createAlertmanagerActivities, type AlertmanagerActivities } from '../../activities/alertmanager.js';
import { closeWindowUpdate, guardrailsWorkflowId, guardStateQuery, type WindowLease } from '../../activities/guardMessages.js';
import { parseDuration } from '../../config/duration.js';
import type { EngineConfig } from '../../config/schema.js';
import { windowSilenceAuthor, windowSilenceCommentStart } from '../../workflows/steps/maintenanceWindow.js';
import { CommandError, type Temporal } from './operatorTemporal.js';

export interface ClosedWindows {
  schedule: string;
  dryRun: boolean;
  /** The runs whose windows were closed (or, in a dry run, would be): each one's targets and end. */
  holders: Array<{ workflowId: string; status: string; targets: string[]; until?: string }>;
  /** Silences of those runs expired (or, in a dry run, that would be). */
  silencesExpired: string[];
  /** Silences that could not be expired, and why: they end by themselves with the window. */
  silencesLeft: Array<{ id: string; error: string }>;
}

export type WindowSilences = Pick<AlertmanagerActivities, 'engineSilences' | 'expireSilence'>;

/** The config's Alertmanager, where windows' silences are; undefined when it names none. */
export function windowSilencesOf(config: EngineConfig): WindowSilences | undefined {
  const am = config.alertmanager;
  return am ? createAlertmanagerActivities({ url: am.url, timeoutMs: parseDuration(am.timeout) }) : undefined;
}

/** Holders named per schedule, at most: a guard or Alertmanager answering more is not believed. */
const maxHolders = 50;

export async function closeMaintenanceWindow(
  t: Temporal,
  config: EngineConfig,
  name: string,
  opts: { alertmanager?: WindowSilences; dryRun?: boolean },
): Promise<ClosedWindows> {
  const schedule = config.maintenance.find((m) => m.name === name);
  if (!schedule) {
    const known = config.maintenance.map((m) => m.name).join(', ') || 'none';
    throw new CommandError(2, `no maintenance schedule '${name}' in the configuration (known: ${known})`);
  }
  const dryRun = opts.dryRun === true;
  const guard = t.client.workflow.getHandle(guardrailsWorkflowId(config.temporal.taskQueue));
  const windows: WindowLease[] = await t
    .call(() => guard.query(guardStateQuery))
    .then((s) => s.windows.filter((w) => w.schedule === name))
    .catch((err: unknown) => {
      // No guard yet: nothing was ever opened.
      if (err instanceof WorkflowNotFoundError) return [];
      throw err;
    });
  const commentStart = `maintenance '${name}' (`;
  const silences = opts.alertmanager ? await opts.alertmanager.engineSilences(windowSilenceAuthor, commentStart) : [];
  const holderOf = (comment: string) => {
    const rest = comment.slice(commentStart.length);
    const end = rest.indexOf('): ');
    return end > 0 ? rest.slice(0, end) : undefined;
  };
  const holders = [...new Set([...windows.map((w) => w.holder), ...silences.flatMap((s) => holderOf(s.comment) ?? [])])];
  if (holders.length === 0)
    throw new CommandError(1, `maintenance '${name}' holds no open window and no silence of its own: there is nothing to close`);
  if (holders.length > maxHolders)
    throw new CommandError(
      1,
      `maintenance '${name}' has ${holders.length} holders of windows or silences; close them in Temporal and Alertmanager`,
    );

  const result: ClosedWindows = { schedule: name, dryRun, holders: [], silencesExpired: [], silencesLeft: [] };
  // Every holder is checked before anything is closed: one still running refuses the whole close.
  for (const holder of holders) {
    const status = await t
      .call(() => t.client.workflow.getHandle(holder).describe())
      .then((d) => d.status.name)
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
        throw err;
      });
    if (status === 'RUNNING') {
      throw new CommandError(
        1,
        `maintenance '${name}' is still running (workflow ${holder}): cancel it instead ('remediate cancel ${holder}'), which expires its silence and closes its window`,
      );
    }
    const held = windows.filter((w) => w.holder === holder);
    result.holders.push({
      workflowId: holder,
      status: status.toLowerCase(),
      targets: held.map((w) => w.target),
      ...(held.length > 0 ? { until: new Date(Math.max(...held.map((w) => w.until))).toISOString() } : {}),
    });
  }
  for (const holder of result.holders) {
    if (holder.targets.length > 0 && !dryRun) await t.call(() => guard.executeUpdate(closeWindowUpdate, { args: [holder.workflowId] }));
    for (const s of silences) {
      if (!s.comment.startsWith(windowSilenceCommentStart(name, holder.workflowId))) continue;
      if (dryRun) {
        result.silencesExpired.push(s.id);
        continue;
      }
      try {
        await opts.alertmanager!.expireSilence(s.id, false);
        result.silencesExpired.push(s.id);
      } catch (err) {
        result.silencesLeft.push({ id: s.id, error: (err as Error).message });
      }
    }
  }
  return result;
}
