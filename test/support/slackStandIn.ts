// Stands in for Slack on the other side of the engine's chat door: it signs interactive requests
// exactly as Slack documents (https://api.slack.com/authentication/verifying-requests-from-slack),
// "v0=" + hex HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + body), with the body a form
// whose `payload` field is the block_actions JSON. It can also get the signing wrong on purpose.
import { createHmac } from 'node:crypto';

export interface SlackButton {
  action_id: string;
  value: string;
  block_id?: string;
}

export interface PressOptions {
  secret: string;
  user: { id: string; username?: string };
  button: SlackButton;
  responseUrl: string;
  /** The message the button was on (as posted to the channel). */
  message?: { blocks?: unknown[]; text?: string };
  /** Seconds since the epoch; now when unset. */
  timestamp?: number;
  /** 'omit' sends no signature headers at all; a string replaces the signature. */
  signature?: 'omit' | string;
}

export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

export function slackSignature(secret: string, timestamp: string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export function blockActionsPayload(opts: Pick<PressOptions, 'user' | 'button' | 'responseUrl' | 'message'>): Record<string, unknown> {
  return {
    type: 'block_actions',
    team: { id: 'T0STANDIN', domain: 'standin' },
    user: { id: opts.user.id, username: opts.user.username ?? opts.user.id.toLowerCase(), team_id: 'T0STANDIN' },
    api_app_id: 'A0STANDIN',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0STANDIN', is_ephemeral: false },
    trigger_id: '1.2.3',
    channel: { id: 'C0STANDIN', name: 'ops' },
    message: { type: 'message', ts: '1700000000.000100', ...(opts.message ?? {}) },
    response_url: opts.responseUrl,
    actions: [
      {
        type: 'button',
        block_id: opts.button.block_id ?? 'remediate_actions',
        action_id: opts.button.action_id,
        value: opts.button.value,
        action_ts: '1700000001.000200',
      },
    ],
  };
}

/** The signed request Slack would send for this button press. */
export function signedPress(opts: PressOptions): SignedRequest {
  const body = new URLSearchParams({ payload: JSON.stringify(blockActionsPayload(opts)) }).toString();
  return signedForm(opts.secret, body, opts.timestamp, opts.signature);
}

export function signedForm(secret: string, body: string, timestamp?: number, signature?: 'omit' | string): SignedRequest {
  const ts = String(timestamp ?? Math.floor(Date.now() / 1_000));
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded',
    'User-Agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  };
  if (signature !== 'omit') {
    headers['X-Slack-Request-Timestamp'] = ts;
    headers['X-Slack-Signature'] = signature ?? slackSignature(secret, ts, body);
  }
  return { body, headers };
}

/** Sends it to the engine's interactions URL; how long the answer took is what Slack's 3 s deadline measures. */
export async function deliver(url: string, req: SignedRequest): Promise<{ status: number; text: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - started };
}

/** The buttons of a message the engine posted to a Slack channel. */
export function buttonsOf(message: unknown): SlackButton[] {
  const blocks =
    (
      message as {
        blocks?: Array<{ type: string; block_id?: string; elements?: Array<{ type: string; action_id: string; value: string }> }>;
      }
    ).blocks ?? [];
  return blocks
    .filter((b) => b.type === 'actions')
    .flatMap((b) =>
      (b.elements ?? [])
        .filter((e) => e.type === 'button')
        .map((e) => ({ action_id: e.action_id, value: e.value, ...(b.block_id ? { block_id: b.block_id } : {}) })),
    );
}
