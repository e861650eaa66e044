// A target-scoped operator acting on a maintenance run: the run's scope is its schedule's targets,
// whether it was started by hand (maintenance:<name>) or by its schedule, which Temporal starts as
// maintenance:<name>-<scheduled time>. Against the stack's Temporal; the runs have no worker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import { parseConfig } from '../../config/load.js';
import { OperatorActions } from '../../triggers/operators/actions.js';
import { cancelIncident, runMaintenanceNow, sendDecision } from '../../triggers/operators/operatorCommands.js';
import { maintenanceScheduleId, syncSchedules } from '../../triggers/schedules/schedules.js';
import { until } from '../support/wait.js';
import type { Identity } from '../../triggers/operators/credentials.js';
import { connectTemporal, type Temporal } from '../../triggers/operators/operatorTemporal.js';
import { interpreterWorkflowType, maintenanceWorkflowId, runbookAttribute, targetAttribute } from '../../workflows/messages.js';
import { stack } from '../support/stack.js';
import { temporalClient, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { suffix, triggerConfig } from './support/config.js';

const queue = uniqueQueue('operator-scope');
const weekly = `weekly-${suffix()}`;
// A second schedule whose name extends the first's: its scheduled runs' ids start with the first's id.
const weeklyDb = `${weekly}-db`;
let client: Client;
let connection: Connection;
let temporal: Temporal;
let actions: OperatorActions;
let who: (name: string) => Identity;
let config: ReturnType<typeof parseConfig>;

beforeAll(async () => {
  const fx = triggerConfig({
    taskQueue: queue,
    temporalAddress: stack().temporalAddress,
    extra: { alertmanager: { url: stack().alertmanagerUrl } },
  });
  const db2 = `${fx.db}-2`;
  fx.raw.targets = { ...fx.raw.targets, [db2]: { kind: 'postgres', port: 1, labels: { service: db2 } } };
  fx.raw.maintenance = [
    { name: weekly, targets: [fx.db] },
    { name: weeklyDb, targets: [db2] },
  ];
  fx.raw.operators = [
    { name: 'dora', role: 'admin', targets: [fx.db] },
    { name: 'wes', role: 'admin', targets: [db2] },
  ];
  config = parseConfig(fx.raw, 'operator scope test');
  ({ client, connection } = await temporalClient());
  temporal = await connectTemporal(config);
  actions = new OperatorActions({ config, temporal, audit: () => {} });
  who = (name) => ({ operator: config.operators.find((o) => o.name === name)!, via: 'api', credential: 'token' });
});

afterAll(async () => {
  for (const name of [weekly, weeklyDb])
    await client?.schedule
      .getHandle(maintenanceScheduleId(name))
      .delete()
      .catch(() => undefined);
  if (client) await terminateRunning(client, queue);
  await temporal?.close();
  await connection?.close();
});

/** A maintenance run as its schedule starts it: the schedule's name as its target attribute. */
async function scheduledRun(schedule: string, at = '2026-12-06T02:00:00Z'): Promise<string> {
  const workflowId = `${maintenanceWorkflowId(schedule)}-${at}`;
  await client.workflow.start(interpreterWorkflowType, {
    taskQueue: queue,
    workflowId,
    args: [{}],
    typedSearchAttributes: [
      { key: targetAttribute, value: schedule },
      { key: runbookAttribute, value: 'maintenance' },
    ],
  });
  return workflowId;
}

describe('operator scope on maintenance runs', () => {
  it("lets an operator scoped to a schedule's targets cancel its scheduled run, and refuses one scoped elsewhere", async () => {
    const id = await scheduledRun(weekly);
    await expect(actions.cancel(who('wes'), id, 'not mine')).rejects.toMatchObject({ status: 403 });
    await expect(actions.cancel(who('dora'), id, 'the window overran')).resolves.toEqual({ workflowId: id, cancelled: true });
  });

  it("tells a schedule from one whose name extends it by the run's target attribute, not by the id's prefix", async () => {
    const id = await scheduledRun(weeklyDb);
    await expect(actions.cancel(who('dora'), id, 'not mine')).rejects.toMatchObject({ status: 403 });
    await expect(actions.cancel(who('wes'), id, 'the window overran')).resolves.toEqual({ workflowId: id, cancelled: true });
  });
});

describe('a decision nobody runs the workflow to take', () => {
  it('is answered 503, not taken, when no engine worker answers within 15 s: the update never reached the run', async () => {
    const id = await scheduledRun(weekly, '2026-12-13T02:00:00Z');
    const began = Date.now();
    const refused = await actions.decide(who('dora'), id, 'acknowledge', 'on it').catch((err: unknown) => err);
    expect(refused).toMatchObject({
      status: 503,
      message: expect.stringContaining(`no engine worker took the acknowledge of '${id}' within 15 s: it was not taken; try again`),
    });
    expect(Date.now() - began).toBeGreaterThanOrEqual(14_000);
    // Nothing reached the run's history: no signal, no update accepted.
    const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    expect(events.some((e) => e.workflowExecutionSignaledEventAttributes || e.workflowExecutionUpdateAcceptedEventAttributes)).toBe(false);
  }, 40_000);
});

describe('a decision or cancel authorised on one run', () => {
  it('is not applied to a new run started under the same id meanwhile: it names the run that ended', async () => {
    const id = await scheduledRun(weekly, '2026-12-20T02:00:00Z');
    const first = await client.workflow.getHandle(id).describe();
    // The run the operator was authorised on ends, and the next one starts under its id.
    await client.workflow.getHandle(id).terminate('ended before the operator pressed');
    await scheduledRun(weekly, '2026-12-20T02:00:00Z');
    const described = { chain: first.raw.workflowExecutionInfo!.firstRunId!, runId: first.runId };
    const began = Date.now();
    await expect(sendDecision(temporal, config, id, 'acknowledge', { operator: 'dora', reason: 'on it' }, described)).rejects.toThrow(
      `the run of '${id}' this was about has ended; there is nothing to acknowledge`,
    );
    // Answered by the server at once, not after the 15 s an update waits for a worker.
    expect(Date.now() - began).toBeLessThan(10_000);
    await expect(cancelIncident(temporal, id, { operator: 'dora', reason: 'stop it' }, described)).rejects.toThrow(
      `the run of '${id}' this was about has ended; there is nothing to cancel`,
    );
    const now = await client.workflow.getHandle(id).describe();
    expect(now.status.name).toBe('RUNNING');
    const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    expect(events.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionCancelRequestedEventAttributes)).toBe(
      false,
    );
  }, 40_000);
});

describe('a maintenance run started by hand', () => {
  it("is refused while the schedule's own run of the same window is running: two windows would back up and VACUUM side by side", async () => {
    await syncSchedules({ client, config, taskQueue: queue });
    const schedule = client.schedule.getHandle(maintenanceScheduleId(weeklyDb));
    await schedule.trigger();
    const started = await until('the scheduled run to start', 20_000, async () => (await schedule.describe()).info.recentActions[0]);
    const running = started.action;
    await expect(runMaintenanceNow(temporal, config, weeklyDb, 'dora')).rejects.toThrow(
      `maintenance '${weeklyDb}' is already running from its schedule (workflow ${running.workflow.workflowId})`,
    );
    // Nothing was started under the schedule's plain id.
    await expect(client.workflow.getHandle(maintenanceWorkflowId(weeklyDb)).describe()).rejects.toThrow();
  }, 40_000);
});
