// The spooled webhook on its own thread: it answers Alertmanager once a batch is fsynced, even while
// the engine's event loop is held; what it accepts reaches the engine (its forwarder, its metrics,
// its log); the paths only the engine can answer are asked of it; the spool stays one process's.
import { spawnSync } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { webhookThreadSettings } from '../../triggers/alerts/alertmanager.js';
import { openSpool, spoolFileName } from '../../triggers/alerts/spool.js';
import { startWebhookThread, webhookThreadOf, type WebhookThread } from '../../triggers/alerts/webhookThread.js';
import { postToWebhook } from '../support/alertmanagerPayload.js';
import { metricValue, notification, startLoneWebhook, type LoneWebhook } from './support/webhookAlone.js';
import { triggerConfig } from './support/config.js';
import { niceOf } from './support/threadNice.js';
import { pino } from 'pino';
import { createMetrics } from '../../triggers/metrics/metrics.js';

let dir: string;
let thread: WebhookThread | undefined;
let w: LoneWebhook | undefined;
let ready = true;
/** The thread's handle, to end it as a crash would, and what the engine was told of its failures. */
let handle: Worker | undefined;
let failures: Error[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'remediation-webhook-thread-'));
  ready = true;
  failures = [];
});

afterEach(async () => {
  await w?.close();
  await thread?.spool.close();
  w = thread = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A webhook whose spool and port are on their own thread; its Temporal is a closed port. */
async function threaded(): Promise<LoneWebhook> {
  const fx = triggerConfig({ taskQueue: 'nobody-polls' });
  const metrics = createMetrics({ processMetrics: false });
  const log: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void log.push(line) });
  thread = await startWebhookThread({
    settings: webhookThreadSettings(fx.config, dir),
    logger,
    metrics,
    onFailure: (err) => failures.push(err),
    spawn: (settings) => (handle = webhookThreadOf(settings)),
  });
  w = await startLoneWebhook({ deps: { config: fx.config, thread, metrics, logger, ready: async () => ready } });
  return { ...w, fx, metrics, log };
}

/** A notification of one alert bound to a runbook: its forwarding waits on a Temporal that is not there. */
const batch = (hook: LoneWebhook, fingerprint: string) =>
  notification(hook.fx.api, [
    {
      status: 'firing',
      labels: { alertname: 'ServiceDown', severity: 'critical' },
      annotations: {},
      startsAt: new Date().toISOString(),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:19090/graph',
      fingerprint,
    },
  ]);

describe('the webhook on its own thread', () => {
  it("answers a batch once it is fsynced, while the engine's event loop is held", async () => {
    const hook = await threaded();
    // curl runs while this thread waits for it (spawnSync): nothing on this event loop can run
    // until it ends. The answer comes from the webhook's thread, or curl gives up after 5 s.
    const body = JSON.stringify(batch(hook, 'fp-held'));
    const curl = spawnSync(
      'curl',
      [
        '-s',
        '-m',
        '5',
        '-w',
        '\n%{http_code}',
        '-H',
        `Authorization: Bearer ${hook.fx.token}`,
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        '@-',
        `${hook.url}/alertmanager`,
      ],
      { input: body, encoding: 'utf8', timeout: 10_000 },
    );
    const [answer, code] = curl.stdout.split('\n');
    expect(code).toBe('200');
    expect(JSON.parse(answer!)).toMatchObject({ status: 'queued', alerts: 1 });
    // On disk before the answer: the batch's line is in the spool file.
    expect(readFileSync(join(dir, spoolFileName), 'utf8')).toContain('fp-held');
    // The engine hears of it once its loop turns: the forwarder holds it (Temporal is unreachable).
    await expect.poll(() => thread!.spool.pendingAlerts()).toBe(1);
    expect(await metricValue(hook.metrics, 'alerts_received_total', '{status="firing"}')).toBe(1);
  });

  it("asks the engine for health, readiness and metrics, and counts and logs the thread's refusals in the engine", async () => {
    const hook = await threaded();
    expect((await fetch(`${hook.url}/healthz`)).status).toBe(200);
    ready = false;
    const notReady = await fetch(`${hook.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not ready' });
    expect((await fetch(`${hook.url}/nothing-here`)).status).toBe(404);
    expect((await fetch(`${hook.url}/metrics`, { method: 'POST' })).status).toBe(405);

    const refused = await postToWebhook(hook.url, 'not-the-token', batch(hook, 'fp-refused'));
    expect(refused.status).toBe(401);
    const metrics = await (await fetch(`${hook.url}/metrics`)).text();
    expect(metrics).toMatch(/^webhook_request_duration_seconds_count\{code="401"\} 1$/m);
    await expect.poll(() => hook.log.some((l) => l.includes('"status":401') && l.includes('webhook request refused'))).toBe(true);
    expect(hook.log.join('\n')).not.toContain(hook.fx.token);
  });

  it("runs at webhook.threadNice, the engine's own threads at theirs", async () => {
    const hook = await threaded();
    expect(hook.fx.config.webhook.threadNice).toBe(-10);
    await expect.poll(() => hook.log.some((l) => l.includes('webhook thread priority') || l.includes('keeps its priority'))).toBe(true);
    const line = JSON.parse(hook.log.find((l) => l.includes('webhook thread'))!) as { tid: number; nice?: number; unchanged?: string };
    const own = niceOf(process.pid);
    // On the engine's /metrics too, as the kernel reports it.
    await expect.poll(() => metricValue(hook.metrics, 'webhook_thread_nice')).toBe(niceOf(line.tid));
    if (process.getuid?.() === 0) {
      expect(line).toMatchObject({ msg: 'webhook thread priority set', nice: -10 });
      expect(niceOf(line.tid)).toBe(-10);
      expect(own).not.toBe(-10);
    } else {
      // Raising a priority needs CAP_SYS_NICE: the thread says so and runs as the engine does.
      expect(line.unchanged).toContain('CAP_SYS_NICE');
      expect(niceOf(line.tid)).toBe(own);
    }
  });

  it('keeps the spool: what was not forwarded is there for the next start, done marks written by the thread', async () => {
    const hook = await threaded();
    expect((await postToWebhook(hook.url, hook.fx.token, batch(hook, 'fp-kept'))).json).toMatchObject({ status: 'queued' });
    await expect.poll(() => thread!.spool.pendingAlerts()).toBe(1);
    // A second spool on the same directory is refused while the thread holds it.
    await expect(openSpool(dir)).rejects.toThrow(/already open in this process|in use/);
    await w!.close();
    w = undefined;
    const seq = thread!.spool.nextPending(0)!.seq;
    thread!.spool.done(seq);
    await thread!.spool.syncMarks();
    await thread!.spool.close();
    thread = undefined;
    const reopened = await openSpool(dir);
    try {
      expect(reopened.pendingAlerts()).toBe(0);
    } finally {
      await reopened.close();
    }
  });

  it('a thread that dies while running is loud: logged, its port closed, the spool refuses, the engine told once', async () => {
    const hook = await threaded();
    expect((await postToWebhook(hook.url, hook.fx.token, batch(hook, 'fp-before'))).json).toMatchObject({ status: 'queued' });
    await expect.poll(() => thread!.spool.pendingAlerts()).toBe(1);
    expect(failures).toEqual([]);
    // As a crash would: the thread ends without its close.
    await handle!.terminate();
    await expect.poll(() => failures.length).toBe(1);
    expect(failures[0]!.message).toMatch(/webhook thread exited/);
    expect(hook.log.filter((l) => l.includes('the webhook thread failed; its port is closed'))).toHaveLength(1);
    // Alertmanager finds the port closed (and retries elsewhere or later); nothing answers 200.
    await expect(fetch(`${hook.url}/alertmanager`, { method: 'POST', body: '{}' })).rejects.toThrow();
    // What the forwarder asks of the spool now fails, naming the thread, instead of hanging.
    await expect(thread!.spool.syncMarks()).rejects.toThrow(/webhook thread exited/);
    await expect(thread!.spool.read(thread!.spool.nextPending(0)!.seq)).rejects.toThrow(/webhook thread exited/);
    // The accepted batch is on disk for the next start: the engine's, after this process exits (its
    // lock names this process, so nothing in it takes the spool over meanwhile).
    expect(readFileSync(join(dir, spoolFileName), 'utf8')).toContain('fp-before');
    await expect(openSpool(dir)).rejects.toThrow(/already open in this process/);
    // Closing afterwards (the engine's stop) settles; the failure is not reported twice.
    await thread!.spool.close();
    thread = undefined;
    expect(failures).toHaveLength(1);
  });

  it('refuses to start on a spool another opener holds, naming it, and leaves no thread behind', async () => {
    const held = await openSpool(dir);
    try {
      const fx = triggerConfig({ taskQueue: 'nobody-polls' });
      await expect(
        startWebhookThread({
          settings: webhookThreadSettings(fx.config, dir),
          logger: pino({ level: 'silent' }),
          metrics: createMetrics({ processMetrics: false }),
        }),
      ).rejects.toThrow(dir);
    } finally {
      await held.close();
    }
  });
});
