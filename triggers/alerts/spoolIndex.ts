// What the spool file holds, without holding it: for each batch not yet forwarded, where its line
// sits in the file (four numbers), never its alerts. A spool filled during a Temporal outage used
// to be read as one string and kept whole in memory (565 MB on disk: 1.25 GB of heap, then no
// string long enough at the next start); now it is scanned line by line once, and a batch's alerts
// are read back from disk only when the forwarder gets to it.
import { createReadStream } from 'node:fs';
import { maxWebhookBodyBytes } from '../../config/schema.js';

/** A batch still to forward: its place in the file and its size. */
export interface SpoolBatchRef {
  seq: number;
  /** Where its line starts in the file, and its length with the newline. */
  offset: number;
  bytes: number;
  alerts: number;
}

/**
 * The pending batches in seq order, as parallel arrays of numbers (32 bytes a batch, however many
 * alerts it holds). Batches are done roughly in order: the done ones at the front are dropped as
 * they accumulate.
 */
export class PendingBatches {
  #seqs: number[] = [];
  #offsets: number[] = [];
  /** -1: done. */
  #lengths: number[] = [];
  #alerts: number[] = [];
  #head = 0;
  #count = 0;
  #alertTotal = 0;
  #byteTotal = 0;

  get count(): number {
    return this.#count;
  }
  get alerts(): number {
    return this.#alertTotal;
  }
  get bytes(): number {
    return this.#byteTotal;
  }

  /** A batch written at the end of the file (a later line for the same seq replaces the earlier). */
  add(ref: SpoolBatchRef): void {
    const last = this.#seqs.length - 1;
    if (last >= this.#head && ref.seq <= this.#seqs[last]!) {
      // Only a file edited by hand gets here: kept correct, not fast.
      this.remove(ref.seq);
      const at = this.#lowerBound(ref.seq);
      for (const [arr, v] of this.#columns(ref)) arr.splice(at, 0, v);
    } else {
      for (const [arr, v] of this.#columns(ref)) arr.push(v);
    }
    this.#count++;
    this.#alertTotal += ref.alerts;
    this.#byteTotal += ref.bytes;
  }

  /** The batch is done: returns what it was, or undefined when it was not pending. */
  remove(seq: number): SpoolBatchRef | undefined {
    const i = this.#find(seq);
    if (i === undefined) return undefined;
    const ref = this.#at(i);
    this.#lengths[i] = -1;
    this.#count--;
    this.#alertTotal -= ref.alerts;
    this.#byteTotal -= ref.bytes;
    while (this.#head < this.#seqs.length && this.#lengths[this.#head] === -1) this.#head++;
    if (this.#head > 4_096 && this.#head * 2 > this.#seqs.length) {
      for (const arr of [this.#seqs, this.#offsets, this.#lengths, this.#alerts]) arr.splice(0, this.#head);
      this.#head = 0;
    }
    return ref;
  }

  get(seq: number): SpoolBatchRef | undefined {
    const i = this.#find(seq);
    return i === undefined ? undefined : this.#at(i);
  }

  /** The oldest pending batch numbered `seq` or later. */
  firstFrom(seq: number): SpoolBatchRef | undefined {
    for (let i = this.#lowerBound(seq); i < this.#seqs.length; i++) if (this.#lengths[i] !== -1) return this.#at(i);
    return undefined;
  }

  /** Every pending batch, oldest first (a snapshot: safe to change the index meanwhile). */
  *inOrder(): Generator<SpoolBatchRef> {
    const upTo = this.#seqs[this.#seqs.length - 1] ?? 0;
    for (let next = this.firstFrom(0); next && next.seq <= upTo; next = this.firstFrom(next.seq + 1)) yield next;
  }

  /** After the file was rewritten: each listed batch (in seq order) now starts at the offset given. */
  relocate(seqs: number[], offsets: number[]): void {
    let i = this.#head;
    for (let k = 0; k < seqs.length; k++) {
      while (i < this.#seqs.length && this.#seqs[i]! < seqs[k]!) i++;
      if (this.#seqs[i] === seqs[k]) this.#offsets[i] = offsets[k]!;
    }
  }

  #columns(ref: SpoolBatchRef): Array<[number[], number]> {
    return [
      [this.#seqs, ref.seq],
      [this.#offsets, ref.offset],
      [this.#lengths, ref.bytes],
      [this.#alerts, ref.alerts],
    ];
  }

  #at(i: number): SpoolBatchRef {
    return { seq: this.#seqs[i]!, offset: this.#offsets[i]!, bytes: this.#lengths[i]!, alerts: this.#alerts[i]! };
  }

  #lowerBound(seq: number): number {
    let lo = this.#head;
    let hi = this.#seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#seqs[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #find(seq: number): number | undefined {
    const i = this.#lowerBound(seq);
    return this.#seqs[i] === seq && this.#lengths[i] !== -1 ? i : undefined;
  }
}

export interface SpoolScan {
  pending: PendingBatches;
  /** Alerts of pending batches already delivered, by batch: not delivered again. */
  sent: Map<number, Set<number>>;
  /** The highest batch number the file ever mentions: numbering carries on after it. */
  lastSeq: number;
  /** Bytes up to the end of the last whole line: anything after is a line a crash cut short. */
  wholeBytes: number;
}

/** No batch the webhook writes is longer (config/schema.ts bounds its body limit by it): a longer line is not ours, skipped. */
const maxLineBytes = maxWebhookBodyBytes;

/** Reads the spool file once, as a stream, and finds what is still pending in it. */
export async function scanSpoolFile(file: string): Promise<SpoolScan> {
  const pending = new PendingBatches();
  const sent = new Map<number, Set<number>>();
  let lastSeq = 0;
  let wholeBytes = 0;
  const take = (line: Buffer, offset: number) => {
    let record: { seq?: unknown; done?: unknown; alerts?: unknown; sent?: unknown; i?: unknown };
    try {
      record = JSON.parse(line.toString('utf8'));
    } catch {
      // Not ours to read (the file was edited): skipped, never fatal to the webhook.
      return;
    }
    if (typeof record !== 'object' || record === null) return;
    if (typeof record.done === 'number') {
      pending.remove(record.done);
      sent.delete(record.done);
      lastSeq = Math.max(lastSeq, record.done);
    } else if (typeof record.sent === 'number' && Array.isArray(record.i)) {
      const ref = pending.get(record.sent);
      if (!ref) return;
      const marks = sent.get(record.sent) ?? new Set<number>();
      for (const i of record.i) if (Number.isInteger(i) && i >= 0 && i < ref.alerts) marks.add(i as number);
      sent.set(record.sent, marks);
    } else if (typeof record.seq === 'number' && Array.isArray(record.alerts)) {
      pending.add({ seq: record.seq, offset, bytes: line.length + 1, alerts: record.alerts.length });
      lastSeq = Math.max(lastSeq, record.seq);
    }
  };

  let position = 0;
  let lineStart = 0;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let skipping = false;
  const stream = createReadStream(file, { highWaterMark: 1_048_576 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
        const end = position + nl;
        if (!skipping) {
          const tail = chunk.subarray(from, nl);
          take(parts.length ? Buffer.concat([...parts, tail]) : tail, lineStart);
        }
        parts = [];
        partBytes = 0;
        skipping = false;
        from = nl + 1;
        lineStart = end + 1;
        wholeBytes = lineStart;
      }
      if (from < chunk.length && !skipping) {
        partBytes += chunk.length - from;
        if (partBytes > maxLineBytes) {
          parts = [];
          skipping = true;
        } else {
          // A copy of a chunk's tail: the chunk would otherwise stay alive whole for a few bytes.
          parts.push(from === 0 ? chunk : Buffer.from(chunk.subarray(from)));
        }
      }
      position += chunk.length;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return { pending, sent, lastSeq, wholeBytes };
}
