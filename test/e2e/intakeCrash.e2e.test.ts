// An engine answering through the intake in Temporal (webhook.intake: always), SIGKILLed while its
// intake activity is handing a storm's alerts on: every alert it answered 200 still becomes a run,
// started by the next engine on the queue (the activity retried after its heartbeat timeout, from
// what its heartbeat recorded). And a hostile signal straight into the intake (not alerts) is left
// out without holding up the alerts after it. Against a dev server of the test's own.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { intakeSignal, intakeWorkflowId } from '../../workflows/intake.js';
import { postAlerts, stormBatches } from '../support/alertmanagerPayload.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { eventually } from '../support/wait.js';
import { e2eConfigInput, unreachableTargets } from './engine.js';

const token = `tok-${randomBytes(12).toString('hex')}`;
const stormSize = 200;
let server: DevServer;
let connection: Connection;
let client: Client;
const engines: EngineProcess[] = [];

beforeAll(async () => {
  server = await startDevServer();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: 'default' });
});

afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(5_000);
});

afterAll(async () => {
  await connection?.close();
  await server?.close();
});

async function engineOn(taskQueue: string, names: string[]): Promise<EngineProcess> {
  // Each run finds its target down and pages, never restarts it. Dry-run besides.
  const targets = await unreachableTargets(names);
  const engine = await spawnEngine(
    e2eConfigInput({
      temporal: { address: server.address, taskQueue },
      webhook: { listen: '127.0.0.1:0', token, intake: 'always' },
      dryRun: true,
      targets,
      bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: names, runbook: 'serviceDown' }],
    }),
  );
  engines.push(engine);
  return engine;
}

const runs = async (taskQueue: string) => (await client.workflow.count(`TaskQueue = '${taskQueue}' AND WorkflowType = 'runbook'`)).count;

describe('an engine answering through the intake', () => {
  it('loses no alert it answered when it is killed while handing them on: the next engine starts the rest', async () => {
    const taskQueue = 'intake-crash';
    const names = Array.from({ length: stormSize }, (_, i) => `crash-${i}`);
    const first = await engineOn(taskQueue, names);
    const statuses = await Promise.all(
      stormBatches(names).map(async (alerts) => (await postAlerts(first.webhookUrl, token, alerts)).status),
    );
    expect(statuses).toEqual(Array(10).fill(200));

    // Killed as soon as it has started the first of them.
    const startedLines = () =>
      first
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"runbook started"')).length;
    await eventually(
      async () => startedLines(),
      (n) => n > 0,
      30_000,
      5,
    );
    first.kill('SIGKILL');
    await first.exited;
    expect(startedLines()).toBeLessThan(stormSize);

    await engineOn(taskQueue, names);
    // The activity's heartbeat timeout (20 s), then the retry on this engine.
    expect(
      await eventually(
        () => runs(taskQueue),
        (n) => n === stormSize,
        90_000,
        500,
      ),
    ).toBe(stormSize);
    const ids = new Set<string>();
    for await (const run of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND WorkflowType = 'runbook'` }))
      ids.add(run.workflowId);
    expect(ids.size).toBe(stormSize);
  }, 180_000);

  it('leaves out what a hostile signal put in the intake that is not an alert, and hands on the alerts after it', async () => {
    const taskQueue = 'intake-hostile';
    const names = ['hostile-0'];
    const engine = await engineOn(taskQueue, names);
    // Anyone with Temporal access could signal the intake: nothing here is an alert.
    await client.workflow.signalWithStart('intake', {
      taskQueue,
      workflowId: intakeWorkflowId(taskQueue),
      args: [{}],
      signal: intakeSignal,
      signalArgs: [
        { alerts: [null, 'x', { status: 'firing' }, { labels: { service: names[0] }, status: 'firing', fingerprint: 7 }] as never },
      ],
    });
    const res = await postAlerts(engine.webhookUrl, token, [
      { labels: { alertname: 'ServiceDown', service: names[0]!, severity: 'critical' } },
    ]);
    expect(res.status).toBe(200);
    expect(
      await eventually(
        () => runs(taskQueue),
        (n) => n === 1,
        30_000,
        200,
      ),
    ).toBe(1);
    const left = engine
      .output()
      .split('\n')
      .filter((line) => line.includes('an alert in the intake is not an alert; left out'));
    expect(left).toHaveLength(4);
  }, 90_000);
});
