// The storm benches' lean client against a real Node HTTP server (and a raw TCP one for answers
// Node's server would not write): every way an answer can be framed, split or cut off.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { leanPoster, type LeanPoster } from '../../bench/leanPost.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return `http://127.0.0.1:${addr.port}/alerts?x=1`;
}

function poster(url: string, options?: Parameters<typeof leanPoster>[2]): LeanPoster {
  const p = leanPoster(url, { 'Content-Type': 'application/json', Authorization: 'Bearer t' }, options);
  closers.push(() => p.close());
  return p;
}

async function httpServer(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => handle(req, body, res));
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  const url = await listen(server);
  return { url, sockets };
}

/** A TCP server that answers each request's bytes with what `answer` writes. */
async function rawServer(answer: (socket: Socket, n: number) => void): Promise<string> {
  let n = 0;
  const server = createTcpServer((socket) => {
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      const at = buf.indexOf('\r\n\r\n');
      if (at < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, at))?.[1] ?? 0);
      if (buf.length < at + 4 + length) return;
      buf = buf.slice(at + 4 + length);
      answer(socket, ++n);
    });
  });
  return listen(server);
}

describe('the storm bench lean client', () => {
  it('posts the body, path, query and headers, and reads a Content-Length answer, over one kept-alive socket', async () => {
    const seen: Array<{ method?: string; url?: string; auth?: string; type?: string; body: string }> = [];
    const { url, sockets } = await httpServer((req, body, res) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ got: body.length }));
    });
    const p = poster(url);
    for (const body of ['{"a":1}', '{"ü":"ß"}', 'x'.repeat(200_000)]) {
      const r = await p.post(body);
      expect(r).toMatchObject({ status: 200, text: JSON.stringify({ got: body.length }) });
      expect(r.ms).toBeGreaterThan(0);
    }
    expect(seen.map((s) => s.body.length)).toEqual([7, 9, 200_000]);
    expect(seen[1]).toEqual({ method: 'POST', url: '/alerts?x=1', auth: 'Bearer t', type: 'application/json', body: '{"ü":"ß"}' });
    expect(sockets.size).toBe(1);
  });

  it('reads a chunked answer, and a 503 whose connection the server closes, then opens a new socket', async () => {
    let n = 0;
    const { url, sockets } = await httpServer((_req, _body, res) => {
      if (++n === 1) {
        res.writeHead(200);
        res.write('{"part":');
        setTimeout(() => res.end('1}'), 20);
      } else if (n === 2) {
        res.writeHead(503, { Connection: 'close', 'Retry-After': '30' }).end('full');
      } else res.end('again');
    });
    const p = poster(url);
    expect(await p.post('a')).toMatchObject({ status: 200, text: '{"part":1}' });
    expect(await p.post('b')).toMatchObject({ status: 503, text: 'full' });
    expect(await p.post('c')).toMatchObject({ status: 200, text: 'again' });
    expect(sockets.size).toBe(2);
  });

  it('holds requests beyond maxSockets until a socket is free, and answers each its own', async () => {
    const { url, sockets } = await httpServer((_req, body, res) => setTimeout(() => res.end(`echo ${body}`), 5));
    const p = poster(url, { maxSockets: 3 });
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => p.post(String(i))));
    expect(answers.map((a) => a.text)).toEqual(Array.from({ length: 30 }, (_, i) => `echo ${i}`));
    expect(sockets.size).toBe(3);
  });

  it('reads answers split anywhere: byte by byte, a chunked body with trailers, a body until close', async () => {
    const url = await rawServer((socket, n) => {
      const answers = [
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
        'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: y\r\n\r\n',
        'HTTP/1.1 202 Accepted\r\n\r\nuntil close',
      ];
      const bytes = Buffer.from(answers[n - 1] ?? '');
      let i = 0;
      const drip = () => {
        if (i < bytes.length) {
          socket.write(bytes.subarray(i, ++i));
          setImmediate(drip);
        } else if (n === 3) socket.end();
      };
      drip();
    });
    const p = poster(url);
    expect(await p.post('1')).toMatchObject({ status: 200, text: 'hello' });
    expect(await p.post('2')).toMatchObject({ status: 201, text: 'abcde' });
    expect(await p.post('3')).toMatchObject({ status: 202, text: 'until close' });
  });

  it('says why when no answer comes: refused, reset mid-answer, garbage, a timeout', async () => {
    const refused = await rawServer(() => undefined);
    closers.pop()!(); // the port is closed again: nothing listens there now
    await new Promise((r) => setTimeout(r, 20));
    expect(await poster(refused).post('x')).toMatchObject({ status: 0, text: expect.stringMatching(/^could not connect: .*ECONNREFUSED/) });

    const cut = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal');
      setTimeout(() => socket.destroy(), 10);
    });
    expect(await poster(cut).post('x')).toMatchObject({ status: 0, text: 'the connection closed before the answer was whole' });

    const garbage = await rawServer((socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'));
    expect(await poster(garbage).post('x')).toMatchObject({ status: 0, text: expect.stringMatching(/^not an HTTP answer/) });

    const silent = await rawServer(() => undefined);
    const slow = await poster(silent, { timeoutMs: 50 }).post('x');
    expect(slow).toMatchObject({ status: 0, text: 'no answer within 0.05 s' });
    expect(slow.ms).toBeGreaterThanOrEqual(45);
  });

  it('refuses a URL it cannot speak to', () => {
    expect(() => leanPoster('https://127.0.0.1:1/', {})).toThrow(/plain HTTP only/);
  });
});
