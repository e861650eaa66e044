// /readyz's answer without a server: bounded, shared between concurrent probes, cached for a second,
// and a refusal turned into a short reason.
import { describe, expect, it } from 'vitest';
import { cachedReadiness, engineReadiness, type ReadinessCheck } from '../../worker/readiness.js';

function counting(check: ReadinessCheck): { check: ReadinessCheck; calls: () => number } {
  let n = 0;
  return {
    check: (deadline) => {
      n++;
      return check(deadline);
    },
    calls: () => n,
  };
}

const grpcError = (code: number, message: string) => Object.assign(new Error(message), { code });

describe('readiness', () => {
  it('is not ready, saying so, when Temporal does not answer within the bound', async () => {
    const probe = cachedReadiness(() => new Promise(() => {}), { timeoutMs: 200 });
    const t0 = Date.now();
    expect(await probe()).toEqual({ ready: false, reason: 'Temporal did not answer within 200 ms' });
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('hands the check the deadline it must keep', async () => {
    let given = 0;
    const t0 = Date.now();
    await cachedReadiness(async (deadline) => ((given = deadline), { ready: true }), { timeoutMs: 2_000 })();
    expect(given).toBeGreaterThanOrEqual(t0 + 2_000);
    expect(given).toBeLessThan(t0 + 3_000);
  });

  it('asks Temporal once for a flood of probes, and again only once the answer is a second old', async () => {
    const temporal = counting(async () => {
      await new Promise((r) => setTimeout(r, 50));
      return { ready: true };
    });
    const probe = cachedReadiness(temporal.check, { cacheMs: 300 });
    const answers = await Promise.all(Array.from({ length: 500 }, () => probe()));
    expect(answers.every((a) => a.ready)).toBe(true);
    expect(temporal.calls()).toBe(1);
    await probe();
    expect(temporal.calls()).toBe(1);
    await new Promise((r) => setTimeout(r, 350));
    await probe();
    expect(temporal.calls()).toBe(2);
  });

  it('turns a refusal into a short reason', async () => {
    const unavailable = cachedReadiness(async () => {
      throw grpcError(14, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7233\nmore detail');
    });
    expect(await unavailable()).toEqual({
      ready: false,
      reason: 'Temporal is unavailable: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7233',
    });
    // What a cluster answers while its persistence is down.
    const persistence = cachedReadiness(async () => {
      throw grpcError(5, 'Namespace default is not found.');
    });
    expect((await persistence()).reason).toBe(
      'Temporal does not find the namespace (missing, or its persistence is down): Namespace default is not found.',
    );
  });

  it('is not ready while the worker is not running, and logs each change once', async () => {
    let running = true;
    const lines: string[] = [];
    const log = (line: string) => (obj: unknown, msg?: string) =>
      lines.push(`${line} ${typeof obj === 'string' ? obj : `${msg} ${JSON.stringify(obj)}`}`);
    const probe = engineReadiness({
      workerRunning: () => running,
      temporal: async () => ({ ready: true }),
      logger: { info: log('info'), warn: log('warn') } as never,
      cacheMs: 0,
    });
    expect(await probe()).toEqual({ ready: true });
    running = false;
    expect(await probe()).toEqual({ ready: false, reason: 'the worker is not running' });
    await probe();
    running = true;
    await probe();
    expect(lines).toEqual([
      'warn not ready {"reason":"the worker is not running"}',
      'info ready: the worker runs and Temporal answers for the namespace',
    ]);
  });
});
