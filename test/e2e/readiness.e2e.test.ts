// /readyz against a Temporal that hangs (frozen: it keeps its port and answers nothing) or is gone:
// a bounded 503 within a couple of seconds, for a flood of probes as for one, with or without a
// spool, and ready again once Temporal answers. Against a dev server of the test's own.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { freeze } from '../support/processes.js';
import { eventually } from '../support/wait.js';
import { e2eConfigInput } from './engine.js';

const token = `tok-${randomBytes(12).toString('hex')}`;
let server: DevServer;
const engines: EngineProcess[] = [];
let thaw: (() => void) | undefined;

beforeAll(async () => {
  server = await startDevServer();
});

afterEach(() => {
  thaw?.();
  thaw = undefined;
});

afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop(5_000)));
  await server?.close();
});

async function engine(taskQueue: string, spool: boolean): Promise<EngineProcess> {
  const e = await spawnEngine(
    e2eConfigInput({ temporal: { address: server.address, taskQueue }, webhook: { listen: '127.0.0.1:0', token, spool } }),
  );
  engines.push(e);
  return e;
}

/** The status /readyz answers and how long it took; 0 when it did not answer within 10 s. */
async function readyz(e: EngineProcess): Promise<{ status: number; ms: number; reason?: string }> {
  const t0 = Date.now();
  try {
    const res = await fetch(`${e.webhookUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json().catch(() => ({}))) as { reason?: string };
    return { status: res.status, ms: Date.now() - t0, ...(body.reason ? { reason: body.reason } : {}) };
  } catch {
    return { status: 0, ms: Date.now() - t0 };
  }
}

describe('/readyz', () => {
  for (const spool of [false, true]) {
    it(`answers 503 within its bound while Temporal hangs, and 200 once it answers again (spool ${spool ? 'on' : 'off'})`, async () => {
      const e = await engine(`readyz-${spool ? 'spool' : 'direct'}`, spool);
      expect((await readyz(e)).status).toBe(200);

      thaw = freeze(server.dbFile);
      // Past the cached answer, then a flood of probes: each answered, none waiting on Temporal.
      await new Promise((r) => setTimeout(r, 1_500));
      const answers = await Promise.all(Array.from({ length: 50 }, () => readyz(e)));
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 503));
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(3_500);
      // The log says why (it may reach us after the answers do).
      const notReady = () =>
        e
          .output()
          .split('\n')
          .filter((l) => l.includes('"msg":"not ready"'));
      expect(
        (
          await eventually(
            async () => notReady(),
            (lines) => lines.length > 0,
            5_000,
          )
        ).join('\n'),
      ).toMatch(/"reason":"Temporal /);

      thaw();
      thaw = undefined;
      expect(
        (
          await eventually(
            () => readyz(e),
            (a) => a.status === 200,
            30_000,
          )
        ).status,
      ).toBe(200);
    }, 120_000);
  }

  it('answers 503 while Temporal is down, and 200 once it is back', async () => {
    const e = await engine('readyz-down', false);
    expect((await readyz(e)).status).toBe(200);
    await server.stop('SIGKILL');
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      const down = await readyz(e);
      expect(down.status).toBe(503);
      expect(down.ms).toBeLessThan(3_500);
      // The answer says why, so whoever probes it need not read the engine's log.
      expect(down.reason).toMatch(/Temporal/);
    } finally {
      await server.start();
    }
    expect(
      (
        await eventually(
          () => readyz(e),
          (a) => a.status === 200,
          30_000,
        )
      ).status,
    ).toBe(200);
  }, 120_000);
});
