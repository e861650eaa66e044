// Repeats of a firing alert that its incident already holds are folded by the trigger itself, with
// no signal (Alertmanager resends a firing alert every repeat interval; each signal would grow the
// run's history, and Temporal refuses signals past 10,000 per run). Real dev server, stub runbooks.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createIncidentSignaller, coalesceMs, isTemporalUnavailable, type IncidentSignaller } from '../../triggers/alerts/incidents.js';
import { matchBinding } from '../../triggers/alerts/binding.js';
import { planRunbook } from '../../triggers/plan.js';
import { incidentWorkflowId, statusQuery, type RunbookResult } from '../../workflows/messages.js';
import { stack } from '../support/stack.js';
import { startTcpProxy } from '../support/tcpProxy.js';
import { temporalClient, temporalConnectOptions, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { triggerConfig, type TriggerFixture } from './support/config.js';
import { startStubWorker } from './support/stubWorker.js';

let fx: TriggerFixture;
let taskQueue: string;
let client: Client;
let stop: () => Promise<void>;
let incidents: IncidentSignaller;
let eager: IncidentSignaller;
let eagerClient: () => Client;

beforeAll(async () => {
  taskQueue = uniqueQueue('triggers-fold');
  fx = triggerConfig({ taskQueue, temporalAddress: stack().temporalAddress });
  const worker = await startStubWorker(taskQueue);
  stop = worker.stop;
  eagerClient = () => worker.eagerClient;
  ({ client } = await temporalClient());
  incidents = createIncidentSignaller(client, { timeoutMs: 10_000 });
  eager = createIncidentSignaller(client, { timeoutMs: 10_000, eagerClient: worker.eagerClient });
});
afterAll(async () => {
  await terminateRunning(client, taskQueue);
  await stop?.();
});

function inputFor(target: string, alertname = 'ServiceDown') {
  const labels = { alertname, service: target };
  const match = matchBinding(fx.config, { labels });
  if (!match.matched) throw new Error(match.reason);
  return planRunbook(fx.config, match, { labels }, { engineQueue: taskQueue });
}

const firing = { fingerprint: 'f00d', at: '2026-12-03T01:00:00.000Z' };
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('repeats of a held alert', () => {
  it('are folded without a signal once the coalescing window has passed, while the run that holds them runs', async () => {
    const input = inputFor(fx.api);
    const first = await incidents.fire(input, firing, taskQueue);
    expect(first.started).toBe(true);
    await pause(coalesceMs + 200);
    for (let i = 0; i < 20; i++) {
      const r = await incidents.fire(input, firing, taskQueue);
      // The first repeat is folded by the held-alert check; the next ones within 5 s share its answer.
      expect(r).toMatchObject({ workflowId: first.workflowId, runId: first.runId, started: false, coalesced: i > 0 });
    }
    // The stub counts every alertFiring signal it gets: only the opening one arrived.
    const status = await client.workflow.getHandle(first.workflowId).query(statusQuery);
    expect(status.alertsFolded).toBe(0);
    expect(status.timeline.filter((e) => e.event === 'firing')).toHaveLength(1);
  });

  it('still signals a new firing of the alert (a new start) and another alert on the same target', async () => {
    const input = inputFor(fx.web);
    const first = await incidents.fire(input, firing, taskQueue);
    await pause(coalesceMs + 200);
    await incidents.fire(input, { ...firing, at: '2026-12-03T02:00:00.000Z' }, taskQueue);
    await incidents.fire(input, { fingerprint: 'beef', at: firing.at }, taskQueue);
    const status = await client.workflow.getHandle(first.workflowId).query(statusQuery);
    expect(status.alertsFolded).toBe(2);
  });

  it('starts a new run when the run that held the alert has ended', async () => {
    const input = inputFor(fx.api);
    const handle = client.workflow.getHandle(`incident:serviceDown:${fx.api}`);
    const { runId: before } = await handle.describe();
    await incidents.resolve('serviceDown', fx.api, { fingerprint: firing.fingerprint, at: new Date().toISOString() });
    expect(((await handle.result()) as RunbookResult).outcome).toBe('resolved-externally');
    await pause(coalesceMs + 200);
    const again = await incidents.fire(input, firing, taskQueue);
    expect(again.started).toBe(true);
    expect(again.runId).not.toBe(before);
  });
});

describe('eager start', () => {
  it("starts a new incident with its alert in the input and the first task in the start's reply; an alert for a running one is signalled", async () => {
    const input = inputFor(fx.db, 'DatabaseDown');
    const first = await eager.fire(input, firing, taskQueue);
    expect(first).toMatchObject({ started: true, eager: true, coalesced: false });
    const handle = client.workflow.getHandle(first.workflowId);
    const history = (await handle.fetchHistory()).events ?? [];
    // No signal carried the opening alert, and the first task was started with the run itself.
    expect(history.filter((e) => e.workflowExecutionSignaledEventAttributes)).toHaveLength(0);
    expect(history[0]!.workflowExecutionStartedEventAttributes?.input?.payloads).toHaveLength(1);
    let status = await handle.query(statusQuery);
    expect(status.timeline.filter((e) => e.event === 'firing').map((e) => e.detail)).toEqual([firing.fingerprint]);

    // Another alert for the running incident: the start finds it running, signal-with-start delivers it.
    const second = await eager.fire(input, { fingerprint: 'beef', at: firing.at }, taskQueue);
    expect(second).toMatchObject({ workflowId: first.workflowId, runId: first.runId, started: false, coalesced: false });
    status = await handle.query(statusQuery);
    expect(status.timeline.filter((e) => e.event === 'firing').map((e) => e.detail)).toEqual([firing.fingerprint, 'beef']);
    expect(status.alertsFolded).toBe(1);
  });

  it('reads at the door for a run it starts eagerly, once its start is sent; drops them when the incident runs already, and then reads no more for it', async () => {
    const doors: Array<{ workflowId: string; told: string[] }> = [];
    // The start's request, as the connection is handed it.
    const sent = vi.spyOn(eagerClient().workflowService, 'startWorkflowExecution');
    const signaller = createIncidentSignaller(client, {
      timeoutMs: 10_000,
      eagerClient: eagerClient(),
      doorReads: (_input, workflowId) => {
        const door = { workflowId, told: [`opened after ${sent.mock.calls.length} start(s) sent`] };
        doors.push(door);
        return { started: (runId) => door.told.push(`started ${runId}`), dropped: () => door.told.push('dropped') };
      },
    });
    const input = inputFor(fx.web);
    expect('definition' in input).toBe(true);
    // A new incident: whatever an earlier test left running on this target ends first.
    await client.workflow
      .getHandle(incidentWorkflowId(input.runbook, input.target))
      .terminate('a new incident for the door test')
      .catch(() => undefined);
    const first = await signaller.fire(input, { fingerprint: 'd001', at: firing.at }, taskQueue);
    expect(first).toMatchObject({ started: true, eager: true });
    // Another alert while it runs: the start fails, its door is dropped; the ones after go straight
    // to signal-with-start (no start that would fail again), and so open none.
    await signaller.fire(input, { fingerprint: 'd002', at: firing.at }, taskQueue);
    await signaller.fire(input, { fingerprint: 'd003', at: firing.at }, taskQueue);
    expect(doors).toEqual([
      { workflowId: first.workflowId, told: ['opened after 1 start(s) sent', `started ${first.runId}`] },
      { workflowId: first.workflowId, told: ['opened after 2 start(s) sent', 'dropped'] },
    ]);
    sent.mockRestore();
  });

  it('gives up within its deadline, as Temporal unreachable, when the path to Temporal is cut', async () => {
    const proxy = await startTcpProxy(stack().temporalAddress);
    const options = { ...temporalConnectOptions(), address: proxy.address };
    const native = await NativeConnection.connect(options);
    const grpc = await Connection.connect(options);
    try {
      const namespace = stack().temporalNamespace;
      const cutOff = createIncidentSignaller(new Client({ connection: grpc, namespace }), {
        timeoutMs: 2_000,
        eagerClient: new Client({ connection: native, namespace }),
      });
      proxy.cut();
      const asked = Date.now();
      const err = await cutOff.fire(inputFor(fx.web), { fingerprint: 'cut', at: new Date().toISOString() }, taskQueue).then(
        () => undefined,
        (e: unknown) => e,
      );
      // The native client retries a refused connection on its own: only the deadline ends it.
      expect(err).toBeDefined();
      expect(isTemporalUnavailable(err), String(err)).toBe(true);
      expect(Date.now() - asked).toBeLessThan(4_500);
    } finally {
      proxy.restore();
      await native.close();
      await grpc.close();
      await proxy.close();
    }
  });
});
