// The CLI's HTTP client against a local server that answers the way a broken, slow, hostile or
// refusing operator API could: every answer becomes a precise message and an exit code, within the
// deadline. (The real API, with a real engine behind it: test/e2e/cliApi.e2e.test.ts.)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CliError, OperatorApiClient } from '../../triggers/cli/operatorApiClient.js';
import { newOperatorToken } from '../../triggers/operators/credentials.js';
import { closedPort } from '../support/ports.js';

const { token } = newOperatorToken();
let server: Server;
let url: string;
const sockets = new Set<Socket>();
let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void;
const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];

const client = (timeoutMs = 2_000) =>
  new OperatorApiClient({ url, token, tokenFrom: 'REMEDIATE_TOKEN', urlFrom: 'REMEDIATE_URL', timeoutMs });
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

async function refusal(p: Promise<unknown>): Promise<CliError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof CliError)) throw new Error(`expected a CliError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      answer(req, res, body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

beforeEach(() => {
  seen.length = 0;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

describe('the operator API client', () => {
  it('sends the bearer token, says it is the CLI, and puts the decision in a JSON body', async () => {
    answer = (_req, res) => json(res, 200, { workflowId: 'incident:a:b', decision: 'approve', operator: 'alice' });
    expect(await client().decide('incident:a:b', 'approve', 'pool exhausted')).toEqual({
      workflowId: 'incident:a:b',
      decision: 'approve',
      operator: 'alice',
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/api/v1/incidents/incident%3Aa%3Ab/approve',
      body: '{"reason":"pool exhausted"}',
    });
    expect(seen[0]!.headers).toMatchObject({
      authorization: `Bearer ${token}`,
      'x-remediate-client': 'cli',
      'content-type': 'application/json',
    });
  });

  it('cannot be steered into another route by what an operator types as an id', async () => {
    answer = (_req, res) => json(res, 404, { error: 'no workflow' });
    await refusal(client().incident('../../runbooks/serviceDown/runs?x=1#'));
    expect(seen[0]!.url).toBe('/api/v1/incidents/..%2F..%2Frunbooks%2FserviceDown%2Fruns%3Fx%3D1%23');
  });

  it('turns the filter into query parameters', async () => {
    answer = (_req, res) => json(res, 200, { incidents: [] });
    await client().incidents({ open: true, target: 'orders-db', runbook: 'databaseConnection', limit: 20 });
    expect(seen[0]!.url).toBe('/api/v1/incidents?open=1&target=orders-db&runbook=databaseConnection&limit=20');
  });

  it('says the token was refused on 401, naming where the token came from and not the token', async () => {
    answer = (_req, res) => json(res, 401, { error: 'authentication required: an operator token or a signed bearer token' });
    const err = await refusal(client().incidents({ limit: 1 }));
    expect(err.exitCode).toBe(4);
    expect(err.message).toBe(
      `the token was refused by the operator API at ${url} (token from REMEDIATE_TOKEN): it is unknown, expired or revoked; ask an administrator for a new one`,
    );
    expect(err.message).not.toContain(token);
  });

  it("gives the server's reason on 403 (exit 4), and maps 404, 409, 400 and 503 to exit codes 2, 1, 1 and 3", async () => {
    const cases: Array<[number, string, number, string]> = [
      [
        403,
        "'vera' is a viewer; to approve needs the operator role or above",
        4,
        "refused: 'vera' is a viewer; to approve needs the operator role or above",
      ],
      [404, "no workflow 'incident:x:y'", 2, "no workflow 'incident:x:y'"],
      [
        409,
        "nothing to approve: 'incident:x:y' is not waiting for an approval",
        1,
        "nothing to approve: 'incident:x:y' is not waiting for an approval",
      ],
      [400, 'reason: at most 500 characters', 1, 'reason: at most 500 characters'],
      [
        503,
        'Temporal at 127.0.0.1:7233 did not answer',
        3,
        `the operator API at ${url} could not do it (503): Temporal at 127.0.0.1:7233 did not answer`,
      ],
    ];
    for (const [status, said, exitCode, message] of cases) {
      answer = (_req, res) => json(res, status, { error: said });
      const err = await refusal(client().decide('incident:x:y', 'approve', 'r'));
      expect({ exitCode: err.exitCode, message: err.message }).toEqual({ exitCode, message });
    }
  });

  it("makes the server's words safe to print: no escape sequence reaches the terminal", async () => {
    answer = (_req, res) => json(res, 403, { error: `no\u001b[2J\nforged line ${'x'.repeat(2_000)}` });
    const err = await refusal(client().whoami());
    expect(err.message).not.toMatch(/[\u0000-\u001f]/);
    expect(err.message).toContain('no\\x1b[2J\\nforged line');
    expect(err.message.length).toBeLessThan(600);
  });

  it('says when the answer is not the API (the webhook port, a proxy page)', async () => {
    answer = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>Bad Gateway</html>');
    };
    const err = await refusal(client().incidents({ limit: 1 }));
    expect(err.exitCode).toBe(3);
    expect(err.message).toBe(
      `the operator API at ${url} answered 502 with something that is not JSON (text/html); is REMEDIATE_URL the engine's api.listen address (not its webhook)?`,
    );
  });

  it('refuses an answer of the wrong shape instead of printing nonsense', async () => {
    answer = (_req, res) => json(res, 200, { rows: [] });
    const err = await refusal(client().incidents({ limit: 1 }));
    expect(err.message).toContain('with an unexpected shape');
  });

  it('does not follow a redirect (it would carry the token elsewhere)', async () => {
    answer = (_req, res) => {
      res.writeHead(302, { location: 'http://127.0.0.1:9/steal', 'content-type': 'application/json' });
      res.end('{}');
    };
    const err = await refusal(client().whoami());
    expect(err).toMatchObject({
      exitCode: 1,
      message: `the operator API at ${url} redirects to http://127.0.0.1:9/steal; set REMEDIATE_URL to where it points (the token is never sent on to another address)`,
    });
    expect(seen).toHaveLength(1);
  });

  it('gives up on an answer that never comes, and on one that trickles, at the deadline', async () => {
    answer = () => undefined;
    let started = Date.now();
    const silent = await refusal(client(500).incidents({ limit: 1 }));
    expect(silent).toMatchObject({ exitCode: 3, message: `the operator API at ${url} (from REMEDIATE_URL) did not answer within 500ms` });
    expect(Date.now() - started).toBeLessThan(2_000);

    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"incidents": [');
      const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(' ')), 100);
    };
    started = Date.now();
    expect((await refusal(client(800).incidents({ limit: 1 }))).message).toContain('did not answer within 800ms');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('refuses an endless answer instead of filling memory', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    };
    const err = await refusal(client(20_000).incidents({ limit: 1 }));
    expect(err.message).toBe(`the operator API at ${url} (from REMEDIATE_URL) sent an answer over 33554432 bytes; refusing it`);
  });

  it('names the URL when nothing listens there', async () => {
    const port = await closedPort();
    const c = new OperatorApiClient({ url: `http://127.0.0.1:${port}`, token, tokenFrom: 't', urlFrom: 'the default' });
    const err = await refusal(c.whoami());
    expect(err).toMatchObject({
      exitCode: 3,
      message: `cannot reach the operator API at http://127.0.0.1:${port} (the default; set REMEDIATE_URL): connection refused (is the engine running with an api section, and is REMEDIATE_URL right?)`,
    });
  });
});
