// forwardAlerts, the intake's activity, with a scripted webhook: each alert's deliveries in the order
// they came, many alerts at once, what an earlier attempt recorded in its heartbeat not sent again,
// a firing whose own resolution follows never sent again on a retry, and a refusal failing the
// attempt (retryable) after the rest went. The door's signal pieces are cut by size.
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  chains,
  createIntakeActivities,
  firingsBeforeTheirResolution,
  type IntakeAlert,
  type IntakeDeliverer,
} from '../../activities/intake.js';
import { pieces } from '../../triggers/alerts/intake.js';

const alert = (fingerprint: string, status: 'firing' | 'resolved', n = 0): IntakeAlert => ({
  status,
  fingerprint,
  labels: { alertname: 'ServiceDown', service: fingerprint, n: String(n) },
});

interface Script {
  /** Resolves each delivery after this many ms (per alert key), default 0. */
  delayMs?: (a: IntakeAlert) => number;
  refuse?: (a: IntakeAlert) => boolean;
}

function webhook(script: Script = {}) {
  const delivered: IntakeAlert[] = [];
  let inFlight = 0;
  let mostAtOnce = 0;
  let forwarding = 0;
  const deliverer: IntakeDeliverer = {
    async deliver(raw) {
      const a = raw as IntakeAlert;
      inFlight++;
      mostAtOnce = Math.max(mostAtOnce, inFlight);
      await new Promise((r) => setTimeout(r, script.delayMs?.(a) ?? 0));
      inFlight--;
      if (script.refuse?.(a)) throw new Error(`Temporal refused ${a.fingerprint}`);
      delivered.push(a);
    },
    forwarding(delta) {
      forwarding += delta;
    },
  };
  return { deliverer, delivered, mostAtOnce: () => mostAtOnce, forwarding: () => forwarding };
}

function run(deliverer: IntakeDeliverer | undefined, alerts: IntakeAlert[], info: { attempt?: number; heartbeatDetails?: unknown } = {}) {
  const env = new MockActivityEnvironment({ attempt: info.attempt ?? 1, heartbeatDetails: info.heartbeatDetails });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const result = env.run(createIntakeActivities(() => deliverer).forwardAlerts, { alerts });
  return { result, beats };
}

describe('forwardAlerts', () => {
  it("keeps each alert's deliveries in order while many alerts go at once", async () => {
    const alerts: IntakeAlert[] = [];
    for (let i = 0; i < 60; i++) alerts.push(alert(`fp-${i}`, 'firing', 1));
    // fp-0 fires, resolves, fires again; its first delivery is the slowest of all.
    alerts.push(alert('fp-0', 'resolved', 2), alert('fp-0', 'firing', 3));
    const hook = webhook({ delayMs: (a) => (a.fingerprint === 'fp-0' && a.labels.n === '1' ? 50 : 5) });
    const { result } = run(hook.deliverer, alerts);
    expect(await result).toEqual({ delivered: 62, skipped: 0 });
    const fp0 = hook.delivered.filter((a) => a.fingerprint === 'fp-0').map((a) => `${a.status}:${a.labels.n}`);
    expect(fp0).toEqual(['firing:1', 'resolved:2', 'firing:3']);
    expect(hook.mostAtOnce()).toBeGreaterThan(10);
    expect(hook.mostAtOnce()).toBeLessThanOrEqual(48);
    expect(hook.forwarding()).toBe(0);
  });

  it('hands on only what an earlier attempt did not, and never a firing again whose resolution follows', async () => {
    const alerts = [
      alert('a', 'firing'),
      alert('b', 'firing'),
      alert('a', 'resolved'),
      alert('c', 'firing'),
      alert('c', 'resolved'),
      alert('c', 'firing', 5),
    ];
    const hook = webhook();
    // The first attempt's heartbeat said b went; a's and c's firings may have gone too.
    const { result } = run(hook.deliverer, alerts, { attempt: 2, heartbeatDetails: { delivered: [1] } });
    const forwarded = await result;
    const went = hook.delivered.map((a) => `${a.fingerprint}:${a.status}`);
    expect([...went].sort()).toEqual(['a:resolved', 'c:firing', 'c:resolved']);
    expect(went.filter((w) => w.startsWith('c:'))).toEqual(['c:resolved', 'c:firing']);
    expect(forwarded).toEqual({ delivered: 3, skipped: 3 });
    expect(hook.forwarding()).toBe(0);
  });

  it('records what went in its heartbeat, and fails the attempt (retryable) naming the refusal, after handing on the rest', async () => {
    const alerts = [alert('a', 'firing'), alert('b', 'firing'), alert('b', 'resolved'), alert('c', 'firing')];
    const hook = webhook({ refuse: (a) => a.fingerprint === 'b' && a.status === 'firing' });
    const { result, beats } = run(hook.deliverer, alerts);
    const err = await result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(false);
    expect((err as Error).message).toMatch(/Temporal did not take 1 of 4 alert\(s\).*Temporal refused b/);
    // b's resolution waits for its firing: not handed on before it.
    expect(hook.delivered.map((a) => `${a.fingerprint}:${a.status}`).sort()).toEqual(['a:firing', 'c:firing']);
    expect(beats.at(-1)).toEqual({ delivered: expect.arrayContaining([0, 3]) });
    expect(hook.forwarding()).toBe(0);
  });

  it('fails retryably while the engine has no webhook yet', async () => {
    const { result } = run(undefined, [alert('a', 'firing')]);
    await expect(result).rejects.toThrow(/webhook of this engine is not up yet/);
  });

  it('groups by fingerprint, by labels without one', () => {
    const noPrint = { status: 'firing', fingerprint: '', labels: { a: '1' } } as IntakeAlert;
    expect(chains([alert('x', 'firing'), noPrint, alert('x', 'resolved'), { ...noPrint, status: 'resolved' }])).toEqual([
      [0, 2],
      [1, 3],
    ]);
    expect(
      firingsBeforeTheirResolution([alert('x', 'firing'), alert('x', 'firing'), alert('x', 'resolved'), alert('x', 'firing')]),
    ).toEqual([0, 1]);
    // What a hostile signal put in the intake is not an alert: grouped and judged without a throw.
    const junk = [null, 'x', 7, { status: 'resolved' }] as unknown as IntakeAlert[];
    expect(chains(junk).flat().sort()).toEqual([0, 1, 2, 3]);
    expect(firingsBeforeTheirResolution(junk)).toEqual([]);
  });
});

describe("the intake door's signal pieces", () => {
  it('cuts consecutive alerts by size, one alert at least in each', () => {
    expect(pieces([100, 100, 100], 250)).toEqual([
      [0, 2],
      [2, 3],
    ]);
    expect(pieces([300, 10, 10], 250)).toEqual([
      [0, 1],
      [1, 3],
    ]);
    expect(pieces([], 250)).toEqual([]);
  });
});
