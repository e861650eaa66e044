// How the webhook speaks HTTP: bodies read up to a limit and no further, answers that say why, and
// a connection dropped rather than drained when the answer comes before the body was read.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** Thrown inside a request to answer with a status and a message meant for the sender. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * Reads at most `max` bytes. A declared Content-Length over the limit is refused before any
 * byte is read; a chunked body is cut off as soon as it passes the limit. Either way the
 * connection is closed after the 413 so the rest is never buffered. `limitKey` is the config key
 * the limit comes from (webhook.maxBodyBytes, api.maxBodyBytes): the 413 names it.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, max: number, limitKey: string): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `body exceeds the limit of ${max} bytes (${limitKey})`, { Connection: 'close' });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.reject(tooLarge());
  // Only now, the sender authorised and the declared size acceptable, is it asked for the body.
  if (/^100-continue$/i.test(req.headers.expect ?? '')) res.writeContinue();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.on('end', onEnd);
    // A sender that hangs up mid-body, or a malformed chunk, is a refused request, not an engine fault.
    req.on('error', (err) => reject(new HttpError(400, `the request body could not be read: ${err.message.slice(0, 120)}`)));
  });
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  // Answered before the body was read (a 401, a 413, a wrong content type or path): keeping the
  // connection would mean reading the rest of the upload first, whoever sent it.
  const req = res.req;
  const declared = req.headers['content-length'];
  const unread = !req.complete && (req.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0'));
  const close = unread || headers.Connection === 'close';
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(text);
  // Node ends the connection once a `Connection: close` answer is out; the socket is destroyed
  // too, so a sender still streaming is not read a byte further.
  if (close) {
    const socket = req.socket;
    res.once('finish', () => setImmediate(() => socket.destroy()));
  }
}

/** The path of the request target, or undefined when it is no URL at all ("//", "http://["). */
export function requestPath(target = '/'): string | undefined {
  try {
    return new URL(target, 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

// Strict: lenient decoding would turn invalid bytes into U+FFFD and accept a label value the sender
// never sent. The BOM is kept so that JSON.parse refuses it, as it always has.
export const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`webhook.listen ${JSON.stringify(listen)} is not host:port`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

/** Listens on `listen` (host:port, port 0 for any); resolves to the port bound. */
export async function listenOn(server: Server, listen: string): Promise<{ host: string; port: number }> {
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return { host, port: typeof addr === 'object' && addr ? addr.port : port };
}

/** Stops listening; requests under way are answered first, idle connections are closed now. */
export async function closeListener(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
}
