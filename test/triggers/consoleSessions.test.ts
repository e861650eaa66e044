// The console's sessions on their own: what a cookie and a CSRF header amount to, how long a
// session lives, and what a flood of logins does to the map. No stack, no browser.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Operator } from '../../config/schema.js';
import type { Identity } from '../../triggers/operators/credentials.js';
import {
  ConsoleSessions,
  crossSiteReason,
  sessionCookieHeader,
  sessionIdOf,
  type SessionLimits,
} from '../../triggers/operators/consoleSessions.js';

const alice: Operator = { name: 'alice', role: 'operator' };
const bob: Operator = { name: 'bob', role: 'viewer' };
const asAlice: Identity = { operator: alice, via: 'console', credential: 'token' };
const limits: SessionLimits = { lifetimeMs: 8 * 3_600_000, idleMs: 30 * 60_000, maxSessions: 50, maxPerOperator: 5 };

function request(id: string | undefined, opts: { method?: string; csrf?: string; headers?: Record<string, string> } = {}): IncomingMessage {
  return {
    method: opts.method ?? 'GET',
    headers: {
      host: '127.0.0.1:9798',
      ...(id !== undefined ? { cookie: `theme=dark; rmd_console=${id}; other=1` } : {}),
      ...(opts.csrf !== undefined ? { 'x-csrf-token': opts.csrf } : {}),
      ...opts.headers,
    },
  } as unknown as IncomingMessage;
}

function clock(start = Date.parse('2026-12-04T03:00:00Z')) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('console sessions', () => {
  it('knows the operator behind a cookie, as the console door, and never keeps the cookie value', () => {
    const sessions = new ConsoleSessions(limits);
    const s = sessions.open(asAlice);
    expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const checked = sessions.check(request(s.id));
    expect(checked).toMatchObject({
      kind: 'ok',
      identity: { operator: { name: 'alice' }, via: 'console', credential: 'token' },
      csrf: s.csrf,
    });
    // The map holds digests: the id the browser holds is nowhere in it.
    expect(JSON.stringify([...(sessions as unknown as { sessions: Map<string, unknown> }).sessions.keys()])).not.toContain(s.id);
  });

  it('tells no cookie apart from a cookie nobody issued, and ignores malformed values', () => {
    const sessions = new ConsoleSessions(limits);
    expect(sessions.check(request(undefined))).toEqual({ kind: 'none' });
    expect(sessions.check(request('x'.repeat(43)))).toMatchObject({ kind: 'refused', status: 401 });
    expect(sessionIdOf(request('<script>'))).toBeUndefined();
    expect(sessionIdOf(request(`${'a'.repeat(43)}; rmd_console=${'b'.repeat(43)}`))).toBe('a'.repeat(43));
    expect(sessionIdOf({ headers: { cookie: 'rmd_console=' + 'a'.repeat(20_000) } } as unknown as IncomingMessage)).toBeUndefined();
  });

  it('refuses a POST without the session CSRF token, with a wrong one, or from another site', () => {
    const sessions = new ConsoleSessions(limits);
    const s = sessions.open(asAlice);
    expect(sessions.check(request(s.id, { method: 'POST' }))).toMatchObject({ kind: 'refused', status: 403 });
    expect(sessions.check(request(s.id, { method: 'POST', csrf: `${s.csrf.slice(0, -1)}x` }))).toMatchObject({
      kind: 'refused',
      status: 403,
    });
    expect(sessions.check(request(s.id, { method: 'POST', csrf: 'short' }))).toMatchObject({ kind: 'refused', status: 403 });
    // Another session's token is no better.
    const other = sessions.open({ ...asAlice, operator: bob });
    expect(sessions.check(request(s.id, { method: 'POST', csrf: other.csrf }))).toMatchObject({ kind: 'refused', status: 403 });
    for (const headers of [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ] as Array<Record<string, string>>)
      expect(sessions.check(request(s.id, { method: 'POST', csrf: s.csrf, headers })), JSON.stringify(headers)).toMatchObject({
        kind: 'refused',
        status: 403,
      });
    expect(
      sessions.check(
        request(s.id, { method: 'POST', csrf: s.csrf, headers: { origin: 'http://127.0.0.1:9798', 'sec-fetch-site': 'same-origin' } }),
      ),
    ).toMatchObject({ kind: 'ok' });
    // Reads need no CSRF token: another site's page can neither send the cookie (SameSite) nor read the answer.
    expect(sessions.check(request(s.id))).toMatchObject({ kind: 'ok' });
  });

  it('ends a session after its lifetime, after 30 idle minutes, and with the token that opened it', () => {
    const c = clock();
    const sessions = new ConsoleSessions(limits, c.now);
    const s = sessions.open(asAlice);
    // Polled every few minutes: alive until the absolute lifetime.
    for (let i = 0; i < 8 * 4 - 1; i += 1) {
      c.t += 15 * 60_000;
      expect(sessions.check(request(s.id)).kind, `after ${(i + 1) * 15} min`).toBe('ok');
    }
    c.t += 15 * 60_000;
    expect(sessions.check(request(s.id))).toMatchObject({ kind: 'refused', status: 401, reason: "console session of 'alice' expired" });
    expect(sessions.size).toBe(0);

    const idle = sessions.open(asAlice);
    c.t += 30 * 60_000;
    expect(sessions.check(request(idle.id))).toMatchObject({ kind: 'refused', status: 401 });

    const expiring = sessions.open({ ...asAlice, operator: { ...alice, tokenExpires: new Date(c.t + 10 * 60_000).toISOString() } });
    expect(expiring.expiresAt).toBe(c.t + 10 * 60_000);
    const jwt = sessions.open({ ...asAlice, credential: 'jwt' }, c.t + 5 * 60_000);
    expect(jwt.expiresAt).toBe(c.t + 5 * 60_000);
    c.t += 6 * 60_000;
    expect(sessions.check(request(jwt.id)).kind).toBe('refused');
    expect(sessions.check(request(expiring.id)).kind).toBe('ok');
  });

  it('lets a session opened with a JWT live until the JWT ends, even when the operator static token expired before', () => {
    const c = clock();
    const sessions = new ConsoleSessions(limits, c.now);
    const lapsed = { ...alice, tokenExpires: new Date(c.t - 86_400_000).toISOString() };
    const s = sessions.open({ operator: lapsed, via: 'console', credential: 'jwt' }, c.t + 3_600_000);
    expect(s.expiresAt).toBe(c.t + 3_600_000);
    c.t += 30 * 60_000 - 1;
    expect(sessions.check(request(s.id)).kind).toBe('ok');
  });

  it('holds at most maxPerOperator sessions per operator and maxSessions in all, dropping the oldest', () => {
    const c = clock();
    const sessions = new ConsoleSessions(limits, c.now);
    const bobs = sessions.open({ ...asAlice, operator: bob });
    const opened = Array.from({ length: 1_000 }, () => {
      c.t += 1;
      return sessions.open(asAlice);
    });
    // A login loop by alice evicts alice's own oldest sessions, not bob's.
    expect(sessions.size).toBe(limits.maxPerOperator + 1);
    expect(sessions.check(request(bobs.id)).kind).toBe('ok');
    expect(sessions.check(request(opened[0]!.id)).kind).toBe('refused');
    for (const s of opened.slice(-limits.maxPerOperator)) expect(sessions.check(request(s.id)).kind).toBe('ok');

    const many = new ConsoleSessions({ ...limits, maxSessions: 10 }, c.now);
    const first = many.open({ ...asAlice, operator: { name: 'op-0', role: 'viewer' } });
    for (let i = 1; i < 200; i += 1) many.open({ ...asAlice, operator: { name: `op-${i}`, role: 'viewer' } });
    expect(many.size).toBe(10);
    expect(many.check(request(first.id)).kind).toBe('refused');
  });

  it('closes the session its cookie names', () => {
    const sessions = new ConsoleSessions(limits);
    const s = sessions.open(asAlice);
    sessions.close(request(s.id));
    expect(sessions.check(request(s.id))).toMatchObject({ kind: 'refused', status: 401 });
  });

  it('writes the cookie HttpOnly, SameSite=Strict, Path=/, with a bounded Max-Age', () => {
    expect(sessionCookieHeader('abc', 3_600_500, false)).toBe('rmd_console=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600');
    expect(sessionCookieHeader('abc', 1_000, true)).toMatch(/; Secure$/);
  });

  it('lets requests without Origin or Sec-Fetch-Site through the cross-site check (curl, the CLI) but no foreign origin', () => {
    expect(crossSiteReason(request(undefined, { method: 'POST' }))).toBeUndefined();
    expect(crossSiteReason(request(undefined, { method: 'POST', headers: { 'sec-fetch-site': 'none' } }))).toBeUndefined();
    expect(crossSiteReason(request(undefined, { method: 'POST', headers: { origin: 'http://127.0.0.1:9799' } }))).toContain(
      'is not 127.0.0.1:9798',
    );
  });
});
