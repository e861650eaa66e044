// The chat door on a real operator API listener, with Temporal replaced by a recorder that fails the
// test if anything reaches it: every request that is not correctly signed, fresh and new is a 401
// and an audit line and touches nothing; a press by an unmapped user is refused and told why. The
// decisions themselves, against a running engine, are in test/e2e/chatApprovals.e2e.test.ts.
import { decidedMessage } from '../../triggers/operators/slackResponses.js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandError, type Temporal } from '../../triggers/operators/operatorTemporal.js';
import { createOperatorApi, type OperatorApi } from '../../triggers/operators/api.js';
import { chatRoute } from '../../triggers/operators/chat.js';
import { SeenSignatures, verifySignature } from '../../triggers/operators/slackRequests.js';
import { postResponse } from '../../triggers/operators/slackResponses.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { deliver, signedForm, signedPress, slackSignature, type PressOptions } from '../support/slackStandIn.js';
import { triggerConfig } from './support/config.js';

const secret = 'slack-signing-secret-under-test';
const workflowId = 'incident:databaseConnection:orders-db';
const temporalCalls: string[] = [];
const logLines: string[] = [];
let api: OperatorApi;
let url: string;
let receiver: Receiver;
let elsewhere: Receiver;

/** Any use of Temporal is a signal or a query the door should not have made. */
const temporal: Temporal = {
  address: 'nowhere:0',
  client: new Proxy({}, { get: (_t, p) => (temporalCalls.push(`client.${String(p)}`), undefined) }) as Temporal['client'],
  call: async () => {
    temporalCalls.push('call');
    throw new Error('Temporal must not be reached');
  },
  close: async () => undefined,
};

const audits = () =>
  logLines
    .map(
      (l) =>
        JSON.parse(l) as { audit?: { operator?: string; via: string; action: string; result: string; reason?: string; subject?: string } },
    )
    .flatMap((l) => (l.audit ? [l.audit] : []));

const press = (overrides: Partial<PressOptions> = {}) =>
  signedPress({
    secret,
    user: { id: 'U0ALICE' },
    button: { action_id: 'remediate_approve', value: `approve:${workflowId}` },
    responseUrl: `${receiver.url}/actions/T0/1/xyz`,
    ...overrides,
  });

beforeAll(async () => {
  [receiver, elsewhere] = await Promise.all([startReceiver(), startReceiver()]);
  const { config } = triggerConfig({
    taskQueue: 'chat-door-unused',
    extra: {
      operators: [{ name: 'alice', role: 'operator', chatUserId: 'U0ALICE' }],
      api: { listen: '127.0.0.1:0', maxBodyBytes: 16_384 },
      chat: { slack: { signingSecret: secret, maxAge: '5m', responseOrigins: [receiver.url] } },
    },
  });
  api = createOperatorApi({ config, temporal, logger: pino({ level: 'debug' }, { write: (l: string) => void logLines.push(l) }) });
  url = `${(await api.listen()).url}/chat/slack/interactions`;
});

afterEach(() => {
  receiver.reset();
  elsewhere.reset();
});

afterAll(async () => {
  await api?.close();
  await Promise.all([receiver?.close(), elsewhere?.close()]);
});

describe('the chat door refuses what Slack did not sign', () => {
  it('answers 401 to unsigned, forged, altered, stale, future and replayed requests, audits each, and reaches nothing', async () => {
    const before = audits().length;
    const now = Math.floor(Date.now() / 1_000);
    const good = press();
    const altered = { ...good, body: good.body.replace('approve%3A', 'reject%3A').replace('remediate_approve', 'remediate_reject') };
    const cases: Array<[string, ReturnType<typeof press>]> = [
      ['unsigned', press({ signature: 'omit' })],
      [
        'wrong secret',
        signedPress({
          secret: 'another-app',
          user: { id: 'U0ALICE' },
          button: { action_id: 'remediate_approve', value: `approve:${workflowId}` },
          responseUrl: `${receiver.url}/x`,
        }),
      ],
      ['not hex', press({ signature: `v0=${'z'.repeat(64)}` })],
      ['altered body', altered],
      ['stale', press({ timestamp: now - 310 })],
      // Well past the 300 s edge: the clock moves while the cases are sent (the edges are tested below).
      ['from the future', press({ timestamp: now + 310 })],
    ];
    for (const [what, req] of cases) {
      const r = await deliver(url, req);
      expect(r.status, what).toBe(401);
      expect(JSON.parse(r.text), what).toEqual({ error: 'the request is not signed by the configured chat app' });
    }
    // The same signed request twice: the first is taken (here: an unmapped user, told so), the second is a replay.
    const once = press({ user: { id: 'U0NOBODY' } });
    expect((await deliver(url, once)).status).toBe(200);
    expect((await deliver(url, once)).status).toBe(401);

    const reasons = audits()
      .slice(before)
      .filter((a) => a.result === 'unauthenticated')
      .map((a) => a.reason);
    expect(reasons).toEqual([
      'no X-Slack-Request-Timestamp',
      'signature does not match (forged, altered, or another signing secret)',
      'X-Slack-Signature is not "v0=" and 64 hex digits',
      'signature does not match (forged, altered, or another signing secret)',
      expect.stringMatching(/^timestamp \d+ is 31\d s from now, outside chat.slack.maxAge$/),
      expect.stringMatching(/^timestamp \d+ is -(30\d|310) s from now, outside chat.slack.maxAge$/),
      'chat user U0NOBODY is not a configured operator (no chatUserId)',
      'replayed: this signature was already accepted inside the replay window',
    ]);
    expect(
      audits()
        .slice(before)
        .every((a) => a.via === 'chat' && a.operator === undefined),
    ).toBe(true);
    expect(temporalCalls).toEqual([]);
    expect(logLines.join('\n')).not.toContain(secret);
  });

  it('tells an unmapped user, on the message only they see, that they are not an operator', async () => {
    const r = await deliver(url, press({ user: { id: 'U0MALLORY' } }));
    expect(r).toMatchObject({ status: 200, text: '' });
    const [update] = await receiver.waitFor('/actions/T0/1/xyz', 1);
    expect(update!.body).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: ':warning: Your approve was not taken: your chat user is not mapped to an operator of this engine',
    });
    expect(temporalCalls).toEqual([]);
  });

  it('posts nothing to a response_url on an origin the config does not name', async () => {
    const r = await deliver(url, press({ user: { id: 'U0MALLORY' }, responseUrl: `${elsewhere.url}/steal` }));
    expect(r.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(elsewhere.requests).toEqual([]);
    expect(logLines.some((l) => l.includes('is not in chat.slack.responseOrigins'))).toBe(true);
  });

  it('refuses a signed request that is not a well-formed button press of the engine, and ignores other interactions', async () => {
    const form = (payload: unknown) => new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const send = (body: string, headers: Record<string, string> = {}) => {
      const req = signedForm(secret, body);
      return deliver(url, { ...req, headers: { ...req.headers, ...headers } });
    };
    expect((await send('payload=%7Bnot json')).status).toBe(400);
    expect((await send('nothing=here')).status).toBe(400);
    expect((await send(form({ type: 'block_actions', user: { id: 'lowercase' }, actions: [] }))).status).toBe(400);
    const base = { type: 'block_actions', user: { id: 'U0ALICE' }, response_url: `${receiver.url}/r` };
    expect((await send(form({ ...base, actions: [] }))).status).toBe(400);
    // The action id and the value must agree, and the value must name a workflow id.
    expect((await send(form({ ...base, actions: [{ action_id: 'remediate_approve', value: `reject:${workflowId}` }] }))).status).toBe(400);
    expect((await send(form({ ...base, actions: [{ action_id: 'remediate_approve', value: 'approve:../../etc/passwd' }] }))).status).toBe(
      400,
    );
    expect(
      (await send(form({ ...base, actions: [{ action_id: 'remediate_approve', value: `approve:incident:${'x'.repeat(300)}` }] }))).status,
    ).toBe(400);
    expect((await send(form({ ...base, actions: [{ action_id: 'remediate_cancel', value: `cancel:${workflowId}` }] }))).status).toBe(400);
    // Another app's button or a modal: acknowledged, nothing done.
    expect((await send(form({ ...base, actions: [{ action_id: 'poll_vote', value: '3' }] }))).status).toBe(200);
    expect((await send(form({ type: 'view_submission', user: { id: 'U0ALICE' } }))).status).toBe(200);
    // Signed, but JSON where Slack sends a form.
    expect((await send(form(base), { 'Content-Type': 'application/json' })).status).toBe(415);
    // Past api.maxBodyBytes, before the signature is even computed.
    expect((await send(form({ ...base, padding: 'x'.repeat(20_000) }))).status).toBe(413);
    // Only POST, only this path.
    expect((await fetch(url)).status).toBe(405);
    expect((await fetch(url.replace('interactions', 'events'), { method: 'POST' })).status).toBe(404);
    expect(temporalCalls).toEqual([]);
    expect(receiver.requests).toEqual([]);
  });
});

describe('a press while Temporal does not answer', () => {
  it('is answered at once, bounds the decisions in flight, and tells the presser when the engine could not take it', async () => {
    let release: (err: Error) => void = () => undefined;
    const outage = new Promise<never>((_resolve, reject) => (release = reject));
    outage.catch(() => undefined);
    const stalled: Temporal = { ...temporal, call: () => outage };
    const { config } = triggerConfig({
      taskQueue: 'chat-door-unused',
      extra: {
        operators: [{ name: 'alice', role: 'operator', chatUserId: 'U0ALICE' }],
        api: { listen: '127.0.0.1:0' },
        chat: { slack: { signingSecret: secret, responseOrigins: [receiver.url] } },
      },
    });
    const lines: string[] = [];
    const stalledApi = createOperatorApi({
      config,
      temporal: stalled,
      logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }),
      routes: [chatRoute({ maxInFlight: 2 })],
    });
    const stalledUrl = `${(await stalledApi.listen()).url}/chat/slack/interactions`;
    try {
      const presses = ['/r/1', '/r/2', '/r/3'].map((path) =>
        signedPress({
          secret,
          user: { id: 'U0ALICE' },
          button: { action_id: 'remediate_approve', value: `approve:${workflowId}` },
          responseUrl: `${receiver.url}${path}`,
        }),
      );
      const first = await deliver(stalledUrl, presses[0]!);
      const second = await deliver(stalledUrl, presses[1]!);
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(Math.max(first.ms, second.ms)).toBeLessThan(500);
      // Two decisions hang on Temporal: a third is refused rather than queued.
      const third = await deliver(stalledUrl, presses[2]!);
      expect(third.status).toBe(429);
      expect(receiver.requests).toEqual([]);

      release(new CommandError(3, 'Temporal at nowhere:0 did not answer: deadline exceeded'));
      const [told] = await receiver.waitFor('/r/1', 1);
      expect(told!.body).toEqual({
        response_type: 'ephemeral',
        replace_original: false,
        text: ':warning: Your approve was not taken: Temporal at nowhere:0 did not answer: deadline exceeded',
      });
      await receiver.waitFor('/r/2', 1);
      const audit = lines
        .map((l) => JSON.parse(l) as { audit?: { operator?: string; result: string; reason?: string } })
        .flatMap((l) => (l.audit ? [l.audit] : []));
      expect(audit).toContainEqual(
        expect.objectContaining({ operator: 'alice', result: 'failed', reason: '2 chat decisions already in progress' }),
      );
    } finally {
      await stalledApi.close();
    }
  });
});

describe('signatures and the replay window', () => {
  const body = Buffer.from('payload=%7B%7D');
  const now = 1_700_000_000_000;
  const ts = String(now / 1_000);

  it('never erases a page it did not get back whole: a decision on a page whose blocks were too big to take is said beside it', () => {
    const at = new Date('2026-12-05T03:00:00Z');
    const page = [
      { type: 'section', text: { type: 'mrkdwn', text: 'diagnostics' } },
      {
        type: 'actions',
        block_id: 'remediate_actions',
        elements: [{ action_id: 'remediate_approve' }, { action_id: 'remediate_reject' }, { action_id: 'remediate_acknowledge' }],
      },
    ];
    const replaced = decidedMessage('approve', 'alice', at, page);
    expect(replaced).toMatchObject({ replace_original: true });
    expect(JSON.stringify(replaced)).toContain('diagnostics');
    const beside = decidedMessage('approve', 'alice', at, undefined);
    expect(beside).toMatchObject({ replace_original: false, response_type: 'in_channel', text: 'Approved by alice' });
  });

  it('accepts exactly the documented signature, at the edges of the window', () => {
    const sig = slackSignature(secret, ts, body.toString());
    expect(verifySignature({ timestamp: ts, signature: sig, body }, secret, now, 300_000)).toMatchObject({ ok: true, timestampMs: now });
    expect(verifySignature({ timestamp: ts, signature: sig, body }, secret, now + 300_000, 300_000).ok).toBe(true);
    expect(verifySignature({ timestamp: ts, signature: sig, body }, secret, now + 300_001, 300_000).ok).toBe(false);
    // Uppercase hex, a second header, a timestamp with a fraction: not what Slack sends.
    expect(verifySignature({ timestamp: ts, signature: sig.toUpperCase().replace('V0', 'v0'), body }, secret, now, 300_000).ok).toBe(false);
    expect(verifySignature({ timestamp: ts, signature: [sig, sig], body }, secret, now, 300_000).ok).toBe(false);
    expect(verifySignature({ timestamp: `${ts}.5`, signature: sig, body }, secret, now, 300_000).ok).toBe(false);
  });

  it('remembers a signature until its request would be stale, and refuses rather than forgets when full', () => {
    const seen = new SeenSignatures(300_000, 3);
    expect(seen.admit('a', now, now)).toBe('fresh');
    expect(seen.admit('a', now, now + 299_000)).toBe('replayed');
    expect(seen.admit('b', now, now)).toBe('fresh');
    expect(seen.admit('c', now + 1_000, now)).toBe('fresh');
    expect(seen.admit('d', now, now)).toBe('full');
    // a and b expire at now + 300 s; c a second later.
    expect(seen.admit('d', now + 300_500, now + 300_500)).toBe('fresh');
    expect(seen.size).toBe(2);
  });
});

describe('posting to response_url', () => {
  it('does not follow a redirect, gives up on a silent server in time, and tries a 5xx once more', async () => {
    const origins = [receiver.url];
    receiver.alwaysAnswer('/moved', 302);
    const moved = await postResponse(`${receiver.url}/moved`, { text: 'x' }, { origins, timeoutMs: 2_000 });
    expect(moved).toEqual({ ok: false, reason: 'redirect 302 not followed' });
    expect(receiver.requestsTo('/moved')).toHaveLength(1);

    receiver.failNext('/flaky', 1, 503);
    expect(await postResponse(`${receiver.url}/flaky`, { text: 'x' }, { origins, timeoutMs: 2_000 })).toEqual({ ok: true, status: 200 });
    expect(receiver.requestsTo('/flaky')).toHaveLength(2);

    const { createServer } = await import('node:net');
    const sockets: Array<import('node:net').Socket> = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const started = Date.now();
    const hung = await postResponse(`${silentUrl}/hook`, { text: 'x' }, { origins: [silentUrl], timeoutMs: 300 });
    expect(hung).toEqual({ ok: false, reason: 'no answer within 300 ms' });
    expect(Date.now() - started).toBeLessThan(2_000);
    for (const socket of sockets) socket.destroy();
    silent.close();

    expect(
      await postResponse('https://user:pw@hooks.slack.com/actions/1', {}, { origins: ['https://hooks.slack.com'], timeoutMs: 100 }),
    ).toEqual({ ok: false, reason: 'response_url carries credentials' });
    expect(
      await postResponse('https://hooks.slack.com.evil.test/actions/1', {}, { origins: ['https://hooks.slack.com'], timeoutMs: 100 }),
    ).toMatchObject({ ok: false });
  });
});
