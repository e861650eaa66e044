// How the engine reaches Temporal: a configured cluster (address, namespace, TLS or API key), or an
// embedded dev server whose state lives under the data directory so workflows survive a restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as netConnect } from 'node:net';
import { Connection } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions, type WorkerOptions } from '@temporalio/worker';
import type { EngineConfig } from '../config/schema.js';
import { searchAttributeNames } from '../workflows/messages.js';

export interface TemporalEndpoint {
  address: string;
  namespace: string;
  options: Pick<NativeConnectionOptions, 'tls' | 'apiKey'>;
  /** Set when the engine started (or reuses) its own dev server. */
  uiUrl?: string;
  stop(): Promise<void>;
}

export function connectionOptions(config: EngineConfig): Pick<NativeConnectionOptions, 'tls' | 'apiKey'> {
  const { tls, apiKey } = config.temporal;
  const options: Pick<NativeConnectionOptions, 'tls' | 'apiKey'> = {};
  if (apiKey) options.apiKey = apiKey.reveal();
  if (tls) {
    options.tls = {
      serverNameOverride: tls.serverName,
      serverRootCACertificate: tls.ca ? Buffer.from(tls.ca.reveal()) : undefined,
      clientCertPair: tls.cert && tls.key ? { crt: Buffer.from(tls.cert.reveal()), key: Buffer.from(tls.key.reveal()) } : undefined,
    };
  } else if (apiKey) {
    options.tls = true; // API keys are only ever sent over TLS.
  }
  return options;
}

export async function temporalEndpoint(config: EngineConfig, log: (msg: string) => void): Promise<TemporalEndpoint> {
  const address = process.env.TEMPORAL_ADDRESS ?? config.temporal.address;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? config.temporal.namespace;
  if (address) return { address, namespace, options: connectionOptions(config), stop: async () => {} };
  return startDevServer(config, log);
}

export function cliPath(): string {
  const candidates = [process.env.TEMPORAL_CLI_PATH, ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'temporal')),
    join(process.env.REMEDIATION_CACHE ?? join(homedir(), '.cache', 'remediation'), 'bin', 'temporal')];
  const found = candidates.find((c): c is string => Boolean(c) && existsSync(c!));
  if (!found) {
    throw new Error('no Temporal CLI for the embedded dev server: run "npm start" (it builds one), set TEMPORAL_CLI_PATH, or set temporal.address');
  }
  return found;
}

/** Something accepts connections at the address. A gRPC probe is not used: the SDK keeps retrying
 * in the background after a failed connect, and a closed channel then throws from a timer. */
export function serving(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolvePromise) => {
    const socket = netConnect({ host, port, timeout: 1_000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** How every worker of this project stops on SIGTERM (the engine's two, the host agent's). */
export const workerShutdown = {
  shutdownGraceTime: '20s',
  // An activity that ignores cancellation must not keep a SIGTERMed process alive for ever: what
  // it was doing is retried elsewhere (restarts and guard calls are bounded and idempotent).
  shutdownForceTime: '40s',
} satisfies Partial<WorkerOptions>;

/**
 * How every dev server this project starts is tuned (stack/lib/temporal.sh repeats it for the shell):
 * - Activities are handed to the worker in the reply to the workflow task that scheduled them
 *   (eager execution) instead of through the matching service: about 40 ms less per activity.
 * - SQLite in write-ahead-log mode with normal sync: a commit survives the dev server being killed,
 *   and no longer waits for an fsync of the whole database journal.
 */
export const devServerTuning = [
  '--dynamic-config-value', 'system.enableActivityEagerExecution=true',
  '--sqlite-pragma', 'journal_mode=wal',
  '--sqlite-pragma', 'synchronous=normal',
];

async function startDevServer(config: EngineConfig, log: (msg: string) => void): Promise<TemporalEndpoint> {
  const dir = resolve(config.dataDir, 'temporal');
  mkdirSync(dir, { recursive: true });
  const { port, uiPort, namespace } = config.temporal;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  const pidFile = join(dir, 'dev-server.pid');
  // After a crash of the engine its dev server keeps running; adopting it keeps every workflow going.
  if (await serving(address)) {
    log(`reusing the Temporal dev server already serving at ${address} (state ${join(dir, 'temporal.db')})`);
    return { address, namespace, options: {}, uiUrl, stop: async () => {} };
  }
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort),
    '--http-port', String(port + 10), '--metrics-port', String(port + 1), '--namespace', namespace,
    '--db-filename', join(dir, 'temporal.db'), '--log-level', 'warn', ...devServerTuning,
    ...searchAttributeNames.flatMap((n) => ['--search-attribute', `${n}=Keyword`])];
  const out = openSync(join(dir, 'dev-server.log'), 'a');
  const child: ChildProcess = spawn(cliPath(), args, { stdio: ['ignore', out, out], detached: true });
  child.unref();
  writeFileSync(pidFile, String(child.pid));
  const deadline = Date.now() + 60_000;
  while (!(await serving(address))) {
    if (child.exitCode !== null) throw new Error(`the embedded Temporal dev server exited with ${child.exitCode}; see ${join(dir, 'dev-server.log')}`);
    if (Date.now() > deadline) throw new Error(`the embedded Temporal dev server did not answer at ${address} within 60s; see ${join(dir, 'dev-server.log')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    address,
    namespace,
    options: {},
    uiUrl,
    stop: async () => {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    },
  };
}

export async function connect(endpoint: TemporalEndpoint): Promise<{ native: NativeConnection; client: Connection }> {
  const native = await NativeConnection.connect({ address: endpoint.address, ...endpoint.options });
  const client = await Connection.connect({ address: endpoint.address, ...endpoint.options });
  return { native, client };
}
