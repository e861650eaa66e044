// Repeated pages through the real notification path: the interpreter on the time-skipping server,
// the real notify activity posting to a local receiver standing in for a webhook, PagerDuty and
// Slack. Every page (level, repeat) is accepted exactly once, across a worker restart (a repeat
// falling due while no worker runs) and a receiver failing mid-page; the acknowledgement and the
// resolution reach every channel paged, each in its own way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifyActivities } from '../../activities/notify.js';
import { parseRunbook } from '../../config/runbookLoad.js';
import { Secret } from '../../config/secret.js';
import { acknowledgeSignal, alertResolvedSignal, type EscalationPlanInput } from '../../workflows/messages.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { minute, startSkipping, statusOf, type Skipping } from './escalationHarness.js';
import { uniqueTarget } from './harness.js';

let receiver: Receiver;
let s: Skipping;

beforeAll(async () => {
  receiver = await startReceiver();
  const notify = createNotifyActivities({
    channels: {
      oncall: { type: 'webhook', url: Secret.of(`${receiver.url}/oncall`) },
      pager: { type: 'pagerduty', routingKey: Secret.of('R0UTINGKEY0123456789abcdef012345'), url: `${receiver.url}/pd` },
      chat: { type: 'slack', url: Secret.of(`${receiver.url}/chat`) },
    },
    timeoutMs: 2_000,
    dryRun: false,
  });
  s = await startSkipping(notify, { restartable: true });
});

afterAll(async () => {
  await s?.close();
  await receiver?.close();
});

const def = parseRunbook(
  `name: delivery
description: pages until someone owns it
appliesTo: [container]
steps:
  - id: escalate
    uses: escalate
    with: { reason: "'\${{ target.name }}' is down" }
  - id: escalated
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.escalate.end }}" }
`,
  'delivery.yaml',
);

const policy: EscalationPlanInput = {
  policy: 'repeating',
  levels: [
    { name: 'on-call', afterMs: 0, channels: ['oncall', 'pager'], repeatMs: 5 * minute },
    { name: 'senior', afterMs: 20 * minute, channels: ['chat'] },
  ],
};

/** What one path received: the page key (the Idempotency-Key less incident, run and channel) and the answer. */
function received(path: string): string[] {
  return receiver.requestsTo(path).map((r) => `${String(r.headers['idempotency-key']).split(':').slice(4, -1).join(':')} ${r.status}`);
}

describe('repeated pages on the real notification path', () => {
  it('accepts each page exactly once across a worker restart and a failing receiver, then acknowledges and resolves every channel', async () => {
    const handle = await s.start(def, uniqueTarget('deliver'), { escalation: policy }, 'fp-d');
    await receiver.waitFor('/oncall', 1);
    await s.env.sleep(5 * minute);
    await receiver.waitFor('/oncall', 2);

    // The engine goes down and the next repeat falls due meanwhile: the new worker sends it, once.
    await s.restartWorker(() => s.env.sleep(5 * minute));
    await receiver.waitFor('/oncall', 3);

    // The webhook fails the next repeat once: Temporal retries the activity, which skips PagerDuty
    // (delivered on the first attempt) and posts the webhook again with the same key.
    receiver.failNext('/oncall', 1, 503);
    await s.env.sleep(5 * minute);
    await receiver.waitFor('/oncall', 5);

    await s.env.sleep(6 * minute);
    await receiver.waitFor('/chat', 1);
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
    await statusOf(handle, (st) => st.timeline.some((e) => e.event === 'following'));
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-d', at: new Date().toISOString() });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('resolved-externally');

    expect(received('/oncall')).toEqual([
      'on-call 200',
      'on-call#2 200',
      'on-call#3 200',
      'on-call#4 503',
      'on-call#4 200',
      'acknowledge 200',
      'resolve 200',
    ]);
    expect(received('/pd')).toEqual(['on-call 200', 'on-call#2 200', 'on-call#3 200', 'on-call#4 200', 'acknowledge 200', 'resolve 200']);
    expect(receiver.requestsTo('/pd').map((r) => (r.body as { event_action: string }).event_action)).toEqual([
      'trigger',
      'trigger',
      'trigger',
      'trigger',
      'acknowledge',
      'resolve',
    ]);
    expect(
      receiver
        .requestsTo('/oncall')
        .slice(-2)
        .map((r) => (r.body as { event: string }).event),
    ).toEqual(['acknowledge', 'resolve']);
    // Slack, which cannot resolve anything, is told in a message.
    expect(received('/chat')).toEqual(['senior 200', 'acknowledge 200', 'resolve 200']);
    expect((receiver.requestsTo('/chat')[2]!.body as { text: string }).text).toMatch(
      /^:white_check_mark: \*delivery on 'deliver-[0-9a-f]+' resolved\*/,
    );
    // Repeats stop when the next level is paged: nothing to on-call between senior and the acknowledgement.
    expect(result.timeline.filter((e) => e.event.startsWith('paged ')).map((e) => e.event)).toEqual([
      'paged on-call',
      'paged on-call (repeat 1)',
      'paged on-call (repeat 2)',
      'paged on-call (repeat 3)',
      'paged senior',
    ]);
  }, 60_000);
});
