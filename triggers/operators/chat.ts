// Approvals from chat: a Slack-compatible interactive endpoint on the operator API's listener
// (POST /chat/slack/interactions). A request changes something only when it is signed with the
// app's signing secret, fresh, not seen before, and pressed by a user the config maps to an
// operator whose role allows it; whatever else arrives gets 401 (or is refused) and an audit line,
// and nothing is signalled. Slack wants an answer within 3 s, so the request is acknowledged as
// soon as it is verified, and the decision's outcome goes to the message through response_url.
import type { ServerResponse } from 'node:http';
import { parseDuration } from '../../config/duration.js';
import { HttpError, utf8 } from '../alerts/webhookHttp.js';
import { ActionError } from './actions.js';
import type { OperatorRoute, RouteContext } from './api.js';
import type { Identity } from './credentials.js';
import { checkTimestamp, parseInteraction, SeenSignatures, verifySignature, type Interaction } from './slackRequests.js';
import { decidedMessage, postResponse, refusedMessage, responseUrlProblem } from './slackResponses.js';

export const slackInteractionsPath = '/chat/slack/interactions';

export interface ChatRouteOptions {
  now?: () => number;
  /** Bound of one post to a response_url. */
  responseTimeoutMs?: number;
  /** Presses being acted on at once; past it a press is refused (429) rather than queued without end. */
  maxInFlight?: number;
}

const auditAction = 'slack interaction';

export function chatRoute(opts: ChatRouteOptions = {}): OperatorRoute {
  const now = opts.now ?? Date.now;
  const responseTimeoutMs = opts.responseTimeoutMs ?? 5_000;
  const maxInFlight = opts.maxInFlight ?? 32;
  let seen: SeenSignatures | undefined;
  let inFlight = 0;

  return {
    matches: (_method, path) => path.startsWith('/chat/'),
    async handle(ctx) {
      const slack = ctx.config.chat.slack;
      if (!slack || ctx.path !== slackInteractionsPath) throw new HttpError(404, `no route ${ctx.path.slice(0, 120)}`);
      if (ctx.req.method !== 'POST') throw new HttpError(405, 'POST only', { Allow: 'POST' });
      const maxAgeMs = parseDuration(slack.maxAge);
      seen ??= new SeenSignatures(maxAgeMs);
      const refuse = (reason: string): never => {
        ctx.audit({ via: 'chat', action: auditAction, result: 'unauthenticated', reason, remote: ctx.remote });
        // Like the API: the sender learns it was refused; why is for the audit log.
        throw new HttpError(401, 'the request is not signed by the configured chat app');
      };

      // The cheap refusals come before the body is read.
      const ts = checkTimestamp(ctx.req.headers['x-slack-request-timestamp'], now(), maxAgeMs);
      if (!ts.ok) refuse(ts.reason);
      if (ctx.req.headers['x-slack-signature'] === undefined) refuse('no X-Slack-Signature');
      const body = await ctx.body();
      const verified = verifySignature(
        { timestamp: ctx.req.headers['x-slack-request-timestamp'], signature: ctx.req.headers['x-slack-signature'], body },
        slack.signingSecret.reveal(),
        now(),
        maxAgeMs,
      );
      if (!verified.ok) return refuse(verified.reason);
      const admitted = seen.admit(verified.signature, verified.timestampMs, now());
      if (admitted === 'replayed') refuse('replayed: this signature was already accepted inside the replay window');
      if (admitted === 'full') {
        ctx.audit({
          via: 'chat',
          action: auditAction,
          result: 'failed',
          reason: `${seen.capacity} signed requests inside the replay window; refusing more`,
          remote: ctx.remote,
        });
        throw new HttpError(429, 'too many chat requests; try again shortly', { 'Retry-After': '30' });
      }

      // Signed by Slack from here on: its content is still bounded and checked.
      const type = String(ctx.req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      if (type !== 'application/x-www-form-urlencoded')
        return invalid(ctx, `content type ${type.slice(0, 60) || 'none'}, expected application/x-www-form-urlencoded`, 415);
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        return invalid(ctx, 'the body is not UTF-8', 400);
      }
      const parsed = parseInteraction(text);
      if (parsed.kind === 'invalid') return invalid(ctx, parsed.reason, 400);
      if (parsed.kind === 'ignored') {
        ctx.logger.debug({ reason: parsed.reason }, 'chat interaction ignored');
        return acknowledge(ctx.res);
      }
      const press = parsed.interaction;
      const responses = { origins: slack.responseOrigins, timeoutMs: responseTimeoutMs };
      const responseProblem = responseUrlProblem(press.responseUrl, slack.responseOrigins);
      if (responseProblem)
        ctx.logger.warn({ chatUser: press.userId, problem: responseProblem }, 'chat interaction: the message will not be updated');

      const operator = ctx.credentials.operatorForChatUser(press.userId);
      if (!operator) {
        ctx.audit({
          via: 'chat',
          action: press.button.action,
          subject: press.button.workflowId,
          result: 'unauthenticated',
          reason: `chat user ${press.userId} is not a configured operator (no chatUserId)`,
          remote: ctx.remote,
        });
        acknowledge(ctx.res);
        if (!responseProblem)
          void reply(
            ctx,
            press,
            refusedMessage(press.button.action, 'your chat user is not mapped to an operator of this engine'),
            responses,
          );
        return;
      }
      if (inFlight >= maxInFlight) {
        ctx.audit({
          operator: operator.name,
          via: 'chat',
          action: press.button.action,
          subject: press.button.workflowId,
          result: 'failed',
          reason: `${maxInFlight} chat decisions already in progress`,
          remote: ctx.remote,
        });
        throw new HttpError(429, 'too many chat decisions in progress; press again shortly', { 'Retry-After': '5' });
      }

      // Within Slack's deadline whatever Temporal is doing: the decision's outcome follows by response_url.
      acknowledge(ctx.res);
      inFlight++;
      const who: Identity = { operator, via: 'chat', credential: 'chat' };
      void decide(ctx, who, press, responseProblem === undefined, responses)
        .catch(() => undefined)
        .finally(() => inFlight--);
    },
  };
}

async function decide(
  ctx: RouteContext,
  who: Identity,
  press: Interaction,
  mayReply: boolean,
  responses: { origins: readonly string[]; timeoutMs: number },
): Promise<void> {
  const { action, workflowId, chain, step } = press.button;
  let message: Record<string, unknown>;
  try {
    // Roles, scopes, audit and the refusal on the timeline are the actions' own (as for the API).
    const about = chain ? { chain, ...(step ? { step } : {}) } : undefined;
    const result = await ctx.actions.decide(who, workflowId, action, '', ctx.remote, about);
    message = decidedMessage(action, result.operator, new Date(), press.messageBlocks);
  } catch (err) {
    if (!(err instanceof ActionError)) ctx.logger.error({ err: String(err).slice(0, 300), workflowId }, 'chat decision failed');
    message = refusedMessage(action, err instanceof ActionError ? err.message : 'the engine could not take it; see its log');
  }
  if (mayReply) await reply(ctx, press, message, responses);
}

async function reply(
  ctx: RouteContext,
  press: Interaction,
  message: Record<string, unknown>,
  responses: { origins: readonly string[]; timeoutMs: number },
): Promise<void> {
  const delivered = await postResponse(press.responseUrl!, message, responses).catch((err: unknown) => ({
    ok: false as const,
    reason: String(err).slice(0, 200),
  }));
  // The response_url is a credential for that message: only its origin is logged.
  if (!delivered.ok)
    ctx.logger.warn(
      { origin: safeOrigin(press.responseUrl), reason: delivered.reason, workflowId: press.button.workflowId },
      'chat message update not delivered',
    );
}

function acknowledge(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Length': '0', 'Cache-Control': 'no-store' }).end();
}

function invalid(ctx: RouteContext, reason: string, status: number): never {
  ctx.audit({ via: 'chat', action: auditAction, result: 'invalid', reason, remote: ctx.remote });
  throw new HttpError(status, reason);
}

function safeOrigin(url: string | undefined): string | undefined {
  return url && URL.canParse(url) ? new URL(url).origin : undefined;
}
