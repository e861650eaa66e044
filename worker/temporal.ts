// How the engine reaches Temporal: a configured cluster (address, namespace, TLS or API key), or an
// embedded dev server whose state lives under the data directory so workflows survive a restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as netConnect } from 'node:net';
import { Connection } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions, type WorkerOptions } from '@temporalio/worker';
import type { EngineConfig } from '../config/schema.js';
import { searchAttributeNames } from '../workflows/messages.js';
import { devServerOwnership, diesWithEngine } from './embeddedServer.js';

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
  // An empty variable is an unset one (compose's `${TEMPORAL_ADDRESS}`, a Kubernetes `value: ""`),
  // as for the operator tools: it must not turn a configured cluster into a private dev server.
  const address = process.env.TEMPORAL_ADDRESS || config.temporal.address;
  const namespace = process.env.TEMPORAL_NAMESPACE || config.temporal.namespace;
  if (address) return { address, namespace, options: connectionOptions(config), stop: async () => {} };
  return startDevServer(config, log);
}

/**
 * Where a host agent finds Temporal: the configured one, else the embedded dev server of an engine
 * on this machine (127.0.0.1 at temporal.port), which the agent waits for and never starts: a
 * server of the agent's own would be one no engine sends work to, and the agent would sit idle.
 */
export function agentEndpoint(config: EngineConfig): TemporalEndpoint & { embedded: boolean } {
  const address = process.env.TEMPORAL_ADDRESS || config.temporal.address;
  const namespace = process.env.TEMPORAL_NAMESPACE || config.temporal.namespace;
  if (address) return { address, namespace, options: connectionOptions(config), embedded: false, stop: async () => {} };
  return { address: `127.0.0.1:${config.temporal.port}`, namespace, options: {}, embedded: true, stop: async () => {} };
}

export function cliPath(): string {
  const candidates = [
    process.env.TEMPORAL_CLI_PATH,
    ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'temporal')),
    join(process.env.REMEDIATION_CACHE ?? join(homedir(), '.cache', 'remediation'), 'bin', 'temporal'),
  ];
  const found = candidates.find((c): c is string => Boolean(c) && existsSync(c!));
  if (!found) {
    throw new Error(
      'no Temporal CLI for the embedded dev server: run "npm start" (it builds one), set TEMPORAL_CLI_PATH, or set temporal.address',
    );
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
  shutdownForceTime: '21s',
} satisfies Partial<WorkerOptions>;

/**
 * How soon an activity's heartbeat details reach the server: the SDK sends the first at once and
 * holds later ones back for 0.8 of the activity's heartbeat timeout (8 s for notify's 10 s), at
 * most `maxHeartbeatThrottleInterval` (60 s by default), or `defaultHeartbeatThrottleInterval`
 * (30 s by default) when it has none. notify records each channel it delivered to in its details,
 * so that a retry skips it; a process killed while one was held back lost that record, and the
 * retry paged the channel a second time. At 1 s that window is a second. A fast activity completes
 * before its held-back heartbeat is due and sends nothing more; a slow one sends at most one a
 * second (ours heartbeat every 2–5 s: activities/limits.ts heartbeating, notify.ts).
 */
export const workerHeartbeats = {
  defaultHeartbeatThrottleInterval: '1s',
  maxHeartbeatThrottleInterval: '1s',
} satisfies Partial<WorkerOptions>;

/**
 * After SIGTERM the process is gone within this, whatever Temporal is doing (down, hung, out of
 * reach): the workers' grace and force times fit inside it, and whatever still waits on Temporal
 * when it runs out is left to Alertmanager's retries, the spool, or another engine.
 */
export const shutdownDeadlineMs = 25_000;

/** How long the embedded server gets to stop on SIGTERM before it is killed. */
const devServerStopMs = 3_000;

/**
 * How every dev server this project starts is tuned (stack/lib/temporal.sh repeats it for the shell):
 * - Activities are handed to the worker in the reply to the workflow task that scheduled them
 *   (eager execution) instead of through the matching service: about 40 ms less per activity.
 * - SQLite in write-ahead-log mode with normal sync: a commit survives the dev server being killed,
 *   and no longer waits for an fsync of the whole database journal.
 */
export const devServerTuning = [
  '--dynamic-config-value',
  'system.enableActivityEagerExecution=true',
  '--sqlite-pragma',
  'journal_mode=wal',
  '--sqlite-pragma',
  'synchronous=normal',
];

/**
 * A dev server's command line: on 127.0.0.1 at `port`, its state in `dbFile`, warnings only, the
 * engine's tuning and search attributes; `more` adds the caller's own flags.
 */
export function devServerArgs(port: number, dbFile: string, more: string[] = []): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    ...more,
    '--db-filename',
    dbFile,
    '--log-level',
    'warn',
    ...devServerTuning,
    ...searchAttributeNames.flatMap((n) => ['--search-attribute', `${n}=Keyword`]),
  ];
}

/**
 * The dev server's state is every incident's history: alert labels, diagnostics, operators' notes.
 * Its folder is the engine user's alone (0700, files 0600), including one an earlier release made 0755.
 */
function privateStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const f of readdirSync(dir, { withFileTypes: true })) if (f.isFile()) chmodSync(join(dir, f.name), 0o600);
}

/** The end of a log, one line, control characters shown as spaces: for an error message on a terminal. */
function lastWords(file: string, bytes = 1_200): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(bytes, size));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      return (
        buf
          .toString('utf8')
          .replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')
          .trim() || '(nothing)'
      );
    } finally {
      closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}

async function startDevServer(config: EngineConfig, log: (msg: string) => void): Promise<TemporalEndpoint> {
  const dir = resolve(config.dataDir, 'temporal');
  privateStateDir(dir);
  const { port, uiPort, namespace } = config.temporal;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  const pidFile = join(dir, 'dev-server.pid');
  const dbFile = join(dir, 'temporal.db');
  // Reused only when it is this engine's own server (its pid file, its data file): one this data
  // directory's engine left running where setpriv is missing, or one a second engine on it runs.
  // Anything else would hold the incidents in state this engine never reads again.
  if (await serving(address)) {
    const owner = devServerOwnership({ pidFile, dbFile, port });
    if (!owner.ours) {
      throw new Error(
        `temporal.port ${port}: ${address} is already served by ${owner.answering}, not by this engine's dev server ` +
          `(pid file ${pidFile}, state ${dbFile}); stop that process, choose another temporal.port, or set temporal.address to use that server on purpose`,
      );
    }
    log(`reusing this engine's Temporal dev server (pid ${owner.pid}) at ${address} (state ${dbFile})`);
    return { address, namespace, options: {}, uiUrl, stop: async () => {} };
  }
  const args = devServerArgs(port, dbFile, [
    '--ui-port',
    String(uiPort),
    '--http-port',
    String(port + 10),
    '--metrics-port',
    String(port + 1),
    '--namespace',
    namespace,
  ]);
  const cli = cliPath();
  // The server dies with the engine, however the engine dies: no orphan keeps the port and the state.
  const command = diesWithEngine(cli, args);
  if (!command) log('no setpriv on this machine: an engine killed with SIGKILL leaves its dev server running (the next start reuses it)');
  const out = openSync(join(dir, 'dev-server.log'), 'a', 0o600);
  // The server creates its database files (and their WAL) with the umask it inherits: owner only.
  const umask = process.umask(0o077);
  let child: ChildProcess;
  try {
    child = spawn(command?.command ?? cli, command?.args ?? args, { stdio: ['ignore', out, out], detached: true });
  } finally {
    process.umask(umask);
  }
  child.unref();
  writeFileSync(pidFile, String(child.pid), { mode: 0o600 });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const running = () => child.exitCode === null && child.signalCode === null;
  // Every other way out of the engine (an exit, a fatal error) takes the server along too.
  const killOnExit = () => void (running() && child.kill('SIGKILL'));
  process.once('exit', killOnExit);
  const deadline = Date.now() + 60_000;
  while (!(await serving(address))) {
    if (!running()) {
      const logFile = join(dir, 'dev-server.log');
      throw new Error(
        `the embedded Temporal dev server exited with ${child.exitCode ?? child.signalCode}; see ${logFile}; it last wrote: ${lastWords(logFile)}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the embedded Temporal dev server did not answer at ${address} within 60s; see ${join(dir, 'dev-server.log')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    address,
    namespace,
    options: {},
    uiUrl,
    stop: async () => {
      process.off('exit', killOnExit);
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), devServerStopMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function connect(endpoint: TemporalEndpoint): Promise<{ native: NativeConnection; client: Connection }> {
  const native = await NativeConnection.connect({ address: endpoint.address, ...endpoint.options });
  try {
    return { native, client: await Connection.connect({ address: endpoint.address, ...endpoint.options }) };
  } catch (err) {
    // A host agent retries this for as long as Temporal is away: no connection left per attempt.
    await native.close().catch(() => {});
    throw err;
  }
}
