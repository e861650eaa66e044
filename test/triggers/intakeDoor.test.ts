// The intake's door with a scripted Temporal client: one signal out at a time, the batches arriving
// meanwhile together in the next, a batch larger than a signal in pieces answered after the last, a
// failed signal failing only its own wave's batches, and batches refused once too much waits.
import { describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { IntakeFullError, intakeDoor } from '../../triggers/alerts/intake.js';
import type { WebhookAlert } from '../../triggers/alerts/alertmanagerPayload.js';

interface Sent {
  alerts: WebhookAlert[];
  finish(err?: Error): void;
}

/** A client whose signals wait until the test finishes them; the intake's describe says `status` (default: it is not found). */
function scriptedClient(status: { name?: string } = {}) {
  const sent: Sent[] = [];
  const described: number[] = [];
  const client = {
    connection: { withDeadline: <T>(_: number, fn: () => Promise<T>) => fn() },
    workflow: {
      signalWithStart: (_wf: unknown, options: { signalArgs: [{ alerts: WebhookAlert[] }] }) =>
        new Promise<void>((resolve, reject) =>
          sent.push({ alerts: options.signalArgs[0].alerts, finish: (err) => (err ? reject(err) : resolve()) }),
        ),
      getHandle: () => ({
        describe: () => {
          described.push(Date.now());
          return status.name
            ? Promise.resolve({ status: { name: status.name }, historyLength: 10, historySize: 1_000 })
            : Promise.reject(new Error('not found'));
        },
      }),
    },
  } as unknown as Client;
  return { client, sent, described, status };
}

const alert = (n: number, pad = 0) =>
  ({
    status: 'firing',
    labels: { alertname: 'ServiceDown', n: String(n) },
    annotations: { pad: 'x'.repeat(pad) },
    startsAt: '2026-12-07T00:00:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    fingerprint: `fp-${n}`,
  }) as WebhookAlert;

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("the intake's door", () => {
  it('sends one signal at a time, the batches that arrived meanwhile together in the next', async () => {
    const { client, sent } = scriptedClient();
    const door = intakeDoor({ client, taskQueue: 'q', timeoutMs: 1_000 });
    const answered: number[] = [];
    const first = door.take([alert(0)]).then(() => answered.push(0));
    const later = [1, 2, 3].map((n) => door.take([alert(n)]).then(() => answered.push(n)));
    await tick();
    expect(sent).toHaveLength(1);
    expect(door.sending()).toBe(4);
    sent[0]!.finish();
    await first;
    await tick();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.alerts.map((a) => a.labels.n)).toEqual(['1', '2', '3']);
    expect(answered).toEqual([0]);
    sent[1]!.finish();
    await Promise.all(later);
    expect(answered).toEqual([0, 1, 2, 3]);
    expect(door.sending()).toBe(0);
  });

  it('sends a batch larger than a signal in pieces and answers it after the last', async () => {
    const { client, sent } = scriptedClient();
    const door = intakeDoor({ client, taskQueue: 'q', timeoutMs: 1_000, maxSignalBytes: 1_000 });
    let done = false;
    const big = door.take([alert(0, 600), alert(1, 600), alert(2, 600)]).then(() => (done = true));
    for (let piece = 0; piece < 3; piece++) {
      await tick();
      expect(sent).toHaveLength(piece + 1);
      expect(sent[piece]!.alerts).toHaveLength(1);
      expect(done).toBe(false);
      sent[piece]!.finish();
    }
    await big;
    expect(done).toBe(true);
  });

  it("fails a refused signal's batches alone; the next wave goes on", async () => {
    const { client, sent } = scriptedClient();
    const door = intakeDoor({ client, taskQueue: 'q', timeoutMs: 1_000 });
    const first = door.take([alert(0)]);
    const second = door.take([alert(1)]);
    await tick();
    sent[0]!.finish(new Error('Temporal unavailable'));
    await expect(first).rejects.toThrow('Temporal unavailable');
    await tick();
    sent[1]!.finish();
    await expect(second).resolves.toBeUndefined();
  });

  it('refuses a batch once the alerts waiting for their signal would pass the bound', async () => {
    const { client, sent } = scriptedClient();
    const door = intakeDoor({ client, taskQueue: 'q', timeoutMs: 1_000, maxWaitingBytes: 2_500 });
    const first = door.take([alert(0, 900)]);
    const second = door.take([alert(1, 900)]);
    const refused = door.take([alert(2, 900)]);
    await expect(refused).rejects.toBeInstanceOf(IntakeFullError);
    await expect(refused).rejects.toThrow(/waiting here for Temporal/);
    await tick();
    sent[0]!.finish();
    await first;
    await tick();
    sent[1]!.finish();
    await second;
    // Room again once they went.
    const again = door.take([alert(3, 900)]);
    await tick();
    sent[2]!.finish();
    await expect(again).resolves.toBeUndefined();
  });

  it('says the intake ended only once it was quiet long enough and Temporal says so, asked after the last batch', async () => {
    const { client, sent, described, status } = scriptedClient({ name: 'RUNNING' });
    const door = intakeDoor({ client, taskQueue: 'q', timeoutMs: 1_000, quietForMs: 100 });
    const first = door.take([alert(0)]);
    expect(await door.ended()).toBe(false);
    await tick();
    sent[0]!.finish();
    await first;
    // Quiet for less than 100 ms: not asked.
    const asked = described.length;
    expect(await door.ended()).toBe(false);
    expect(described).toHaveLength(asked);
    await new Promise((r) => setTimeout(r, 1_100));
    // Quiet long enough, but still running (another engine's batches, say).
    expect(await door.ended()).toBe(false);
    expect(described.length).toBeGreaterThan(asked);
    status.name = 'COMPLETED';
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await door.ended()).toBe(true);
    // A batch taken since: not ended until quiet again.
    const next = door.take([alert(1)]);
    expect(await door.ended()).toBe(false);
    await tick();
    sent[1]!.finish();
    await next;
    expect(await door.ended()).toBe(false);
  });
});
