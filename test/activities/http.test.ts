// HTTP activities against a real local server (127.0.0.1:28050) that records what it receives.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpActivities } from '../../activities/http.js';
import { failureOf } from '../support/net.js';

const port = 28050;
const base = `http://127.0.0.1:${port}`;
// Nothing listens here: this file owns the port and never opens it.
const closedPort = `http://127.0.0.1:28099`;

interface Seen {
  method: string;
  path: string;
  idempotencyKey?: string;
  authorization?: string;
}
let seen: Seen[] = [];
let server: Server;
const sockets = new Set<Socket>();

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/health': (_q, res) => res.end('ok'),
  '/unhealthy': (_q, res) => {
    res.writeHead(503);
    res.end('db down');
  },
  '/big': (_q, res) => res.end('x'.repeat(100_000)),
  '/slow': () => undefined,
  '/moved': (_q, res) => {
    res.writeHead(302, { location: 'http://127.0.0.1:28099/elsewhere?token=sekrit' });
    res.end();
  },
  '/detailed/simple': (_q, res) => json(res, 200, { status: 'ok', checks: { db: { status: 'up' }, cache: 'ok' } }),
  '/detailed/list': (_q, res) =>
    json(res, 200, {
      checks: [
        { name: 'db', status: 'fail', output: 'connection refused' },
        { name: 'redis', status: 'pass' },
      ],
    }),
  '/detailed/spring': (_q, res) =>
    json(res, 503, { status: 'DOWN', components: { db: { status: 'UP' }, redis: { status: 'DOWN', details: { error: 'refused' } } } }),
  '/detailed/rfc': (_q, res) =>
    json(res, 200, { status: 'warn', checks: { 'db:connections': [{ status: 'pass' }, { status: 'warn', output: 'pool 90% used' }] } }),
  '/detailed/unknown': (_q, res) => json(res, 200, { uptime: 12 }),
  '/detailed/html': (_q, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html><body>It works</body></html>');
  },
  '/action/ok': (_q, res) => json(res, 200, { cleared: 42 }),
  '/action/unavailable': (_q, res) => json(res, 503, { error: 'warming up' }),
  '/action/missing': (_q, res) => json(res, 404, { error: 'no such cache' }),
  '/action/bad': (_q, res) => json(res, 400, { error: 'bad request' }),
  '/action/busy': (_q, res) => json(res, 429, { error: 'slow down' }),
  '/action/denied': (_q, res) => json(res, 403, { error: 'forbidden' }),
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url!, base).pathname;
    seen.push({
      method: req.method!,
      path,
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      authorization: req.headers.authorization,
    });
    const route = routes[path];
    if (route) route(req, res);
    else json(res, 404, { error: 'not found' });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server?.close(resolve));
});

beforeEach(() => {
  seen = [];
});

const http = createHttpActivities({ outputBytes: 1_024 });

describe('checkHealth', () => {
  it('is ok when the endpoint answers the expected status, with latency and body', async () => {
    const r = await http.checkHealth({ url: `${base}/health`, expectStatus: 200, timeoutMs: 2_000 });
    expect(r).toMatchObject({ ok: true, status: 200, body: 'ok' });
    expect(r.error).toBeUndefined();
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    expect(r.latencyMs).toBeLessThan(1_000);
  });

  it('reports a different status as not ok, keeping the body that explains it', async () => {
    const r = await http.checkHealth({ url: `${base}/unhealthy`, expectStatus: 200, timeoutMs: 2_000 });
    expect(r).toMatchObject({ ok: false, status: 503, body: 'db down', error: 'expected status 200, got 503 Service Unavailable' });
  });

  it('returns ok:false quickly for a port nobody listens on, instead of failing', async () => {
    const started = Date.now();
    const r = await http.checkHealth({ url: `${closedPort}/health`, expectStatus: 200, timeoutMs: 5_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(r).toMatchObject({ ok: false, error: 'connection refused (ECONNREFUSED)', body: '' });
    expect(r.status).toBeUndefined();
  });

  it('gives up on a server that never answers at the timeout', async () => {
    const started = Date.now();
    const r = await http.checkHealth({ url: `${base}/slow`, timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r).toMatchObject({ ok: false, error: 'no response within 300 ms' });
    expect(r.latencyMs).toBeGreaterThanOrEqual(290);
  });

  it('a cancelled check fails as cancelled instead of reporting the endpoint down', async () => {
    const env = new MockActivityEnvironment();
    const running = env.run(http.checkHealth, { url: `${base}/slow`, timeoutMs: 5_000 });
    setTimeout(() => env.cancel(), 100);
    const started = Date.now();
    await expect(running).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('caps the body it keeps', async () => {
    const r = await http.checkHealth({ url: `${base}/big`, timeoutMs: 2_000 });
    expect(r.ok).toBe(true);
    expect(r.body).toBe(`${'x'.repeat(1_024)}\n[... cut at 1024 bytes]`);
  });

  it('reports a redirect as the status it is instead of following it', async () => {
    const r = await http.checkHealth({ url: `${base}/moved`, expectStatus: 200, timeoutMs: 2_000 });
    expect(r).toMatchObject({ ok: false, status: 302 });
    expect(seen.map((s) => s.path)).toEqual(['/moved']);
  });

  it('sends URL credentials as basic auth, never in messages', async () => {
    const r = await http.checkHealth({ url: `http://probe:sekrit@127.0.0.1:${port}/health`, timeoutMs: 2_000 });
    expect(r.ok).toBe(true);
    expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('probe:sekrit').toString('base64')}`);
  });

  it('refuses a malformed URL or a non-http scheme as bad input, without echoing the query', async () => {
    const malformed = await failureOf(http.checkHealth({ url: 'http//nope?token=sekrit', timeoutMs: 1_000 }));
    expect(malformed.nonRetryable).toBe(true);
    expect(malformed.type).toBe('BadInput');
    expect(malformed.message).toBe("health check of 'http//nope' refused: not a valid URL");
    const ftp = await failureOf(http.checkHealth({ url: 'ftp://127.0.0.1/health?token=sekrit', timeoutMs: 1_000 }));
    expect(ftp.type).toBe('BadInput');
    expect(ftp.message).toBe("health check of 'ftp://127.0.0.1/health' refused: only http and https URLs are allowed, not ftp");
    const timeout = await failureOf(http.checkHealth({ url: `${base}/health`, timeoutMs: 0 }));
    expect(timeout.type).toBe('BadInput');
  });
});

describe('readDetailedHealth', () => {
  it('reads {"status":"ok","checks":{...}} with object and string checks', async () => {
    const r = await http.readDetailedHealth({ url: `${base}/detailed/simple`, timeoutMs: 2_000 });
    expect(r).toMatchObject({
      ok: true,
      status: 200,
      checks: [
        { name: 'db', ok: true, detail: 'up' },
        { name: 'cache', ok: true, detail: 'ok' },
      ],
      detail: 'status ok; 2 of 2 checks ok',
    });
  });

  it('reads a list of named checks and names the failing one with its output', async () => {
    const r = await http.readDetailedHealth({ url: `${base}/detailed/list`, timeoutMs: 2_000 });
    expect(r.ok).toBe(false);
    expect(r.checks).toEqual([
      { name: 'db', ok: false, detail: 'fail: connection refused' },
      { name: 'redis', ok: true, detail: 'pass' },
    ]);
    expect(r.detail).toBe('1 of 2 checks ok; failing: db (fail: connection refused)');
  });

  it('reads a Spring Boot style 503 document', async () => {
    const r = await http.readDetailedHealth({ url: `${base}/detailed/spring`, timeoutMs: 2_000 });
    expect(r).toMatchObject({ ok: false, status: 503 });
    expect(r.checks).toEqual([
      { name: 'db', ok: true, detail: 'UP' },
      { name: 'redis', ok: false, detail: 'DOWN' },
    ]);
    expect(r.detail).toBe('HTTP 503; status DOWN; 1 of 2 checks ok; failing: redis (DOWN)');
  });

  it('treats the health+json draft\'s "warn" as healthy', async () => {
    const r = await http.readDetailedHealth({ url: `${base}/detailed/rfc`, timeoutMs: 2_000 });
    expect(r.ok).toBe(true);
    expect(r.checks).toEqual([{ name: 'db:connections', ok: true, detail: 'pass' }]);
  });

  it('is not ok for JSON it cannot read as health, or for HTML, saying why', async () => {
    const unknown = await http.readDetailedHealth({ url: `${base}/detailed/unknown`, timeoutMs: 2_000 });
    expect(unknown).toMatchObject({ ok: false, status: 200, checks: [] });
    expect(unknown.detail).toBe('response 200 has no status or checks this reader understands: {"uptime":12}');
    const html = await http.readDetailedHealth({ url: `${base}/detailed/html`, timeoutMs: 2_000 });
    expect(html).toMatchObject({ ok: false, status: 200, checks: [] });
    expect(html.detail).toBe('response 200 is not JSON (text/html): <html><body>It works</body></html>');
  });

  it('is not ok when the endpoint cannot be reached', async () => {
    const r = await http.readDetailedHealth({ url: `${closedPort}/health/detailed`, timeoutMs: 2_000 });
    expect(r).toMatchObject({ ok: false, checks: [], detail: 'connection refused (ECONNREFUSED)' });
  });
});

describe('runHttpAction', () => {
  const action = (path: string, extra: Partial<{ method: string; dryRun: boolean; url: string }> = {}) =>
    http.runHttpAction({
      method: 'POST',
      url: `${base}${path}?token=sekrit`,
      timeoutMs: 2_000,
      dryRun: false,
      idempotencyKey: 'incident-7/clear-cache',
      ...extra,
    });

  it('sends the method with an Idempotency-Key and returns the answer', async () => {
    const r = await action('/action/ok');
    expect(r).toEqual({ status: 200, body: '{"cleared":42}', dryRun: false, summary: `POST ${base}/action/ok → 200` });
    expect(seen).toEqual([{ method: 'POST', path: '/action/ok', idempotencyKey: 'incident-7/clear-cache', authorization: undefined }]);
  });

  it('dry-run sends nothing and says what it would send', async () => {
    const r = await action('/action/ok', { dryRun: true });
    expect(r).toEqual({ dryRun: true, body: '', summary: `would send POST to ${base}/action/ok (Idempotency-Key incident-7/clear-cache)` });
    expect(seen).toHaveLength(0);
  });

  it('a 503 is a retryable failure that shows origin and path but never the query', async () => {
    const f = await failureOf(action('/action/unavailable'));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe(`POST to '${base}/action/unavailable' failed: server answered 503 Service Unavailable: {"error":"warming up"}`);
    expect(f.message).not.toContain('sekrit');
  });

  it('a 429 is retryable, a 404, 400 or 403 is not', async () => {
    expect((await failureOf(action('/action/busy'))).nonRetryable).toBe(false);
    const missing = await failureOf(action('/action/missing'));
    expect(missing).toMatchObject({ nonRetryable: true, type: 'TargetNotFound' });
    expect(missing.message).toBe(`POST to '${base}/action/missing' failed: server answered 404 Not Found: {"error":"no such cache"}`);
    expect(await failureOf(action('/action/bad'))).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(await failureOf(action('/action/denied'))).toMatchObject({ nonRetryable: true, type: 'AuthFailed' });
  });

  it('a refused connection is retryable', async () => {
    const f = await failureOf(action('', { url: `${closedPort}/cache/clear?token=sekrit` }));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe(`POST to '${closedPort}/cache/clear' failed: connection refused (ECONNREFUSED)`);
  });

  it('does not follow a redirect with a destructive method', async () => {
    const f = await failureOf(action('/moved'));
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(
      `POST to '${base}/moved' refused: server answered 302 Found; redirects are not followed for actions (location http://127.0.0.1:28099/elsewhere)`,
    );
    expect(seen.map((s) => s.path)).toEqual(['/moved']);
  });

  it('refuses a GET, or an action without an idempotency key', async () => {
    expect(await failureOf(action('/action/ok', { method: 'GET' }))).toMatchObject({ type: 'BadInput' });
    const noKey = await failureOf(
      http.runHttpAction({ method: 'POST', url: `${base}/action/ok`, timeoutMs: 1_000, dryRun: false, idempotencyKey: '' }),
    );
    expect(noKey.type).toBe('BadInput');
    expect(seen).toHaveLength(0);
  });
});
