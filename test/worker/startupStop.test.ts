// A stop that comes while the engine is still starting, once its workers already run (a deploy's
// SIGTERM, a start-up step that fails): the workers are drained and stopped, nothing else opens,
// and the caller learns why start-up ended. Against the stack's Temporal.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { startEngine, StoppedDuringStart } from '../../worker/engine.js';
import { e2eConfig } from '../e2e/engine.js';
import { bundlePath } from '../support/globalSetup.js';
import { historyEvents } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { quietRuntime, temporalClient, temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';

let client: Client;
let connection: Connection;
const queues: string[] = [];

beforeAll(async () => {
  quietRuntime();
  ({ client, connection } = await temporalClient());
});

afterAll(async () => {
  for (const q of queues) await terminateRunning(client, q);
  await connection?.close();
});

function configOn(queue: string, listen: string) {
  queues.push(queue);
  return e2eConfig({ temporal: { ...temporalConfigInput(), taskQueue: queue }, webhook: { listen, token: 'startup-stop-token' } });
}

/**
 * Whether anything still polls the queue: a workflow started on it afterwards, and after `ms`,
 * whether any worker took its first task.
 */
async function taken(queue: string, ms = 3_000): Promise<boolean> {
  const handle = await client.workflow.start('serviceDown', {
    taskQueue: queue,
    workflowId: `startup-stop-probe-${queue}`,
    args: [{ target: 'demo', alert: { labels: { alertname: 'ServiceDown', service: 'demo' } } }],
  });
  await new Promise((r) => setTimeout(r, ms));
  const events = await historyEvents(handle);
  await handle.terminate('probe done').catch(() => {});
  return events.some((e) => e.workflowTaskStartedEventAttributes);
}

const reachable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });

describe('a stop during start-up, once the workers run', () => {
  it('stops the workers, never opens the webhook, and start-up ends with StoppedDuringStart', async () => {
    const queue = uniqueQueue('startup-stop');
    const port = await closedPort();
    let stopped: Promise<void> | undefined;
    const start = startEngine({
      config: configOn(queue, `127.0.0.1:${port}`),
      logger: pino({ level: 'silent' }),
      workflowBundlePath: bundlePath,
      stoppable: (stop) => (stopped = stop()),
    });
    await expect(start).rejects.toBeInstanceOf(StoppedDuringStart);
    expect(stopped).toBeDefined();
    await stopped;
    expect(await reachable(port)).toBe(false);
    expect(await taken(queue)).toBe(false);
  }, 60_000);

  it('a start-up step that fails (the webhook port taken) stops the workers before the error reaches the caller', async () => {
    const queue = uniqueQueue('startup-fail');
    const squatter: Server = createServer();
    const port = await closedPort();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const start = startEngine({
        config: configOn(queue, `127.0.0.1:${port}`),
        logger: pino({ level: 'silent' }),
        workflowBundlePath: bundlePath,
      });
      await expect(start).rejects.toThrow(/EADDRINUSE/);
      expect(await taken(queue)).toBe(false);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  }, 60_000);

  it('the probe itself: a queue an engine serves has its workflow taken at once', async () => {
    const queue = uniqueQueue('startup-running');
    const engine = await startEngine({
      config: configOn(queue, '127.0.0.1:0'),
      logger: pino({ level: 'silent' }),
      workflowBundlePath: bundlePath,
    });
    try {
      expect(await taken(queue, 1_500)).toBe(true);
    } finally {
      await engine.stop();
    }
  }, 60_000);
});
