// A Temporal dev server of a test's own, persisted to a SQLite file, so the test can stop and start
// it again (same ports, same file) without touching the stack's server that everyone else uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, devServerArgs, serving } from '../../worker/temporal.js';
import { reservedPort } from './ports.js';
import { until } from './wait.js';

export interface DevServer {
  /** 127.0.0.1:<port> of the frontend. */
  address: string;
  /** The only namespace it has (the stack's cluster uses another). */
  namespace: 'default';
  dbFile: string;
  /** Starts the server (again) on the same ports and file; resolves once it answers. */
  start(): Promise<void>;
  /** Sends the signal and waits for the process to exit (SIGKILL after graceMs). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** Everything the server wrote, across all its starts. */
  output(): string;
  /** Stops it and deletes its state. */
  close(): Promise<void>;
}

export async function startDevServer(): Promise<DevServer> {
  const dir = mkdtempSync(join(tmpdir(), 'remediation-devserver-'));
  const dbFile = join(dir, 'temporal.db');
  const port = await reservedPort();
  // Headless: a UI nobody looks at costs CPU on a small machine. Only the frontend's port is ours
  // (clients must find it again after a restart). Every other port (HTTP, metrics, history,
  // matching, worker) the CLI picks at each start: it reserves its picks in TIME_WAIT, so they never
  // collide with each other, whereas a port chosen here and left unbound until the server binds it
  // was once handed to the history service on a restart, which then could not start.
  const args = devServerArgs(port, dbFile, ['--headless']);
  let text = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const server: DevServer = {
    address: `127.0.0.1:${port}`,
    namespace: 'default',
    dbFile,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) throw new Error('the dev server is already running');
      const proc = spawn(cliPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      proc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (text += d.toString()));
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      await until(`the test's Temporal dev server at 127.0.0.1:${port}`, 60_000, async () => {
        if (proc.exitCode !== null) throw new Error(`it exited with ${proc.exitCode}: ${text.slice(-2_000)}`);
        return (await serving(`127.0.0.1:${port}`)) ? true : undefined;
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 20_000) {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    output: () => text,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
