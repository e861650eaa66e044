// A page is not sent twice when the engine dies in the middle of a notification. notify records each
// channel it delivered to in its heartbeat details, and a retry skips those; the record has to reach
// the server before the process dies, not wait out the SDK's hold on later heartbeats (30 s by
// default; 8 s for notify's 10 s heartbeat timeout), and the retry comes once the heartbeats stop.
// The engine runs as operators run it (its own process, its production worker options) and is
// killed with SIGKILL while a second channel's receiver has not answered; the retry runs on another
// worker, with only what the server kept of the first attempt.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { NotificationRequest, NotificationResult } from '../../activities/contract.js';
import { createNotifyActivities } from '../../activities/notify.js';
import { Secret } from '../../config/secret.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { stack } from '../support/stack.js';
import { quietRuntime, temporalClient, temporalConfigInput, temporalConnectOptions, uniqueQueue } from '../support/temporal.js';
import { e2eConfigInput } from './engine.js';

let receiver: Receiver;
/** Takes requests and never answers them: the second channel, while the engine is killed. */
let hung: Server;
let hungRequests = 0;
let client: Client;
let connection: Connection;
let native: NativeConnection | undefined;
let engine: EngineProcess | undefined;
const workers: Array<{ worker: Worker; running: Promise<void> }> = [];

beforeAll(async () => {
  quietRuntime();
  receiver = await startReceiver();
  hung = createServer(() => void (hungRequests += 1));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  ({ client, connection } = await temporalClient());
  native = await NativeConnection.connect(temporalConnectOptions('engine'));
});

afterAll(async () => {
  await engine?.stop(5_000);
  for (const w of workers) {
    if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await w.running;
  }
  await native?.close();
  await connection?.close();
  hung?.closeAllConnections();
  await new Promise<void>((r) => (hung ? hung.close(() => r()) : r()));
  await receiver?.close();
});

/** When the server's copy of the running notify attempt's heartbeat details lists `channel`; undefined after `withinMs`. */
async function serverRecord(workflowId: string, channel: string, withinMs: number): Promise<number | undefined> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const { raw } = await client.workflow.getHandle(workflowId).describe();
    const payload = raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0]?.data;
    if (payload) {
      const details = JSON.parse(Buffer.from(payload).toString('utf8')) as { delivered?: string[] };
      if (details.delivered?.includes(channel)) return Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

async function run(options: Parameters<typeof Worker.create>[0]): Promise<void> {
  const worker = await Worker.create(options);
  workers.push({ worker, running: worker.run() });
}

describe('the engine killed in the middle of a notification', () => {
  it('does not page a channel it delivered to again: the retry on another worker skips it', async () => {
    const engineQueue = uniqueQueue('e2e-notify-crash');
    const runsQueue = uniqueQueue('e2e-notify-crash-runs');
    engine = await spawnEngine(
      e2eConfigInput({
        temporal: { ...temporalConfigInput(), taskQueue: engineQueue },
        webhook: { listen: '127.0.0.1:0', token: `tok-${randomBytes(12).toString('hex')}` },
        channels: {
          first: { type: 'webhook', url: `${receiver.url}/first` },
          second: { type: 'webhook', url: `http://127.0.0.1:${(hung.address() as AddressInfo).port}/second` },
        },
        escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['first'] }] } } },
      }),
    );
    // The run that asks for the page, on a queue of its own: the engine only runs the notification.
    await run({
      connection: native!,
      namespace: stack().temporalNamespace,
      taskQueue: runsQueue,
      workflowsPath: fileURLToPath(new URL('../support/notifyWorkflow.ts', import.meta.url)),
    });
    const req: NotificationRequest & { dryRun: boolean } = {
      channels: ['first', 'second'],
      event: 'trigger',
      incidentKey: 'incident:serviceDown:api',
      idempotencyKey: `incident:serviceDown:api/escalate-1/${randomUUID().slice(0, 8)}`,
      severity: 'critical',
      title: 'api is down',
      text: 'paged once per channel, whatever dies meanwhile',
      dryRun: false,
    };
    const handle = await client.workflow.start('notifyOnQueue', {
      taskQueue: runsQueue,
      workflowId: `e2e-notify-crash-${randomUUID()}`,
      args: [engineQueue, req],
    });

    await receiver.waitFor('/first', 1, 30_000);
    const deadline = Date.now() + 10_000;
    while (hungRequests === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(hungRequests, 'the second channel was asked').toBe(1);
    // The first channel's record reaches the server while the attempt still waits on the second
    // (within the second it is held back, not the SDK's default 30 s); then the engine is killed.
    const recordedAt = await serverRecord(handle.workflowId, 'first', 6_000);
    expect(recordedAt, "the server had the first channel's delivery before the kill").toBeDefined();
    engine.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await engine.exited).signal).toBe('SIGKILL');

    // Another worker takes the retry once the server notices the killed attempt's heartbeats
    // stopped (10 s), not once its 30 s limit has passed.
    await run({
      connection: native!,
      namespace: stack().temporalNamespace,
      taskQueue: engineQueue,
      activities: createNotifyActivities({
        channels: {
          first: { type: 'webhook', url: Secret.of(`${receiver.url}/first`) },
          second: { type: 'webhook', url: Secret.of(`${receiver.url}/second`) },
        },
        timeoutMs: 2_000,
        dryRun: false,
      }),
    });
    const result = (await handle.result()) as NotificationResult;
    expect(result.delivered).toEqual([
      { channel: 'first', status: 'duplicate' },
      { channel: 'second', status: 'sent' },
    ]);
    expect(receiver.requestsTo('/first')).toHaveLength(1);
    expect(receiver.requestsTo('/second')).toHaveLength(1);
    const retriedAfterMs = receiver.requestsTo('/second')[0]!.at - killedAt;
    expect(retriedAfterMs, 'the page went out again after the heartbeat timeout, not the 30 s limit').toBeLessThan(20_000);
  }, 90_000);
});
