// Approvals from chat against a running engine: a Redis-backed incident waits for approval and pages
// a Slack channel (a local receiver) with Approve / Reject buttons. A stand-in signs button presses
// exactly as Slack documents and plays response_url. Only a correctly signed, fresh, first-seen press
// by a user mapped to an operator whose role allows it changes anything; the workflow records the
// operator and the door, and the message is updated with who decided, or the presser told why not.
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { startEngine, type RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { incidentWorkflowId, statusQuery, type RunbookResult, type RunbookStatus } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { bundlePath } from '../support/globalSetup.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { startRedisContainer, type RedisContainer } from '../support/redisContainer.js';
import { pendingApproval, statusWhen } from '../support/runStatus.js';
import { buttonsOf, deliver, signedPress, type PressOptions, type SlackButton } from '../support/slackStandIn.js';
import { quietRuntime, temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { until } from '../support/wait.js';
import { e2eConfigInput } from './engine.js';

const suffix = randomUUID().slice(0, 8);
const cache = `cache-${suffix}`;
const cacheServer = `cache-server-${suffix}`;
const alertname = 'RedisConnectionFailed';
const webhookToken = randomUUID();
const signingSecret = `slack-${randomUUID()}`;
const workflowId = incidentWorkflowId('databaseConnection', cache);
const users = { alice: 'U0ALICE', rita: 'U0RITA', mallory: 'U0MALLORY' };

let redis: RedisContainer;
let slack: Receiver;
let engine: RunningEngine;
let queue: string;
let interactions: string;
let stoppedAt: string;
/** The approval request as the Slack channel received it, and its buttons. */
let page: { text: string; blocks: unknown[] };
let approve: SlackButton;
const acknowledge = (): SlackButton => ({
  action_id: 'remediate_acknowledge',
  value: `acknowledge:${workflowId}`,
  block_id: 'remediate_actions',
});
const logLines: string[] = [];
/** How long each press took to be answered: Slack gives up after 3 s. */
const answeredInMs: number[] = [];

const handle = (): WorkflowHandle => engine.client.workflow.getHandle(workflowId);
const status = (): Promise<RunbookStatus> => handle().query(statusQuery);

const audits = () =>
  logLines
    .map(
      (l) =>
        JSON.parse(l) as { audit?: { operator?: string; via: string; action: string; result: string; reason?: string; subject?: string } },
    )
    .flatMap((l) => (l.audit ? [l.audit] : []));

/** A press as Slack sends it; its response_url is a path of its own on the stand-in. */
function pressOf(user: keyof typeof users, button: SlackButton, responsePath: string, opts: Partial<PressOptions> = {}) {
  return signedPress({
    secret: signingSecret,
    user: { id: users[user], username: user },
    button,
    responseUrl: `${slack.url}${responsePath}`,
    message: page,
    ...opts,
  });
}

async function send(req: ReturnType<typeof signedPress>) {
  const answer = await deliver(interactions, req);
  answeredInMs.push(answer.ms);
  return answer;
}

/** The one message update a response_url got (waiting for it), checking no second one follows. */
async function updateAt(path: string): Promise<Record<string, unknown>> {
  const [update] = await slack.waitFor(path, 1, 20_000);
  return update!.body as Record<string, unknown>;
}

beforeAll(async () => {
  quietRuntime();
  queue = uniqueQueue('e2e-chat');
  [redis, slack] = await Promise.all([startRedisContainer(), startReceiver()]);
  const overrides: Partial<EngineConfigInput> = {
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token: webhookToken },
    targets: {
      [cacheServer]: { kind: 'container', container: redis.name, stopTimeout: '5s' },
      [cache]: { kind: 'redis', host: '127.0.0.1', port: redis.port, password: redis.password, timeout: '2s', restartVia: cacheServer },
    },
    bindings: [{ alert: alertname, target: cache, runbook: 'databaseConnection' }],
    channels: { ops: { type: 'slack', url: `${slack.url}/services/T0/B0/incoming` } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['ops'] }] } } },
    operators: [
      { name: 'alice', role: 'operator', chatUserId: users.alice },
      { name: 'rita', role: 'responder', chatUserId: users.rita },
    ],
    api: { listen: '127.0.0.1:0' },
    chat: { slack: { signingSecret, maxAge: '5m', responseOrigins: [slack.url] } },
  };
  const config = parseConfig(e2eConfigInput(overrides), 'chat approvals e2e');
  engine = await startEngine({
    config,
    logger: pino({ level: 'info' }, { write: (l: string) => void logLines.push(l) }),
    workflowBundlePath: bundlePath,
  });
  interactions = `${engine.apiUrl!}/chat/slack/interactions`;

  await redis.stop();
  stoppedAt = await redis.startedAt();
  const fired = await postAlerts(engine.webhookUrl, webhookToken, [{ labels: { alertname, severity: 'critical', service: cache } }]);
  expect(fired.status).toBe(200);
  await pendingApproval(handle());
  const [posted] = await slack.waitFor('/services/T0/B0/incoming', 1, 30_000);
  page = posted!.body as typeof page;
  // The receiver has the page a moment before the workflow records that it was sent.
  await statusWhen(handle(), 'the approval page on the timeline', 15_000, (st) =>
    st.timeline.some((e) => e.event === 'paged approval:approve-restart'),
  );
});

afterAll(async () => {
  if (engine) {
    await handle()
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.client.workflow
      .getHandle(guardrailsWorkflowId(queue))
      .terminate()
      .catch(() => undefined);
    await engine.stop();
  }
  await Promise.all([redis?.remove(), slack?.close()]);
});

describe('approvals from chat', () => {
  it('pages the approval request to Slack with Approve and Reject buttons naming the incident', async () => {
    expect(page.text).toContain(`Approval needed: restart database '${cache}'`);
    const buttons = buttonsOf(page);
    // Each names the run chain and the approval step it is about, not only the workflow id a later
    // incident on this target reuses.
    const chain = (await handle().describe()).raw.workflowExecutionInfo!.firstRunId!;
    expect(chain).toMatch(/^[0-9a-f-]{36}$/);
    expect(buttons.map((b) => [b.action_id, b.value])).toEqual([
      ['remediate_approve', `approve|${chain}|approve-restart|${workflowId}`],
      ['remediate_reject', `reject|${chain}|approve-restart|${workflowId}`],
    ]);
    approve = buttons[0]!;
  });

  it('refuses unsigned, forged, stale, replayed and unknown-user presses with nothing signalled', async () => {
    const before = await status();
    const auditsBefore = audits().length;
    const now = Math.floor(Date.now() / 1_000);
    expect((await send(pressOf('alice', approve, '/r/unsigned', { signature: 'omit' }))).status).toBe(401);
    expect((await send(pressOf('alice', approve, '/r/forged', { secret: 'not-the-signing-secret' }))).status).toBe(401);
    expect((await send(pressOf('alice', approve, '/r/stale', { timestamp: now - 6 * 60 }))).status).toBe(401);
    // A user no operator maps to: answered (the request is Slack's), refused, told why.
    const mallory = pressOf('mallory', approve, '/r/mallory');
    expect(await send(mallory)).toMatchObject({ status: 200, text: '' });
    expect(await updateAt('/r/mallory')).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: ':warning: Your approve was not taken: your chat user is not mapped to an operator of this engine',
    });
    // The same request again, byte for byte: a replay.
    expect((await send(mallory)).status).toBe(401);

    await new Promise((r) => setTimeout(r, 1_500));
    const after = await status();
    expect(after.timeline).toEqual(before.timeline);
    expect(after.pendingApproval?.step).toBe('approve-restart');
    expect(after.acknowledgedBy).toBeUndefined();
    expect(await redis.state()).toBe('exited');
    // Refused before anything could be answered: no update to those messages.
    for (const path of ['/r/unsigned', '/r/forged', '/r/stale']) expect(slack.requestsTo(path)).toEqual([]);
    expect(slack.requestsTo('/r/mallory')).toHaveLength(1);
    expect(
      audits()
        .slice(auditsBefore)
        .map((a) => [a.via, a.operator, a.result, a.reason]),
    ).toEqual([
      ['chat', undefined, 'unauthenticated', 'no X-Slack-Request-Timestamp'],
      ['chat', undefined, 'unauthenticated', 'signature does not match (forged, altered, or another signing secret)'],
      ['chat', undefined, 'unauthenticated', expect.stringMatching(/^timestamp \d+ is 36[01] s from now, outside chat.slack.maxAge$/)],
      ['chat', undefined, 'unauthenticated', 'chat user U0MALLORY is not a configured operator (no chatUserId)'],
      ['chat', undefined, 'unauthenticated', 'replayed: this signature was already accepted inside the replay window'],
    ]);
  });

  it('lets a responder acknowledge but refuses its approve, telling it why', async () => {
    expect((await send(pressOf('rita', acknowledge(), '/r/rita-ack'))).status).toBe(200);
    const acked = await updateAt('/r/rita-ack');
    expect(acked).toMatchObject({ replace_original: true, text: 'Acknowledged by rita' });
    expect(JSON.stringify(acked.blocks)).toMatch(/:eyes: Acknowledged by \*rita\* \(via chat\) at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    // Acknowledging settles no approval: the page keeps its Approve and Reject.
    expect(buttonsOf(acked).map((b) => b.action_id)).toEqual(['remediate_approve', 'remediate_reject']);

    expect((await send(pressOf('rita', approve, '/r/rita-approve'))).status).toBe(200);
    expect(await updateAt('/r/rita-approve')).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: ":warning: Your approve was not taken: 'rita' is a responder; approving needs the operator role or above",
    });
    const s = await statusWhen(handle(), "rita's refusal on the timeline", 15_000, (st) =>
      st.timeline.some((e) => e.event === 'approve refused'),
    );
    expect(s.timeline.find((e) => e.event === 'acknowledged')).toMatchObject({ actor: 'rita', detail: 'via chat' });
    expect(s.timeline.find((e) => e.event === 'approve refused')).toMatchObject({
      actor: 'rita',
      detail: "'rita' is a responder; approving needs the operator role or above (via chat)",
    });
    expect(s.pendingApproval?.step).toBe('approve-restart');
    expect(s.approvedBy).toBeUndefined();
    expect(await redis.state()).toBe('exited');
    expect(await redis.startedAt()).toBe(stoppedAt);
  });

  it("restarts the container on alice's signed approve and updates the message with who decided; its replay changes nothing", async () => {
    const alice = pressOf('alice', approve, '/r/alice');
    const answer = await send(alice);
    expect(answer).toMatchObject({ status: 200, text: '' });
    expect(answer.ms).toBeLessThan(3_000);

    const update = await updateAt('/r/alice');
    expect(update).toMatchObject({ replace_original: true, text: 'Approved by alice' });
    const blocks = update.blocks as Array<{ type: string; text?: { text: string }; elements?: Array<{ text?: string }> }>;
    // The page as it was, its buttons gone, and who decided.
    expect(blocks.slice(0, -1)).toEqual(page.blocks.filter((b) => (b as { type: string }).type !== 'actions'));
    expect(blocks.at(-1)!.type).toBe('context');
    expect(blocks.at(-1)!.elements![0]!.text).toMatch(/^:white_check_mark: Approved by \*alice\* \(via chat\) at /);
    expect(buttonsOf(update)).toEqual([]);

    const result = (await handle().result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the restart approved by alice');
    expect(result.timeline.find((e) => e.event === 'approved')).toMatchObject({ actor: 'alice', detail: 'approve-restart (via chat)' });
    expect(await redis.ping()).toBe(true);
    expect(await redis.startedAt()).not.toBe(stoppedAt);

    // Alice's press captured and sent again: 401, and no second answer to the message.
    expect((await send(alice)).status).toBe(401);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(slack.requestsTo('/r/alice')).toHaveLength(1);

    const trail = audits().filter((a) => a.subject === workflowId && a.operator !== undefined);
    expect(trail.map((a) => [a.operator, a.action, a.result, a.via])).toEqual([
      ['rita', 'acknowledge', 'done', 'chat'],
      ['rita', 'approve', 'refused', 'chat'],
      ['alice', 'approve', 'done', 'chat'],
    ]);
    expect(Math.max(...answeredInMs)).toBeLessThan(3_000);
    const everything = logLines.join('\n');
    expect(everything).not.toContain(signingSecret);
    expect(everything).not.toContain('/r/alice');
  }, 90_000);

  it('refuses a press on the old page once a later incident of the same target waits for approval: nothing is approved for it', async () => {
    await redis.stop();
    const down = await redis.startedAt();
    const fired = await postAlerts(engine.webhookUrl, webhookToken, [{ labels: { alertname, severity: 'critical', service: cache } }]);
    expect(fired.status).toBe(200);
    await pendingApproval(handle());
    // The channel has had the first incident's resolution since: the later page is the next one with buttons.
    const laterApprove = await until('the later approval page', 30_000, async () =>
      slack
        .requestsTo('/services/T0/B0/incoming')
        .slice(1)
        .flatMap((r) => buttonsOf(r.body as typeof page))
        .find((b) => b.action_id === 'remediate_approve'),
    );
    expect(laterApprove.value).not.toBe(approve.value);

    // The first incident's Approve, pressed (freshly signed) on the message still in the channel.
    expect((await send(pressOf('alice', approve, '/r/old-page'))).status).toBe(200);
    expect(await updateAt('/r/old-page')).toEqual({
      response_type: 'ephemeral',
      replace_original: false,
      text: `:warning: Your approve was not taken: this page is about an earlier run of '${workflowId}', which has ended; the current one has pages of its own (or use the console)`,
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const s = await status();
    expect(s.pendingApproval?.step).toBe('approve-restart');
    expect(s.approvedBy).toBeUndefined();
    expect(await redis.state()).toBe('exited');
    expect(await redis.startedAt()).toBe(down);

    // The later page's own button does approve it.
    expect((await send(pressOf('alice', laterApprove, '/r/later-page'))).status).toBe(200);
    expect(await updateAt('/r/later-page')).toMatchObject({ replace_original: true, text: 'Approved by alice' });
    expect(((await handle().result()) as RunbookResult).outcome).toBe('recovered');
  }, 90_000);
});
