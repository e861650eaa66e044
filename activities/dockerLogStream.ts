// Docker's log stream, read as it arrives: the 8-byte framing that separates stdout from stderr,
// the newest bytes kept under a cap (diagnostics), or whole lines handed on one by one (the logs step).
import { capText } from './limits.js';

/** Keeps the last maxBytes of a stream: the newest lines are the ones that explain an outage. */
export class TailBuffer {
  #chunks: Buffer[] = [];
  #held = 0;
  #dropped = 0;
  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#held += chunk.length;
    while (this.#chunks.length > 1 && this.#held - this.#chunks[0]!.length >= this.maxBytes) {
      const gone = this.#chunks.shift()!;
      this.#held -= gone.length;
      this.#dropped += gone.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.#chunks);
    if (this.#dropped === 0) return capText(all.toString('utf8'), this.maxBytes);
    const kept = all.subarray(Math.max(0, all.length - this.maxBytes));
    const cut = this.#dropped + all.length - kept.length;
    // Same marker as capText, so readers see one format whichever path cut the text.
    return `[... ${cut} bytes cut]\n${kept.toString('utf8').replace(/^\uFFFD+/, '')}`;
  }
}

/** Docker's multiplexed log format: [stream, 0, 0, 0, size (uint32 BE)] then size bytes. */
export class FrameDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (stream: 'stdout' | 'stderr', payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    while (buf.length >= 8) {
      const size = buf.readUInt32BE(4);
      if (buf.length < 8 + size) break;
      this.onFrame(buf[0] === 2 ? 'stderr' : 'stdout', buf.subarray(8, 8 + size));
      buf = buf.subarray(8 + size);
    }
    this.#pending = buf;
  }
}

// Docker splits longer messages itself (16 KiB); a "line" past this is a stream without newlines.
const maxLineBytes = 65_536;

/** Whole lines of one stream, with Docker's nanosecond timestamp shortened to milliseconds. */
export class LineSplitter {
  #pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a)) {
      this.#emit(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > maxLineBytes) {
      this.#emit(buf);
      buf = Buffer.alloc(0);
    }
    this.#pending = buf;
  }

  end(): void {
    if (this.#pending.length) this.#emit(this.#pending);
    this.#pending = Buffer.alloc(0);
  }

  #emit(raw: Buffer): void {
    const line = raw.toString('utf8').replace(/\r$/, '');
    this.onLine(
      line.replace(
        /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,3})\d*)?Z /,
        (_, s: string, f?: string) => `${s}.${(f ?? '').padEnd(3, '0')}Z `,
      ),
    );
  }
}
