// Closing a maintenance window whose run is gone. A run that ends however it ends (done, failed,
// cancelled) closes its own window: its guard entry, which keeps incidents' hands off the targets,
// and its Alertmanager silence. A run that was terminated (or whose close failed) leaves both until
// the window's end, and the guard refuses the schedule's next run meanwhile (and the destructive
// slots it held until their leases lapse, which the next run waits for). This closes them, and
// only them: never a window whose run is still running (cancelling that run closes it properly).
import { createAlertmanagerActivities, type AlertmanagerActivities } from '../../activities/alertmanager.js';
import { closeWindowUpdate, guardBatchUpdate, maxGuardBatch } from '../../activities/guardMessages.js';
import { parseDuration } from '../../config/duration.js';
import type { EngineConfig } from '../../config/schema.js';
import { maintenanceWorkflowId } from '../../workflows/messages.js';
import { windowSilenceAuthor, windowSilenceCommentStart } from '../../workflows/steps/maintenanceWindow.js';
import { guardHandle, guardStateChanged, readGuardState } from './guardState.js';
import { CommandError, runStatus, type Temporal } from './operatorTemporal.js';
import { escapeRegex } from '../plan.js';

export interface ClosedWindows {
  schedule: string;
  dryRun: boolean;
  /** The runs whose windows were closed (or, in a dry run, would be): each one's targets and end. */
  holders: Array<{ workflowId: string; status: string; targets: string[]; until?: string }>;
  /** The destructive slots those runs held, released (or, in a dry run, that would be): "<action> <target>". */
  slotsReleased: string[];
  /** Silences of those runs expired (or, in a dry run, that would be). */
  silencesExpired: string[];
  /** Silences that could not be expired, and why: they end by themselves with the window. */
  silencesLeft: Array<{ id: string; error: string }>;
}

/** An open window as the guard holds it, with whether the run that holds it still runs. */
export interface OpenWindow {
  schedule: string;
  /** The workflow id of the run that opened it. */
  holder: string;
  /** That run's status now (running, completed, terminated, …; not-found once its history is gone). */
  status: string;
  targets: string[];
  until: string;
}

/** Every open maintenance window, one row per schedule and holder, soonest end first. */
export async function openMaintenanceWindows(t: Temporal, config: EngineConfig): Promise<OpenWindow[]> {
  const { windows } = await readGuardState(t, config);
  const rows = new Map<string, OpenWindow>();
  for (const w of windows) {
    const key = JSON.stringify([w.schedule, w.holder]);
    const row = rows.get(key) ?? { schedule: w.schedule, holder: w.holder, status: '', targets: [], until: '' };
    row.targets.push(w.target);
    if (new Date(w.until).toISOString() > row.until) row.until = new Date(w.until).toISOString();
    rows.set(key, row);
  }
  const open = [...rows.values()].sort((a, b) => a.until.localeCompare(b.until)).slice(0, maxHolders);
  await Promise.all(open.map(async (row) => (row.status = await runStatus(t, row.holder))));
  return open;
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
  const guard = guardHandle(t, config);
  const state = await readGuardState(t, config, { fresh: true });
  const windows = state.windows.filter((w) => w.schedule === name);
  const commentStart = `maintenance '${name}' (`;
  const silences = opts.alertmanager ? await opts.alertmanager.engineSilences(windowSilenceAuthor, commentStart) : [];
  const holderOf = (comment: string) => {
    const rest = comment.slice(commentStart.length);
    const end = rest.indexOf('): ');
    return end > 0 ? rest.slice(0, end) : undefined;
  };
  // A run of this schedule: by hand `maintenance:<name>`, from the schedule `maintenance:<name>-<time>`.
  const ofSchedule = new RegExp(`^${escapeRegex(maintenanceWorkflowId(name))}(-\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z)?$`);
  const holders = [
    ...new Set([
      ...windows.map((w) => w.holder),
      ...silences.flatMap((s) => holderOf(s.comment) ?? []),
      // A slot whose lease outlives the window (a step's timeout longer than what was left of it).
      ...state.leases.filter((l) => ofSchedule.test(l.holder)).map((l) => l.holder),
    ]),
  ];
  if (holders.length === 0)
    throw new CommandError(
      1,
      `maintenance '${name}' holds no open window, silence or destructive slot of its own: there is nothing to close`,
    );
  if (holders.length > maxHolders)
    throw new CommandError(
      1,
      `maintenance '${name}' has ${holders.length} runs holding windows, slots or silences; close them in Temporal and Alertmanager`,
    );

  const result: ClosedWindows = { schedule: name, dryRun, holders: [], slotsReleased: [], silencesExpired: [], silencesLeft: [] };
  // Every holder is checked before anything is closed: one still running refuses the whole close.
  for (const holder of holders) {
    const status = await runStatus(t, holder);
    if (status === 'running') {
      throw new CommandError(
        1,
        `maintenance '${name}' is still running (workflow ${holder}): cancel it instead ('remediate cancel ${holder}'), which expires its silence and closes its window`,
      );
    }
    const held = windows.filter((w) => w.holder === holder);
    result.holders.push({
      workflowId: holder,
      status,
      targets: held.map((w) => w.target),
      ...(held.length > 0 ? { until: new Date(Math.max(...held.map((w) => w.until))).toISOString() } : {}),
    });
  }
  for (const holder of result.holders) {
    if (holder.targets.length > 0 && !dryRun) await t.call(() => guard.executeUpdate(closeWindowUpdate, { args: [holder.workflowId] }));
    // The destructive slots it held (a backup, a VACUUM under way when it was terminated): the next
    // run would wait for them until their leases lapse.
    const leases = state.leases.filter((l) => l.holder === holder.workflowId).slice(0, maxGuardBatch);
    for (const l of leases) result.slotsReleased.push(`${l.action} ${l.target}`);
    if (leases.length > 0 && !dryRun)
      await t.call(() =>
        guard.executeUpdate(guardBatchUpdate, { args: [leases.map((l) => ({ op: 'releaseSlot' as const, leaseId: l.id }))] }),
      );
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
  if (!dryRun) guardStateChanged(t, config);
  return result;
}
