// HTTP health endpoints and configured HTTP actions (a cache clear, a drain).
//
// A health check that cannot connect has measured something: it returns ok:false instead of
// failing, so a workflow can tell "down" from "the engine could not ask". An action is different:
// a refusal or 5xx is retried (with the same Idempotency-Key), a 4xx is not.
// URLs may carry tokens in their query or userinfo, so messages only ever show origin + path.
import { redact, Secret } from '../config/secret.js';
import { authFailed, badInput, targetNotFound, transient } from './failures.js';
import { activitySignal } from './limits.js';
import { longestFirst } from './redaction.js';

export interface HealthCheckResult {
  ok: boolean;
  status?: number;
  latencyMs: number;
  body: string;
  error?: string;
  /** The endpoint answered 401 or 403 (not the status expected): it is up, and refused the engine. */
  refused?: true;
}

export interface HealthCheckDetail {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DetailedHealth {
  ok: boolean;
  status?: number;
  latencyMs: number;
  checks: HealthCheckDetail[];
  /** One line: which checks fail, or why the response could not be read. */
  detail: string;
}

export interface HttpActionResult {
  /** Absent in dry-run: nothing was sent. */
  status?: number;
  body: string;
  dryRun: boolean;
  summary: string;
}

const maxTimeoutMs = 300_000;
const actionMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function createHttpActivities(deps: { outputBytes: number }) {
  /** `headers` are resolved already (config secrets revealed by the caller, activities/requestHeaders.ts). */
  async function checkHealth(req: {
    url: string;
    expectStatus?: number;
    timeoutMs: number;
    headers?: Record<string, string>;
  }): Promise<HealthCheckResult> {
    const expect = req.expectStatus ?? 200;
    const url = parseUrl('health check', req.url);
    const what = `health check of '${shown(url)}'`;
    checkTimeout(what, req.timeoutMs);
    if (!Number.isInteger(expect) || expect < 100 || expect > 599)
      throw badInput(what, `expected status ${String(expect)} is not an HTTP status`);
    const started = performance.now();
    try {
      const { res, latencyMs } = await send(url, { method: 'GET', timeoutMs: req.timeoutMs, headers: req.headers }, started);
      const body = await readCapped(res, deps.outputBytes);
      const ok = res.status === expect;
      const result: HealthCheckResult = { ok, status: res.status, latencyMs, body };
      if (!ok) result.error = `expected status ${expect}, got ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
      if (!ok && (res.status === 401 || res.status === 403)) {
        result.refused = true;
        result.error += ": the endpoint refused the engine's credentials";
      }
      return result;
    } catch (err) {
      if (activitySignal()?.aborted) throw err;
      return { ok: false, latencyMs: elapsed(started), body: '', error: unreachable(err, req.timeoutMs) };
    }
  }

  async function readDetailedHealth(req: { url: string; timeoutMs: number; headers?: Record<string, string> }): Promise<DetailedHealth> {
    const url = parseUrl('detailed health read', req.url);
    const what = `detailed health read of '${shown(url)}'`;
    checkTimeout(what, req.timeoutMs);
    const started = performance.now();
    let status: number;
    let latencyMs: number;
    let text: string;
    let contentType: string;
    try {
      const sent = await send(url, { method: 'GET', timeoutMs: req.timeoutMs, accept: 'application/json', headers: req.headers }, started);
      ({ latencyMs } = sent);
      status = sent.res.status;
      contentType = sent.res.headers.get('content-type') ?? 'no content type';
      // The whole document is needed to parse it; the cap is generous but still a cap.
      text = await readCapped(sent.res, Math.max(deps.outputBytes, 262_144), false);
    } catch (err) {
      if (activitySignal()?.aborted) throw err;
      return { ok: false, latencyMs: elapsed(started), checks: [], detail: unreachable(err, req.timeoutMs) };
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      const snippet = text.slice(0, 120).replace(/\s+/g, ' ').trim();
      return {
        ok: false,
        status,
        latencyMs,
        checks: [],
        detail: `response ${status} is not JSON (${contentType}): ${snippet || 'empty body'}`,
      };
    }
    return { status, latencyMs, ...interpretHealth(doc, status) };
  }

  async function runHttpAction(req: {
    method: string;
    url: string;
    timeoutMs: number;
    dryRun: boolean;
    idempotencyKey: string;
    headers?: Record<string, string>;
    /** Scrubbed from the answer before any of it is kept: the config's secrets, which the headers' values come from. */
    secrets?: Secret[];
  }): Promise<HttpActionResult> {
    const method = String(req.method ?? '').toUpperCase();
    const url = parseUrl(`${method || 'HTTP'} action`, req.url);
    const what = `${method} to '${shown(url)}'`;
    if (!actionMethods.has(method)) throw badInput(what, `method must be one of ${[...actionMethods].join(', ')}`);
    checkTimeout(what, req.timeoutMs);
    if (typeof req.idempotencyKey !== 'string' || req.idempotencyKey.trim() === '' || /[\r\n]/.test(req.idempotencyKey)) {
      throw badInput(what, 'an idempotency key is required so that a retried action is not applied twice');
    }
    if (req.dryRun) {
      return { dryRun: true, body: '', summary: `would send ${method} to ${shown(url)} (Idempotency-Key ${req.idempotencyKey})` };
    }
    let res: Response;
    try {
      ({ res } = await send(
        url,
        { method, timeoutMs: req.timeoutMs, idempotencyKey: req.idempotencyKey, headers: req.headers },
        performance.now(),
      ));
    } catch (err) {
      // Refused or timed out: the Idempotency-Key lets the retry be safe even if the first one landed.
      throw transient(what, unreachable(err, req.timeoutMs));
    }
    let read: string;
    try {
      read = await readCapped(res, deps.outputBytes);
    } catch (err) {
      throw transient(what, `response body could not be read: ${unreachable(err, req.timeoutMs)}`);
    }
    // An error page may quote the request's credentials back, and the failure message goes to the
    // workflow's history and the incident's timeline: scrubbed whole, before any of it is cut.
    const body = redact(read, longestFirst([...(req.secrets ?? []), ...urlCredentials(url)]));
    const answered = `server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    const snippet = body ? `: ${body.slice(0, 200).replace(/\s+/g, ' ').trim()}` : '';
    const s = res.status;
    if (s >= 200 && s < 300) return { status: s, body, dryRun: false, summary: `${method} ${shown(url)} → ${s}` };
    if (s >= 500 || s === 408 || s === 429) throw transient(what, `${answered}${snippet}`);
    if (s === 401 || s === 403) throw authFailed(what, `${answered}${snippet}`);
    if (s === 404 || s === 410) throw targetNotFound(what, `${answered}${snippet}`);
    if (s >= 300 && s < 400) {
      // Following a redirect could send a destructive request somewhere the config never named.
      throw badInput(what, `${answered}; redirects are not followed for actions (location ${shownLocation(res)})`);
    }
    throw badInput(what, `${answered}${snippet}`);
  }

  return { checkHealth, readDetailedHealth, runHttpAction };
}

export type HttpActivities = ReturnType<typeof createHttpActivities>;

/** Origin and path only: query strings and userinfo carry tokens. */
export function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function shownLocation(res: Response): string {
  const loc = res.headers.get('location');
  if (!loc) return 'none';
  try {
    return shown(new URL(loc, res.url || undefined));
  } catch {
    return 'unreadable';
  }
}

export function parseUrl(op: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not even parseable: show it without anything after "?" or "#" and without userinfo.
    const safe = String(raw)
      .split(/[?#]/)[0]!
      .replace(/\/\/[^/@]*@/, '//')
      .slice(0, 200);
    throw badInput(`${op} of '${safe}'`, 'not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw badInput(`${op} of '${shown(url)}'`, `only http and https URLs are allowed, not ${url.protocol.replace(/:$/, '')}`);
  }
  return url;
}

export function checkTimeout(what: string, ms: number): void {
  if (!Number.isInteger(ms) || ms <= 0 || ms > maxTimeoutMs) {
    throw badInput(what, `timeout must be whole milliseconds between 1 and ${maxTimeoutMs}, got ${String(ms)}`);
  }
}

async function send(
  url: URL,
  opts: { method: string; timeoutMs: number; accept?: string; idempotencyKey?: string; headers?: Record<string, string> },
  started: number,
): Promise<{ res: Response; latencyMs: number }> {
  const cancelled = activitySignal();
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const headers: Record<string, string> = { 'user-agent': 'remediation-engine', ...opts.headers };
  if (opts.accept) headers.accept = opts.accept;
  if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
  // fetch refuses URLs with credentials; "http://user:pass@host/health" is still common in configs.
  const target = new URL(url);
  const basic = basicCredentials(url);
  if (basic !== undefined) {
    headers.authorization = `Basic ${basic}`;
    target.username = '';
    target.password = '';
  }
  try {
    const res = await fetch(target, {
      method: opts.method,
      headers,
      // Redirects are reported, never followed: a health check or action goes where the config says.
      redirect: 'manual',
      signal: cancelled ? AbortSignal.any([timeout, cancelled]) : timeout,
    });
    return { res, latencyMs: elapsed(started) };
  } catch (err) {
    // Cancellation of the activity is Temporal's business, not a health result.
    if (cancelled?.aborted) throw cancelled.reason ?? err;
    throw err;
  }
}

/** The Basic credentials a URL's userinfo is sent as, base64-encoded; undefined when it has none. */
function basicCredentials(url: URL): string | undefined {
  if (!url.username && !url.password) return undefined;
  return Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
}

/**
 * A password written in the URL, in every form a server may echo: as written, decoded, and inside
 * the Basic credentials sent. It is plain config text, not a Secret, so no list of secrets has it.
 */
function urlCredentials(url: URL): Secret[] {
  // Called once send() has decoded the same userinfo, so decoding cannot fail here.
  const basic = basicCredentials(url);
  if (!url.password || basic === undefined) return [];
  return [url.password, decodeURIComponent(url.password), basic].map((v) => Secret.of(v));
}

/** Reads at most maxBytes of the body and stops the download there. */
async function readCapped(res: Response, maxBytes: number, marker = true): Promise<string> {
  const { text, cut } = await readStart(res, maxBytes);
  return cut && marker ? `${text}\n[... cut at ${maxBytes} bytes]` : text;
}

/** The first maxBytes of the body (the download stops there), and whether there was more. */
export async function readStart(res: Response, maxBytes: number): Promise<{ text: string; cut: boolean }> {
  if (!res.body) return { text: '', cut: false };
  const chunks: Uint8Array[] = [];
  let held = 0;
  let cut = false;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (held + value.length > maxBytes) {
        chunks.push(value.subarray(0, maxBytes - held));
        held = maxBytes;
        cut = true;
        break;
      }
      chunks.push(value);
      held += value.length;
    }
  } finally {
    if (cut) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  return {
    text: Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\uFFFD+$/, ''),
    cut,
  };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

/** "connection refused (ECONNREFUSED)", "no response within 3000 ms". */
export function unreachable(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string; name?: string } };
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') return `no response within ${timeoutMs} ms`;
  const code = e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)';
  if (code === 'ECONNRESET') return 'connection reset (ECONNRESET)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `host name not resolved (${code})`;
  const message = e?.cause?.message ?? e?.message ?? String(err);
  // undici messages do not echo URLs today; cut anything URL-shaped anyway, query and all.
  return `${message.replace(/\bhttps?:\/\/\S+/g, '[url]').slice(0, 200)}${code ? ` (${code})` : ''}`;
}

const okWords = new Set([
  'ok',
  'up',
  'pass',
  'passed',
  'passing',
  'healthy',
  'green',
  'true',
  'success',
  'available',
  'ready',
  'warn',
  'alive',
  'online',
  'running',
]);

/**
 * The common health document shapes: Spring Boot ({"status":"UP","components":{...}}), MicroProfile
 * ({"status":"UP","checks":[{"name":...}]}), the IETF health+json draft ({"status":"pass",
 * "checks":{"db:connections":[{...}]}}), ASP.NET ({"status":"Healthy","entries":{...}}) and the
 * home-grown {"status":"ok","checks":{"db":"ok"}}. "warn" counts as healthy, as the draft says.
 */
export function interpretHealth(doc: unknown, httpStatus: number): { ok: boolean; checks: HealthCheckDetail[]; detail: string } {
  const httpOk = httpStatus >= 200 && httpStatus < 300;
  if (!isObject(doc)) {
    return { ok: false, checks: [], detail: `response ${httpStatus} is JSON but not an object: ${JSON.stringify(doc).slice(0, 120)}` };
  }
  const overall = statusOf(doc);
  const container = ['checks', 'components', 'entries', 'results', 'details', 'dependencies', 'services']
    .map((k) => doc[k])
    .find((v) => isObject(v) || Array.isArray(v));
  const checks: HealthCheckDetail[] = [];
  if (Array.isArray(container)) {
    container.forEach((item, i) => {
      const name = isObject(item) ? firstString(item, ['name', 'component', 'componentId', 'id', 'key']) : undefined;
      checks.push(checkOf(name ?? `check ${i + 1}`, item));
    });
  } else if (isObject(container)) {
    for (const [name, value] of Object.entries(container)) checks.push(checkOf(name, value));
  }
  const failing = checks.filter((c) => !c.ok);
  if (overall === undefined && checks.length === 0) {
    return {
      ok: false,
      checks,
      detail: `response ${httpStatus} has no status or checks this reader understands: ${JSON.stringify(doc).slice(0, 120)}`,
    };
  }
  const overallOk = overall === undefined || overall.ok;
  const ok = httpOk && overallOk && failing.length === 0;
  const parts: string[] = [];
  if (!httpOk) parts.push(`HTTP ${httpStatus}`);
  if (overall) parts.push(`status ${overall.word}`);
  if (checks.length) parts.push(`${checks.length - failing.length} of ${checks.length} checks ok`);
  if (failing.length) parts.push(`failing: ${failing.map((c) => `${c.name} (${c.detail})`).join(', ')}`);
  return { ok, checks, detail: parts.join('; ').slice(0, 500) };
}

function checkOf(name: string, value: unknown): HealthCheckDetail {
  // The health+json draft lists observations per check; the check passes only if all of them do.
  if (Array.isArray(value)) {
    const parts = value.map((v, i) => checkOf(`${name}[${i}]`, v));
    const bad = parts.find((p) => !p.ok);
    return { name, ok: parts.length > 0 && !bad, detail: bad ? bad.detail : (parts[0]?.detail ?? 'no observations') };
  }
  const status = statusOf(value);
  if (!status) return { name, ok: false, detail: `unrecognised check: ${JSON.stringify(value)?.slice(0, 80) ?? 'undefined'}` };
  const message = isObject(value) ? firstString(value, ['output', 'message', 'description', 'error', 'detail', 'reason']) : undefined;
  return { name, ok: status.ok, detail: message ? `${status.word}: ${message.slice(0, 200)}` : status.word };
}

function statusOf(value: unknown): { ok: boolean; word: string } | undefined {
  if (typeof value === 'boolean') return { ok: value, word: value ? 'ok' : 'failing' };
  if (typeof value === 'string') return { ok: okWords.has(value.trim().toLowerCase()), word: value };
  if (!isObject(value)) return undefined;
  for (const key of ['status', 'state', 'health']) {
    const v = value[key];
    if (typeof v === 'string' || typeof v === 'boolean') return statusOf(v);
  }
  for (const key of ['healthy', 'ok', 'up', 'pass']) {
    const v = value[key];
    if (typeof v === 'boolean') return { ok: v, word: v ? key : `not ${key}` };
  }
  return undefined;
}

function firstString(obj: Record<string, unknown>, keys: string[]): string | undefined {
  for (const k of keys) {
    const v = obj[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
