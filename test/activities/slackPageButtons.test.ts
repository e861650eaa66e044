// Pages that ask something carry buttons in Slack: an approval request Approve / Reject, an
// escalation Acknowledge. Posted by the real notify activity to a local receiver standing in for
// Slack's incoming webhook; what arrives must be valid Block Kit within Slack's limits, carry the
// workflow id and the action and nothing else, and show alert text as text.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NotificationRequest } from '../../activities/contract.js';
import { createNotifyActivities } from '../../activities/notify.js';
import { chunks, parseButton } from '../../activities/slackPage.js';
import type { Channel } from '../../config/schema.js';
import { Secret } from '../../config/secret.js';
import { failureOf } from '../support/net.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { buttonsOf } from '../support/slackStandIn.js';

const workflowId = 'incident:databaseConnection:orders-db';
let receiver: Receiver;
let channels: Record<string, Channel>;

function request(overrides: Partial<NotificationRequest> = {}): NotificationRequest & { dryRun: boolean } {
  return {
    channels: ['slack'],
    event: 'trigger',
    incidentKey: workflowId,
    idempotencyKey: `${workflowId}:run-1:approval:approve-restart:${randomUUID().slice(0, 8)}`,
    severity: 'critical',
    title: "Approval needed: restart database 'orders-db'",
    text: "'orders-db' does not answer: connection refused",
    dryRun: false,
    ...overrides,
  };
}

type Block = { type: string; block_id?: string; text?: { type: string; text: string }; elements?: Array<Record<string, unknown>> };

async function posted(req: NotificationRequest & { dryRun: boolean }): Promise<{ text: string; blocks?: Block[] }> {
  receiver.reset();
  await createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify(req);
  const [r] = await receiver.waitFor('/services/T000/B000/slackSECRET', 1);
  return r!.body as { text: string; blocks?: Block[] };
}

beforeAll(async () => {
  receiver = await startReceiver();
  channels = {
    slack: { type: 'slack', url: Secret.of(`${receiver.url}/services/T000/B000/slackSECRET`) },
    hook: { type: 'webhook', url: Secret.of(`${receiver.url}/hook`) },
  };
});
afterAll(async () => receiver?.close());
beforeEach(() => receiver.reset());

describe('buttons on Slack pages', () => {
  it('puts Approve and Reject, each asking for confirmation, on an approval request', async () => {
    const body = await posted(request({ actions: ['approve', 'reject'] }));
    // The fallback text for notifications is what a page without buttons says.
    expect(body.text).toBe("*Approval needed: restart database 'orders-db'*\n'orders-db' does not answer: connection refused");
    expect(body.blocks!.map((b) => b.type)).toEqual(['section', 'section', 'actions']);
    expect(body.blocks![0]!.text).toEqual({ type: 'mrkdwn', text: "*Approval needed: restart database 'orders-db'*" });
    const actions = body.blocks![2]!;
    expect(actions.block_id).toBe('remediate_actions');
    expect(actions.elements!.map((e) => [e.action_id, e.value, e.style])).toEqual([
      ['remediate_approve', `approve:${workflowId}`, 'primary'],
      ['remediate_reject', `reject:${workflowId}`, 'danger'],
    ]);
    expect(actions.elements!.every((e) => typeof e.confirm === 'object')).toBe(true);
    // Each button's value is what the chat door reads back, and nothing more.
    expect(buttonsOf(body).map((b) => parseButton(b.action_id, b.value))).toEqual([
      { action: 'approve', workflowId },
      { action: 'reject', workflowId },
    ]);
  });

  it('names the run chain and the approval step in the buttons of a page that says what it is about', async () => {
    const chain = randomUUID();
    const approval = await posted(request({ actions: ['approve', 'reject'], about: { chain, step: 'approve-restart' } }));
    expect(buttonsOf(approval).map((b) => [b.value, parseButton(b.action_id, b.value)])).toEqual([
      [`approve|${chain}|approve-restart|${workflowId}`, { action: 'approve', workflowId, chain, step: 'approve-restart' }],
      [`reject|${chain}|approve-restart|${workflowId}`, { action: 'reject', workflowId, chain, step: 'approve-restart' }],
    ]);
    // An acknowledgement is about the incident, whichever step it is at.
    const escalation = await posted(request({ actions: ['acknowledge'], about: { chain } }));
    expect(buttonsOf(escalation).map((b) => parseButton(b.action_id, b.value))).toEqual([{ action: 'acknowledge', workflowId, chain }]);

    // What a forged value tries is refused: another action than its id, a chain or step outside their forms, a foreign id.
    expect(parseButton('remediate_approve', `reject|${chain}|approve-restart|${workflowId}`)).toBeUndefined();
    expect(parseButton('remediate_approve', `approve|${chain}:x|approve-restart|${workflowId}`)).toBeUndefined();
    expect(parseButton('remediate_approve', `approve|${chain}|Approve Restart|${workflowId}`)).toBeUndefined();
    expect(parseButton('remediate_approve', `approve|${chain}|approve-restart|somewhere:else`)).toBeUndefined();
    expect(parseButton('remediate_approve', `approve|${chain}|approve-restart|${workflowId}${'x'.repeat(400)}`)).toBeUndefined();
    // A request whose `about` is not what the engine sends is refused before anything is posted.
    await expect(
      createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify(
        request({ actions: ['approve'], about: { chain: 'x'.repeat(65) } }),
      ),
    ).rejects.toThrow(/about: expected a run chain id/);
  });

  it('puts Acknowledge on an escalation page, and no buttons where nothing is asked', async () => {
    const escalation = await posted(request({ actions: ['acknowledge'], title: 'api is down' }));
    expect(buttonsOf(escalation)).toEqual([
      { action_id: 'remediate_acknowledge', value: `acknowledge:${workflowId}`, block_id: 'remediate_actions' },
    ]);

    expect(await posted(request({ title: 'cleanup done', text: 'x' }))).toEqual({ text: '*cleanup done*\nx' });
    // A resolve never asks anything, whatever the request says (its wording is the resolve's own).
    const resolved = await posted(request({ event: 'resolve', actions: ['approve'], title: 'resolved', text: 'y' }));
    expect(Object.keys(resolved)).toEqual(['text']);
    expect(resolved.text).toContain('*resolved*');
    // A key that is not a workflow id of the engine gets no buttons.
    const foreign = await posted(request({ incidentKey: 'something else', actions: ['approve'] }));
    expect(buttonsOf(foreign)).toEqual([]);
  });

  it('keeps the generic webhook format as it was, and refuses actions it does not know', async () => {
    await createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify(
      request({ channels: ['hook'], actions: ['approve', 'reject'] }),
    );
    const [hook] = await receiver.waitFor('/hook', 1);
    expect(Object.keys(hook!.body as object).sort()).toEqual([
      'event',
      'idempotencyKey',
      'incidentKey',
      'sentAt',
      'severity',
      'text',
      'title',
    ]);
    const f = await failureOf(
      createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify(request({ actions: ['cancel' as never] })),
    );
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('actions: expected some of approve, reject, acknowledge');
  });

  it('shows hostile alert text as text in the blocks, and splits a long page into sections Slack accepts', async () => {
    const hostile = '<!channel> <https://evil.test|click me> & @here\n'.repeat(60) + 'é'.repeat(2_000);
    const body = await posted(request({ title: 'x <!here>\n*forged line*', text: hostile, actions: ['approve', 'reject'] }));
    const sections = body.blocks!.filter((b) => b.type === 'section').map((b) => b.text!.text);
    expect(sections[0]).toBe('*x &lt;!here&gt; *forged line**');
    for (const s of sections) {
      expect(s.length).toBeLessThanOrEqual(3_000);
      expect(s).not.toMatch(/<[!@#]|<https?:/);
      // No section starts or ends in the middle of an entity.
      expect(s).not.toMatch(/&[a-z]{0,3}$/);
      expect(s).not.toMatch(/^[a-z]{1,3};/);
    }
    expect(sections.slice(1).join('\n').replace(/\n/g, '')).toBe(body.text.slice(body.text.indexOf('\n') + 1).replace(/\n/g, ''));
    expect(sections.join('')).not.toMatch(/@(here|channel)\b/);
    expect(body.blocks!.length).toBeLessThanOrEqual(50);
  });

  it('never cuts an entity or a surrogate pair when it splits', () => {
    const text = `${'a'.repeat(2_998)}&amp;bc${'😀'.repeat(3_000)}`;
    const parts = chunks(text, 3_000);
    expect(parts[0]).toBe('a'.repeat(2_998));
    expect(parts.join('')).toBe(text);
    for (const p of parts) {
      expect(p.length).toBeLessThanOrEqual(3_000);
      expect(/^[\udc00-\udfff]/.test(p)).toBe(false);
    }
  });
});
