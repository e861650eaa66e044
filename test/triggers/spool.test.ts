import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, statfs } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebhookAlert } from '../../triggers/alerts/alertmanagerPayload.js';
import { lockHolder, openSpool, spoolFileName, SpoolFullError } from '../../triggers/alerts/spool.js';
import { startForwarder } from '../../triggers/alerts/spoolForwarder.js';
import { until } from '../support/wait.js';
import { pendingEntries } from './support/spoolFile.js';

const execFileP = promisify(execFile);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function spoolDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'remediation-spool-'));
  dirs.push(d);
  return d;
}

function alert(fingerprint: string, status: 'firing' | 'resolved' = 'firing'): WebhookAlert {
  return {
    status,
    labels: { alertname: 'ServiceDown', service: 'api' },
    annotations: {},
    startsAt: '2026-11-23T00:00:00Z',
    endsAt: '',
    fingerprint,
  } as unknown as WebhookAlert;
}

describe('webhook spool', () => {
  it('keeps what was accepted and not done across a restart, and forgets what was done', async () => {
    const dir = spoolDir();
    const first = await openSpool(dir);
    const a = await first.append([alert('a1'), alert('a2')]);
    const b = await first.append([alert('b1')]);
    first.done(a.seq);
    await first.close();

    const again = await openSpool(dir);
    expect((await pendingEntries(again)).map((e) => [e.seq, e.alerts.map((x) => x.fingerprint)])).toEqual([[b.seq, ['b1']]]);
    expect(again.pendingAlerts()).toBe(1);
    // Numbering carries on: a new batch never reuses a spooled one's number.
    expect((await again.append([alert('c1')])).seq).toBe(b.seq + 1);
    await again.close();
  });

  it('ignores a line cut short by a crash mid-write', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    await s.append([alert('whole')]);
    await s.close();
    appendFileSync(join(dir, spoolFileName), '{"seq":2,"at":"2026-11-23T00:00:00Z","alerts":[{"stat');
    const again = await openSpool(dir);
    expect((await pendingEntries(again)).map((e) => e.alerts[0]!.fingerprint)).toEqual(['whole']);
    // What is appended next starts a line of its own, not glued to the fragment.
    await again.append([alert('after')]);
    await again.close();
    const third = await openSpool(dir);
    expect((await pendingEntries(third)).map((e) => e.alerts[0]!.fingerprint)).toEqual(['whole', 'after']);
    await third.close();
  });

  it.each([
    ["written on the calling thread (the webhook's)", 'this-thread'],
    ["written on Node's pool", 'pool'],
  ])('%s, refuses a batch the disk took only part of, and reads back after a restart every batch it acknowledged', async (_, mode) => {
    const dir = spoolDir();
    // A file-size limit cuts a write short the way a full disk or a quota does: the write returns
    // fewer bytes than asked, without an error; only the next write fails. 64 KiB: the 7th batch crosses it.
    const { stdout } = await execFileP(
      'bash',
      [
        '-c',
        'ulimit -f 64 && exec "$@"',
        'bash',
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(new URL('./support/spoolUnderFileLimit.ts', import.meta.url)),
        dir,
        mode,
      ],
      { timeout: 30_000 },
    );
    const answers = JSON.parse(stdout) as Array<{ fingerprint: string; acknowledged: boolean; error?: string }>;
    const acknowledged = answers.filter((a) => a.acknowledged).map((a) => a.fingerprint);
    const refused = answers.filter((a) => !a.acknowledged);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(refused[0]!.error).toMatch(/spool write cut short: \d+ of \d+ bytes/);
    // Everything after the first refusal is refused too: nothing acknowledged past the cut.
    expect(answers.findIndex((a) => !a.acknowledged)).toBe(acknowledged.length);

    const again = await openSpool(dir);
    expect((await pendingEntries(again)).map((e) => e.alerts[0]!.fingerprint)).toEqual(acknowledged);
    // The fragment the short write left is gone: a batch appended now reads back whole.
    await again.append([alert('after')]);
    await again.close();
    const third = await openSpool(dir);
    expect((await pendingEntries(third)).map((e) => e.alerts[0]!.fingerprint)).toEqual([...acknowledged, 'after']);
    await third.close();
  });

  it('shares one write and one fsync among batches accepted together, each on disk when its promise resolves', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    // The spool's file handle is a FileHandle like any other: count the fsyncs all of them make.
    const probe = await open(join(dir, 'probe'), 'w');
    const syncs = vi.spyOn(Object.getPrototypeOf(probe), 'datasync');
    await probe.close();
    try {
      const entries = await Promise.all(Array.from({ length: 50 }, (_, i) => s.append([alert(`f${i}`)])));
      expect(new Set(entries.map((e) => e.seq)).size).toBe(50);
      const lines = readFileSync(join(dir, spoolFileName), 'utf8').trim().split('\n');
      expect(lines).toHaveLength(50);
      // The first append goes out alone; the 49 queued behind it share the next write.
      expect(syncs.mock.calls.length).toBeLessThanOrEqual(2);
    } finally {
      syncs.mockRestore();
      await s.close();
    }
  });

  it("written on the calling thread (the webhook's), shares one write among the batches of one turn, on disk when the first resolves", async () => {
    const dir = spoolDir();
    const s = await openSpool(dir, { writeOnThisThread: true });
    try {
      const linesWhenFirstResolved = s.append([alert('f0')]).then(() => readFileSync(join(dir, spoolFileName), 'utf8').trim().split('\n'));
      // Each asked in a turn of its own code, as requests read from different sockets are.
      const rest = [];
      for (let i = 1; i < 50; i++) {
        await Promise.resolve();
        rest.push(s.append([alert(`f${i}`)]));
      }
      // Not the first alone and the rest behind it (as on Node's pool): all of the turn's at once.
      expect(await linesWhenFirstResolved).toHaveLength(50);
      const entries = await Promise.all(rest);
      expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 49 }, (_, i) => i + 2));
      await s.append([alert('later')]);
    } finally {
      await s.close();
    }
    const again = await openSpool(dir);
    expect((await pendingEntries(again)).map((e) => e.alerts[0]!.fingerprint)).toEqual([
      ...Array.from({ length: 50 }, (_, i) => `f${i}`),
      'later',
    ]);
    await again.close();
  });

  it('written on the calling thread, refuses a batch while the disk has less free than it must keep, and takes it when it has', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir, { writeOnThisThread: true });
    try {
      const fsStat = await statfs(dir);
      const free = fsStat.bavail * fsStat.bsize;
      const refused = await s.append([alert('full')], { minFreeBytes: free + 1024 ** 3 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SpoolFullError);
      expect((refused as SpoolFullError).reason).toBe('disk');
      expect((await s.append([alert('room')], { minFreeBytes: 1024 })).seq).toBe(1);
      expect(s.pendingBatches()).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('starts the file again once everything in it was forwarded and it has grown', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    const big = Array.from({ length: 2_000 }, (_, i) => alert(`big-${i}-${'x'.repeat(400)}`));
    const e = await s.append(big);
    s.done(e.seq);
    // The next done mark finds nothing pending and a file past the threshold.
    const f = await s.append([alert('small')]);
    s.done(f.seq);
    await s.close();
    expect(statSync(join(dir, spoolFileName)).size).toBeLessThan(1_000);
    const again = await openSpool(dir);
    expect(await pendingEntries(again)).toEqual([]);
    await again.close();
  });
});

describe('spool size', () => {
  it('rewrites a large file with only the pending batches when one batch stays stuck', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    const stuck = await s.append([alert('stuck')]);
    // ~19 MB of traffic that is forwarded while one batch is not.
    const pad = 'x'.repeat(1_000);
    for (let i = 0; i < 35; i++) {
      const e = await s.append(Array.from({ length: 500 }, (_, j) => alert(`moving-${i}-${j}-${pad}`)));
      s.done(e.seq);
    }
    await s.append([alert('newest')]).then((e) => s.done(e.seq));
    await s.close();
    // Rewritten on the way past 16 MiB: what is left is the stuck batch and the traffic after.
    expect(statSync(join(dir, spoolFileName)).size).toBeLessThan(16 * 1_048_576);
    const again = await openSpool(dir);
    expect((await pendingEntries(again)).map((e) => [e.seq, e.alerts[0]!.fingerprint])).toEqual([[stuck.seq, 'stuck']]);
    // Numbering carries on past every batch ever written, not just the ones kept.
    expect((await again.append([alert('next')])).seq).toBeGreaterThan(stuck.seq);
    await again.close();
  });
});

describe('spool lock', () => {
  it('refuses a second opener while the first holds it, and takes over a lock whose process died', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    await expect(openSpool(dir)).rejects.toThrow(/already open in this process/);
    await s.close();
    // A process that no longer exists (pids this large are never handed out here).
    writeFileSync(join(dir, 'spool.lock'), '4194000');
    const again = await openSpool(dir);
    expect(readFileSync(join(dir, 'spool.lock'), 'utf8')).toBe(lockHolder(process.pid));
    await again.close();
  });

  it('refuses a spool held by another live process', async () => {
    const dir = spoolDir();
    writeFileSync(join(dir, 'spool.lock'), lockHolder(process.ppid));
    await expect(openSpool(dir)).rejects.toThrow(`in use by process ${process.ppid}`);
    // A lock written before start times were kept: the live pid alone still holds it.
    writeFileSync(join(dir, 'spool.lock'), String(process.ppid));
    await expect(openSpool(dir)).rejects.toThrow(`in use by process ${process.ppid}`);
  });

  it('takes over a lock whose pid a later process was given (the engine was killed, the pid reused)', async () => {
    const dir = spoolDir();
    // A live pid, but not the process that wrote the lock: that one started at another time.
    writeFileSync(join(dir, 'spool.lock'), `${process.ppid} 1`);
    const s = await openSpool(dir);
    expect(readFileSync(join(dir, 'spool.lock'), 'utf8')).toBe(lockHolder(process.pid));
    await s.close();
  });
});

describe('spool lock across containers', () => {
  /** A lock as an engine in another container writes it: its own pid namespace, this host's boot. */
  const foreign = (pid: number) => `${pid} 12345 pid:[4026500000] ${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}`;

  it("refuses a spool whose holder in another pid namespace keeps its lock fresh, though its pid means nothing here (pid 1, or this process's)", async () => {
    for (const pid of [1, process.pid]) {
      const dir = spoolDir();
      const lock = join(dir, 'spool.lock');
      writeFileSync(lock, foreign(pid));
      // The other engine, alive: it touches its lock.
      const alive = setInterval(() => utimesSync(lock, new Date(), new Date()), 50);
      try {
        const began = Date.now();
        await expect(openSpool(dir, { lockLeaseMs: 300 })).rejects.toThrow(`is in use by process ${pid} of another container or host`);
        // It waited for the lease to lapse before giving up.
        expect(Date.now() - began).toBeGreaterThanOrEqual(550);
      } finally {
        clearInterval(alive);
      }
    }
  });

  it('takes over such a lock once it has not been touched for the lease, and keeps its own fresh', async () => {
    const dir = spoolDir();
    const lock = join(dir, 'spool.lock');
    writeFileSync(lock, foreign(1));
    const s = await openSpool(dir, { lockLeaseMs: 300 });
    expect(readFileSync(lock, 'utf8')).toBe(lockHolder(process.pid));
    await new Promise((r) => setTimeout(r, 700));
    expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(300);
    await s.close();
  });
});

describe('spool forwarder', () => {
  it('delivers each alert in order, retries while delivery fails, and marks batches done', async () => {
    const s = await openSpool(spoolDir());
    const seen: string[] = [];
    let failuresLeft = 3;
    const forwarder = startForwarder({
      spool: s,
      backoffMs: { first: 5, max: 20 },
      logger: { warn() {}, info() {} } as never,
      deliver: async (a) => {
        if (a.fingerprint === 'x' && a.status === 'firing' && failuresLeft-- > 0) throw new Error('Temporal is away');
        seen.push(`${a.fingerprint}:${a.status}`);
      },
    });
    forwarder.enqueue(await s.append([alert('x'), alert('y')]));
    forwarder.enqueue(await s.append([alert('x', 'resolved')]));
    await forwarder.drained();
    // x's resolution waited for x's firing, however many tries that took; y did not wait for x.
    expect(seen.indexOf('x:firing')).toBeLessThan(seen.indexOf('x:resolved'));
    expect(seen.indexOf('y:firing')).toBeLessThan(seen.indexOf('x:firing'));
    expect(failuresLeft).toBe(-1);
    expect(await pendingEntries(s)).toEqual([]);
    await forwarder.stop();
    await s.close();
  });

  it('says once that Temporal stopped taking alerts and once that it takes them again, however many tries between', async () => {
    const s = await openSpool(spoolDir());
    const said: string[] = [];
    let failuresLeft = 6;
    const forwarder = startForwarder({
      spool: s,
      backoffMs: { first: 5, max: 10 },
      logger: {
        warn: (_: unknown, msg: string) => void said.push(`warn ${msg}`),
        info: (_: unknown, msg: string) => void said.push(`info ${msg}`),
      } as never,
      deliver: async () => {
        if (failuresLeft-- > 0) throw new Error('Temporal is away');
      },
    });
    forwarder.enqueue(await s.append([alert('p'), alert('q')]));
    await forwarder.drained();
    expect(failuresLeft).toBeLessThan(0);
    expect(said).toEqual(['warn Temporal did not take spooled alerts; retrying until it does', 'info Temporal takes spooled alerts again']);
    await forwarder.stop();
    await s.close();
  });

  it('never forwards again, after a restart, a firing delivered before its resolution while another alert of its batch still waited', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    const sent: string[] = [];
    const forwarder = startForwarder({
      spool: s,
      backoffMs: { first: 5, max: 5 },
      logger: { warn() {}, info() {} } as never,
      deliver: async (a) => {
        // Temporal refuses B (its incident at a limit, say): its batch stays pending.
        if (a.fingerprint === 'B') throw new Error('refused');
        sent.push(`${a.fingerprint}:${a.status}`);
      },
    });
    forwarder.enqueue(await s.append([alert('A'), alert('B')]));
    forwarder.enqueue(await s.append([alert('A', 'resolved')]));
    await until('A fired and resolved', 5_000, async () => (sent.length === 2 ? true : undefined), 5);
    expect(sent).toEqual(['A:firing', 'A:resolved']);
    // A crash right now (no graceful close: the file is left as it is, unflushed marks aside).
    await forwarder.stop();
    await s.close();

    const again = await openSpool(dir);
    const after: string[] = [];
    const next = startForwarder({
      spool: again,
      backoffMs: { first: 5, max: 5 },
      logger: { warn() {}, info() {} } as never,
      deliver: async (a) => void after.push(`${a.fingerprint}:${a.status}`),
    });
    await next.drained();
    // Only B: A's firing would reopen its incident for an outage that is over.
    expect(after).toEqual(['B:firing']);
    expect(again.pendingBatches()).toBe(0);
    await next.stop();
    await again.close();
  });

  it('keeps what was delivered of a pending batch across a rewrite of the spool file', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    const stuck = await s.append([alert('A'), alert('B')]);
    s.delivered(stuck.seq, 0);
    await s.syncMarks();
    // Traffic since: far more finished than pending, so the next write rewrites the file.
    for (let i = 0; i < 40; i++) {
      const b = await s.append([{ ...alert(`bulk-${i}`), annotations: { pad: 'x'.repeat(500_000) } } as WebhookAlert]);
      s.done(b.seq);
    }
    await s.append([alert('after')]);
    await s.close();
    // Rewritten on the way (20 MB went through it).
    expect(statSync(join(dir, spoolFileName)).size).toBeLessThan(10 * 1_048_576);

    const again = await openSpool(dir);
    const entry = await again.read(stuck.seq);
    expect(entry?.alerts.map((a) => a.fingerprint)).toEqual(['A', 'B']);
    expect([...(entry?.sent ?? [])]).toEqual([0]);
    await again.close();
  });

  it('lets the alerts behind one Temporal keeps refusing move on once its batches have held the window a while, and names it once', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    const sent: string[] = [];
    const warned: unknown[] = [];
    const stuckCounts: number[] = [];
    const forwarder = startForwarder({
      spool: s,
      backoffMs: { first: 5, max: 20 },
      windowBytes: 1,
      stuckAfterMs: 200,
      onStuck: (n) => stuckCounts.push(n),
      logger: { warn: (o: unknown, m: string) => void warned.push([o, m]), info() {} } as never,
      deliver: async (a) => {
        if (a.fingerprint === 'F') throw new Error('the incident of F takes no more signals');
        sent.push(a.fingerprint);
      },
    });
    // F's group notified again and again, then an unrelated alert.
    for (let i = 0; i < 3; i++) forwarder.enqueue(await s.append([alert('F')]));
    forwarder.enqueue(await s.append([alert('other')]));
    await until('the unrelated alert delivered', 5_000, async () => (sent.includes('other') ? true : undefined), 10);
    expect(sent).toEqual(['other']);
    const named = warned.filter((w) => (w as [unknown, string])[1].startsWith('Temporal keeps refusing a spooled alert'));
    expect(named).toHaveLength(1);
    expect((named[0] as [Record<string, unknown>])[0]).toMatchObject({
      alert: 'ServiceDown',
      fingerprint: 'F',
      error: 'the incident of F takes no more signals',
    });
    expect(stuckCounts[0]).toBe(1);
    // F's batches stay in the spool for a later try.
    expect(s.pendingAlerts()).toBe(3);
    await forwarder.stop();
    expect(stuckCounts.at(-1)).toBe(0);
    await s.close();
  });

  it('leaves undelivered batches in the spool when stopped', async () => {
    const dir = spoolDir();
    const s = await openSpool(dir);
    let tries = 0;
    const forwarder = startForwarder({
      spool: s,
      backoffMs: { first: 5, max: 5 },
      logger: { warn() {}, info() {} } as never,
      deliver: async () => {
        tries++;
        throw new Error('Temporal is away');
      },
    });
    forwarder.enqueue(await s.append([alert('stuck')]));
    // Tried, and tried again, before the stop.
    await until('a second try', 5_000, async () => (tries >= 2 ? true : undefined), 5);
    await forwarder.stop();
    await s.close();
    const again = await openSpool(dir);
    expect((await pendingEntries(again)).map((e) => e.alerts[0]!.fingerprint)).toEqual(['stuck']);
    await again.close();
  });
});
