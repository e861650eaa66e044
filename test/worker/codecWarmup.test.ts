// The engine writes the SDK's message codecs ahead of its first incident, a slice at a time: every
// type an incident's path codes on the main thread is ready afterwards, and the loop is given a turn
// between slices.
import { describe, expect, it } from 'vitest';
import { namedTypes, warmCodecs, warmedMessages } from '../../worker/codecWarmup.js';

/** protobufjs writes a type's codec onto the type itself (until then it has its prototype's stubs). */
const prepared = (type: object) => ['encode', 'decode', 'fromObject', 'toObject'].every((k) => Object.hasOwn(type, k));

describe('message codecs prepared ahead of the first incident', () => {
  it('prepares every named message type and each type it contains, which nothing had prepared before', async () => {
    const named = namedTypes();
    expect(named.map((t) => t.fullName)).toEqual(warmedMessages.map((n) => `.${n}`));
    expect(named.filter(prepared)).toEqual([]);
    const { types, stopped } = await warmCodecs().done;
    expect(stopped).toBe(false);
    expect(named.filter((t) => !prepared(t))).toEqual([]);
    // Contained types too: the activation's jobs, the timestamps inside them, a start's payloads.
    const root = named[0]!.root;
    for (const inner of [
      'coresdk.workflow_activation.WorkflowActivationJob',
      'google.protobuf.Timestamp',
      'temporal.api.common.v1.Payload',
    ])
      expect(prepared(root.lookupType(inner)), inner).toBe(true);
    expect(types).toBeGreaterThan(200);
    // Prepared codecs code as before: an activation through encode and decode comes back whole.
    const [activation] = named as unknown as Array<{
      encode(m: object): { finish(): Uint8Array };
      decode(b: Uint8Array): object;
      fromObject(o: object): object;
    }>;
    const message = activation!.fromObject({
      runId: 'run-1',
      jobs: [{ initializeWorkflow: { workflowType: 'runbook', workflowId: 'incident:x' } }],
    });
    expect(activation!.decode(activation!.encode(message).finish())).toMatchObject({
      runId: 'run-1',
      jobs: [{ initializeWorkflow: { workflowId: 'incident:x' } }],
    });
  });

  it('gives the event loop a turn between slices, and stops between two when told', async () => {
    let setups = 0;
    const events: string[] = [];
    const fake = (name: string, inner: object[] = []) => ({
      fullName: name,
      fieldsArray: inner.map((t) => ({ resolve: () => ({ resolvedType: t }) })),
      setup: () => (setups++, events.push(name)),
    });
    const leaf = fake('leaf');
    const types = () => [fake('a', [leaf]), fake('b', [leaf]), fake('c')] as unknown as ReturnType<typeof namedTypes>;
    // Something else on the loop: it runs once a turn.
    let ticking = true;
    const tick = () => (events.push('.'), ticking && setImmediate(tick));
    setImmediate(tick);
    // A slice of 0 ms prepares one type: four types (the leaf once), four slices, each its own turn.
    const all = await warmCodecs({ sliceMs: 0, types }).done;
    ticking = false;
    expect(all).toMatchObject({ types: 4, slices: 4, stopped: false });
    expect(setups).toBe(4);
    expect(events.filter((e) => e !== '.')).toEqual(['a', 'b', 'c', 'leaf']);
    expect(events.join('')).toMatch(/^\.+a\.+b\.+c\.+leaf/);

    setups = 0;
    const warmup = warmCodecs({ sliceMs: 0, types });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    warmup.stop();
    const partial = await warmup.done;
    expect(partial.stopped).toBe(true);
    expect(partial.types).toBeLessThan(4);
    expect(setups).toBe(partial.types);
  });

  it('never rejects: a type whose codec cannot be written is counted and the rest are still prepared', async () => {
    const done: string[] = [];
    const ok = (name: string) => ({ fullName: name, fieldsArray: [], setup: () => done.push(name) });
    const broken = {
      fullName: 'broken',
      fieldsArray: [],
      setup: () => {
        throw new Error('no such field type');
      },
    };
    const types = () => [ok('a'), broken, ok('b')] as unknown as ReturnType<typeof namedTypes>;
    expect(await warmCodecs({ types }).done).toMatchObject({ types: 3, failed: 1, stopped: false });
    expect(done).toEqual(['a', 'b']);
    // A name this SDK version does not know is left out rather than stopping the engine.
    expect(namedTypes(['coresdk.NoSuchMessage', 'google.rpc.Status']).map((t) => t.fullName)).toEqual(['.google.rpc.Status']);
  });
});
