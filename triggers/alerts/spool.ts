// The webhook's spool: alerts written to local disk (and fsynced) before Alertmanager gets its 200,
// then handed to Temporal by a forwarder that retries until Temporal takes them. It decouples the
// webhook's answer from Temporal's speed (a storm, a slow or restarting server) without losing an
// alert: what was acknowledged is on disk, and an engine that dies with alerts still spooled
// forwards them when it starts again.
//
// One file of JSON lines: `{"seq":7,"at":"…","alerts":[…]}` for a batch accepted, `{"sent":7,"i":[2]}`
// once its third alert reached Temporal, `{"done":7}` once every alert of batch 7 did. Many requests
// arriving together share one write and one fsync. Progress marks are not fsynced as they are
// written: one lost in a crash means an alert is forwarded twice, which folds into the incident it
// already started (SignalWithStart on a deterministic id). Except that a lost mark must never bring
// back a firing whose resolution was delivered after it (its incident would open again for an
// outage that is over): the forwarder fsyncs the marks written so far before it delivers a
// resolution (syncMarks).
//
// The spool is bounded by bytes and by the disk under it, not by trust in Temporal coming back
// soon: past its limits a batch is refused (the webhook answers 503 and Alertmanager keeps the
// alerts). In memory it keeps only where each pending batch sits in the file (spoolIndex.ts); the
// forwarder reads batches back as it gets to them, so a backlog of any size costs the same memory.
import {
  fdatasyncSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WebhookAlert } from './alertmanagerPayload.js';
import { scanSpoolFile, type PendingBatches, type SpoolBatchRef } from './spoolIndex.js';

export type { SpoolBatchRef } from './spoolIndex.js';

export interface SpoolEntry {
  seq: number;
  /** When the webhook accepted the batch. */
  at: string;
  alerts: WebhookAlert[];
  /** The length of its line in the file. */
  bytes: number;
}

/** When to refuse a batch rather than spool it: the webhook answers 503 and Alertmanager holds it. */
export interface SpoolLimits {
  /** Pending (accepted, not yet forwarded) bytes the spool may hold, this batch included. */
  maxBytes?: number;
  /** Free space to leave on the spool's filesystem (Temporal's dev server may share it). */
  minFreeBytes?: number;
}

/** A batch refused by SpoolLimits: nothing was written. */
export class SpoolFullError extends Error {
  constructor(
    readonly reason: 'bytes' | 'disk',
    message: string,
  ) {
    super(message);
  }
}

export interface Spool {
  /**
   * Resolves once the batch is on disk (fsynced); only then may the webhook answer 200. Rejects
   * with SpoolFullError, before writing anything, when the batch would pass `limits`.
   */
  append(alerts: WebhookAlert[], limits?: SpoolLimits): Promise<SpoolEntry>;
  /** Batch `seq` reached Temporal: it will not be forwarded again after a restart. */
  done(seq: number): void;
  /** Alert `index` of batch `seq` reached Temporal: a restart forwards the rest of the batch only. */
  delivered(seq: number, index: number): void;
  /** Resolves once every progress mark written so far is on disk (fsynced). */
  syncMarks(): Promise<void>;
  /** The oldest batch not yet done numbered `seq` or later: where it is, not its alerts. */
  nextPending(seq: number): SpoolBatchRef | undefined;
  /**
   * A pending batch read back from disk, with the alerts of it already delivered (`sent`, by index);
   * undefined once it is done, or when its line is unreadable.
   */
  read(seq: number): Promise<(SpoolEntry & { sent?: ReadonlySet<number> }) | undefined>;
  /** Batches, alerts and bytes accepted and not yet done. */
  pendingBatches(): number;
  pendingAlerts(): number;
  pendingBytes(): number;
  /** Where each pending batch sits, oldest first. */
  pendingRefs(): SpoolBatchRef[];
  close(): Promise<void>;
}

export const spoolFileName = 'webhook-spool.jsonl';

/** A spool file with nothing pending is emptied once it holds this much of finished batches. */
const compactBytes = 1_048_576;
/**
 * A spool file with batches still pending is rewritten with only those once it holds this much of
 * finished ones, and at least as much as is pending (so each rewrite copies no more than it drops).
 */
const rewriteBytes = 16 * compactBytes;
/** How long a reading of the filesystem's free space is trusted (less what was written since). */
const statfsMs = 1_000;

interface Queued {
  line: string;
  bytes: number;
  /** An accepted batch (fsynced before it settles), not a done mark. */
  sync: boolean;
  settle?: (err: unknown, offset: number) => void;
}

export interface SpoolOptions {
  lockLeaseMs?: number;
  /**
   * Appends written and fsynced (and the disk's free space read) on the calling thread, not Node's
   * shared pool: for a thread of its own (the webhook's), whose priority then covers them; appends
   * that arrive together still share one write. Never on an event loop that serves anything else:
   * it waits out each fsync.
   */
  writeOnThisThread?: boolean;
}

export async function openSpool(dir: string, options: SpoolOptions = {}): Promise<Spool> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const unlock = await lockSpool(dir, options.lockLeaseMs ?? 15_000);
  const file = join(dir, spoolFileName);
  let fh: FileHandle;
  let rfh: FileHandle;
  let index: PendingBatches;
  let sent: Map<number, Set<number>>;
  let seq: number;
  let size: number;
  try {
    const scan = await scanSpoolFile(file);
    ({ pending: index, lastSeq: seq, sent } = scan);
    // Bytes after the last newline are a line a crash cut short (never acknowledged): cut them
    // off, or the next line appended would be glued to them and unreadable.
    let onDisk = 0;
    try {
      onDisk = statSync(file).size;
    } catch {
      // No file yet.
    }
    if (scan.wholeBytes < onDisk) truncateSync(file, scan.wholeBytes);
    fh = await open(file, 'a', 0o600);
    rfh = await open(file, 'r');
    size = (await fh.stat()).size;
  } catch (err) {
    unlock();
    throw err;
  }

  // Group commit: lines queued while a write is in flight go out together in the next one.
  let queued: Queued[] = [];
  let writing: Promise<void> | undefined;
  let closed = false;
  // A write that failed may have left part of a line: the next one starts on a new line.
  let torn = false;
  /** Bytes of accepted batches queued and not yet written: counted against maxBytes already. */
  let reserved = 0;
  const reads = new Set<Promise<unknown>>();
  let disk: { free: number; at: number } | undefined;
  /** The disk calls of appends (statfs, write, fsync) on this thread: writeOnThisThread. */
  const inline = options.writeOnThisThread === true;
  /** Progress marks queued since the last fsync was asked for. */
  let unsyncedMarks = 0;

  async function freeBytes(): Promise<number> {
    if (!disk || Date.now() - disk.at > statfsMs) {
      const s = inline ? statfsSync(dir) : await statfs(dir);
      disk = { free: s.bavail * s.bsize, at: Date.now() };
    }
    return disk.free;
  }

  function flushSoon(): void {
    // Inline, the write waits for this turn's other appends (setImmediate runs after the turn's I/O).
    writing ??= (inline ? new Promise<void>((r) => setImmediate(r)) : Promise.resolve()).then(async () => {
      while (queued.length > 0) {
        let group = queued;
        queued = [];
        // Marks of this group name batches no longer in a compacted file (done ones), or ones the
        // rewrite wrote again from memory (sent ones): dropped either way.
        if (await compactIfDue().catch(() => false)) group = group.filter((b) => b.sync);
        if (group.length === 0) continue;
        const text = (torn ? '\n' : '') + group.map((b) => b.line).join('');
        let offset = size + (torn ? 1 : 0);
        try {
          torn = true;
          const bytes = Buffer.from(text);
          // A full disk, a quota or a file-size limit cuts a write short without an error (only the
          // next one fails): a batch not wholly on disk must not be acknowledged.
          const bytesWritten = inline ? writeSync(fh.fd, bytes) : (await fh.write(bytes)).bytesWritten;
          if (bytesWritten < bytes.length) {
            throw new Error(
              `spool write cut short: ${bytesWritten} of ${bytes.length} bytes reached ${file} (disk full, quota or file-size limit)`,
            );
          }
          torn = false;
          const written = bytes.length;
          size += written;
          if (disk) disk.free -= written;
          if (group.some((b) => b.sync)) {
            if (inline) fdatasyncSync(fh.fd);
            else await fh.datasync();
          }
          for (const b of group) {
            b.settle?.(undefined, offset);
            offset += b.bytes;
          }
        } catch (err) {
          // Offsets of what comes next are taken from the file, whatever part of this reached it.
          size = await fh.stat().then(
            (s) => s.size,
            () => size,
          );
          for (const b of group) b.settle?.(err, -1);
        }
      }
      writing = undefined;
    });
  }

  /** True when the file was emptied or rewritten (only the write loop calls it: nothing is written meanwhile). */
  async function compactIfDue(): Promise<boolean> {
    if (index.count === 0) {
      // Nothing pending: start it again.
      if (size < compactBytes) return false;
      await fh.truncate(0);
      size = 0;
      torn = false;
      return true;
    }
    // Some batch still waits (an alert Temporal keeps refusing) while the rest move on: rewrite
    // the file with only what is pending, so it grows with that, not with traffic.
    const finished = size - index.bytes;
    if (finished < rewriteBytes || finished < index.bytes) return false;
    await rewrite();
    return true;
  }

  /**
   * Replaces the file by one holding only the pending batches, copied line by line from the old one
   * (written, fsynced, renamed over). Reads already under way finish on the old file.
   */
  async function rewrite(): Promise<void> {
    const fresh = `${file}.new`;
    const out = await open(fresh, 'w', 0o600);
    const seqs: number[] = [];
    const offsets: number[] = [];
    let written = 0;
    const buf = Buffer.allocUnsafe(compactBytes);
    // Adjacent lines are copied as one run.
    let run = { from: 0, to: 0 };
    const copyRun = async () => {
      for (let at = run.from; at < run.to;) {
        const { bytesRead } = await rfh.read(buf, 0, Math.min(buf.length, run.to - at), at);
        if (bytesRead === 0) throw new Error(`the spool file ended before byte ${run.to}`);
        // Cut short (a full disk): give the rewrite up, the old file stays as it was.
        const { bytesWritten } = await out.write(buf, 0, bytesRead);
        if (bytesWritten < bytesRead) throw new Error(`spool rewrite cut short: ${bytesWritten} of ${bytesRead} bytes reached ${fresh}`);
        at += bytesRead;
        written += bytesRead;
      }
    };
    let newRead: FileHandle | undefined;
    try {
      for (const ref of index.inOrder()) {
        if (ref.offset !== run.to) {
          await copyRun();
          run = { from: ref.offset, to: ref.offset };
        }
        seqs.push(ref.seq);
        offsets.push(written + (ref.offset - run.from));
        run.to = ref.offset + ref.bytes;
      }
      await copyRun();
      // What was delivered of the batches still pending, from memory: the old file's marks are gone.
      for (const [n, marks] of sent) {
        if (!index.get(n) || marks.size === 0) continue;
        const { bytesWritten } = await out.write(`${JSON.stringify({ sent: n, i: [...marks] })}\n`);
        written += bytesWritten;
      }
      await out.datasync();
      newRead = await open(fresh, 'r');
    } finally {
      await out.close();
      if (!newRead) rmSync(fresh, { force: true });
    }
    renameSync(fresh, file);
    index.relocate(seqs, offsets);
    const oldRead = rfh;
    rfh = newRead;
    void Promise.allSettled([...reads]).then(() => oldRead.close());
    await fh.close();
    fh = await open(file, 'a', 0o600);
    size = written;
    torn = false;
  }

  return {
    async append(alerts, limits = {}) {
      if (closed) throw new Error('the spool is closed');
      const alertsJson = JSON.stringify(alerts);
      if (limits.minFreeBytes !== undefined) {
        const free = await freeBytes();
        if (free - alertsJson.length < limits.minFreeBytes)
          throw new SpoolFullError('disk', `the spool's filesystem has ${mib(free)} free, below the ${mib(limits.minFreeBytes)} kept free`);
      }
      if (closed) throw new Error('the spool is closed');
      const at = new Date().toISOString();
      const line = `{"seq":${seq + 1},"at":${JSON.stringify(at)},"alerts":${alertsJson}}\n`;
      const bytes = Buffer.byteLength(line);
      if (limits.maxBytes !== undefined && index.bytes + reserved + bytes > limits.maxBytes) {
        throw new SpoolFullError(
          'bytes',
          `the spool holds ${mib(index.bytes + reserved)} (${index.alerts} alerts) not yet forwarded to Temporal, the most it takes is ${mib(limits.maxBytes)}`,
        );
      }
      const entry: SpoolEntry = { seq: ++seq, at, alerts, bytes };
      reserved += bytes;
      return new Promise((resolve, reject) => {
        queued.push({
          line,
          bytes,
          sync: true,
          settle: (err, offset) => {
            reserved -= bytes;
            if (err) return reject(err);
            index.add({ seq: entry.seq, offset, bytes, alerts: alerts.length });
            resolve(entry);
          },
        });
        flushSoon();
      });
    },
    done(n) {
      if (closed || !index.remove(n)) return;
      sent.delete(n);
      const line = `${JSON.stringify({ done: n })}\n`;
      // A done mark is progress as a sent mark is: a resolution waits for it to be on disk too.
      unsyncedMarks++;
      queued.push({ line, bytes: Buffer.byteLength(line), sync: false });
      flushSoon();
    },
    delivered(n, i) {
      if (closed || !index.get(n)) return;
      const marks = sent.get(n) ?? new Set<number>();
      if (marks.has(i)) return;
      marks.add(i);
      sent.set(n, marks);
      const line = `${JSON.stringify({ sent: n, i: [i] })}\n`;
      unsyncedMarks++;
      queued.push({ line, bytes: Buffer.byteLength(line), sync: false });
      flushSoon();
    },
    syncMarks() {
      if (closed || unsyncedMarks === 0) return Promise.resolve();
      unsyncedMarks = 0;
      // A barrier: written (and fsynced) after every mark queued before it.
      return new Promise((resolve, reject) => {
        queued.push({ line: '', bytes: 0, sync: true, settle: (err) => (err ? reject(err) : resolve()) });
        flushSoon();
      });
    },
    nextPending: (n) => index.firstFrom(n),
    async read(n) {
      const ref = index.get(n);
      if (!ref || closed) return undefined;
      const buf = Buffer.allocUnsafe(ref.bytes);
      const reading = rfh.read(buf, 0, ref.bytes, ref.offset);
      reads.add(reading);
      let bytesRead: number;
      try {
        ({ bytesRead } = await reading);
      } finally {
        reads.delete(reading);
      }
      let record: { seq?: unknown; at?: unknown; alerts?: unknown };
      try {
        record = JSON.parse(buf.toString('utf8', 0, bytesRead));
      } catch {
        return undefined;
      }
      // The file may have been edited: a batch whose alerts have no labels is not one the webhook wrote.
      if (record?.seq !== n || !Array.isArray(record.alerts) || !record.alerts.every(hasLabels)) return undefined;
      const marks = sent.get(n);
      return {
        seq: n,
        at: String(record.at ?? ''),
        alerts: record.alerts as WebhookAlert[],
        bytes: ref.bytes,
        ...(marks ? { sent: marks } : {}),
      };
    },
    pendingBatches: () => index.count,
    pendingAlerts: () => index.alerts,
    pendingBytes: () => index.bytes,
    pendingRefs: () => [...index.inOrder()],
    async close() {
      if (closed) return;
      closed = true;
      await writing;
      await Promise.allSettled([...reads]);
      await fh.close();
      await rfh.close();
      unlock();
    },
  };
}

function hasLabels(alert: unknown): boolean {
  const labels = (alert as { labels?: unknown } | null)?.labels;
  return typeof labels === 'object' && labels !== null;
}

function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

const openHere = new Set<string>();

/**
 * One opener per spool: two engines given the same dataDir would forward each other's alerts,
 * mark each other's batches done, and empty the file under each other. The lock names its holder
 * (pid, start time, pid namespace, boot) and the holder touches it every leaseMs/5. A holder in
 * this pid namespace is known by its pid: a lock left by a process that died is taken over at
 * once. A holder in another (another container on a shared volume, another host) has a pid that
 * says nothing here: its lock is taken over only once it has not been touched for leaseMs, and
 * until then the opener waits, up to twice that, then gives up naming it.
 */
async function lockSpool(dir: string, leaseMs: number): Promise<() => void> {
  const lock = join(dir, 'spool.lock');
  // A lock naming this very process is stale (a container's engine is often pid 1 on every start),
  // unless this process holds it itself.
  if (openHere.has(lock)) throw new Error(`the webhook spool in ${dir} is already open in this process`);
  const giveUpAt = Date.now() + 2 * leaseMs;
  const touchEveryMs = Math.max(50, Math.floor(leaseMs / 5));
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(lock, lockHolder(process.pid), { flag: 'wx', mode: 0o600 });
      openHere.add(lock);
      const touch = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(lock, now, now);
        } catch {
          // Gone (the directory removed under us): nothing to keep fresh.
        }
      }, touchEveryMs);
      touch.unref();
      return () => {
        clearInterval(touch);
        openHere.delete(lock);
        rmSync(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 1_000) throw err;
      const [pid, started, pidNamespace, boot] = readFileSync(lock, 'utf8').trim().split(' ');
      const holder = Number(pid);
      const here = pidNamespace === undefined || (pidNamespace === ownPidNamespace() && boot === ownBootId());
      if (here && holder === process.pid && started !== undefined && started === startTimeOf(process.pid)) {
        // Written by this very process (its start time says so), not by an earlier one given the
        // same pid: another thread of it holds the spool (the webhook's thread, webhookThread.ts).
        throw new Error(`the webhook spool in ${dir} is already open in this process`);
      }
      if (here) {
        // A pid is reused after a crash (the host's next process may get it): the holder is that
        // process only if it also started when the lock says (Linux's /proc; elsewhere the pid alone).
        const same = started === undefined || startTimeOf(holder) === undefined || startTimeOf(holder) === started;
        if (holder > 0 && holder !== process.pid && alive(holder) && same) {
          throw new Error(`the webhook spool in ${dir} is in use by process ${holder}; give each engine on this host its own dataDir`);
        }
      } else {
        const idleMs = Date.now() - statSync(lock).mtimeMs;
        if (idleMs < leaseMs) {
          if (Date.now() >= giveUpAt)
            throw new Error(
              `the webhook spool in ${dir} is in use by process ${holder} of another container or host (its lock was touched ${Math.round(idleMs)} ms ago); give each engine its own dataDir`,
            );
          await new Promise((r) => setTimeout(r, Math.min(1_000, touchEveryMs)));
          continue;
        }
      }
      rmSync(lock, { force: true });
    }
  }
}

/** What a lock file says of its holder: its pid, when it started, its pid namespace and boot, where those can be read. */
export function lockHolder(pid: number): string {
  const started = startTimeOf(pid);
  if (started === undefined) return String(pid);
  const space = ownPidNamespace();
  const boot = ownBootId();
  return space && boot ? `${pid} ${started} ${space} ${boot}` : `${pid} ${started}`;
}

/** This process's pid namespace ("pid:[4026531836]"), which tells a container's pids from the host's. */
function ownPidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** This boot of this machine: another host, or this one rebooted, has another. */
function ownBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat), if readable. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
