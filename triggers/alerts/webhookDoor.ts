// The webhook's door: what happens to a request before any alert is decided. The sender is
// authorised before its body is read, the body is bounded, decoded, parsed and checked field by
// field (alertmanagerPayload.ts), a large batch in time slices (slices.ts), and every refusal is
// answered with a status and a reason and logged. What the door hands on (a checked batch) is taken
// by whoever runs it: the engine's own event loop (alertmanager.ts), or the webhook's thread
// (webhookThread.ts), which spools it and answers without waiting for the engine's loop.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { describePayloadError, parseWebhookPayload, type InvalidAlert, type WebhookAlert } from './alertmanagerPayload.js';
import type { AcceptanceGate } from './acceptanceFirst.js';
import type { TimeSlices } from './slices.js';
import { SpoolFullError, type Spool, type SpoolEntry, type SpoolLimits } from './spool.js';
import { HttpError, readBody, requestPath, send, utf8 } from './webhookHttp.js';

export type DoorLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** What the door counts (the engine's metrics, or messages to them from the thread). */
export interface DoorCounts {
  received(status: string): void;
  invalid(alerts: number): void;
  spoolRefused(reason: SpoolFullError['reason']): void;
  /** A request to the webhook path began; the function returned ends it with its answer's code. */
  request(): (code: string) => void;
}

/** A batch the door let through: its alerts checked, those left out named. */
export interface CheckedBatch {
  alerts: WebhookAlert[];
  truncatedAlerts: number;
  /** Present when alerts were left out of the batch (the answer names the first five). */
  invalid?: { invalid: number; invalidAlerts: InvalidAlert[] };
}

export interface Door {
  /** sha256 of the webhook's bearer token: the token itself is not needed to check one. */
  tokenDigest: Uint8Array;
  maxBodyBytes: number;
  logger: DoorLogger;
  counts: DoorCounts;
  slices: TimeSlices;
  /** Told when an authorised batch arrives and when it is answered (acceptanceFirst.ts). */
  acceptance?: Pick<AcceptanceGate, 'arrived' | 'answered'>;
  /** Takes a checked batch; resolves to the answer's body, or throws an HttpError. */
  take(batch: CheckedBatch, res: ServerResponse): Promise<object>;
  /** Answers every other path (health, readiness, metrics, 404). */
  other(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

export const webhookPaths = ['/alertmanager', '/'];

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** An HTTP server that answers through the door. */
export function doorServer(door: Door): Server {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    void route(door, req, res).catch((err: unknown) => {
      door.logger.error({ err: errorText(err) }, 'webhook request failed unexpectedly');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    });
  };
  const server = createServer(handle);
  // Expect: 100-continue is answered once the sender is authorised (Node would send the 100 at
  // once, inviting an unauthenticated body).
  server.on('checkContinue', handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  return server;
}

async function route(door: Door, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = requestPath(req.url);
  if (path === undefined) return send(res, 400, { error: 'the request target is not a URL path' });
  if (!webhookPaths.includes(path)) return door.other(req, res, path);
  if (req.method !== 'POST') return send(res, 405, { error: `use POST on ${path}` }, { Allow: 'POST' });
  const stopTimer = door.counts.request();
  // To the end of the exchange: a sender that hung up before its answer counts as 499, as nginx
  // logs it (on 'finish' alone it was not counted at all).
  res.once('close', () => stopTimer(res.writableFinished ? String(res.statusCode) : '499'));
  // Only an authorised batch counts as an arrival: a flood of requests without the token must not
  // hold back the forwarding of accepted alerts (acceptanceFirst.ts).
  let arrived = false;
  try {
    authorize(door, req);
    arrived = true;
    door.acceptance?.arrived();
    const batch = await check(door, req, res);
    send(res, 200, await door.take(batch, res));
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    // Refusals are logged (without the body or any header value) so a misconfigured Alertmanager,
    // or someone probing the endpoint, shows up in the engine's log.
    const where = { status: err.status, error: err.message, remote: req.socket.remoteAddress };
    if (err.status >= 500) door.logger.warn(where, 'webhook batch not accepted; Alertmanager will retry');
    else door.logger.warn(where, 'webhook request refused');
    send(res, err.status, { error: err.message }, err.headers);
  } finally {
    if (arrived) door.acceptance?.answered();
  }
}

function authorize(door: Door, req: IncomingMessage): void {
  // Node keeps the first of repeated Authorization headers; a proxy in front may keep the last.
  // Two credentials are ambiguous, so neither is trusted.
  if ((req.headersDistinct.authorization?.length ?? 0) > 1) throw new HttpError(400, 'more than one Authorization header');
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // Comparing fixed-length digests keeps the comparison constant-time whatever the token length.
  if (!m || !timingSafeEqual(tokenDigest(m[1]!), door.tokenDigest)) {
    throw new HttpError(401, m ? 'invalid bearer token' : 'missing bearer token (Authorization: Bearer <token>)', {
      'WWW-Authenticate': 'Bearer realm="remediation"',
    });
  }
}

/** Reads and checks an authorised sender's batch (before a byte of it is read, the sender was authorised). */
async function check(door: Door, req: IncomingMessage, res: ServerResponse): Promise<CheckedBatch> {
  const { logger, slices } = door;
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json')
    throw new HttpError(
      400,
      `expected Content-Type application/json, got ${contentType ? JSON.stringify(contentType.slice(0, 60)) : 'none'}`,
    );
  const body = await readBody(req, res, door.maxBodyBytes, 'webhook.maxBodyBytes');
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HttpError(400, 'body is not valid UTF-8, which JSON must be');
  }
  await slices.turn();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message.slice(0, 120)}`);
  }
  await slices.turn();
  const parsed = await parseWebhookPayload(raw, slices.turn);
  if (!parsed.success) throw new HttpError(400, describePayloadError(parsed.error));
  const payload = parsed.data;
  if (payload.truncatedAlerts > 0)
    logger.warn(
      { groupKey: payload.groupKey.slice(0, 200), truncatedAlerts: payload.truncatedAlerts },
      'Alertmanager truncated alerts from this group; raise max_alerts on the receiver',
    );
  for (const alert of payload.alerts) door.counts.received(alert.status);
  // Left out, named, and counted; the rest of the batch is taken (a 400 would lose it all).
  const left = payload.invalidAlerts;
  if (left.length > 0) {
    door.counts.invalid(left.length);
    logger.warn(
      { invalid: left.length, first: left.slice(0, 5), taken: payload.alerts.length, remote: req.socket.remoteAddress },
      'alerts left out of a batch: their labels or fingerprint break the webhook bounds; the rest was taken',
    );
  }
  return {
    alerts: payload.alerts,
    truncatedAlerts: payload.truncatedAlerts,
    ...(left.length > 0 ? { invalid: { invalid: left.length, invalidAlerts: left.slice(0, 5) } } : {}),
  };
}

/**
 * Writes a checked batch to the spool (fsynced) and gives the answer that says so. A batch past the
 * spool's limits, or one the disk did not take, is a 503: Alertmanager keeps it and retries.
 */
export async function spoolBatch(
  spool: Spool,
  batch: CheckedBatch,
  limits: SpoolLimits,
  counts: Pick<DoorCounts, 'spoolRefused'>,
): Promise<{ entry: SpoolEntry; answer: object }> {
  let entry: SpoolEntry;
  try {
    entry = await spool.append(batch.alerts, limits);
  } catch (err) {
    if (err instanceof SpoolFullError) {
      counts.spoolRefused(err.reason);
      throw new HttpError(503, `${err.message}; try again later`, { 'Retry-After': '30' });
    }
    throw new HttpError(503, `could not write the alerts to the spool: ${errorText(err)}`, { 'Retry-After': '10' });
  }
  return { entry, answer: { status: 'queued', alerts: batch.alerts.length, truncatedAlerts: batch.truncatedAlerts, ...batch.invalid } };
}

export function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${msg}${cause}`.slice(0, 500);
}
