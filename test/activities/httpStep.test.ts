// The runbook http step against a real local server (127.0.0.1, a port of its own) that records
// what it receives; its origin is configured as a target's health URL, as a runbook needs it to be.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { engineConfig, type EngineConfig } from '../../config/schema.js';
import type { HttpStepRequest } from '../../activities/contract.js';
import { createHttpStep } from '../../activities/httpStep.js';
import { failureOf } from '../support/net.js';
import { closedPort } from '../support/ports.js';

const token = `tok-${randomUUID()}`;

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  body: string;
}
let seen: Seen[] = [];
let server: Server;
const sockets = new Set<Socket>();
let base: string;
const auditLines: string[] = [];

const echo = (status: number) => (req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status);
  res.end(`you sent: ${req.headers.authorization}`);
};

const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  '/health': (_q, res) => res.end('ok'),
  '/teapot': (_q, res) => {
    res.writeHead(418);
    res.end('short and stout');
  },
  '/unavailable': (_q, res) => {
    res.writeHead(503);
    res.end('warming up');
  },
  '/echo': echo(200),
  '/echo-503': echo(503),
  '/created': (_q, res) => {
    res.writeHead(201);
    res.end('{"id":7}');
  },
  '/big': (_q, res) => res.end('x'.repeat(100_000)),
  // Three-byte characters, then the token cut where the step stops reading (8 KiB).
  '/straddle': (_q, res) => res.end(`${'€'.repeat(2_728)}${token}`),
  '/moved': (_q, res) => {
    res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere' });
    res.end();
  },
  '/slow': () => undefined,
  '/reset': (req) => req.socket.destroy(),
};

function config(overrides: { dryRun?: boolean } = {}): EngineConfig {
  const parsed = engineConfig.parse({
    webhook: { token: 'unused-token' },
    secrets: { apiToken: token },
    targets: { web: { kind: 'http', health: { url: `${base}/health` } } },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
    ...overrides,
  });
  return { ...parsed, runbookDefinitions: {} };
}

let step: ReturnType<typeof createHttpStep>;
const request = (path: string, extra: Partial<HttpStepRequest> = {}): Promise<Awaited<ReturnType<typeof step.httpRequest>>> =>
  step.httpRequest({
    method: 'GET',
    url: `${base}${path}`,
    headers: {},
    expectStatus: [200],
    timeoutMs: 2_000,
    incidentId: 'incident:test:web',
    actor: 'engine',
    dryRun: false,
    ...extra,
  });

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url!, 'http://x').pathname;
      seen.push({ method: req.method!, path, authorization: req.headers.authorization, body: Buffer.concat(chunks).toString() });
      const route = routes[path];
      if (route) route(req, res);
      else {
        res.writeHead(404);
        res.end('not found');
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  step = createHttpStep({ config: config(), logger: pino({ level: 'info' }, { write: (line: string) => void auditLines.push(line) }) });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server?.close(resolve));
});

beforeEach(() => {
  seen = [];
  auditLines.length = 0;
});

describe('answers', () => {
  it('a GET to a configured origin returns status, ok and the body', async () => {
    expect(await request('/health')).toEqual({ status: 200, ok: true, body: 'ok', dryRun: false });
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /health']);
  });

  it('a status the step did not expect is an answer with ok false, not a failure', async () => {
    expect(await request('/teapot')).toEqual({ status: 418, ok: false, body: 'short and stout', dryRun: false });
    expect(await request('/teapot', { expectStatus: [200, 418] })).toMatchObject({ ok: true });
  });

  it('a 5xx is a retryable failure, so Temporal asks again', async () => {
    const f = await failureOf(request('/unavailable'));
    expect(f).toMatchObject({ nonRetryable: false, type: 'Transient' });
    expect(f.message).toBe(`GET to '${base}/unavailable' failed: server answered 503 Service Unavailable: warming up`);
  });

  it('a redirect is reported, never followed', async () => {
    expect(await request('/moved')).toMatchObject({ status: 302, ok: false });
    expect(seen.map((s) => s.path)).toEqual(['/moved']);
  });

  it('keeps only the start of a long body', async () => {
    const r = await request('/big');
    expect(r.body.length).toBe(4_000);
    expect(r.body).toBe(`${'x'.repeat(4_000 - '\n[... cut]'.length)}\n[... cut]`);
  });

  it('sends a write with its body and records it in the audit log', async () => {
    const r = await request('/created', { method: 'POST', body: '{"drain":true}', expectStatus: [201], actor: 'alice' });
    expect(r).toEqual({ status: 201, ok: true, body: '{"id":7}', dryRun: false });
    expect(seen).toEqual([{ method: 'POST', path: '/created', authorization: undefined, body: '{"drain":true}' }]);
    const audit = auditLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      action: 'http',
      method: 'POST',
      url: `${base}/created`,
      status: 201,
      incident: 'incident:test:web',
      actor: 'alice',
      dryRun: false,
    });
  });
});

describe('secrets', () => {
  const withToken = { authorization: { secret: 'apiToken' } };

  it('delivers a secret header to the server and scrubs it from the body it echoes', async () => {
    const r = await request('/echo', { headers: withToken });
    expect(seen[0]!.authorization).toBe(token);
    expect(r).toEqual({ status: 200, ok: true, body: 'you sent: [redacted]', dryRun: false });
  });

  it('scrubs it from the failure of a 5xx that echoes it, and from the audit log', async () => {
    const f = await failureOf(request('/echo-503', { method: 'PUT', headers: withToken }));
    expect(seen[0]!.authorization).toBe(token);
    expect(f.message).toBe(`PUT to '${base}/echo-503' failed: server answered 503 Service Unavailable: you sent: [redacted]`);
    expect(auditLines.join('\n')).toContain('you sent: [redacted]');
    expect(auditLines.join('\n')).not.toContain(token);
  });

  it('leaves no part of a secret that was cut off where reading stopped', async () => {
    const r = await request('/straddle');
    expect(r.body.startsWith('€'.repeat(2_000))).toBe(true);
    expect(r.body.endsWith('\n[... cut]')).toBe(true);
    expect(r.body).not.toContain(token.slice(0, 4));
  });

  it('an unknown secret name is refused before anything is sent', async () => {
    const f = await failureOf(request('/echo', { headers: { authorization: { secret: 'nope' } } }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(f.message).toBe(
      `GET to '${base}/echo' refused: header authorization: no secret named 'nope' in the config's secrets (known: apiToken)`,
    );
    expect(seen).toHaveLength(0);
  });
});

describe('refusals and failures', () => {
  it('refuses an origin the config does not name, naming the URL, and sends nothing', async () => {
    const port = await closedPort();
    const f = await failureOf(request('', { url: `http://127.0.0.1:${port}/admin?key=abc` }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(f.message).toBe(
      `GET to 'http://127.0.0.1:${port}/admin' refused: http://127.0.0.1:${port} is not the origin of any target's health or action URL in the config (known: ${base})`,
    );
    expect(seen).toHaveLength(0);
  });

  it('gives up at the timeout, retryably', async () => {
    const started = Date.now();
    const f = await failureOf(request('/slow', { timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(f).toMatchObject({ nonRetryable: false, type: 'Transient' });
    expect(f.message).toBe(`GET to '${base}/slow' failed: no response within 300 ms`);
  });

  it('a connection reset is retryable', async () => {
    const f = await failureOf(request('/reset'));
    expect(f).toMatchObject({ nonRetryable: false, type: 'Transient' });
  });

  it('a GET with a body, or a header value with a line break, is bad input', async () => {
    expect(await failureOf(request('/health', { body: 'x' }))).toMatchObject({ type: 'BadInput' });
    expect(await failureOf(request('/health', { headers: { 'x-note': 'a\r\nx-injected: 1' } }))).toMatchObject({ type: 'BadInput' });
    expect(seen).toHaveLength(0);
  });
});

describe('dry run', () => {
  it('describes a write without sending it, and audits that it would have', async () => {
    const r = await request('/created', { method: 'POST', body: '{}', dryRun: true });
    expect(r).toEqual({ status: 0, ok: true, body: `dry-run: would POST ${base}/created`, dryRun: true });
    expect(seen).toHaveLength(0);
    expect(JSON.parse(auditLines[0]!)).toMatchObject({ action: 'http', method: 'POST', dryRun: true });
  });

  it('sends a read, which changes nothing', async () => {
    expect(await request('/health', { dryRun: true })).toEqual({ status: 200, ok: true, body: 'ok', dryRun: false });
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /health']);
  });

  it("the config's dryRun holds back writes whatever the request says", async () => {
    const dry = createHttpStep({ config: config({ dryRun: true }), logger: pino({ level: 'silent' }) });
    const r = await dry.httpRequest({
      method: 'DELETE',
      url: `${base}/created`,
      headers: {},
      expectStatus: [204],
      timeoutMs: 1_000,
      incidentId: 'i',
      actor: 'engine',
      dryRun: false,
    });
    expect(r).toMatchObject({ status: 0, dryRun: true });
    expect(seen).toHaveLength(0);
  });
});
