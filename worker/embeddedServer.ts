// Whose Temporal dev server answers on the embedded server's port. The engine reuses a server only
// when it is the one its own pid file names, running on its own data file: a server left behind by
// another engine (another data directory, or a data file since deleted) would hold every incident
// in state nobody will ever find again. Linux /proc tells which process listens, what it runs and
// which files it holds open.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';

export type Ownership = { ours: true; pid: number } | { ours: false; answering: string };

/**
 * Ours: the pid file names a live process that runs the dev server on this port and holds this
 * very data file open (same inode: a deleted file of the same name does not count).
 */
export function devServerOwnership(opts: { pidFile: string; dbFile: string; port: number }): Ownership {
  const recorded = recordedPid(opts.pidFile);
  const args = recorded === undefined ? undefined : commandLine(recorded);
  if (recorded !== undefined && args && runsDevServer(args, opts) && holdsFile(recorded, opts.dbFile)) return { ours: true, pid: recorded };
  return { ours: false, answering: describeListener(opts.port) };
}

/**
 * The dev server's command, wrapped so that the kernel kills it when the engine dies, however it
 * dies (SIGKILL and the OOM killer included): util-linux's setpriv sets PR_SET_PDEATHSIG, which
 * survives the exec. Node has no prctl of its own. Undefined: no setpriv on this machine.
 */
export function diesWithEngine(command: string, args: string[]): { command: string; args: string[] } | undefined {
  const setpriv = [
    '/usr/bin/setpriv',
    '/bin/setpriv',
    ...(process.env.PATH ?? '')
      .split(':')
      .filter(Boolean)
      .map((d) => `${d}/setpriv`),
  ].find((p) => existsSync(p));
  // KILL rather than TERM: the port must be free for the next engine at once, and SQLite in WAL
  // mode keeps every commit through a kill.
  return setpriv ? { command: setpriv, args: ['--pdeathsig', 'KILL', '--', command, ...args] } : undefined;
}

function recordedPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The arguments of a live process; undefined when it is gone or not ours to read. */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

function runsDevServer(args: string[], opts: { dbFile: string; port: number }): boolean {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  return args.includes('start-dev') && value('--port') === String(opts.port) && value('--db-filename') === opts.dbFile;
}

function holdsFile(pid: number, file: string): boolean {
  let want: { ino: number; dev: number };
  let path: string;
  try {
    path = realpathSync(file);
    want = statSync(path);
  } catch {
    return false;
  }
  return openFiles(pid).some((fd) => {
    try {
      // A deleted file reads as "<path> (deleted)"; a new file at the path has another inode.
      if (readlinkSync(fd) !== path) return false;
      const got = statSync(fd);
      return got.ino === want.ino && got.dev === want.dev;
    } catch {
      return false;
    }
  });
}

function openFiles(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => `/proc/${pid}/fd/${fd}`);
  } catch {
    return [];
  }
}

/** What listens on the TCP port, for an operator to recognise: its pid, command and data file. */
export function describeListener(port: number): string {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return 'a process this engine cannot see (another user or network namespace)';
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const fds = openFiles(pid);
    const links = fds.map((fd) => {
      try {
        return readlinkSync(fd);
      } catch {
        return '';
      }
    });
    if (!links.some((l) => inodes.has(l))) continue;
    const args = commandLine(pid) ?? [];
    const command = args.join(' ').slice(0, 200) || 'unknown command';
    const i = args.indexOf('--db-filename');
    const db = i >= 0 ? args[i + 1] : undefined;
    const state =
      db === undefined ? '' : links.includes(`${db} (deleted)`) ? `, whose data file ${db} was deleted` : `, on data file ${db}`;
    return `pid ${pid} (${command}${command.length === 200 ? '…' : ''})${state}`;
  }
  return 'a process this engine cannot see (another user)';
}

/** "socket:[inode]" links of the sockets listening on the port, IPv4 and IPv6. */
function listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
      if (f.length > 9 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '0A') out.add(`socket:[${f[9]}]`);
    }
  }
  return out;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
