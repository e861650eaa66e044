// A storm of distinct alerts into an engine: while the storm's alerts wait to be started (more than
// a forwarding wave in the spool, or without one more than a batch's calls while the storm's batches
// arrive), the incidents' worker keeps to 2 workflow task slots so the server spends itself on
// starting every run first (worker/workflowTaskSlots.ts); then it has its usual slots back and every
// run acts. Against a dev server of the test's own: 200 runs at once would slow every other test on
// the stack's server.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postAlerts, stormBatches } from '../support/alertmanagerPayload.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { eventually, until } from '../support/wait.js';
import { e2eConfigInput, unreachableTargets } from './engine.js';

const token = `tok-${randomBytes(12).toString('hex')}`;
const stormSize = 200;
let server: DevServer;
let connection: Connection | undefined;
let engine: EngineProcess | undefined;
const held = 'starting waiting alerts first: 2 workflow task slots until they are started';
const released = 'workflow task slots back to normal';

beforeAll(async () => {
  server = await startDevServer();
});

afterEach(async () => {
  await engine?.stop(5_000);
  engine = undefined;
});

afterAll(async () => {
  await connection?.close();
  await server?.close();
});

/** The engine's log lines with this message, parsed. */
function logLines(output: string, msg: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.includes(msg))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.msg === msg);
}

describe.each([
  { mode: 'spooled', spool: true, intake: 'off' as const, threshold: 48 },
  { mode: 'synchronous', spool: false, intake: 'off' as const, threshold: 8 },
  // Answered once in Temporal's intake workflow; its activity forwards them here in waves of up to 500.
  { mode: 'intake', spool: false, intake: 'always' as const, threshold: 48 },
  // Synchronous until a storm: these batches of 20 (more than one batch's 8 calls at once) begin one.
  { mode: 'storms', spool: false, intake: 'storms' as const, threshold: 48 },
])('an alert storm into a $mode engine', ({ mode, spool, intake, threshold }) => {
  const taskQueue = `storm-starts-first-${mode}`;
  it('starts every run before it spends more than 2 workflow task slots on acting, then acts on all of them', async () => {
    // Targets of each mode's own (the runs of the other mode's storm still run on this server), each
    // found down and paged, never restarted. Dry-run besides.
    const names = Array.from({ length: stormSize }, (_, i) => `storm-${mode}-${i}`);
    const targets = await unreachableTargets(names);
    engine = await spawnEngine(
      e2eConfigInput({
        temporal: { address: server.address, taskQueue },
        webhook: { listen: '127.0.0.1:0', token, spool, intake },
        dryRun: true,
        targets,
        bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: names, runbook: 'serviceDown' }],
      }),
    );
    const running = engine;

    // 10 batches of 20 at once, each alert its own target.
    const posted = await Promise.all(
      stormBatches(names).map(async (alerts) => (await postAlerts(running.webhookUrl, token, alerts)).status),
    );
    expect(posted).toEqual(Array(10).fill(200));

    // The hold began with the storm waiting, and ended once what waits was down to its threshold.
    const holdsEnded = () => {
      const [h, r] = [logLines(running.output(), held).length, logLines(running.output(), released).length];
      return r > 0 && r === h ? true : undefined;
    };
    await until('the hold to end', 60_000, async () => holdsEnded());
    const began = logLines(running.output(), held);
    const ended = logLines(running.output(), released);
    // The intake hands its alerts on in waves (one per forwardAlerts call): a hold for each wave
    // past the threshold. The spool and the synchronous door hold once for the storm.
    if (intake !== 'off') expect(began.length).toBeGreaterThanOrEqual(1);
    else expect(began).toHaveLength(1);
    for (const line of began) expect(line.waiting).toBeGreaterThan(threshold);
    expect(ended.at(-1)!.waiting).toBeLessThanOrEqual(threshold);
    const output = running.output();
    expect(output.indexOf(released)).toBeGreaterThan(output.indexOf(held));

    // Every alert is a run, and every run then got through its first workflow task (read its
    // target, found it down): the hold starved nobody.
    connection ??= await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: 'default' });
    const query = `TaskQueue = '${taskQueue}' AND WorkflowType = 'runbook'`;
    const visible = await eventually(
      async () => (await client.workflow.count(query)).count,
      (n) => n === stormSize,
      60_000,
    );
    expect(visible).toBe(stormSize);
    const ids: string[] = [];
    for await (const run of client.workflow.list({ query })) ids.push(run.workflowId);
    expect(new Set(ids).size).toBe(stormSize);
    const unacted = async () => {
      let left = 0;
      for (let i = 0; i < ids.length; i += 20) {
        const histories = await Promise.all(ids.slice(i, i + 20).map((id) => client.workflow.getHandle(id).fetchHistory()));
        left += histories.filter((h) => !h.events?.some((e) => e.workflowTaskCompletedEventAttributes)).length;
      }
      return left;
    };
    expect(await eventually(unacted, (n) => n === 0, 90_000, 1_000)).toBe(0);

    // A lone alert afterwards is no storm: no new hold (the intake may have begun one for a later
    // wave after the first read above).
    const holdsBefore = logLines(running.output(), held).length;
    const lone = await postAlerts(running.webhookUrl, token, [
      { labels: { alertname: 'ServiceDown', service: names[0]!, severity: 'warning' }, fingerprint: 'lone' },
    ]);
    expect(lone.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(logLines(running.output(), held)).toHaveLength(holdsBefore);
  }, 240_000);
});
