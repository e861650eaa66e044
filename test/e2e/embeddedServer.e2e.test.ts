// The embedded Temporal dev server (no temporal.address): it dies with the engine that started it,
// even a SIGKILLed one, and an engine reuses a server on its port only when it is its own (its pid
// file, its data file). Anything else answering there, such as a server another engine left behind
// on another data file or on a file since deleted, is refused with a message naming the port and
// the process; adopting it would keep every incident in state nobody reads again.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineConfigInput } from '../../config/schema.js';
import { cliPath, devServerArgs, serving } from '../../worker/temporal.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { reservedDevServerPort, reservedPort } from '../support/ports.js';
import { alive, pidRunning } from '../support/processes.js';
import { until } from '../support/wait.js';
import { e2eConfigInput } from './engine.js';

const token = `tok-${randomBytes(12).toString('hex')}`;
const engines: EngineProcess[] = [];
const servers: DevServer[] = [];
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop(5_000)));
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** An engine on an embedded dev server at `port` (none configured, none in the environment). */
async function embedded(port: number, dataDir: string, extra: Partial<EngineConfigInput> = {}) {
  const input = e2eConfigInput({ webhook: { listen: '127.0.0.1:0', token }, ...extra });
  const engine = spawnEngine(
    { ...input, temporal: { taskQueue: 'embedded-server', port, uiPort: await reservedPort() }, dataDir },
    { env: { TEMPORAL_ADDRESS: '' } },
  );
  void engine.then(
    (e) => engines.push(e),
    () => {},
  );
  return engine;
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'remediation-embedded-'));
  dirs.push(dir);
  return join(dir, 'data');
}

/** A dev server started the way an engine starts one, on `dataDir`'s data file, with its pid file. */
async function serverAsAnEngineLeftIt(dataDir: string, port: number): Promise<{ pid: number; dbFile: string }> {
  const dir = join(dataDir, 'temporal');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dbFile = join(dir, 'temporal.db');
  const child = spawn(cliPath(), devServerArgs(port, dbFile, ['--headless']), { stdio: 'ignore' });
  children.push(child);
  writeFileSync(join(dir, 'dev-server.pid'), String(child.pid));
  await until(`a dev server at 127.0.0.1:${port}`, 60_000, async () => ((await serving(`127.0.0.1:${port}`)) ? true : undefined));
  return { pid: child.pid!, dbFile };
}

describe('the embedded Temporal dev server', () => {
  it('dies with the engine, even when the engine is killed with SIGKILL', async () => {
    const port = await reservedDevServerPort();
    const data = dataDir();
    const engine = await embedded(port, data);
    const pid = Number(readFileSync(join(data, 'temporal', 'dev-server.pid'), 'utf8'));
    expect(alive(pid)).toBe(true);

    engine.kill('SIGKILL');
    await engine.exited;
    await until(`the dev server (pid ${pid}) to die with its engine`, 10_000, async () => (alive(pid) ? undefined : true));
    // Nothing else runs on its state either. (Its port is free, and may already be another test's.)
    expect(pidRunning(join(data, 'temporal', 'temporal.db'))).toBeUndefined();
  }, 120_000);

  it('refuses a server on its port running another data file, naming the port and the process', async () => {
    const foreign = await startDevServer();
    servers.push(foreign);
    const port = Number(foreign.address.split(':')[1]);
    const pid = pidRunning(foreign.dbFile)!;

    const refused = await embedded(port, dataDir()).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(refused).toContain(`temporal.port ${port}: 127.0.0.1:${port} is already served by pid ${pid}`);
    expect(refused).toContain(foreign.dbFile);
    expect(refused).toContain("not by this engine's dev server");
  }, 120_000);

  it('refuses the server a killed engine left on this data directory once its data file was deleted', async () => {
    const port = await reservedPort();
    const data = dataDir();
    const orphan = await serverAsAnEngineLeftIt(data, port);
    // The state directory cleaned up under the orphan: it serves from a file that no longer exists.
    rmSync(orphan.dbFile);

    const refused = await embedded(port, data).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(refused).toContain(`127.0.0.1:${port} is already served by pid ${orphan.pid}`);
    expect(refused).toContain(`whose data file ${orphan.dbFile} was deleted`);
  }, 120_000);

  it('reuses its own server: the one its pid file names, on its data file', async () => {
    const port = await reservedPort();
    const data = dataDir();
    const own = await serverAsAnEngineLeftIt(data, port);

    const engine = await embedded(port, data);
    expect(engine.output()).toContain(`reusing this engine's Temporal dev server (pid ${own.pid}) at 127.0.0.1:${port}`);
  }, 120_000);
});
