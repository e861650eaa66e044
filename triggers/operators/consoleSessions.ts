// The console's sessions: an operator proves who they are once (token or JWT) and the browser then
// holds only a random session id in an HttpOnly cookie. The credential itself is never stored, in
// the browser or here; the map keeps the id's SHA-256, so a heap dump hands out no live session.
// POSTs made with the cookie must also carry the session's CSRF token in a header (SameSite=Strict
// already keeps other sites' requests cookie-less; the header is the second lock).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Operator } from '../../config/schema.js';
import type { Identity } from './credentials.js';

export const sessionCookie = 'rmd_console';
export const csrfHeader = 'x-csrf-token';
const idPattern = /^[A-Za-z0-9_-]{43}$/;

export interface SessionLimits {
  /** Absolute lifetime of a session: one shift. */
  lifetimeMs: number;
  /** A session nobody used for this long ends (the page polls every 2 s while it is open). */
  idleMs: number;
  /** Sessions held in all: past it the oldest is dropped. */
  maxSessions: number;
  /** Sessions per operator: past it that operator's oldest is dropped, so one operator logging in in a loop evicts only themselves. */
  maxPerOperator: number;
}

export const defaultSessionLimits: SessionLimits = {
  lifetimeMs: 8 * 3_600_000,
  idleMs: 30 * 60_000,
  maxSessions: 1_000,
  maxPerOperator: 20,
};

interface Session {
  operator: Operator;
  credential: Identity['credential'];
  csrf: string;
  expiresAt: number;
  lastSeen: number;
}

export interface NewSession {
  /** The cookie value: goes to the browser once, in Set-Cookie, and is never kept here. */
  id: string;
  csrf: string;
  expiresAt: number;
  /** expiresAt less the instant it was opened: the cookie's Max-Age. */
  lifetimeMs: number;
}

/** What the cookie (and, on a POST, the CSRF header) of a request amounts to. */
export type SessionCheck =
  | { kind: 'none' }
  | { kind: 'ok'; identity: Identity; csrf: string; expiresAt: number }
  | { kind: 'refused'; status: 401 | 403; reason: string };

export class ConsoleSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly limits: SessionLimits = defaultSessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /**
   * A session for a verified identity. It never outlives the credential that opened it: a token's
   * configured expiry, or a JWT's `exp` (given as credentialExpiresAt).
   */
  open(identity: Identity, credentialExpiresAt?: number): NewSession {
    const now = this.now();
    this.sweep(now);
    const mine = [...this.sessions.entries()].filter(([, s]) => s.operator.name === identity.operator.name);
    // Map order is insertion order: the first entries are the oldest.
    for (const [key] of mine.slice(0, Math.max(0, mine.length - this.limits.maxPerOperator + 1))) this.sessions.delete(key);
    while (this.sessions.size >= this.limits.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    // The static token's expiry bounds only a session that token opened: one opened with a JWT ends
    // with the JWT, whatever became of the token.
    const tokenExpires =
      identity.credential === 'token' && identity.operator.tokenExpires ? Date.parse(identity.operator.tokenExpires) : Infinity;
    const expiresAt = Math.min(now + this.limits.lifetimeMs, tokenExpires, credentialExpiresAt ?? Infinity);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    this.sessions.set(digest(id), { operator: identity.operator, credential: identity.credential, csrf, expiresAt, lastSeen: now });
    return { id, csrf, expiresAt, lifetimeMs: expiresAt - now };
  }

  /** Ends the session the request's cookie names, if any. */
  close(req: IncomingMessage): void {
    const id = sessionIdOf(req);
    if (id) this.sessions.delete(digest(id));
  }

  /**
   * The session the request's cookie names. A request that changes something (anything but GET
   * and HEAD) must also carry the session's CSRF token and must not come from another site.
   */
  check(req: IncomingMessage): SessionCheck {
    const id = sessionIdOf(req);
    if (id === undefined) return { kind: 'none' };
    const key = digest(id);
    const session = this.sessions.get(key);
    const now = this.now();
    if (!session) return { kind: 'refused', status: 401, reason: 'unknown console session' };
    if (now >= session.expiresAt || now - session.lastSeen >= this.limits.idleMs) {
      this.sessions.delete(key);
      return { kind: 'refused', status: 401, reason: `console session of '${session.operator.name}' expired` };
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      const crossSite = crossSiteReason(req);
      if (crossSite) return { kind: 'refused', status: 403, reason: crossSite };
      const sent = req.headers[csrfHeader];
      if (typeof sent !== 'string' || !sameSecret(sent, session.csrf))
        return { kind: 'refused', status: 403, reason: `console request of '${session.operator.name}' without its CSRF token` };
    }
    session.lastSeen = now;
    return {
      kind: 'ok',
      identity: { operator: session.operator, via: 'console', credential: session.credential },
      csrf: session.csrf,
      expiresAt: session.expiresAt,
    };
  }

  private sweep(now: number): void {
    for (const [key, s] of this.sessions) if (now >= s.expiresAt || now - s.lastSeen >= this.limits.idleMs) this.sessions.delete(key);
  }
}

/** The session id from the Cookie header: the first well-formed value of our cookie. */
export function sessionIdOf(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 16_384) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== sessionCookie) continue;
    const value = part.slice(eq + 1).trim();
    if (idPattern.test(value)) return value;
  }
  return undefined;
}

/**
 * Why a state-changing request looks like it came from another site, or undefined. Browsers send
 * Origin on every POST and Sec-Fetch-Site on every request; a client that sends neither (curl, the
 * CLI) is not a browser another site can drive.
 */
export function crossSiteReason(req: IncomingMessage): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none')
    return `cross-site console request (Sec-Fetch-Site: ${site.slice(0, 20)})`;
  const origin = req.headers.origin;
  if (typeof origin === 'string') {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host === undefined || host !== req.headers.host)
      return `cross-site console request (Origin ${origin.slice(0, 100)} is not ${String(req.headers.host).slice(0, 100)})`;
  }
  return undefined;
}

export function sessionCookieHeader(id: string, maxAgeMs: number, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor(maxAgeMs / 1_000));
  return `${sessionCookie}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}

export function clearedCookieHeader(secure: boolean): string {
  return sessionCookieHeader('', 0, secure);
}

function digest(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
