// The webhook's spool: alerts written to local disk (and fsynced) before Alertmanager gets its 200,
// then handed to Temporal by a forwarder that retries until Temporal takes them. It decouples the
// webhook's answer from Temporal's speed (a storm, a slow or restarting server) without losing an
// alert: what was acknowledged is on disk, and an engine that dies with alerts still spooled
// forwards them when it starts again.
//
// One file of JSON lines: `{"seq":7,"at":"…","alerts":[…]}` for a batch accepted, `{"done":7}` once
// every alert of batch 7 reached Temporal. Many requests arriving together share one write and one
// fsync. Done marks are not fsynced: one lost in a crash means a batch is forwarded twice, which
// folds into the incident it already started (SignalWithStart on a deterministic id).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { WebhookAlert } from './alertmanagerPayload.js';

export interface SpoolEntry {
  seq: number;
  /** When the webhook accepted the batch. */
  at: string;
  alerts: WebhookAlert[];
}

export interface Spool {
  /** Resolves once the batch is on disk (fsynced); only then may the webhook answer 200. */
  append(alerts: WebhookAlert[]): Promise<SpoolEntry>;
  /** Batch `seq` reached Temporal: it will not be forwarded again after a restart. */
  done(seq: number): void;
  /** Accepted and not yet done, oldest first: what a new forwarder must deliver. */
  pending(): SpoolEntry[];
  /** Alerts accepted and not yet done. */
  pendingAlerts(): number;
  close(): Promise<void>;
}

export const spoolFileName = 'webhook-spool.jsonl';

/** A spool file with nothing pending is emptied once it holds this much of finished batches. */
const compactBytes = 1_048_576;
/** A spool file with batches still pending is rewritten with only those past this size. */
const rewriteBytes = 16 * compactBytes;

export async function openSpool(dir: string): Promise<Spool> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const unlock = lockSpool(dir);
  const file = join(dir, spoolFileName);
  const pending = new Map<number, SpoolEntry>();
  let seq = 0;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  // Bytes after the last newline are a line a crash cut short (never acknowledged): cut them
  // off, or the next line appended would be glued to them and unreadable.
  const whole = text.endsWith('\n') || text === '' ? text.length : text.lastIndexOf('\n') + 1;
  if (whole < text.length) truncateSync(file, Buffer.byteLength(text.slice(0, whole)));
  for (const line of text.slice(0, whole).split('\n')) {
    if (!line) continue;
    let record: { seq?: number; done?: number; at?: string; alerts?: WebhookAlert[] };
    try {
      record = JSON.parse(line);
    } catch {
      // Not ours to read (the file was edited): skipped, never fatal to the webhook.
      continue;
    }
    if (typeof record.done === 'number') pending.delete(record.done);
    else if (typeof record.seq === 'number' && Array.isArray(record.alerts)) {
      pending.set(record.seq, { seq: record.seq, at: String(record.at ?? ''), alerts: record.alerts });
    }
    seq = Math.max(seq, record.seq ?? record.done ?? 0);
  }
  let fh: FileHandle = await open(file, 'a', 0o600);
  let size = (await fh.stat()).size;
  let alertsPending = [...pending.values()].reduce((n, e) => n + e.alerts.length, 0);

  // Group commit: lines queued while a write is in flight go out together in the next one.
  let queued: Array<{ line: string; sync: boolean; settle?: (err?: unknown) => void }> = [];
  let writing: Promise<void> | undefined;
  let closed = false;
  // A write that failed may have left part of a line: the next one starts on a new line.
  let torn = false;

  function flushSoon(): void {
    writing ??= (async () => {
      while (queued.length > 0) {
        const batch = queued;
        queued = [];
        const text = (torn ? '\n' : '') + batch.map((b) => b.line).join('');
        try {
          if (size >= compactBytes && batch.every((b) => !b.sync)) {
            // Only done marks to write, and a file grown large. Nothing pending: start it again.
            if (pending.size === 0) {
              await fh.truncate(0);
              size = 0;
              continue;
            }
            // Some batch still waits (an alert Temporal keeps refusing) while the rest move on:
            // rewrite the file with only what is pending, so it grows with that, not with traffic.
            if (size >= rewriteBytes) {
              await rewrite();
              continue;
            }
          }
          torn = true;
          await fh.write(text);
          torn = false;
          size += Buffer.byteLength(text);
          if (batch.some((b) => b.sync)) await fh.datasync();
          for (const b of batch) b.settle?.();
        } catch (err) {
          for (const b of batch) b.settle?.(err);
        }
      }
      writing = undefined;
    })();
  }

  /** Replaces the file by one holding only the pending batches (written, fsynced, renamed over). */
  async function rewrite(): Promise<void> {
    const fresh = `${file}.new`;
    const text = [...pending.values()].sort((a, b) => a.seq - b.seq).map((e) => `${JSON.stringify(e)}\n`).join('');
    const out = await open(fresh, 'w', 0o600);
    try {
      await out.write(text);
      await out.datasync();
    } finally {
      await out.close();
    }
    renameSync(fresh, file);
    await fh.close();
    fh = await open(file, 'a', 0o600);
    size = Buffer.byteLength(text);
    torn = false;
  }

  return {
    append(alerts) {
      if (closed) return Promise.reject(new Error('the spool is closed'));
      const entry: SpoolEntry = { seq: ++seq, at: new Date().toISOString(), alerts };
      return new Promise((resolve, reject) => {
        queued.push({
          line: `${JSON.stringify(entry)}\n`,
          sync: true,
          settle: (err) => {
            if (err) return reject(err);
            pending.set(entry.seq, entry);
            alertsPending += alerts.length;
            resolve(entry);
          },
        });
        flushSoon();
      });
    },
    done(n) {
      const entry = pending.get(n);
      if (!entry || closed) return;
      pending.delete(n);
      alertsPending -= entry.alerts.length;
      queued.push({ line: `${JSON.stringify({ done: n })}\n`, sync: false });
      flushSoon();
    },
    pending: () => [...pending.values()].sort((a, b) => a.seq - b.seq),
    pendingAlerts: () => alertsPending,
    async close() {
      if (closed) return;
      closed = true;
      await writing;
      await fh.close();
      unlock();
    },
  };
}

const openHere = new Set<string>();

/**
 * One process per spool: two engines given the same dataDir on one host would forward each other's
 * alerts and mark each other's batches done. A lock left by a process that died is taken over.
 */
function lockSpool(dir: string): () => void {
  const lock = join(dir, 'spool.lock');
  // A lock naming this very process is stale (a container's engine is often pid 1 on every start),
  // unless this process holds it itself.
  if (openHere.has(lock)) throw new Error(`the webhook spool in ${dir} is already open in this process`);
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      openHere.add(lock);
      return () => {
        openHere.delete(lock);
        rmSync(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
      const holder = Number(readFileSync(lock, 'utf8'));
      if (holder > 0 && holder !== process.pid && alive(holder)) {
        throw new Error(`the webhook spool in ${dir} is in use by process ${holder}; give each engine on this host its own dataDir`);
      }
      rmSync(lock, { force: true });
    }
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
