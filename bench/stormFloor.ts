// The floor under the webhook's storm acceptance: a bare Node HTTP server that does only what no
// durable webhook can skip (read the body, JSON.parse it, append it to a file and fdatasync before
// answering, many requests sharing one write and one fdatasync, as the engine's spool does). The
// storm bench posts the same bodies to it with the same client in the same run; what the engine
// spends above it is the engine's.
//
// Usage: node --import tsx bench/stormFloor.ts <dir>; prints {"port":N} once listening.
// GET /stats answers the server's own request times (arrival → answer written, ms) and resets them.
import { createServer } from 'node:http';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: stormFloor.ts <dir>');
const fh = await open(join(dir, 'floor-spool.jsonl'), 'a', 0o600);

let queued: Array<{ line: string; done: (err?: unknown) => void }> = [];
let writing = false;
async function flush(): Promise<void> {
  if (writing) return;
  writing = true;
  while (queued.length > 0) {
    const group = queued;
    queued = [];
    try {
      await fh.write(group.map((q) => q.line).join(''));
      await fh.datasync();
      for (const q of group) q.done();
    } catch (err) {
      for (const q of group) q.done(err);
    }
  }
  writing = false;
}

let times: number[] = [];
let seq = 0;
const server = createServer((req, res) => {
  const t0 = performance.now();
  if (req.method === 'GET') {
    res.end(JSON.stringify(times));
    times = [];
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let alerts: unknown;
    try {
      alerts = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: unknown }).alerts;
    } catch {
      res.writeHead(400).end();
      return;
    }
    queued.push({
      line: `{"seq":${++seq},"alerts":${JSON.stringify(alerts)}}\n`,
      done: (err) => {
        const text = err ? '{"error":"spool"}' : '{"status":"queued"}';
        res.writeHead(err ? 503 : 200, { 'Content-Type': 'application/json', 'Content-Length': text.length });
        res.end(text);
        times.push(performance.now() - t0);
      },
    });
    void flush();
  });
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  console.log(JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 }));
});
process.on('SIGTERM', () => {
  server.close();
  void fh.close().then(() => process.exit(0));
});
