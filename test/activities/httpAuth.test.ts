// HTTP with authentication beyond the `http` step: a target's health check (verify, restart
// verification, diagnosis, detailed health) and its configured action send headers whose values come
// from the config's secrets, against a real HTTP server that answers 401 without the token. The token
// reaches the server and nothing else: not results, not diagnosis text, not errors.
import { MockActivityEnvironment } from '@temporalio/testing';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionContext, TargetActivities } from '../../activities/contract.js';
import { createHttpActivities } from '../../activities/http.js';
import { createTargetActivities } from '../../activities/targets.js';
import { ConfigError, parseConfig } from '../../config/load.js';
import { failureOf } from '../support/net.js';

const token = 'tok-S3CRET-api-7f3a9c';
let server: Server;
let base: string;
const seen: Array<{ method: string; url: string; authorization?: string; tenant?: string; key?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      tenant: req.headers['x-tenant'] as string | undefined,
      ...(req.headers['idempotency-key'] ? { key: req.headers['idempotency-key'] as string } : {}),
    });
    // A careless endpoint that echoes the request it could not route, query string and all.
    if (req.url?.startsWith('/echo')) return void res.writeHead(404).end(`Cannot GET ${req.url}`);
    // A careless endpoint that quotes the credentials it refuses.
    if (req.url === '/api/drain') return void res.writeHead(403).end(`denied for ${req.headers.authorization}`);
    if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end('missing token');
    if (req.url === '/health/detailed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      // A careless endpoint that echoes the credentials it got.
      return void res.end(
        JSON.stringify({ status: 'UP', checks: [{ name: 'cache', status: 'UP', output: `auth ${req.headers.authorization}` }] }),
      );
    }
    if (req.url === '/api/cache/clear' && req.method === 'POST') return void res.writeHead(204).end();
    res.writeHead(200).end(`ok, you sent ${req.headers.authorization}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

function rawConfig(
  headers: Record<string, unknown>,
  secrets: Record<string, unknown> = { apiToken: token },
  actionUrl = `${base}/api/cache/clear`,
  healthUrl = `${base}/health`,
) {
  return {
    webhook: { listen: '127.0.0.1:0', token: 'tok-http-auth-0123' },
    secrets,
    targets: {
      api: {
        kind: 'http',
        health: { url: healthUrl, detailedUrl: `${base}/health/detailed`, timeout: '2s', headers },
        action: { url: actionUrl, headers },
      },
    },
    channels: { log: { type: 'log' } },
    escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
  };
}

function activities(headers: Record<string, unknown>, actionUrl?: string, healthUrl?: string): TargetActivities {
  const none = {} as never;
  return createTargetActivities({
    config: parseConfig(rawConfig(headers, undefined, actionUrl, healthUrl)),
    logger: pino({ level: 'silent' }),
    docker: none,
    http: createHttpActivities({ outputBytes: 4_096 }),
    postgres: none,
    mysql: none,
    redis: none,
  });
}

const ctx: ActionContext = { incidentId: 'incident:http-auth', reason: 'cache hit rate low', actor: 'alice', dryRun: false };
const authed = { Authorization: { secret: 'apiToken', prefix: 'Bearer ' }, 'X-Tenant': 'blue' };

describe('a health check and an action with headers from secrets', () => {
  it('verifies healthy only with the token, which the server received and no result shows', async () => {
    seen.length = 0;
    const v = await activities(authed).verifyTarget('api');
    expect(v).toEqual({
      target: 'api',
      healthy: true,
      checks: [{ check: 'http', ok: true, detail: 'HTTP 200', latencyMs: expect.any(Number) }],
    });
    expect(seen).toEqual([{ method: 'GET', url: '/health', authorization: `Bearer ${token}`, tenant: 'blue' }]);

    // Without the header the same endpoint answers 401: the check really depends on it.
    const bare = await activities({}).verifyTarget('api');
    expect(bare.healthy).toBe(false);
    // Told apart from "down": the endpoint answered, and refused the engine (a runbook does not restart for that).
    expect(bare.checks[0]).toMatchObject({
      ok: false,
      refused: true,
      detail: "expected status 200, got 401 Unauthorized: the endpoint refused the engine's credentials",
    });
  });

  it('sends them with the diagnosis health checks, and scrubs the token an endpoint echoes', async () => {
    seen.length = 0;
    const d = await activities(authed).diagnoseTarget('api');
    expect(d.sections.map((s) => [s.title, s.ok])).toEqual([
      [`health ${base}/health`, true],
      [`detailed health ${base}/health/detailed`, true],
    ]);
    expect(seen.every((s) => s.authorization === `Bearer ${token}`)).toBe(true);
    expect(JSON.stringify(d)).not.toContain(token);
    expect(d.sections[0]!.text).toContain('ok, you sent Bearer [redacted]');
    expect(d.sections[1]!.text).toBe('ok   cache: UP: auth Bearer [redacted]');
  });

  it('runs the configured action with them, and the server refuses it without', async () => {
    seen.length = 0;
    const r = await activities(authed).runTargetAction('api', ctx);
    expect(r.summary).toBe(`POST ${base}/api/cache/clear → 204`);
    expect(seen[0]).toEqual({
      method: 'POST',
      url: '/api/cache/clear',
      authorization: `Bearer ${token}`,
      tenant: 'blue',
      key: `${ctx.incidentId}:action`,
    });
    await expect(activities({}).runTargetAction('api', ctx)).rejects.toThrow(
      `POST to '${base}/api/cache/clear' failed: server answered 401 Unauthorized: missing token`,
    );
  });

  it("keys the action by the incident's run and activity: the same across retries, another for the next incident on the target", async () => {
    seen.length = 0;
    const act = activities(authed).runTargetAction;
    const attempt = (runId: string, activityId: string, attemptNo: number) =>
      new MockActivityEnvironment({
        workflowExecution: { workflowId: ctx.incidentId, runId },
        activityId,
        attempt: attemptNo,
      } as never).run(act, 'api', ctx);
    await attempt('run-1', '7', 1);
    await attempt('run-1', '7', 2);
    await attempt('run-2', '7', 1);
    expect(seen.map((s) => s.key)).toEqual([
      `${ctx.incidentId}:run-1:7:action`,
      `${ctx.incidentId}:run-1:7:action`,
      `${ctx.incidentId}:run-2:7:action`,
    ]);
  });

  it('keeps a token written into the health URL out of a diagnosis when the endpoint echoes the request', async () => {
    const inUrl = 'tok-in-URL-5ecret-9f2b';
    const d = await activities(authed, undefined, `${base}/echo?access_token=${inUrl}&verbose=1`).diagnoseTarget('api');
    const health = d.sections.find((s) => s.title.startsWith('health '))!;
    expect(health.text).toContain('Cannot GET /echo?access_token=[redacted]');
    expect(JSON.stringify(d)).not.toContain(inUrl);
  });

  it('keeps the token out of the failure when the server quotes it in its refusal', async () => {
    const f = await failureOf(activities(authed, `${base}/api/drain`).runTargetAction('api', ctx));
    expect(f.type).toBe('AuthFailed');
    expect(f.message).not.toContain(token);
    expect(f.message).toBe(`POST to '${base}/api/drain' failed: server answered 403 Forbidden: denied for Bearer [redacted]`);
  });

  it('keeps a password written in the action URL out of the failure, as sent (Basic) and as written', async () => {
    const password = 'pa$$-W0rd-9c1e';
    const basic = Buffer.from(`ops:${password}`).toString('base64');
    const url = `${base.replace('//', `//ops:${encodeURIComponent(password)}@`)}/api/drain`;
    const f = await failureOf(activities({}, url).runTargetAction('api', ctx));
    for (const leak of [basic, password, encodeURIComponent(password)]) expect(f.message).not.toContain(leak);
    expect(f.message).toBe(`POST to '${base}/api/drain' failed: server answered 403 Forbidden: denied for Basic [redacted]`);
  });

  it("makes a host agent read the header secret of its own units' health checks, and no other secret", () => {
    const agentConfig = (env: NodeJS.ProcessEnv) => {
      const before = { ...process.env };
      Object.assign(process.env, env);
      try {
        return parseConfig(
          {
            ...rawConfig({}, { unitToken: { env: 'T_HTTP_AUTH_UNIT_TOKEN' }, apiToken: { env: 'T_HTTP_AUTH_API_TOKEN' } }),
            hosts: { h1: {} },
            targets: {
              web: {
                kind: 'systemd',
                unit: 'web.service',
                host: 'h1',
                health: { url: `${base}/health`, headers: { Authorization: { secret: 'unitToken', prefix: 'Bearer ' } } },
              },
              api: { kind: 'http', health: { url: `${base}/health`, headers: { Authorization: { secret: 'apiToken' } } } },
            },
          },
          'agent config',
          process.cwd(),
          { secrets: { host: 'h1' } },
        );
      } finally {
        for (const k of Object.keys(env)) if (!(k in before)) delete process.env[k];
      }
    };
    expect(() => agentConfig({})).toThrow(/secrets\.unitToken: environment variable T_HTTP_AUTH_UNIT_TOKEN is not set/);
    expect(() => agentConfig({})).not.toThrow(/apiToken/);
    const c = agentConfig({ T_HTTP_AUTH_UNIT_TOKEN: token });
    expect(c.secrets.unitToken!.resolved).toBe(true);
    expect(c.secrets.apiToken!.resolved).toBe(false);
  });

  it('refuses at load a header secret the config does not have, and a literal value with a line break', () => {
    expect(() => parseConfig(rawConfig({ Authorization: { secret: 'nope' } }))).toThrow(ConfigError);
    expect(() => parseConfig(rawConfig({ Authorization: { secret: 'nope' } }))).toThrow(
      /targets\.api\.health\.headers\.Authorization\.secret: no secret named "nope" in secrets \(known: apiToken\)/,
    );
    expect(() => parseConfig(rawConfig({ Authorization: { secret: 'nope' } }))).toThrow(
      /targets\.api\.action\.headers\.Authorization\.secret: no secret named "nope"/,
    );
    expect(() => parseConfig(rawConfig({ 'X-Evil': 'a\r\nHost: elsewhere' }))).toThrow(
      /targets\.api\.health\.headers\.X-Evil: a header value holds no line break or NUL/,
    );
    expect(() => parseConfig(rawConfig({ 'Bad Name': 'x' }))).toThrow(/expected a header name/);
  });
});
