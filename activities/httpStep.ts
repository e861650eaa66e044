// A runbook's `http` step: one request to a URL whose origin the config already names (a target's
// health, detailed health or action URL), with header secrets resolved here, by name, and nowhere else.
//
// Reads (GET, HEAD) are sent even in a dry run, since they change nothing; writes are only described.
// A status the step did not expect is an answer (ok: false) for the runbook to judge; a 5xx or a
// connection that failed is thrown as retryable, so Temporal asks again. Secret values never leave:
// they are scrubbed from the body returned and from every message.
import type { Logger } from 'pino';
import { configuredOrigins } from '../config/runbookReferences.js';
import type { EngineConfig } from '../config/schema.js';
import { redact, type Secret } from '../config/secret.js';
import { resolveHeaders as resolveNamed } from './requestHeaders.js';
import type { HttpStepRequest, HttpStepResult } from './contract.js';
import { badInput, transient } from './failures.js';
import { checkTimeout, parseUrl, readStart, shown, unreachable } from './http.js';
import { activitySignal } from './limits.js';
import { configSecrets } from './redaction.js';

const methods = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
const reads = new Set<string>(['GET', 'HEAD']);
/** Read more than is kept, so that a secret straddling the kept part is still seen whole and scrubbed. */
const readBytes = 8_192;
const bodyChars = 4_000;
const cutMarker = '\n[... cut]';

export interface HttpStepDeps {
  config: EngineConfig;
  logger: Logger;
}

export function createHttpStep(deps: HttpStepDeps): { httpRequest(req: HttpStepRequest): Promise<HttpStepResult> } {
  const { config, logger } = deps;
  const origins = configuredOrigins(config);
  const secrets = configSecrets(config);

  function resolveHeaders(what: string, given: HttpStepRequest['headers']): Record<string, string> {
    return { 'user-agent': 'remediation-engine', ...resolveNamed(what, given, config.secrets) };
  }

  function audit(req: HttpStepRequest, url: URL, dryRun: boolean, summary: string, status?: number): void {
    logger.info(
      { action: 'http', method: req.method, url: shown(url), status, incident: req.incidentId, actor: req.actor, dryRun },
      summary,
    );
  }

  async function send(what: string, req: HttpStepRequest, url: URL, headers: Record<string, string>): Promise<HttpStepResult> {
    const cancelled = activitySignal();
    const timeout = AbortSignal.timeout(req.timeoutMs);
    const signal = cancelled ? AbortSignal.any([timeout, cancelled]) : timeout;
    let res: Response;
    try {
      // Redirects are answers, never followed: the request goes only where the runbook says.
      res = await fetch(url, { method: req.method, headers, body: req.body, redirect: 'manual', signal });
    } catch (err) {
      if (cancelled?.aborted) throw cancelled.reason ?? err;
      throw transient(what, redact(unreachable(err, req.timeoutMs), secrets));
    }
    let read: { text: string; cut: boolean };
    try {
      read = await readStart(res, readBytes);
    } catch (err) {
      if (cancelled?.aborted) throw cancelled.reason ?? err;
      throw transient(what, `response body could not be read: ${redact(unreachable(err, req.timeoutMs), secrets)}`);
    }
    const body = capBody(read.text, read.cut, secrets);
    if (res.status >= 500) {
      const snippet = body ? `: ${body.slice(0, 200).replace(/\s+/g, ' ').trim()}` : '';
      throw transient(what, `server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${snippet}`);
    }
    return { status: res.status, ok: req.expectStatus.includes(res.status), body, dryRun: false };
  }

  async function httpRequest(req: HttpStepRequest): Promise<HttpStepResult> {
    const method = String(req?.method ?? '');
    const url = parseUrl('http step', req?.url);
    const what = `${method || 'HTTP'} to '${shown(url)}'`;
    if (!methods.has(method)) throw badInput(what, `method must be one of ${[...methods].join(', ')}`);
    if (url.username || url.password)
      throw badInput(what, "credentials in the URL are not allowed; send them in a header from the config's secrets");
    if (!origins.has(url.origin)) {
      throw badInput(
        what,
        `${url.origin} is not the origin of any target's health or action URL in the config (known: ${[...origins].join(', ') || 'none'})`,
      );
    }
    checkTimeout(what, req.timeoutMs);
    if (
      !Array.isArray(req.expectStatus) ||
      req.expectStatus.length === 0 ||
      !req.expectStatus.every((s) => Number.isInteger(s) && s >= 100 && s <= 599)
    ) {
      throw badInput(what, 'expectStatus must list HTTP statuses');
    }
    const write = !reads.has(method);
    if (req.body !== undefined && (!write || typeof req.body !== 'string'))
      throw badInput(what, write ? 'the body must be text' : `a ${method} has no body`);
    const headers = resolveHeaders(what, req.headers);
    const dryRun = Boolean(req.dryRun || config.dryRun);

    if (!write) return send(what, req, url, headers);
    if (dryRun) {
      const summary = `would ${method} ${shown(url)}`;
      audit(req, url, true, summary);
      return { status: 0, ok: true, body: `dry-run: ${summary}`, dryRun: true };
    }
    try {
      const result = await send(what, req, url, headers);
      audit(req, url, false, `${method} ${shown(url)} → ${result.status}`, result.status);
      return result;
    } catch (err) {
      // A write that failed may still have landed: the audit log says it was tried.
      audit(req, url, false, `${method} ${shown(url)} failed: ${(err as Error).message}`);
      throw err;
    }
  }

  return { httpRequest };
}

/** At most bodyChars of the body's start, secrets scrubbed before it is cut. */
function capBody(text: string, cut: boolean, secrets: Secret[]): string {
  // When the read stopped mid-body, a secret may begin right at the end with its rest unread:
  // what could be such a beginning is dropped, so that no part of a secret is ever kept.
  const longest = secrets.reduce((n, s) => Math.max(n, s.reveal().length), 0);
  const whole = cut && longest > 1 ? text.slice(0, Math.max(0, text.length - (longest - 1))) : text;
  const scrubbed = redact(whole, secrets);
  if (!cut && scrubbed.length <= bodyChars) return scrubbed;
  return `${scrubbed.slice(0, bodyChars - cutMarker.length).replace(/[\uD800-\uDBFF]$/, '')}${cutMarker}`;
}
