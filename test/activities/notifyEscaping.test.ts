// What alerts say (labels, annotations) reaches people through pages. In Slack it must read as
// typed: no mention of everyone, no disguised link, no forged line; and a receiver's error that
// quotes the request must not carry its query into the failure (history, logs, the CLI).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { NotificationRequest } from '../../activities/contract.js';
import { createNotifyActivities, slackEscape } from '../../activities/notify.js';
import type { Channel } from '../../config/schema.js';
import { Secret } from '../../config/secret.js';
import { failureOf } from '../support/net.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

let receiver: Receiver;
let channels: Record<string, Channel>;

function request(overrides: Partial<NotificationRequest> = {}): NotificationRequest & { dryRun: boolean } {
  return {
    channels: ['slack'],
    event: 'trigger',
    incidentKey: 'incident:serviceDown:api',
    idempotencyKey: `incident:serviceDown:api/escalate-1/${randomUUID().slice(0, 8)}`,
    severity: 'critical',
    title: 'api is down',
    text: 'summary from the alert',
    dryRun: false,
    ...overrides,
  };
}

beforeAll(async () => {
  receiver = await startReceiver();
  channels = {
    slack: { type: 'slack', url: Secret.of(`${receiver.url}/services/T000/B000/slackSECRET`) },
    pager: { type: 'pagerduty', routingKey: Secret.of('R0UTINGKEY0123456789abcdef012345'), url: `${receiver.url}/pd?token=pdQUERYSECRET` },
  };
});

afterAll(async () => {
  await receiver?.close();
});

beforeEach(() => receiver.reset());

describe('Slack pages show alert text as typed', () => {
  it('neither mentions, links nor special mentions in an annotation reach Slack as markup', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const text =
      'disk full @channel @here @everyone <!channel> <!here|here> <@U024BE7LH> <!subteam^SAZ94GDB8> <https://evil.example/login|Acknowledge here>';
    await notify(request({ text }));
    const [r] = receiver.requestsTo('/services/T000/B000/slackSECRET');
    const posted = (r!.body as { text: string }).text;
    expect(posted).not.toMatch(/<[!@#]|<https?:/);
    expect(posted).not.toMatch(/@(channel|here|everyone)\b/);
    expect(posted).toContain('@\u2060channel @\u2060here @\u2060everyone &lt;!channel&gt; &lt;!here|here&gt; &lt;@U024BE7LH&gt;');
    expect(posted).toContain('&lt;https://evil.example/login|Acknowledge here&gt;');
  });

  it('a title from a label stays one bold line, and control characters are dropped', async () => {
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    await notify(request({ title: 'api down\n*RESOLVED* by alice\u001b[8m', text: 'x' }));
    const [r] = receiver.requestsTo('/services/T000/B000/slackSECRET');
    expect((r!.body as { text: string }).text).toBe('*api down *RESOLVED* by alice[8m*\nx');
  });

  it('already escaped text is shown as typed, not decoded', () => {
    expect(slackEscape('&lt;!channel&gt; & <b>')).toBe('&amp;lt;!channel&amp;gt; &amp; &lt;b&gt;');
  });
});

describe('receiver errors', () => {
  it("a receiver that quotes the request's URL does not put its query into the failure", async () => {
    receiver.alwaysAnswer('/pd?token=pdQUERYSECRET', 400, `bad request to ${receiver.url}/pd?token=pdQUERYSECRET`);
    const notify = createNotifyActivities({ channels, timeoutMs: 2_000, dryRun: false }).notify;
    const f = await failureOf(notify(request({ channels: ['pager'] })));
    expect(f.message).toContain('the receiver answered 400');
    expect(f.message).toContain(`${receiver.url}/pd`);
    expect(f.message).not.toContain('QUERYSECRET');
  });
});
