// The console's door over real HTTP, on the operator API's own listener: login, the session cookie,
// CSRF on POSTs to the JSON API, logout, the headers every console answer carries. Temporal is not
// needed: every request here is answered (or refused) before an action reaches it.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createOperatorApi, type OperatorApi } from '../../triggers/operators/api.js';
import { newOperatorToken } from '../../triggers/operators/credentials.js';
import { CommandError, type Temporal } from '../../triggers/operators/operatorTemporal.js';
import { triggerConfig } from './support/config.js';

const tokens = { alice: newOperatorToken(), vera: newOperatorToken(), soon: newOperatorToken(), old: newOperatorToken() };
const noTemporal: Temporal = {
  client: {} as Client,
  address: 'nowhere',
  call: async () => {
    throw new CommandError(3, 'no Temporal in this test');
  },
  close: async () => undefined,
};
const logLines: string[] = [];

function start(): { api: OperatorApi; url: Promise<string> } {
  const { config } = triggerConfig({
    taskQueue: 'console-door',
    extra: {
      operators: [
        { name: 'alice', role: 'operator', tokenHash: tokens.alice.tokenHash },
        { name: 'vera', role: 'viewer', tokenHash: tokens.vera.tokenHash },
        { name: 'sam', role: 'operator', tokenHash: tokens.soon.tokenHash, tokenExpires: new Date(Date.now() + 3_600_000).toISOString() },
        { name: 'olga', role: 'admin', tokenHash: tokens.old.tokenHash, tokenExpires: '2020-01-01T00:00:00Z' },
      ],
      api: { listen: '127.0.0.1:0' },
    },
  });
  const api = createOperatorApi({
    config,
    temporal: noTemporal,
    logger: pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }),
  });
  return { api, url: api.listen().then((l) => l.url) };
}

let api: OperatorApi;
let base: string;

beforeAll(async () => {
  const started = start();
  api = started.api;
  base = await started.url;
});
afterAll(() => api?.close());

async function http(
  method: string,
  path: string,
  opts: { cookie?: string; headers?: Record<string, string>; body?: unknown; url?: string } = {},
) {
  const res = await fetch(`${opts.url ?? base}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(opts.cookie ? { Cookie: opts.cookie } : {}),
      ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // a page, not JSON
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function login(token: string, url?: string) {
  const r = await http('POST', '/console/login', {
    body: { token },
    url,
    headers: { Origin: url ?? base, 'Sec-Fetch-Site': 'same-origin' },
  });
  const setCookie = r.headers.get('set-cookie') ?? '';
  return { ...r, setCookie, cookie: setCookie.split(';')[0]! };
}

const audits = () =>
  logLines
    .map((l) => JSON.parse(l) as { audit?: { operator?: string; via: string; action: string; result: string; reason?: string } })
    .flatMap((l) => (l.audit ? [l.audit] : []));

describe('the console door', () => {
  it('sends a visitor without a session to the login page, and every answer carries the security headers', async () => {
    expect((await http('GET', '/')).headers.get('location')).toBe('/console/');
    const page = await http('GET', '/console/');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/console/login');
    const loginPage = await http('GET', '/console/login');
    expect(loginPage.status).toBe(200);
    expect(loginPage.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(loginPage.text).toContain('<script src="/console/login.js" defer></script>');
    for (const path of [
      '/console/login',
      '/console/console.js',
      '/console/incidentViews.js',
      '/console/console.css',
      '/console/',
      '/console/nope',
      '/console/constructor',
    ]) {
      const r = await http('GET', path);
      expect(r.headers.get('content-security-policy'), path).toMatch(/^default-src 'self'; script-src 'self';/);
      expect(r.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
      expect(r.headers.get('x-frame-options'), path).toBe('DENY');
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(r.headers.get('cache-control'), path).toBe('no-store');
    }
    expect((await http('GET', '/console/constructor')).status).toBe(404);
    // No page holds an inline script or handler for the policy to have to allow.
    expect(loginPage.text).not.toMatch(/<script>|\son[a-z]+\s*=|javascript:/i);
  });

  it('refuses a wrong, expired or malformed token, audited, without saying which was wrong', async () => {
    for (const token of [newOperatorToken().token, tokens.old.token, 'not a token', 'x'.repeat(9_000), 'eyJ.eyJ.sig']) {
      const r = await login(token);
      expect(r.status, token.slice(0, 20)).toBeGreaterThanOrEqual(400);
      expect(r.setCookie).toBe('');
    }
    const wrong = await login(newOperatorToken().token);
    expect(wrong.status).toBe(401);
    expect(wrong.json).toEqual({ error: 'that token was not accepted' });
    const expired = await login(tokens.old.token);
    expect(expired.json).toEqual({ error: 'that token was not accepted' });
    expect(
      audits().some((a) => a.action === 'login' && a.result === 'unauthenticated' && a.reason?.includes("token of 'olga' expired")),
    ).toBe(true);
    expect(logLines.join('\n')).not.toContain(tokens.old.token);
  });

  it('refuses a login posted as a form, or from another site (login CSRF)', async () => {
    const form = await http('POST', '/console/login', {
      body: `token=${tokens.alice.token}`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    for (const headers of [{ Origin: 'https://evil.example' }, { 'Sec-Fetch-Site': 'cross-site' }] as Array<Record<string, string>>) {
      const r = await http('POST', '/console/login', { body: { token: tokens.alice.token }, headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
  });

  it('logs in with a token, sets an HttpOnly SameSite=Strict cookie, and the JSON API takes it as the console door', async () => {
    const r = await login(tokens.alice.token);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ operator: 'alice', role: 'operator' });
    expect(r.setCookie).toMatch(/^rmd_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=(\d+)$/);
    expect(Number(/Max-Age=(\d+)/.exec(r.setCookie)![1])).toBe(8 * 3_600);
    // The token is never handed back in any form.
    expect(r.text).not.toContain(tokens.alice.token);
    expect(r.setCookie).not.toContain(tokens.alice.token);

    const page = await http('GET', '/console/', { cookie: r.cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="module" src="/console/console.js"></script>');
    expect(page.text).not.toMatch(/<script>|\son[a-z]+\s*=|javascript:/i);
    const whoami = await http('GET', '/api/v1/whoami', { cookie: r.cookie });
    expect(whoami.json).toEqual({ operator: 'alice', role: 'operator', via: 'console', credential: 'token' });
    const me = await http('GET', '/console/session', { cookie: r.cookie });
    expect(me.json).toMatchObject({ operator: 'alice', role: 'operator', csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(audits().some((a) => a.operator === 'alice' && a.via === 'console' && a.action === 'login' && a.result === 'done')).toBe(true);
  });

  it('bounds the session by the token that opened it', async () => {
    const r = await login(tokens.soon.token);
    expect(r.status).toBe(200);
    expect(Number(/Max-Age=(\d+)/.exec(r.setCookie)![1])).toBeLessThanOrEqual(3_600);
  });

  it('refuses a POST to the JSON API made with the cookie but without the CSRF token, with a wrong one, or from another site', async () => {
    const { cookie } = await login(tokens.alice.token);
    const { json } = await http('GET', '/console/session', { cookie });
    const csrf = json.csrfToken as string;
    const approve = '/api/v1/incidents/not-an-id/approve';
    const before = audits().length;
    const attempts: Array<Record<string, string>> = [
      {},
      { 'X-CSRF-Token': 'x'.repeat(43) },
      { 'X-CSRF-Token': csrf, Origin: 'https://evil.example' },
      { 'X-CSRF-Token': csrf, 'Sec-Fetch-Site': 'cross-site' },
    ];
    for (const headers of attempts) {
      const r = await http('POST', approve, { cookie, headers, body: { reason: 'csrf' } });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.json.error).toContain('CSRF token');
    }
    expect(
      audits()
        .slice(before)
        .filter((a) => a.via === 'console' && a.result === 'unauthenticated' && a.action.startsWith('POST /api/v1/incidents')),
    ).toHaveLength(4);
    // With it, the request reaches the action (which refuses the made-up id itself).
    const through = await http('POST', approve, { cookie, headers: { 'X-CSRF-Token': csrf, Origin: base }, body: { reason: 'ok' } });
    expect(through.status).toBe(400);
    expect(through.json.error).toContain('expected an incident or maintenance workflow id');
  });

  it('refuses an unknown cookie with 401, and prefers a bearer credential over a cookie', async () => {
    const r = await http('GET', '/api/v1/whoami', { cookie: `rmd_console=${'A'.repeat(43)}` });
    expect(r.status).toBe(401);
    const both = await http('GET', '/api/v1/whoami', {
      cookie: `rmd_console=${'A'.repeat(43)}`,
      headers: { Authorization: `Bearer ${tokens.vera.token}` },
    });
    expect(both.json).toMatchObject({ operator: 'vera', via: 'api' });
  });

  it('logs out only with the CSRF token, and the cookie is dead afterwards', async () => {
    const { cookie } = await login(tokens.vera.token);
    const csrf = (await http('GET', '/console/session', { cookie })).json.csrfToken as string;
    expect((await http('POST', '/console/logout', { cookie })).status).toBe(403);
    const out = await http('POST', '/console/logout', { cookie, headers: { 'X-CSRF-Token': csrf } });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toBe('rmd_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    expect((await http('GET', '/api/v1/whoami', { cookie })).status).toBe(401);
    expect((await http('GET', '/console/', { cookie })).headers.get('location')).toBe('/console/login');
  });

  it('answers 429 to an address past ten failed logins in a minute, and still logs in a right token from it', async () => {
    const other = start();
    const url = await other.url;
    try {
      for (let i = 0; i < 10; i += 1) expect((await login(newOperatorToken().token, url)).status).toBe(401);
      // Behind a TLS proxy every operator shares its address: a stranger's failures lock nobody out.
      const operator = await login(tokens.alice.token, url);
      expect(operator.status).toBe(200);
      expect(operator.json.operator).toBe('alice');
      const limited = await login(newOperatorToken().token, url);
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('60');
      expect((await login(tokens.vera.token, url)).status).toBe(200);
    } finally {
      await other.api.close();
    }
  });
});

describe('the operator API body limit', () => {
  it('answers a POST over api.maxBodyBytes with 413 naming api.maxBodyBytes (not the webhook limit), before Temporal is asked', async () => {
    const approve = `/api/v1/incidents/${encodeURIComponent('incident:serviceDown:demo')}/approve`;
    const headers = { Authorization: `Bearer ${tokens.alice.token}` };
    const huge = await http('POST', approve, { headers, body: { reason: 'x'.repeat(70_000) } });
    expect(huge.status).toBe(413);
    expect(huge.json.error).toBe('body exceeds the limit of 65536 bytes (api.maxBodyBytes)');
    // The console's login reads its body through the same listener and the same limit.
    const login = await http('POST', '/console/login', {
      body: { token: 'x'.repeat(70_000) },
      headers: { Origin: base, 'Sec-Fetch-Site': 'same-origin' },
    });
    expect(login.status).toBe(413);
    expect(login.json.error).toBe('body exceeds the limit of 65536 bytes (api.maxBodyBytes)');
  });
});
