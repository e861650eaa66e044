// Notifications to people: generic webhooks, Slack incoming webhooks, PagerDuty Events API v2, email
// over SMTP (activities/email.ts), and the engine's own log (for local runs and as the channel of last resort).
//
// A page sent twice at 3 a.m. costs trust, so retries must not double-post. Temporal retries the
// whole activity, so each channel's delivery is recorded in the activity's heartbeat details the
// moment it succeeds; the worker reports the last details with a failure, and the next attempt
// skips those channels (reported as "duplicate"). A process killed outright reports nothing: the
// retry has what the server kept, and the SDK holds a later heartbeat back for its throttle interval
// (the worker's defaultHeartbeatThrottleInterval, 1 s: worker/temporal.ts). What remains is that
// second between a receiver accepting a post and its record reaching the server: every request
// carries an Idempotency-Key and PagerDuty groups by dedup_key, so receivers can fold that one.
//
// Webhook URLs and routing keys are credentials: they never appear in results or errors.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Counter } from 'prom-client';
import type { Channel } from '../config/schema.js';
import { redact, redactUrls, Secret } from '../config/secret.js';
import type { NotificationRequest, NotificationResult } from './contract.js';
import { authFailed, badInput, failureTypes, targetNotFound, transient } from './failures.js';
import { activitySignal } from './limits.js';
import { isPageAction, pageBlocks } from './slackPage.js';
import { sendPageMail } from './email.js';

export interface NotifyDeps {
  channels: Record<string, Channel>;
  /** Bound of one post to one channel. */
  timeoutMs: number;
  /** The engine-wide dry run: when set, nothing is posted whatever the request says. */
  dryRun: boolean;
  /** Where "log" channels write; the activity's logger (the worker's runtime logger) when not given. */
  log?: (message: string, fields: Record<string, unknown>) => void;
  /** The engine's notification_failures_total (triggers/metrics/metrics.ts): one per channel per failed attempt. */
  failures?: Pick<Counter<'channel' | 'kind'>, 'inc'>;
}

/**
 * How a delivery to a channel failed, for notification_failures_total: transient (the activity is
 * retried), exhausted (transient, on the activity's last attempt: the channel does not get this
 * notification), permanent (refused for good: a 4xx, credentials, a refused recipient, a bad URL),
 * unknown-channel (the request names a channel the config does not have).
 */
export const notificationFailureKinds = ['transient', 'exhausted', 'permanent', 'unknown-channel'] as const;
export type NotificationFailureKind = (typeof notificationFailureKinds)[number];

/** What survives between attempts, in the heartbeat details. */
interface DeliveryCheckpoint {
  idempotencyKey: string;
  delivered: string[];
}

type Delivery = NotificationResult['delivered'][number];

const events = new Set(['trigger', 'acknowledge', 'resolve']);
const titleChars = 1_000;
const textBytes = 8_192;
const errorTextChars = 300;
const heartbeatEveryMs = 2_000;

export function createNotifyActivities(deps: NotifyDeps) {
  // Every configured channel's series exist from the start at zero, so the first failure after an
  // engine start is an increase Prometheus sees (RemediationPagingFailing).
  for (const [channel, c] of Object.entries(deps.channels))
    if (c.type !== 'log') for (const kind of ['transient', 'exhausted', 'permanent'] as const) deps.failures?.inc({ channel, kind }, 0);
  const count = (channel: string, kind: NotificationFailureKind) => deps.failures?.inc({ channel: channel.slice(0, 63), kind });

  return {
    async notify(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> {
      const what = `notification '${req.idempotencyKey}' of incident '${req.incidentKey}'`;
      if (!events.has(req.event)) throw badInput(what, `event '${req.event}' is not one of trigger, acknowledge, resolve`);
      if (!req.idempotencyKey) throw badInput(what, 'no idempotency key');
      if (req.actions !== undefined && (!Array.isArray(req.actions) || req.actions.length > 3 || !req.actions.every(isPageAction)))
        throw badInput(what, 'actions: expected some of approve, reject, acknowledge');
      if (
        req.about !== undefined &&
        (typeof req.about?.chain !== 'string' ||
          req.about.chain.length > 64 ||
          (req.about.step !== undefined && (typeof req.about.step !== 'string' || req.about.step.length > 41)))
      )
        throw badInput(what, 'about: expected a run chain id and an optional approval step id');

      // A run names its channels when it starts and an incident stays open for hours: a channel
      // renamed or removed from the config since (or an engine on an older config in a rolling
      // deploy) must not stop the pages, acknowledgements and resolves of the channels that still
      // exist. Those are delivered; the unknown ones are reported after, final (no retry adds them).
      const channels = [...new Set(req.channels)];
      const known = channels.filter((c) => Object.prototype.hasOwnProperty.call(deps.channels, c));
      const unknown = channels.filter((c) => !Object.prototype.hasOwnProperty.call(deps.channels, c));
      const notConfigured = unknown.length > 0 ? unknownChannels(what, unknown, known.length === 0, deps.channels) : undefined;

      // A dry run posts and counts nothing; a channel it could not have posted to is still refused.
      if (deps.dryRun || req.dryRun) {
        if (notConfigured) throw notConfigured;
        return { delivered: channels.map((channel) => ({ channel, status: 'dry-run' })) };
      }
      if (notConfigured && known.length === 0) {
        for (const c of unknown) count(c, 'unknown-channel');
        throw notConfigured;
      }

      const earlier = previousDeliveries(req.idempotencyKey);
      const delivered = [...earlier];
      const record = () => checkpoint({ idempotencyKey: req.idempotencyKey, delivered });
      // Also heartbeats while a slow receiver is waited for, always with the full record, so a
      // workflow's heartbeat timeout shorter than timeoutMs does not cut a healthy delivery.
      record();
      const alive = setInterval(record, heartbeatEveryMs);
      const pending = known.filter((c) => !earlier.has(c));
      let results: PromiseSettledResult<void>[];
      try {
        results = await Promise.allSettled(
          pending.map(async (name) => {
            const channel = deps.channels[name]!;
            // A mail is recorded the moment the server takes it, before a refused recipient is reported.
            if (channel.type === 'email') return sendPageMail(name, channel, req, () => (delivered.push(name), record()));
            if (channel.type === 'log') writeToLog(name, req, deps.log);
            else await post(name, channel, req, deps.timeoutMs);
            delivered.push(name);
            record();
          }),
        );
      } finally {
        clearInterval(alive);
      }

      const failures: ApplicationFailure[] = [];
      // A cancelled attempt (the run gave up waiting, the worker shuts down) says nothing of the channels.
      const cancelled = activitySignal()?.aborted === true;
      const last = lastAttempt();
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') return;
        const failure = asFailure(what, r.reason);
        failures.push(failure);
        if (!cancelled) count(pending[i]!, failure.nonRetryable ? 'permanent' : last ? 'exhausted' : 'transient');
      });
      if (notConfigured) {
        if (!cancelled) for (const c of unknown) count(c, 'unknown-channel');
        failures.push(notConfigured);
      }
      if (failures.length > 0) throw combine(what, failures, delivered);
      return {
        delivered: channels.map((channel): Delivery => ({ channel, status: earlier.has(channel) ? 'duplicate' : 'sent' })),
      };
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;

/** Channels a previous attempt of this same activity delivered to. */
function previousDeliveries(idempotencyKey: string): Set<string> {
  let details: unknown;
  try {
    details = Context.current().info.heartbeatDetails;
  } catch {
    return new Set();
  }
  const d = details as Partial<DeliveryCheckpoint> | undefined;
  if (!d || d.idempotencyKey !== idempotencyKey || !Array.isArray(d.delivered)) return new Set();
  return new Set(d.delivered.filter((c): c is string => typeof c === 'string'));
}

/** Whether no retry follows a retryable failure of this attempt (its retry policy's last attempt). */
function lastAttempt(): boolean {
  try {
    const { attempt, retryPolicy } = Context.current().info;
    const max = retryPolicy?.maximumAttempts ?? 0;
    return max > 0 && attempt >= max;
  } catch {
    return false;
  }
}

/**
 * The channels a request names that the config does not have. Alone in the request, it is refused
 * as it always was; beside known channels, it is their failure, reported once those were delivered.
 */
function unknownChannels(what: string, unknown: string[], alone: boolean, configured: Record<string, Channel>): ApplicationFailure {
  const names = unknown.map((c) => `'${c}'`).join(', ');
  const known = Object.keys(configured).join(', ') || 'none';
  if (alone) return badInput(what, `no channel named ${names} in the config (configured: ${known})`);
  return badInput(
    `notification to channel${unknown.length > 1 ? 's' : ''} ${names}`,
    `not in the config (configured: ${known}), so nothing was sent to it; the others were tried regardless`,
  );
}

function checkpoint(details: DeliveryCheckpoint): void {
  try {
    Context.current().heartbeat({ idempotencyKey: details.idempotencyKey, delivered: [...details.delivered] });
  } catch {
    // Outside an activity (a direct call from the CLI or a test) there is no retry to protect.
  }
}

/**
 * Several channels may fail at once. If any failure can get better by waiting, the activity is
 * retried (channels already delivered are skipped); only when every failure is final does it stop.
 */
function combine(what: string, failures: ApplicationFailure[], delivered: string[]): ApplicationFailure {
  const done = delivered.length > 0 ? `; delivered to ${delivered.map((c) => `'${c}'`).join(', ')}` : '';
  const message = `${what} failed: ${failures.map((f) => f.message).join('; ')}${done}`;
  const retryable = failures.some((f) => !f.nonRetryable);
  const type = retryable ? failureTypes.transient : (failures[0]!.type ?? failureTypes.badInput);
  return ApplicationFailure.create({ message, type, nonRetryable: !retryable });
}

function asFailure(what: string, err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  return transient(what, redactUrls(String((err as Error)?.message ?? err)).slice(0, errorTextChars));
}

type PostedChannel = Exclude<Channel, { type: 'log' | 'email' }>;

function writeToLog(name: string, req: NotificationRequest, log: NotifyDeps['log']): void {
  const fields = {
    channel: name,
    event: req.event,
    incidentKey: req.incidentKey,
    idempotencyKey: req.idempotencyKey,
    severity: req.severity,
    text: capHead(req.text, textBytes),
  };
  const message = `notification: ${req.title}`;
  if (log) return log(message, fields);
  try {
    Context.current().log.info(message, fields);
  } catch {
    // Outside an activity and without a logger there is nowhere to write to.
  }
}

async function post(name: string, channel: PostedChannel, req: NotificationRequest, timeoutMs: number): Promise<void> {
  const what = `notification to channel '${name}' (${channel.type})`;
  const secrets = channelSecrets(channel);
  const target = channel.type === 'pagerduty' ? channel.url : channel.url.reveal();
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw badInput(what, 'the configured URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badInput(what, `the configured URL uses ${url.protocol}, not http or https`);

  const cancelled = activitySignal();
  const timeout = AbortSignal.timeout(timeoutMs);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': `${req.idempotencyKey}:${name}`,
        'user-agent': 'remediation-engine',
      },
      body: JSON.stringify(payload(channel, req)),
      // A redirect could lead anywhere; receivers that move must be reconfigured.
      redirect: 'manual',
      signal: cancelled ? AbortSignal.any([timeout, cancelled]) : timeout,
    });
    text = await res.text();
  } catch (err) {
    if (cancelled?.aborted) throw cancelled.reason;
    if (timeout.aborted) throw transient(what, `no answer within ${timeoutMs} ms`);
    throw transient(what, redactUrls(redact(networkProblem(err), secrets)));
  }
  if (res.status >= 200 && res.status < 300) return;

  // A receiver's error page may quote the request (its URL and query, with the token).
  // Scrubbed whole before it is cut: a secret across the cut would otherwise keep its first half.
  const said = `the receiver answered ${res.status}: ${errorText(redactUrls(redact(text.slice(0, 65_536), secrets)))}`;
  if (res.status >= 500 || res.status === 408 || res.status === 429) throw transient(what, said);
  if (res.status === 401 || res.status === 403) throw authFailed(what, said);
  if (res.status === 404 || res.status === 410) throw targetNotFound(what, said);
  throw badInput(what, said);
}

function payload(channel: PostedChannel, req: NotificationRequest): unknown {
  const title = req.title.length > titleChars ? `${req.title.slice(0, titleChars)}…` : req.title;
  const text = capHead(req.text, textBytes);
  switch (channel.type) {
    case 'webhook':
      return {
        incidentKey: req.incidentKey,
        idempotencyKey: req.idempotencyKey,
        event: req.event,
        severity: req.severity,
        title,
        text,
        sentAt: new Date().toISOString(),
      };
    case 'slack': {
      // The title is one bold line: a newline from a label would end the bold and start a forged line.
      const boldTitle = slackEscape(title.replace(/\s*[\r\n]+\s*/g, ' '));
      // Slack has no incident to acknowledge or resolve: those arrive as messages marked as such.
      const plain = { text: `${slackMarks[req.event]}*${boldTitle}*\n${slackEscape(text)}` };
      // A page that asks something (approve, reject, acknowledge) carries buttons; `text` stays as
      // the notification's fallback.
      if (req.event !== 'trigger' || !req.actions?.length) return plain;
      return { ...plain, blocks: pageBlocks(boldTitle, slackEscape(text), req.incidentKey, req.actions, req.about) };
    }
    case 'pagerduty': {
      const base = { routing_key: channel.routingKey.reveal(), event_action: req.event, dedup_key: pagerDutyDedupKey(req) };
      if (req.event !== 'trigger') return base;
      return {
        ...base,
        payload: {
          summary: title.slice(0, 1_024),
          source: 'remediation-engine',
          severity: pagerDutySeverity(req.severity),
          custom_details: { text },
        },
      };
    }
  }
}

/** One PagerDuty alert per incident, not per workflow id (see NotificationRequest.incidentRun); PagerDuty allows 255 characters. */
export function pagerDutyDedupKey(req: Pick<NotificationRequest, 'incidentKey' | 'incidentRun'>): string {
  return (req.incidentRun ? `${req.incidentKey}:${req.incidentRun}` : req.incidentKey).slice(0, 255);
}

const slackMarks: Record<NotificationRequest['event'], string> = { trigger: '', acknowledge: ':eyes: ', resolve: ':white_check_mark: ' };

/**
 * PagerDuty accepts exactly critical, error, warning and info. Alert severities come from labels
 * and vary by team; an unrecognised one pages as "error", erring towards being seen.
 */
export function pagerDutySeverity(severity: string): 'critical' | 'error' | 'warning' | 'info' {
  const s = severity.trim().toLowerCase();
  if (['critical', 'crit', 'page', 'emergency', 'fatal', 'disaster', 'p1', 'sev1'].includes(s)) return 'critical';
  if (['error', 'err', 'high', 'major', 'p2', 'sev2'].includes(s)) return 'error';
  if (['warning', 'warn', 'medium', 'minor', 'p3', 'sev3'].includes(s)) return 'warning';
  if (['info', 'informational', 'low', 'none', 'notice', 'p4', 'p5', 'sev4', 'sev5'].includes(s)) return 'info';
  return 'error';
}

/**
 * Text from alerts (labels, annotations) is shown in Slack as typed, never as Slack markup:
 * - &, < and > are escaped, so `<!channel>`, `<@U123>`, `<!subteam^S1>` and `<https://x|click>`
 *   stay text (https://api.slack.com/reference/surfaces/formatting#escaping);
 * - bare @here, @channel and @everyone get a word joiner after the "@", so that a receiver or
 *   workspace that still links names (link_names) cannot turn them into a notification of everyone;
 * - terminal and other control characters are dropped.
 */
export function slackEscape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/@(here|channel|everyone)\b/gi, '@\u2060$1');
}

/**
 * The URL is the credential of a webhook (Slack's carries its token in the path), so its path
 * is scrubbed too, in case a receiver echoes the request line.
 */
function channelSecrets(channel: PostedChannel): Secret[] {
  const secrets: Secret[] = [];
  if (channel.type === 'pagerduty') secrets.push(channel.routingKey);
  else {
    secrets.push(channel.url);
    try {
      const u = new URL(channel.url.reveal());
      const path = `${u.pathname}${u.search}`;
      if (path.length > 1) secrets.push(Secret.of(path));
    } catch {
      // Not a URL: refused before anything is sent.
    }
  }
  return secrets;
}

function errorText(text: string): string {
  const out = text.replace(/\s+/g, ' ').trim();
  return out.length > errorTextChars ? `${out.slice(0, errorTextChars)}…` : out || '(empty body)';
}

function networkProblem(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause;
  if (cause?.code) return `${cause.message ?? cause.code} (${cause.code})`;
  return String(cause?.message ?? e?.message ?? err)
    .split('\n')[0]!
    .slice(0, errorTextChars);
}

/** Notifications are read from the top: keep the head. */
function capHead(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  return `${buf
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')}\n[... ${buf.length - maxBytes} bytes cut]`;
}
