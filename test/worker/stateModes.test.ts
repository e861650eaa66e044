// The embedded Temporal server's state is every incident's history (labels, diagnostics, notes):
// its folder is the engine user's alone, and so are its files, also when an earlier release left
// them readable by everyone.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { temporalEndpoint, type TemporalEndpoint } from '../../worker/temporal.js';
import { reservedDevServerPort, reservedPort } from '../support/ports.js';
import { until } from '../support/wait.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('which Temporal', () => {
  it('takes an empty TEMPORAL_ADDRESS or TEMPORAL_NAMESPACE as unset: the configured cluster, not a dev server of its own', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'remediation-which-'));
    const config = parseConfig({
      // Where a wrongly started dev server would keep its state: not the checkout.
      dataDir: scratch,
      temporal: { address: 'temporal-frontend.internal:7233', namespace: 'prod' },
      webhook: { listen: '127.0.0.1:0', token: 'tok-state-modes-0123' },
      targets: {},
      escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
      channels: { log: { type: 'log' } },
    });
    const before = { address: process.env.TEMPORAL_ADDRESS, namespace: process.env.TEMPORAL_NAMESPACE };
    process.env.TEMPORAL_ADDRESS = '';
    process.env.TEMPORAL_NAMESPACE = '';
    let endpoint: TemporalEndpoint | undefined;
    try {
      endpoint = await temporalEndpoint(config, () => {});
      expect({ address: endpoint.address, namespace: endpoint.namespace, embedded: endpoint.uiUrl !== undefined }).toEqual({
        address: 'temporal-frontend.internal:7233',
        namespace: 'prod',
        embedded: false,
      });
    } finally {
      await endpoint?.stop();
      rmSync(scratch, { recursive: true, force: true });
      for (const [key, value] of [
        ['TEMPORAL_ADDRESS', before.address],
        ['TEMPORAL_NAMESPACE', before.namespace],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('embedded Temporal state on disk', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'remediation-state-'));
  let endpoint: TemporalEndpoint | undefined;

  afterAll(async () => {
    const pidFile = join(dataDir, 'temporal', 'dev-server.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    await endpoint?.stop();
    if (pid > 0) {
      await until('the dev server to exit', 30_000, async () => {
        try {
          process.kill(pid, 0);
          return undefined;
        } catch {
          return true;
        }
      }).catch(() => process.kill(pid, 'SIGKILL'));
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is created 0700 with files 0600, and a folder an earlier release made 0755 is closed', async () => {
    // What an earlier release left: a world-readable folder and log.
    const dir = join(dataDir, 'temporal');
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'dev-server.log'), 'old log\n', { mode: 0o644 });
    chmodSync(join(dir, 'dev-server.log'), 0o644);

    const port = await reservedDevServerPort();
    const uiPort = await reservedPort();
    const config = parseConfig({
      dataDir,
      temporal: { port, uiPort },
      webhook: { listen: '127.0.0.1:0', token: 'tok-state-modes-0123' },
      targets: {},
      escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
      channels: { log: { type: 'log' } },
    });
    const configured = process.env.TEMPORAL_ADDRESS;
    delete process.env.TEMPORAL_ADDRESS;
    try {
      endpoint = await temporalEndpoint(config, () => {});
    } finally {
      if (configured !== undefined) process.env.TEMPORAL_ADDRESS = configured;
    }
    expect(endpoint.address).toBe(`127.0.0.1:${port}`);

    expect(mode(dir)).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toEqual(expect.arrayContaining(['temporal.db', 'dev-server.log', 'dev-server.pid']));
    for (const f of files) expect(`${f} ${mode(join(dir, f)).toString(8)}`).toBe(`${f} 600`);
  });
});
