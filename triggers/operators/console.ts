// The incident console: a small web page served by the operator API, behind the same
// authentication. An operator logs in once with their token or JWT; the browser keeps only a
// session cookie, and the page's script calls the JSON API with it (api.ts asks sessionOf() when a
// request carries no bearer credential). Everything the page shows is untrusted text and is
// rendered with textContent; the Content-Security-Policy allows no inline script to begin with.
import { readFileSync, existsSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { HttpError, send } from '../alerts/webhookHttp.js';
import type { OperatorRoute, RouteContext } from './api.js';
import type { Identity } from './credentials.js';
import { clearedCookieHeader, ConsoleSessions, crossSiteReason, sessionCookieHeader } from './consoleSessions.js';

/** Every console answer: no framing, no sniffing, no caching, scripts and styles from here only. */
export const securityHeaders: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

const assetTypes: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'login.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'decisions.js': 'text/javascript; charset=utf-8',
  'incidentViews.js': 'text/javascript; charset=utf-8',
  'reportView.js': 'text/javascript; charset=utf-8',
  'guardrailsView.js': 'text/javascript; charset=utf-8',
  'login.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

/** Failed logins per remote address per minute; past them, every further failure is answered 429. */
const failedLoginsPerMinute = 10;
const maxTokenChars = 8_192;

export interface ConsoleRoute extends OperatorRoute {
  readonly sessions: ConsoleSessions;
  /**
   * The console session behind a request that carries no bearer credential, as the API's
   * authenticate() asks: undefined when there is no session cookie; a 401 or 403 (audited) when the
   * session is unknown or expired, or a POST lacks its CSRF token.
   */
  sessionOf(ctx: Pick<RouteContext, 'req' | 'path' | 'remote' | 'audit'>): Identity | undefined;
}

export function consoleRoute(): ConsoleRoute {
  const sessions = new ConsoleSessions();
  const assets = loadAssets();
  const failures = new Map<string, { minute: number; count: number }>();

  function sessionOf(ctx: Pick<RouteContext, 'req' | 'path' | 'remote' | 'audit'>): Identity | undefined {
    if (ctx.req.headers.authorization !== undefined) return undefined;
    const checked = sessions.check(ctx.req);
    if (checked.kind === 'none') return undefined;
    if (checked.kind === 'ok') return checked.identity;
    ctx.audit({
      via: 'console',
      action: `${ctx.req.method} ${ctx.path.slice(0, 120)}`,
      result: 'unauthenticated',
      reason: checked.reason,
      remote: ctx.remote,
    });
    throw checked.status === 401
      ? new HttpError(401, 'the console session is unknown or has expired: log in again', securityHeaders)
      : new HttpError(403, 'refused: a console request needs its CSRF token and must come from the console page', securityHeaders);
  }

  function tooManyFailures(address: string): boolean {
    const minute = Math.floor(Date.now() / 60_000);
    const seen = failures.get(address);
    return !!seen && seen.minute === minute && seen.count >= failedLoginsPerMinute;
  }

  function noteFailure(address: string): void {
    const minute = Math.floor(Date.now() / 60_000);
    const seen = failures.get(address);
    if (seen && seen.minute === minute) seen.count += 1;
    else {
      if (failures.size > 10_000) failures.clear();
      failures.set(address, { minute, count: 1 });
    }
  }

  async function login(ctx: RouteContext): Promise<void> {
    const { req, res, remote } = ctx;
    const address = req.socket.remoteAddress ?? '?';
    const refuse = (status: number, message: string, reason: string, headers: Record<string, string> = {}) => {
      ctx.audit({ via: 'console', action: 'login', result: status === 401 ? 'unauthenticated' : 'invalid', reason, remote });
      throw new HttpError(status, message, { ...securityHeaders, ...headers });
    };
    // Another site cannot post JSON here without a CORS preflight this server never grants, nor
    // log a victim into the attacker's own session (login CSRF) past these checks.
    const crossSite = crossSiteReason(req);
    if (crossSite) refuse(403, 'refused: log in from the console page', crossSite);
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
      refuse(415, 'expected Content-Type: application/json', 'login without a JSON body');
    const body = await ctx.json();
    const token = body.token;
    const wellFormed = typeof token === 'string' && token.length > 0 && token.length <= maxTokenChars && /^\S+$/.test(token);
    // The credential is checked first and a right one always logs in: behind a TLS proxy every
    // operator shares the proxy's address, and a limit that refused right credentials let one
    // stranger lock them all out. Tokens are 256 random bits or signed JWTs, nothing to guess: the
    // limit only tells a client that keeps failing to back off (429, Retry-After).
    const result = wellFormed ? await ctx.credentials.authenticate(`Bearer ${token}`, 'console') : undefined;
    if (!result?.ok && tooManyFailures(address))
      refuse(
        429,
        'too many failed logins from this address: wait a minute',
        `failed-login limit (${failedLoginsPerMinute}/min) reached by ${address}`,
        { 'Retry-After': '60' },
      );
    if (!result) {
      refuse(400, 'token: expected an operator token or a signed bearer token', 'login without a well-formed token');
      return;
    }
    if (!result.ok) {
      noteFailure(address);
      // As the API does: which part of the credential was wrong is for the audit log only.
      refuse(401, 'that token was not accepted', result.reason);
      return;
    }
    const expiresAt = result.identity.credential === 'jwt' ? jwtExpiry(token as string) : undefined;
    const session = sessions.open(result.identity, expiresAt);
    const o = result.identity.operator;
    ctx.audit({ operator: o.name, via: 'console', action: 'login', result: 'done', remote });
    send(
      res,
      200,
      { operator: o.name, role: o.role, expiresAt: new Date(session.expiresAt).toISOString() },
      {
        ...securityHeaders,
        'Set-Cookie': sessionCookieHeader(session.id, session.lifetimeMs, isSecure(ctx)),
      },
    );
  }

  function serve(res: ServerResponse, name: string): void {
    const body = assets.get(name);
    if (!body) throw new HttpError(503, `the console's ${name} is missing from this installation`, securityHeaders);
    res.writeHead(200, { ...securityHeaders, 'Content-Type': assetTypes[name]!, 'Content-Length': body.length });
    res.end(body);
  }

  function redirect(res: ServerResponse, location: string): void {
    res.writeHead(303, { ...securityHeaders, Location: location, 'Content-Length': 0 });
    res.end();
  }

  return {
    sessions,
    sessionOf,
    matches: (_method, path) => path === '/' || path === '/console' || path.startsWith('/console/'),
    async handle(ctx) {
      const { req, res, path } = ctx;
      const method = req.method ?? 'GET';
      const read = method === 'GET' || method === 'HEAD';
      if (read && (path === '/' || path === '/console')) return redirect(res, '/console/');
      if (read && path === '/console/') {
        // The page itself is no secret, but sending a stranger to the login first is kinder than
        // a page whose every call fails.
        let identity: Identity | undefined;
        try {
          identity = sessionOf(ctx);
        } catch {
          identity = undefined;
        }
        return identity ? serve(res, 'index.html') : redirect(res, '/console/login');
      }
      if (read && path === '/console/login') return serve(res, 'login.html');
      const asset = path.slice('/console/'.length);
      if (read && asset !== 'index.html' && asset !== 'login.html' && Object.hasOwn(assetTypes, asset)) return serve(res, asset);
      if (method === 'POST' && path === '/console/login') return login(ctx);
      if (method === 'GET' && path === '/console/session') {
        const checked = sessions.check(req);
        if (checked.kind !== 'ok') throw new HttpError(401, 'no console session: log in', securityHeaders);
        const o = checked.identity.operator;
        return send(
          res,
          200,
          { operator: o.name, role: o.role, csrfToken: checked.csrf, expiresAt: new Date(checked.expiresAt).toISOString() },
          securityHeaders,
        );
      }
      if (method === 'POST' && path === '/console/logout') {
        const identity = sessionOf(ctx);
        if (!identity) throw new HttpError(401, 'no console session', securityHeaders);
        sessions.close(req);
        ctx.audit({ operator: identity.operator.name, via: 'console', action: 'logout', result: 'done', remote: ctx.remote });
        return send(res, 200, { loggedOut: true }, { ...securityHeaders, 'Set-Cookie': clearedCookieHeader(isSecure(ctx)) });
      }
      throw new HttpError(404, `no console route ${method} ${path.slice(0, 120)}`, securityHeaders);
    },
  };
}

/**
 * The page, its script and its style, read once at start. From dist/ (the compiled engine) the
 * files are not copied next to the module: the source folder of the same checkout is used.
 */
function loadAssets(): Map<string, Buffer> {
  const candidates = [
    fileURLToPath(new URL('./console/', import.meta.url)),
    fileURLToPath(new URL('../../../triggers/operators/console/', import.meta.url)),
  ];
  const found = candidates.find((d) => existsSync(`${d}/index.html`));
  const assets = new Map<string, Buffer>();
  if (!found) return assets;
  for (const name of Object.keys(assetTypes)) assets.set(name, readFileSync(`${found}/${name}`));
  return assets;
}

/** A verified JWT's expiry, in ms: the session ends with it. */
function jwtExpiry(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp * 1_000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the browser reached us over HTTPS (through a TLS-terminating proxy): the cookie is then
 * marked Secure. A client lying here only makes its own cookie stricter.
 */
function isSecure(ctx: RouteContext): boolean {
  return (ctx.req.socket as { encrypted?: boolean }).encrypted === true || ctx.req.headers['x-forwarded-proto'] === 'https';
}
