// The storm benches' client: HTTP/1.1 POSTs over kept-alive sockets, one request at a time on
// each (as Alertmanager's Go client sends), with each request written as one buffer and each
// answer read by a small parser of its own. The bench posts from the same two cores the engine
// runs on: Node's own HTTP client spent 0.09–0.22 ms of CPU a request there (0.015–0.037 ms
// this way, measured side by side against one bare server), CPU a real Alertmanager on its own
// machine never takes from the engine. `--client node` in bench/bench.ts keeps the old one.
import { connect, type Socket } from 'node:net';

export interface Posted {
  /** The answer's status, or 0 when none came (refused, reset, closed early, timed out). */
  status: number;
  /** From the request's write to its answer's last byte. */
  ms: number;
  /** The answer's body, or why there was none. */
  text: string;
}

export interface LeanPoster {
  post(body: string): Promise<Posted>;
  /** Closes every socket; requests still waiting get status 0. */
  close(): void;
}

interface Waiting {
  request: Buffer;
  resolve: (posted: Posted) => void;
}

interface Answer {
  status: number;
  close: boolean;
  /** Bytes of body still to come; -1 for chunked, -2 for "until the connection closes". */
  length: number;
  body: Buffer[];
}

const headEnd = Buffer.from('\r\n\r\n');
const maxHeadBytes = 64 * 1024;

export function leanPoster(
  url: string,
  headers: Record<string, string>,
  options: { timeoutMs?: number; maxSockets?: number } = {},
): LeanPoster {
  const target = new URL(url);
  if (target.protocol !== 'http:') throw new Error(`leanPoster speaks plain HTTP only, not ${target.protocol}`);
  const port = Number(target.port || 80);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxSockets = options.maxSockets ?? 256;
  const head =
    `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');

  const idle: Conn[] = [];
  const queue: Waiting[] = [];
  let open = 0;
  let closed = false;

  class Conn {
    readonly socket: Socket;
    private buf: Buffer | undefined;
    private answer: Answer | undefined;
    private current: (Waiting & { t0: number; timer: NodeJS.Timeout }) | undefined;
    private connected = false;
    private done = false;

    constructor(first: Waiting) {
      open++;
      this.socket = connect({ host, port, noDelay: true });
      this.socket.on('connect', () => (this.connected = true));
      this.socket.on('data', (d: Buffer) => this.read(d));
      this.socket.on('error', (err) => this.end(`${err.message}`));
      this.socket.on('close', () => this.end('the connection closed before the answer was whole', true));
      this.send(first);
    }

    send(w: Waiting): void {
      const timer = setTimeout(() => {
        this.end(`no answer within ${timeoutMs / 1_000} s`);
      }, timeoutMs);
      this.current = { ...w, t0: performance.now(), timer };
      this.socket.write(w.request);
    }

    private read(d: Buffer): void {
      this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
      for (;;) {
        if (!this.current) {
          // Bytes nobody asked for: the connection is no longer in step.
          if (this.buf.length > 0) this.end('bytes arrived with no request outstanding');
          return;
        }
        if (!this.answer) {
          const at = this.buf.indexOf(headEnd);
          if (at < 0) {
            if (this.buf.length > maxHeadBytes) this.end('an answer head over 64 KiB');
            return;
          }
          const answer = parseHead(this.buf.subarray(0, at).toString('latin1'));
          if (typeof answer === 'string') return this.end(answer);
          this.answer = answer;
          this.buf = this.buf.subarray(at + headEnd.length);
        }
        if (!this.body()) return;
        this.finish();
        if (!this.buf || this.buf.length === 0) return;
      }
    }

    /** Takes what body there is from buf; true once the answer's body is whole. */
    private body(): boolean {
      const a = this.answer!;
      const buf = this.buf!;
      if (a.length >= 0) {
        const take = Math.min(a.length, buf.length);
        a.body.push(buf.subarray(0, take));
        a.length -= take;
        this.buf = buf.subarray(take);
        return a.length === 0;
      }
      if (a.length === -2) {
        a.body.push(buf);
        this.buf = undefined;
        return false;
      }
      // Chunked: size line, data, CRLF; a size of 0 then an empty line ends it (trailers skipped).
      let at = 0;
      for (;;) {
        const eol = buf.indexOf('\r\n', at);
        if (eol < 0) break;
        const size = parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
        if (!Number.isFinite(size) || size < 0) {
          this.end('a chunk size that is not hex');
          return false;
        }
        if (size === 0) {
          // The last chunk: an empty line ends the answer, or trailer lines then an empty line.
          const rest = eol + 2;
          if (buf.length < rest + 2) break;
          const end = buf[rest] === 13 && buf[rest + 1] === 10 ? rest + 2 : buf.indexOf(headEnd, rest) + 4;
          if (end < 4) break;
          this.buf = buf.subarray(end);
          return true;
        }
        if (buf.length < eol + 2 + size + 2) break;
        a.body.push(buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      this.buf = buf.subarray(at);
      return false;
    }

    private finish(): void {
      const a = this.answer!;
      const w = this.current!;
      this.answer = undefined;
      this.current = undefined;
      clearTimeout(w.timer);
      w.resolve({ status: a.status, ms: performance.now() - w.t0, text: Buffer.concat(a.body).toString('utf8') });
      if (a.close) {
        this.retire();
        this.socket.destroy();
      } else this.next();
    }

    private next(): void {
      const w = queue.shift();
      if (w) this.send(w);
      else idle.push(this);
    }

    private retire(): void {
      if (this.done) return;
      this.done = true;
      open--;
      const i = idle.indexOf(this);
      if (i >= 0) idle.splice(i, 1);
      // A request waiting for a socket gets a new one.
      const w = queue.shift();
      if (w && !closed) new Conn(w);
      else if (w) w.resolve({ status: 0, ms: 0, text: 'the client was closed' });
    }

    /** Settles the request under way (if any) and drops the socket; `byPeer`: the peer closed the connection. */
    end(why: string, byPeer = false): void {
      const w = this.current;
      const a = this.answer;
      this.current = undefined;
      this.answer = undefined;
      if (w) {
        clearTimeout(w.timer);
        // An answer whose body runs until the connection closes is whole once it closes.
        const whole = a?.length === -2 && byPeer;
        w.resolve(
          whole
            ? { status: a.status, ms: performance.now() - w.t0, text: Buffer.concat(a.body).toString('utf8') }
            : { status: 0, ms: performance.now() - w.t0, text: this.connected ? why : `could not connect: ${why}` },
        );
      }
      this.retire();
      this.socket.destroy();
    }
  }

  return {
    post(body: string): Promise<Posted> {
      const bytes = Buffer.from(body);
      const request = Buffer.concat([Buffer.from(`${head}Content-Length: ${bytes.length}\r\n\r\n`, 'latin1'), bytes]);
      return new Promise((resolve) => {
        if (closed) return resolve({ status: 0, ms: 0, text: 'the client was closed' });
        const w = { request, resolve };
        const conn = idle.pop();
        if (conn) conn.send(w);
        else if (open < maxSockets) new Conn(w);
        else queue.push(w);
      });
    },
    close(): void {
      closed = true;
      for (const w of queue.splice(0)) w.resolve({ status: 0, ms: 0, text: 'the client was closed' });
      for (const c of idle.splice(0)) c.end('the client was closed');
    },
  };
}

/** The status line and the headers that frame the body; a string says why it could not be read. */
function parseHead(text: string): Answer | string {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return `not an HTTP answer: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`;
  let length = -2;
  let close = (lines[0] ?? '').startsWith('HTTP/1.0');
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (name === 'content-length' && length !== -1) length = Number(value);
    else if (name === 'transfer-encoding' && value.split(',').pop()!.trim() === 'chunked') length = -1;
    else if (name === 'connection') close = value === 'close' ? true : value === 'keep-alive' ? false : close;
  }
  if (Number.isNaN(length) || (length < 0 && length !== -1 && length !== -2)) return 'a Content-Length that is not a number';
  const status = Number(m[1]);
  // No body whatever the headers say.
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) length = 0;
  if (length === -2) close = true;
  return { status, close, length, body: [] };
}
