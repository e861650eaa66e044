// The intake workflow on the real server with the real bundle, its activity handing alerts to a
// scripted webhook: every alert of every wave once and in order, waves arriving during a forward
// going together in the next, a long intake continued as new without losing or repeating one, a
// refusal retried until taken, and the intake ending after a quiet spell (a new wave starts another).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intake, intakeSignal, type IntakeAlert, type IntakeInput } from '../../workflows/intake.js';
import { until } from '../support/wait.js';
import { startHarness, type Harness } from './harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness('intake');
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const alert = (service: string, n: number, status: 'firing' | 'resolved' = 'firing'): IntakeAlert => ({
  status,
  fingerprint: `${service}-${n}`,
  labels: { alertname: 'ServiceDown', service, n: String(n) },
});

function signalWave(workflowId: string, input: IntakeInput, alerts: IntakeAlert[]) {
  return h.client.workflow.signalWithStart(intake, {
    taskQueue: h.queue,
    workflowId,
    args: [input],
    signal: intakeSignal,
    signalArgs: [{ alerts }],
  });
}

const deliveredOf = (service: string) =>
  (h.intake.delivered as IntakeAlert[]).filter((a) => a.labels.service === service).map((a) => Number(a.labels.n));

describe('the intake', () => {
  it('hands every alert on once and in order, several waves to a forward, and ends after a quiet spell', async () => {
    const id = `intake:${h.queue}-order`;
    const input = { quietFor: '2s' };
    for (let w = 0; w < 20; w++) await signalWave(id, input, [alert('order', 2 * w), alert('order', 2 * w + 1)]);
    await until('all 40 handed on', 20_000, async () => (deliveredOf('order').length >= 40 ? true : undefined));
    expect(deliveredOf('order')).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const handle = h.client.workflow.getHandle(id);
    await handle.result();
    const events = (await handle.fetchHistory()).events ?? [];
    const forwards = events.filter((e) => e.activityTaskScheduledEventAttributes).length;
    const waves = events.filter((e) => e.workflowExecutionSignaledEventAttributes).length;
    expect(waves).toBe(20);
    expect(forwards).toBeLessThan(20);

    // Ended: the next wave starts a new run, which hands it on.
    await signalWave(id, input, [alert('order', 40)]);
    await until('the next wave handed on', 20_000, async () => (deliveredOf('order').length === 41 ? true : undefined));
    expect(deliveredOf('order').at(-1)).toBe(40);
  }, 60_000);

  it('continues as new when its history is long, losing and repeating nothing', async () => {
    const id = `intake:${h.queue}-long`;
    const input = { historyLimit: 20, quietFor: '2s' };
    for (let w = 0; w < 30; w++) await signalWave(id, input, [alert('long', w)]);
    await until('all 30 handed on', 30_000, async () => (deliveredOf('long').length >= 30 ? true : undefined));
    await h.client.workflow.getHandle(id).result();
    expect(deliveredOf('long')).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const runs: string[] = [];
    for await (const r of h.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(r.runId);
    expect(runs.length).toBeGreaterThan(1);
  }, 60_000);

  it('retries a wave Temporal refused part of until it is taken, handing the rest on once', async () => {
    const id = `intake:${h.queue}-refused`;
    let refusals = 0;
    h.intake.refuse = (a) => (a as IntakeAlert).labels.service === 'refused' && (a as IntakeAlert).labels.n === '1' && refusals++ < 2;
    try {
      await signalWave(id, { quietFor: '2s' }, [alert('refused', 0), alert('refused', 1), alert('refused', 2)]);
      await until('the refused alert handed on', 30_000, async () => (deliveredOf('refused').includes(1) ? true : undefined));
    } finally {
      delete h.intake.refuse;
    }
    expect(refusals).toBe(3);
    expect([...deliveredOf('refused')].sort()).toEqual([0, 1, 2]);
  }, 60_000);
});
