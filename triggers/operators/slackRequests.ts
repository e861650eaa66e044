// A Slack interactive request, checked the way Slack documents it
// (https://api.slack.com/authentication/verifying-requests-from-slack): the signature is
// "v0=" + hex HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp + ":" + raw body),
// compared in constant time; a timestamp outside the replay window is refused, and so is a second
// request with a signature already seen inside it. Only then is the body parsed, and every field
// the engine uses is bounded.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseButton, type PageButton } from '../../activities/slackPage.js';

export type Verification = { ok: true; signature: string; timestampMs: number } | { ok: false; reason: string };

export interface SignedRequest {
  timestamp: string | string[] | undefined;
  signature: string | string[] | undefined;
  body: Buffer;
}

const signaturePattern = /^v0=[0-9a-f]{64}$/;
const timestampPattern = /^\d{1,12}$/;

/** Checks the timestamp alone: done before the body is read, so a stale request costs nothing. */
export function checkTimestamp(
  timestamp: SignedRequest['timestamp'],
  nowMs: number,
  maxAgeMs: number,
): { ok: true; ms: number } | { ok: false; reason: string } {
  if (timestamp === undefined) return { ok: false, reason: 'no X-Slack-Request-Timestamp' };
  if (typeof timestamp !== 'string' || !timestampPattern.test(timestamp))
    return { ok: false, reason: 'X-Slack-Request-Timestamp is not a number of seconds' };
  const ms = Number(timestamp) * 1_000;
  // Either side: a clock far ahead is as suspect as a request from the past.
  if (Math.abs(nowMs - ms) > maxAgeMs)
    return { ok: false, reason: `timestamp ${timestamp} is ${Math.round((nowMs - ms) / 1_000)} s from now, outside chat.slack.maxAge` };
  return { ok: true, ms };
}

export function verifySignature(req: SignedRequest, secret: string, nowMs: number, maxAgeMs: number): Verification {
  const ts = checkTimestamp(req.timestamp, nowMs, maxAgeMs);
  if (!ts.ok) return ts;
  const given = req.signature;
  if (given === undefined) return { ok: false, reason: 'no X-Slack-Signature' };
  if (typeof given !== 'string' || !signaturePattern.test(given))
    return { ok: false, reason: 'X-Slack-Signature is not "v0=" and 64 hex digits' };
  const expected = createHmac('sha256', secret)
    .update(`v0:${req.timestamp as string}:`)
    .update(req.body)
    .digest();
  if (!timingSafeEqual(expected, Buffer.from(given.slice(3), 'hex')))
    return { ok: false, reason: 'signature does not match (forged, altered, or another signing secret)' };
  return { ok: true, signature: given, timestampMs: ts.ms };
}

/**
 * Signatures accepted inside the replay window. A signature names one timestamp and one body, so a
 * second request with it is a replay. Entries leave when their request would be stale anyway; when
 * the set is full of live entries the request is refused rather than an entry forgotten early
 * (forgetting would reopen a replay). Only correctly signed requests get in, so filling it takes
 * the signing secret.
 */
export class SeenSignatures {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxAgeMs: number,
    readonly capacity = 10_000,
  ) {}

  /** 'fresh' (and now remembered), 'replayed', or 'full'. */
  admit(signature: string, timestampMs: number, nowMs: number): 'fresh' | 'replayed' | 'full' {
    if (this.seen.has(signature)) return 'replayed';
    this.prune(nowMs);
    if (this.seen.size >= this.capacity) return 'full';
    this.seen.set(signature, timestampMs + this.maxAgeMs);
    return 'fresh';
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowMs: number): void {
    for (const [signature, expires] of this.seen) if (expires < nowMs) this.seen.delete(signature);
  }
}

/** A button press on one of the engine's pages, as far as the engine uses it. */
export interface Interaction {
  userId: string;
  /** Shown in our own log lines only; never used to decide anything. */
  userName: string;
  button: PageButton;
  /** Where Slack takes the message update; checked against chat.slack.responseOrigins before use. */
  responseUrl?: string;
  /** The message the button was on, to be shown again without its buttons; absent when unusable. */
  messageBlocks?: unknown[];
}

export type ParsedInteraction =
  { kind: 'press'; interaction: Interaction } | { kind: 'ignored'; reason: string } | { kind: 'invalid'; reason: string };

const userIdPattern = /^[A-Z0-9]{2,32}$/;
const maxResponseUrlChars = 2_048;
const maxBlocks = 50;
const maxBlocksJsonChars = 16_384;

/** Parses the form body's `payload` (block_actions). Other interaction types are ignored, not refused. */
export function parseInteraction(body: string): ParsedInteraction {
  const form = new URLSearchParams(body);
  const raw = form.get('payload');
  if (raw === null) return { kind: 'invalid', reason: 'no payload field in the form body' };
  let payload: unknown;
  try {
    payload = JSON.parse(raw);
  } catch {
    return { kind: 'invalid', reason: 'payload is not JSON' };
  }
  if (!isObject(payload)) return { kind: 'invalid', reason: 'payload is not a JSON object' };
  if (payload.type !== 'block_actions')
    return { kind: 'ignored', reason: `interaction type ${JSON.stringify(String(payload.type).slice(0, 40))}` };
  const user = payload.user;
  if (!isObject(user) || typeof user.id !== 'string' || !userIdPattern.test(user.id))
    return { kind: 'invalid', reason: 'user.id: expected a Slack user id' };
  const actions = payload.actions;
  // A button press carries exactly one action.
  if (!Array.isArray(actions) || actions.length !== 1 || !isObject(actions[0]))
    return { kind: 'invalid', reason: 'actions: expected exactly one action' };
  const action = actions[0];
  if (typeof action.action_id !== 'string' || !action.action_id.startsWith('remediate_'))
    return { kind: 'ignored', reason: `action ${JSON.stringify(String(action.action_id).slice(0, 40))} is not one of the engine's` };
  const button = parseButton(action.action_id, action.value);
  if (!button)
    return {
      kind: 'invalid',
      reason: `action ${action.action_id.slice(0, 40)}: the value is not "<action>:<workflow id>" for that action`,
    };

  const interaction: Interaction = {
    userId: user.id,
    userName: typeof user.username === 'string' ? user.username.slice(0, 64) : '',
    button,
  };
  if (typeof payload.response_url === 'string' && payload.response_url.length <= maxResponseUrlChars)
    interaction.responseUrl = payload.response_url;
  const message = payload.message;
  if (
    isObject(message) &&
    Array.isArray(message.blocks) &&
    message.blocks.length <= maxBlocks &&
    JSON.stringify(message.blocks).length <= maxBlocksJsonChars
  )
    interaction.messageBlocks = message.blocks.filter(isObject);
  return { kind: 'press', interaction };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
