// SIGTERM while Temporal hangs: a frozen server keeps its port and answers nothing, so every call
// waits out its own timeout (the workers' goodbye to the server alone took 30 s). The engine must
// be gone within its grace period whatever Temporal does: while running an incident, with alerts
// spooled and still to forward, and while it is still starting.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EngineConfigInput } from '../../config/schema.js';
import { shutdownDeadlineMs } from '../../worker/temporal.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { repoRoot, spawnEngine, writeConfig, type EngineProcess } from '../support/engineProcess.js';
import { bundlePath } from '../support/globalSetup.js';
import { closedPort } from '../support/ports.js';
import { freeze } from '../support/processes.js';
import { until } from '../support/wait.js';
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
  thaw?.();
  await Promise.all(engines.map((e) => e.stop(5_000)));
  await server?.close();
});

/** One target nobody serves (its incident stays open); dry-run, so nothing is touched. */
async function config(taskQueue: string, extra: Partial<EngineConfigInput> = {}): Promise<EngineConfigInput> {
  const health = `http://127.0.0.1:${await closedPort()}/health`;
  return e2eConfigInput({
    temporal: { address: server.address, taskQueue },
    webhook: { listen: '127.0.0.1:0', token },
    dryRun: true,
    targets: {
      ghost: {
        kind: 'container',
        container: 'remediation-e2e-ghost-absent',
        labels: { service: 'ghost' },
        health: { url: health, timeout: '1s' },
      },
    },
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: ['ghost'], runbook: 'serviceDown' }],
    ...extra,
  });
}

/** SIGTERM, and how long until the process was gone (or the limit, if it was not). */
async function sigterm(exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>, kill: () => void, limitMs: number) {
  const t0 = Date.now();
  kill();
  const outcome = await Promise.race([exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), limitMs))]);
  return { outcome, ms: Date.now() - t0 };
}

const grace = shutdownDeadlineMs + 1_000;

/** The shutdown steps the engine gave up waiting for. */
const leftBehind = (output: string) =>
  [...output.matchAll(/"step":"([^"]+)","waitedMs":\d+,"msg":"shutdown step did not finish/g)].map((m) => m[1]!);

describe('SIGTERM while Temporal hangs', () => {
  it('exits within the grace period while an incident runs', async () => {
    const engine = await spawnEngine(await config('shutdown-incident'));
    engines.push(engine);
    const { status } = await postAlerts(engine.webhookUrl, token, [
      { labels: { alertname: 'ServiceDown', service: 'ghost', severity: 'critical' } },
    ]);
    expect(status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_000));
    thaw = freeze(server.dbFile);
    await new Promise((r) => setTimeout(r, 2_000));

    const { outcome, ms } = await sigterm(engine.exited, () => engine.kill('SIGTERM'), 60_000);
    console.log(`exited ${ms} ms after SIGTERM; left behind: ${leftBehind(engine.output()).join(', ') || 'nothing'}`);
    expect(outcome, `still alive ${ms} ms after SIGTERM`).toEqual({ code: 0, signal: null });
    expect(ms).toBeLessThan(grace);
  }, 120_000);

  it('exits within the grace period with spooled alerts it cannot forward', async () => {
    const engine = await spawnEngine(await config('shutdown-spool', { webhook: { listen: '127.0.0.1:0', token, spool: true } }));
    engines.push(engine);
    thaw = freeze(server.dbFile);
    // Each forwarding try now waits out its deadline, and a hundred wait their turn.
    for (let i = 0; i < 100; i++) {
      const { status } = await postAlerts(engine.webhookUrl, token, [
        { labels: { alertname: 'ServiceDown', service: 'ghost' }, fingerprint: `fp-${i}` },
      ]);
      expect(status).toBe(200);
    }

    const { outcome, ms } = await sigterm(engine.exited, () => engine.kill('SIGTERM'), 60_000);
    console.log(`exited ${ms} ms after SIGTERM; left behind: ${leftBehind(engine.output()).join(', ') || 'nothing'}`);
    expect(outcome, `still alive ${ms} ms after SIGTERM`).toEqual({ code: 0, signal: null });
    expect(ms).toBeLessThan(grace);
  }, 120_000);

  it('exits at once when SIGTERMed while still starting', async () => {
    thaw = freeze(server.dbFile);
    const dir = mkdtempSync(join(tmpdir(), 'remediation-e2e-'));
    const file = writeConfig({ ...(await config('shutdown-start')), dataDir: join(dir, 'data') }, dir);
    const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts', '--config', file, 'engine'], {
      cwd: repoRoot,
      env: { ...process.env, REMEDIATION_WORKFLOW_BUNDLE: bundlePath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, signal) => r({ code, signal })),
    );
    // Waiting on the frozen server (the connection attempt gives up after ~20 s).
    await until('the engine to connect to Temporal', 60_000, async () =>
      text.includes('"msg":"connecting to Temporal"') ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 3_000));
    expect(child.exitCode).toBeNull();

    const { outcome, ms } = await sigterm(exited, () => child.kill('SIGTERM'), 60_000);
    if (outcome === 'alive') child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    expect(outcome, `still alive ${ms} ms after SIGTERM:\n${text.slice(-2_000)}`).toEqual({ code: 0, signal: null });
    expect(ms).toBeLessThan(5_000);
    expect(text).toContain('stopped during start-up');
  }, 120_000);
});
