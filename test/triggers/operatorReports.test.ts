// Reports read up to 5,000 histories over the engine's own Temporal client, the one alerts start
// incidents with: at most two are made at once, whoever asks, and the rest are told to come back.
// Temporal is a stand-in that holds every call until the test lets it go.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { ActionError, OperatorActions } from '../../triggers/operators/actions.js';
import type { Identity } from '../../triggers/operators/credentials.js';
import type { Temporal } from '../../triggers/operators/operatorTemporal.js';
import { triggerConfig } from './support/config.js';

describe('reports', () => {
  it('are made two at a time at most; a third is answered 429, and one is made again once a slot is free', async () => {
    const fx = triggerConfig({ taskQueue: 'reports-unused' });
    fx.raw.operators = [{ name: 'vera', role: 'viewer' }];
    const config = parseConfig(fx.raw, 'reports test');
    let calls = 0;
    const held: Array<() => void> = [];
    const temporal: Temporal = {
      address: 'nowhere:0',
      client: {} as Temporal['client'],
      call: () => {
        calls++;
        return new Promise((_resolve, reject) => held.push(() => reject(new Error('Temporal let go'))));
      },
      close: async () => undefined,
    };
    const actions = new OperatorActions({ config, temporal, audit: () => {} });
    const vera: Identity = { operator: config.operators[0]!, via: 'api', credential: 'token' };
    const day = 86_400_000;
    const first = actions.report(vera, day).catch((err: unknown) => err);
    const second = actions.report(vera, 7 * day).catch((err: unknown) => err);
    const third = await actions.report(vera, 30 * day).catch((err: unknown) => err);
    expect(third).toBeInstanceOf(ActionError);
    expect(third).toMatchObject({ status: 429, message: '2 reports are being made already; ask again in a minute' });
    expect(calls).toBe(2);
    for (const release of held.splice(0)) release();
    await Promise.all([first, second]);
    const fourth = actions.report(vera, day).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(3);
    for (const release of held.splice(0)) release();
    expect(await fourth).not.toMatchObject({ status: 429 });
  });
});
