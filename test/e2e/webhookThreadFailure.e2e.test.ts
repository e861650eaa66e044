// The spooled webhook's thread dying under a running engine: the engine says so, stops (its workers
// drained, the embedded server's state kept), and its `done` rejects, so the process exits non-zero
// for its supervisor to start it again. Real worker, real Temporal, the thread ended as a crash would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { webhookThreadOf } from '../../triggers/alerts/webhookThread.js';
import { startEngine, type RunningEngine } from '../../worker/engine.js';
import { bundlePath } from '../support/globalSetup.js';
import { quietRuntime, uniqueQueue } from '../support/temporal.js';
import { e2eConfig, e2eConfigInput } from './engine.js';
import { stack } from '../support/stack.js';

let dataDir: string | undefined;
let engine: RunningEngine | undefined;

afterEach(async () => {
  await engine?.stop();
  engine = undefined;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the webhook thread dying under a running engine', () => {
  it('is logged, stops the engine and rejects its done, naming the thread', async () => {
    quietRuntime();
    dataDir = mkdtempSync(join(tmpdir(), 'remediation-thread-death-'));
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    let thread: Worker | undefined;
    const base = e2eConfigInput();
    engine = await startEngine({
      config: e2eConfig({
        dataDir,
        temporal: { ...base.temporal, taskQueue: uniqueQueue('thread-death') },
        webhook: { listen: '127.0.0.1:0', token: stack().webhookToken, spool: true },
      }),
      logger,
      workflowBundlePath: bundlePath,
      spawnWebhookThread: (settings) => (thread = webhookThreadOf(settings)),
    });
    const running = engine;
    expect((await fetch(`${running.webhookUrl}/healthz`)).status).toBe(200);
    const outcome = running.done.then(
      () => 'resolved',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    await thread!.terminate();
    expect(await outcome).toMatch(/^the webhook thread failed: the webhook thread exited/);
    const said = lines.map((l) => JSON.parse(l) as { msg: string });
    const at = (msg: string) => said.findIndex((l) => l.msg === msg);
    expect(at('the webhook thread failed; its port is closed')).toBeGreaterThan(at('engine running'));
    expect(at('stopping: no new alerts accepted, draining the worker')).toBeGreaterThan(
      at('the webhook thread failed; its port is closed'),
    );
    expect(at('stopped')).toBeGreaterThan(at('stopping: no new alerts accepted, draining the worker'));
    await expect(fetch(`${running.webhookUrl}/healthz`)).rejects.toThrow();
  });
});
