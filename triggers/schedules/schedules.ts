// Maintenance windows enter the engine as Temporal Schedules, one per config.maintenance entry.
// The config is the source of truth; syncing is idempotent, so every engine start (and any number
// of engines starting at once) converges on the same set of schedules.
import { createHash } from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { Logger } from 'pino';
import { skippedByClockChange } from '../../config/cron.js';
import type { EngineConfig, MaintenanceSchedule } from '../../config/schema.js';
import { interpreterWorkflowType, maintenanceWorkflowId } from '../../workflows/messages.js';
import { planMaintenanceRun } from '../plan.js';

export const maintenanceSchedulePrefix = 'maintenance-';

export function maintenanceScheduleId(name: string): string {
  return `${maintenanceSchedulePrefix}${name}`;
}

export interface ScheduleSyncResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
  /** Schedules of the namespace not in the config that could not be read, left alone (not deleted). */
  unreadable: string[];
}

export interface ScheduleSyncDeps {
  client: Client;
  config: EngineConfig;
  /** The engine's task queue: maintenance workflows run there, and it marks the schedules this engine owns. */
  taskQueue: string;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

// A window missed while Temporal was down still runs if Temporal is back within this long;
// later than that, running maintenance at a surprising hour is worse than skipping a week.
const catchupWindow = '10m';

// What sync last applied is kept in the action's memo (copied to each maintenance run, where it
// also says which config version started it). The server rewrites cron strings into calendar
// specs, so comparing what describe() returns with the config would never be exact.
interface SyncMemo {
  maintenanceDefinition: string;
  configPaused: boolean;
}

export async function syncSchedules(deps: ScheduleSyncDeps): Promise<ScheduleSyncResult> {
  const { client, config, taskQueue } = deps;
  const result: ScheduleSyncResult = { created: [], updated: [], unchanged: [], deleted: [], unreadable: [] };
  const wanted = new Set<string>();

  for (const schedule of config.maintenance) {
    const id = maintenanceScheduleId(schedule.name);
    wanted.add(id);
    // Temporal skips a run whose local time the clocks jump over, and says nothing.
    const skipped = skippedByClockChange(schedule.cron, schedule.timezone, Date.now());
    if (skipped.length > 0)
      deps.logger?.warn(
        { schedule: schedule.name, skipped },
        `maintenance '${schedule.name}' will not run at ${skipped.join(', ')} ${schedule.timezone}: the clocks go forward over that time and Temporal skips it; move the cron out of the hour the clocks skip, or use UTC`,
      );
    const desired = desiredSchedule(config, schedule, taskQueue);
    const handle = client.schedule.getHandle(id);
    let current: ScheduleDescription | undefined = await describeOrUndefined(handle);
    if (!current) {
      try {
        await client.schedule.create({ scheduleId: id, ...desired.options, state: { paused: schedule.paused, note: desired.note } });
        result.created.push(id);
        continue;
      } catch (err) {
        // Another engine created it between our describe and create: fall through to compare.
        if (!(err instanceof ScheduleAlreadyRunning)) throw new Error(`creating schedule '${id}' failed: ${(err as Error).message}`);
        current = await handle.describe();
      }
    }
    const applied = appliedMemo(current);
    const definitionChanged = applied?.maintenanceDefinition !== desired.memo.maintenanceDefinition;
    // A pause made by an operator (remediate schedules pause) survives re-syncs; only a change
    // of the config's own `paused` flag overrides it.
    const pausedFlagChanged = applied?.configPaused !== schedule.paused;
    if (!definitionChanged && !pausedFlagChanged) {
      result.unchanged.push(id);
      continue;
    }
    try {
      await handle.update((prev): ScheduleUpdateOptions<ScheduleOptionsStartWorkflowAction<Workflow>> => ({
        ...desired.options,
        state: pausedFlagChanged ? { paused: schedule.paused, note: desired.note } : { paused: prev.state.paused, note: prev.state.note },
      }));
    } catch (err) {
      throw new Error(`updating schedule '${id}' failed: ${(err as Error).message}`);
    }
    result.updated.push(id);
  }

  for await (const summary of client.schedule.list()) {
    const id = summary.scheduleId;
    if (!id.startsWith(maintenanceSchedulePrefix) || wanted.has(id)) continue;
    const handle = client.schedule.getHandle(id);
    let current: ScheduleDescription | undefined;
    try {
      current = await describeOrUndefined(handle);
    } catch (err) {
      // Not one of this config's: another engine or environment sharing the namespace may be
      // deleting it this moment (the server then refuses to describe it). Not known to be ours, so
      // it is left alone, and start-up goes on; the next sync looks at it again.
      deps.logger?.warn({ schedule: id, error: (err as Error).message }, `schedule '${id}' could not be read; left alone`);
      result.unreadable.push(id);
      continue;
    }
    // Only schedules this engine owns (its task queue, its workflow type): another engine or
    // environment sharing the namespace keeps its own.
    if (
      !current ||
      current.action.type !== 'startWorkflow' ||
      !['maintenance', interpreterWorkflowType].includes(current.action.workflowType)
    )
      continue;
    if (current.action.taskQueue !== taskQueue) continue;
    try {
      await handle.delete();
      result.deleted.push(id);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw new Error(`deleting schedule '${id}' failed: ${(err as Error).message}`);
    }
  }

  deps.logger?.info({ ...result }, 'maintenance schedules synchronised');
  return result;
}

function desiredSchedule(config: EngineConfig, schedule: MaintenanceSchedule, taskQueue: string) {
  const input = planMaintenanceRun(config, schedule, { engineQueue: taskQueue });
  const definition = {
    cron: schedule.cron,
    timezone: schedule.timezone,
    taskQueue,
    workflowId: maintenanceWorkflowId(schedule.name),
    input,
    overlap: 'skip',
    catchupWindow,
  };
  const memo: SyncMemo = { maintenanceDefinition: fingerprint(definition), configPaused: schedule.paused };
  const options = {
    spec: { cronExpressions: [schedule.cron], timezone: schedule.timezone },
    action: {
      type: 'startWorkflow' as const,
      workflowType: interpreterWorkflowType,
      workflowId: maintenanceWorkflowId(schedule.name),
      taskQueue,
      args: [input],
      memo: { ...memo },
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow, pauseOnFailure: false },
  };
  const note = schedule.paused ? 'paused in the remediation config' : 'managed by the remediation config';
  return { options, memo, note };
}

function appliedMemo(d: ScheduleDescription): SyncMemo | undefined {
  if (d.action.type !== 'startWorkflow') return undefined;
  const memo = d.action.memo as Partial<SyncMemo> | undefined;
  if (typeof memo?.maintenanceDefinition !== 'string' || typeof memo.configPaused !== 'boolean') return undefined;
  return { maintenanceDefinition: memo.maintenanceDefinition, configPaused: memo.configPaused };
}

async function describeOrUndefined(handle: ScheduleHandle): Promise<ScheduleDescription | undefined> {
  try {
    return await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    // The client's message ("Failed to describe schedule") says nothing of why; the server's does.
    const cause = (err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : '';
    throw new Error(`reading schedule '${handle.scheduleId}' failed: ${(err as Error).message}${cause}`);
  }
}

/** Stable across key order, so the same config always hashes the same. */
function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('hex').slice(0, 32);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}
