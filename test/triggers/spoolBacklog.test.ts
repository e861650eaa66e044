// The spool is bounded by bytes and read as a stream. Before, it was capped by alert count, held
// every pending batch in memory and was read as one string at start: 565 MB spooled during a
// Temporal outage took 1.25 GB of memory, then "Cannot create a string longer than 0x1fffffe8" at
// the next start, and the engine could not start at all.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { WebhookAlert } from '../../triggers/alerts/alertmanagerPayload.js';
import { openSpool, spoolFileName, SpoolFullError, type Spool } from '../../triggers/alerts/spool.js';
import { postToWebhook } from '../support/alertmanagerPayload.js';
import { pendingEntries } from './support/spoolFile.js';
import { metricValue, notification, startLoneWebhook } from './support/webhookAlone.js';

const MiB = 1_048_576;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function spoolDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'remediation-backlog-'));
  dirs.push(d);
  return d;
}

const alert = (fingerprint: string, n: number, pad = ''): WebhookAlert => ({
  status: n % 7 === 6 ? 'resolved' : 'firing',
  labels: { alertname: 'ServiceDown', service: `svc-${fingerprint}`, instance: `${fingerprint}:9100` },
  annotations: { n: String(n), description: pad },
  startsAt: '2026-01-05T02:00:00Z',
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: 'http://127.0.0.1:19090/graph',
  fingerprint,
});

/**
 * Writes, in the spool's own format, the backlog a long Temporal outage leaves: `batches` batches of
 * 50 alerts of about 2 KiB, over 500 alerts that repeat, the first ones already marked done, and a
 * last line a crash cut short. Returns how many alerts are still to forward.
 */
async function writeBacklog(dir: string, batches: number, doneFirst: number): Promise<{ alerts: number; bytes: number }> {
  const out = createWriteStream(join(dir, spoolFileName));
  const pad = 'x'.repeat(1_800);
  let alerts = 0;
  for (let seq = 1; seq <= batches; seq++) {
    const batch = Array.from({ length: 50 }, (_, i) =>
      alert(`fp${((seq * 50 + i) % 500).toString(16).padStart(14, '0')}`, seq * 50 + i, pad),
    );
    if (seq > doneFirst) alerts += batch.length;
    const line = `${JSON.stringify({ seq, at: '2026-01-05T02:00:00.000Z', alerts: batch })}\n${seq === doneFirst ? Array.from({ length: doneFirst }, (_, i) => `{"done":${i + 1}}\n`).join('') : ''}`;
    if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  out.write('{"seq":999999999,"at":"2026-01-05T02:00:00.000Z","alerts":[{"status":"fir');
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return { alerts, bytes: statSync(join(dir, spoolFileName)).size };
}

function runChild(dir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./support/spoolBacklogChild.ts', import.meta.url)), dir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('webhook spool: a backlog of any size', () => {
  it('forwards a 600 MB backlog left by an earlier process, in order, holding under 512 MiB', async () => {
    const dir = spoolDir();
    const { alerts, bytes } = await writeBacklog(dir, 6_000, 300);
    expect(bytes).toBeGreaterThan(600_000_000);

    const run = await runChild(dir);
    expect(run.code, run.stderr.slice(-2_000)).toBe(0);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    console.log(`600 MB backlog: ${JSON.stringify(result)}`);
    expect(result.opened).toMatchObject({ batches: 6_000 - 300, alerts });
    expect(result.delivered).toBe(alerts);
    expect(result.outOfOrder).toBe(0);
    expect(result.left).toBe(0);
    expect(result.vmHWMMiB).toBeLessThan(512);

    // Everything was marked done: the next start has nothing to forward, and the file was emptied.
    expect(statSync(join(dir, spoolFileName)).size).toBeLessThan(MiB);
    const again = await openSpool(dir);
    expect(again.pendingBatches()).toBe(0);
    await again.close();
  }, 300_000);
});

describe('webhook spool: byte cap and free disk', () => {
  it('refuses a batch that would take the pending bytes past the cap, and takes batches again once some are forwarded', async () => {
    const s = await openSpool(spoolDir());
    const batch = Array.from({ length: 10 }, (_, i) => alert(`fp${i}`, i, 'y'.repeat(900)));
    const first = await s.append(batch, { maxBytes: 30_000 });
    await s.append(batch, { maxBytes: 30_000 });
    await expect(s.append(batch, { maxBytes: 30_000 })).rejects.toSatisfy((err) => err instanceof SpoolFullError && err.reason === 'bytes');
    expect(s.pendingBatches()).toBe(2);
    expect(s.pendingBytes()).toBeLessThanOrEqual(30_000);
    s.done(first.seq);
    await s.append(batch, { maxBytes: 30_000 });
    expect(s.pendingBatches()).toBe(2);
    await s.close();
  });

  it('answers 503 with Retry-After once the spool is at its byte cap, so Alertmanager holds the alerts', async () => {
    const s = await openSpool(spoolDir());
    // Temporal is unreachable: whatever is spooled stays pending.
    const w = await startLoneWebhook({ deps: { spool: s, spoolMaxBytes: 64 * 1024 } });
    try {
      const answers: Array<{ status: number; retryAfter: string | null; error?: string }> = [];
      for (let i = 0; i < 20; i++) {
        const body = notification(
          w.fx.api,
          Array.from({ length: 10 }, (_, j) => alert(`fp${i}-${j}`, j, 'z'.repeat(600))),
        );
        const res = await fetch(`${w.url}/alertmanager`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${w.fx.token}` },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as { error?: string };
        answers.push({ status: res.status, retryAfter: res.headers.get('retry-after'), error: json.error });
      }
      const accepted = answers.filter((a) => a.status === 200).length;
      expect(accepted).toBeGreaterThan(3);
      expect(answers.slice(accepted).every((a) => a.status === 503 && a.retryAfter === '30')).toBe(true);
      expect(answers[accepted]!.error).toMatch(
        /^the spool holds \d+\.\d MiB \(\d+ alerts\) not yet forwarded to Temporal, the most it takes is 0\.1 MiB; try again later$/,
      );
      expect(s.pendingBytes()).toBeLessThanOrEqual(64 * 1024);
      expect(await metricValue(w.metrics, 'webhook_spool_refused_total', '{reason="bytes"}')).toBe(20 - accepted);
      expect(await metricValue(w.metrics, 'webhook_spool_pending_bytes')).toBe(s.pendingBytes());
    } finally {
      await w.close();
      await s.close();
    }
  });

  it('answers 503 while the free space on the spool disk is below what it must keep free', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    const fsStat = await statfs(dir);
    // A filesystem that is this full: asked to keep more free than there is.
    const w = await startLoneWebhook({ deps: { spool: s, spoolMinFreeBytes: fsStat.bavail * fsStat.bsize + 1024 * MiB } });
    try {
      const r = await postToWebhook(w.url, w.fx.token, notification(w.fx.api, [alert('fp-disk', 1)]));
      expect(r.status).toBe(503);
      expect(r.json.error).toMatch(/^the spool's filesystem has \d+\.\d MiB free, below the \d+\.\d MiB kept free; try again later$/);
      expect(s.pendingBatches()).toBe(0);
      expect(await metricValue(w.metrics, 'webhook_spool_refused_total', '{reason="disk"}')).toBe(1);
    } finally {
      await w.close();
      await s.close();
    }
  });
});

describe('webhook spool: rewritten under a reader', () => {
  it('reads back the right batches after the file was rewritten while open', async () => {
    const s: Spool = await openSpool(spoolDir());
    const stuck = await s.append([alert('stuck', 1)]);
    const pad = 'w'.repeat(1_000);
    for (let i = 0; i < 40; i++) {
      const e = await s.append(Array.from({ length: 500 }, (_, j) => alert(`moving-${i}-${j}`, j, pad)));
      s.done(e.seq);
    }
    const after = await s.append([alert('after', 2)]);
    await s.append([alert('later', 3)]);
    // Rewritten on the way (over 16 MiB of forwarded batches): offsets moved, reads follow them.
    expect(statSync(join(dirs.at(-1)!, spoolFileName)).size).toBeLessThan(16 * MiB);
    expect((await s.read(stuck.seq))?.alerts.map((a) => a.fingerprint)).toEqual(['stuck']);
    expect((await s.read(after.seq))?.alerts.map((a) => a.fingerprint)).toEqual(['after']);
    expect((await pendingEntries(s)).map((e) => e.alerts[0]!.fingerprint)).toEqual(['stuck', 'after', 'later']);
    await s.close();
  });
});
