import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleNotFoundError, type Client, type Connection } from '@temporalio/client';
import { skippedByClockChange } from '../../config/cron.js';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { maintenanceScheduleId, syncSchedules } from '../../triggers/schedules/schedules.js';
import type { RunbookRunInput, RunbookResult } from '../../workflows/messages.js';
import { stack } from '../support/stack.js';
import { temporalClient, uniqueQueue } from '../support/temporal.js';
import { eventually } from '../support/wait.js';
import { triggerConfig, suffix } from './support/config.js';
import { startStubWorker } from './support/stubWorker.js';

let client: Client;
let connection: Connection;
let stopWorker: () => Promise<void>;
let taskQueue: string;
let raw: EngineConfigInput;
const s = suffix();
const [nightly, weekly] = [`nightly-${s}`, `weekly-${s}`];
const created = new Set<string>();

function configWith(maintenance: NonNullable<EngineConfigInput['maintenance']>) {
  return parseConfig({ ...raw, maintenance }, 'schedules test');
}

async function listedIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const sch of client.schedule.list()) if (sch.scheduleId.endsWith(s)) ids.push(sch.scheduleId);
  return ids.sort();
}

beforeAll(async () => {
  taskQueue = uniqueQueue('triggers-schedules');
  const fx = triggerConfig({ taskQueue, temporalAddress: stack().temporalAddress });
  raw = { ...fx.raw, alertmanager: { url: stack().alertmanagerUrl } };
  ({ stop: stopWorker } = await startStubWorker(taskQueue));
  ({ client, connection } = await temporalClient());
  created.add(maintenanceScheduleId(nightly)).add(maintenanceScheduleId(weekly));
});

afterAll(async () => {
  for (const id of created)
    await client.schedule
      .getHandle(id)
      .delete()
      .catch(() => {});
  await stopWorker?.();
  await connection?.close();
});

describe('maintenance schedule sync', () => {
  const targets = () => Object.keys(raw.targets);

  it('creates one schedule per maintenance entry, with cron, timezone, overlap skip and the maintenance input', async () => {
    const config = configWith([
      { name: nightly, cron: '30 3 * * *', timezone: 'Europe/Berlin', window: '30m', targets: [targets()[2]!] },
      { name: weekly, targets: [targets()[0]!, targets()[1]!], paused: true },
    ]);
    const r = await syncSchedules({ client, config, taskQueue });
    expect(r).toEqual({
      created: [maintenanceScheduleId(nightly), maintenanceScheduleId(weekly)],
      updated: [],
      unchanged: [],
      deleted: [],
      unreadable: [],
    });

    const d = await client.schedule.getHandle(maintenanceScheduleId(nightly)).describe();
    expect(d.spec.timezone).toBe('Europe/Berlin');
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 3, end: 3, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
    expect(d.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 600_000 });
    expect(d.state.paused).toBe(false);
    if (d.action.type !== 'startWorkflow') throw new Error('expected a startWorkflow action');
    expect(d.action).toMatchObject({ workflowType: 'runbook', taskQueue, workflowId: `maintenance:${nightly}` });
    const input = d.action.args?.[0] as RunbookRunInput;
    expect(input.definition.name).toBe('maintenance');
    expect(input.maintenance).toMatchObject({ schedule: nightly, windowMs: 1_800_000, targets: [targets()[2]] });
    expect(input.targets).toMatchObject([{ name: targets()[2], kind: 'postgres', queue: taskQueue }]);

    expect((await client.schedule.getHandle(maintenanceScheduleId(weekly)).describe()).state.paused).toBe(true);
  });

  it('re-syncing the same config changes nothing and creates no duplicates', async () => {
    const config = configWith([
      { name: nightly, cron: '30 3 * * *', timezone: 'Europe/Berlin', window: '30m', targets: [targets()[2]!] },
      { name: weekly, targets: [targets()[0]!, targets()[1]!], paused: true },
    ]);
    const r = await syncSchedules({ client, config, taskQueue });
    expect(r).toEqual({
      created: [],
      updated: [],
      unchanged: [maintenanceScheduleId(nightly), maintenanceScheduleId(weekly)],
      deleted: [],
      unreadable: [],
    });
    const ids = await eventually(listedIds, (l) => l.length === 2);
    expect(ids).toEqual([maintenanceScheduleId(nightly), maintenanceScheduleId(weekly)]);
  });

  it('updates a changed schedule in place, keeping a pause an operator made', async () => {
    const handle = client.schedule.getHandle(maintenanceScheduleId(nightly));
    await handle.pause('operator paused it');
    const config = configWith([
      { name: nightly, cron: '0 4 * * *', timezone: 'UTC', window: '45m', targets: [targets()[2]!] },
      { name: weekly, targets: [targets()[0]!, targets()[1]!], paused: false },
    ]);
    const r = await syncSchedules({ client, config, taskQueue });
    expect(r.updated.sort()).toEqual([maintenanceScheduleId(nightly), maintenanceScheduleId(weekly)]);
    const d = await handle.describe();
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 4, end: 4, step: 1 }] });
    expect(d.spec.timezone).toBe('UTC');
    expect(d.state).toMatchObject({ paused: true, note: 'operator paused it' });
    // The config's own paused flag changed for `weekly`, so the config wins there.
    expect((await client.schedule.getHandle(maintenanceScheduleId(weekly)).describe()).state.paused).toBe(false);
    await handle.unpause();
  });

  it('triggering a schedule starts a maintenance run on the engine’s queue', async () => {
    const handle = client.schedule.getHandle(maintenanceScheduleId(weekly));
    await handle.trigger();
    const d = await eventually(
      () => handle.describe(),
      (x) => x.info.recentActions.length > 0,
    );
    const action = d.info.recentActions[0]!.action;
    expect(action.type).toBe('startWorkflow');
    if (action.type !== 'startWorkflow') return;
    expect(action.workflow.workflowId).toMatch(new RegExp(`^maintenance:${weekly}-`));
    const result = (await client.workflow.getHandle(action.workflow.workflowId).result()) as RunbookResult;
    expect(result).toMatchObject({ outcome: 'completed', detail: `stub maintenance '${weekly}' of ${targets()[0]}, ${targets()[1]}` });
  });

  it('deletes schedules removed from the config, but not those another engine owns', async () => {
    // Someone else's maintenance schedule in the same namespace: another task queue.
    const foreign = `foreign-${s}`;
    const other = configWith([{ name: foreign, targets: [targets()[0]!] }]);
    created.add(maintenanceScheduleId(foreign));
    await syncSchedules({ client, config: other, taskQueue: `${taskQueue}-other` });
    await eventually(listedIds, (l) => l.length === 3);

    const config = configWith([{ name: nightly, cron: '0 4 * * *', timezone: 'UTC', window: '45m', targets: [targets()[2]!] }]);
    const r = await syncSchedules({ client, config, taskQueue });
    expect(r).toEqual({
      created: [],
      updated: [],
      unchanged: [maintenanceScheduleId(nightly)],
      deleted: [maintenanceScheduleId(weekly)],
      unreadable: [],
    });
    await expect(client.schedule.getHandle(maintenanceScheduleId(weekly)).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect((await client.schedule.getHandle(maintenanceScheduleId(foreign)).describe()).action).toMatchObject({
      taskQueue: `${taskQueue}-other`,
    });
  });

  it('warns, naming the time, about a run the clocks going forward would make Temporal skip without a word', async () => {
    const name = `dst-${s}`;
    created.add(maintenanceScheduleId(name));
    const [cron, timezone] = ['30 2 * * 0', 'Europe/Berlin'];
    // The Sundays the clocks skip 02:00-03:00 there (the last of March) within the next 400 days:
    // one, or two from late February on.
    const expected = skippedByClockChange(cron, timezone, Date.now());
    expect(expected.length).toBeGreaterThanOrEqual(1);
    for (const at of expected) expect(at).toMatch(/^\d{4}-03-(2[5-9]|3[01]) 02:30$/);
    const warned: Array<{ obj: unknown; msg: string }> = [];
    const logger = { info() {}, warn: (obj: unknown, msg?: string) => void warned.push({ obj, msg: msg ?? '' }) } as unknown as Pick<
      Logger,
      'info' | 'warn'
    >;
    await syncSchedules({
      client,
      config: configWith([{ name, cron, timezone, targets: [targets()[0]!] }]),
      taskQueue: `${taskQueue}-dst`,
      logger,
    });
    expect(warned).toContainEqual({
      obj: { schedule: name, skipped: expected },
      msg: `maintenance '${name}' will not run at ${expected.join(', ')} ${timezone}: the clocks go forward over that time and Temporal skips it; move the cron out of the hour the clocks skip, or use UTC`,
    });
    // A time the clocks never skip: no warning.
    warned.length = 0;
    await syncSchedules({
      client,
      config: configWith([{ name, cron: '30 3 * * 0', timezone, targets: [targets()[0]!] }]),
      taskQueue: `${taskQueue}-dst`,
      logger,
    });
    expect(warned).toEqual([]);
  });

  it('leaves alone, and starts anyway, a schedule of the namespace it cannot read (another environment deleting it meanwhile)', async () => {
    // Another environment's schedule in the same namespace (another task queue), listed.
    const name = `unreadable-${s}`;
    const foreign = maintenanceScheduleId(name);
    created.add(foreign);
    await syncSchedules({ client, config: configWith([{ name, targets: [targets()[0]!] }]), taskQueue: `${taskQueue}-other` });
    await eventually(listedIds, (l) => l.includes(foreign));
    const config = configWith([{ name: nightly, cron: '0 4 * * *', timezone: 'UTC', window: '45m', targets: [targets()[2]!] }]);
    // The server refuses to describe the other environment's schedule, as it does one being deleted.
    const refusing = {
      ...client,
      schedule: new Proxy(client.schedule, {
        get(schedules, key) {
          if (key !== 'getHandle') return Reflect.get(schedules, key, schedules) as unknown;
          return (id: string) => {
            const handle = schedules.getHandle(id);
            if (id !== foreign) return handle;
            const refused = new Error('Failed to describe schedule', {
              cause: new Error('9 FAILED_PRECONDITION: schedule is being deleted'),
            });
            return { ...handle, scheduleId: id, describe: () => Promise.reject(refused) };
          };
        },
      }),
    } as Client;
    const warned: Array<{ obj: unknown; msg: string }> = [];
    const logger = { info() {}, warn: (obj: unknown, msg?: string) => void warned.push({ obj, msg: msg ?? '' }) } as unknown as Pick<
      Logger,
      'info' | 'warn'
    >;
    const r = await syncSchedules({ client: refusing, config, taskQueue, logger });
    expect(r.deleted).toEqual([]);
    expect(r.unreadable).toEqual([foreign]);
    expect(warned).toContainEqual({
      obj: {
        schedule: foreign,
        error: `reading schedule '${foreign}' failed: Failed to describe schedule: 9 FAILED_PRECONDITION: schedule is being deleted`,
      },
      msg: `schedule '${foreign}' could not be read; left alone`,
    });
    expect((await client.schedule.getHandle(foreign).describe()).action).toMatchObject({ taskQueue: `${taskQueue}-other` });
  });
});
