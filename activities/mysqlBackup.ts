// A MySQL / MariaDB backup with mysqldump (mariadb-dump where only that name exists): one consistent
// dump of the target's database (`--single-transaction`, so InnoDB tables are not locked), with its
// routines and triggers, into backupDir as <target>-<UTC time>.sql, mode 0600, with its size and
// sha256. It restores with `mysql <scratch database> < file`: no CREATE DATABASE or USE inside.
//
// The password reaches the child in a defaults-extra-file (0600, in a 0700 directory of its own,
// removed afterwards), never in argv (world-readable in /proc) nor in this process's messages.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ApplicationFailure } from '@temporalio/common';
import { formatDuration } from '../config/duration.js';
import { redact } from '../config/secret.js';
import { authFailed, badInput, classify, operation, targetNotFound, transient } from './failures.js';
import { activitySignal, capText, heartbeating } from './limits.js';
import { exists, sha256Of, utcStamp } from './backupFiles.js';
import { accountRefused } from './mysqlAccounts.js';
import type { SqlConnection } from './sqlConnection.js';

export interface MysqlBackupDeps {
  backupDir: string;
  /** Bound on the dump. Default 1h. */
  timeoutMs?: number;
  /** The dump program; default mysqldump, then mariadb-dump. */
  dumpPath?: string;
}

export interface MysqlBackupResult {
  dryRun: boolean;
  summary: string;
  file?: string;
  bytes?: number;
  sha256?: string;
}

const kind = 'mysql';
const execFileAsync = promisify(execFile);

export function createMysqlBackup(deps: MysqlBackupDeps) {
  const timeoutMs = deps.timeoutMs ?? 3_600_000;
  const programs = deps.dumpPath ? [deps.dumpPath] : ['mysqldump', 'mariadb-dump'];

  return async function backup(conn: SqlConnection, name: string, opts: { dryRun: boolean }): Promise<MysqlBackupResult> {
    const what = operation('backup', kind, name);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) throw badInput(what, 'the target name cannot be used as a file name');
    const database = conn.database;
    if (!database) throw badInput(what, 'no database configured');
    // It ends up in argv: a name that could read as an option, or a path, is no database name.
    if (!/^[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}$/.test(database))
      throw badInput(what, `'${database.slice(0, 80)}' is not a plain database name`);
    const file = join(deps.backupDir, `${name}-${utcStamp(new Date())}.sql`);
    if (opts.dryRun) return { dryRun: true, summary: `would run mysqldump --single-transaction of database '${database}' into ${file}` };

    await mkdir(deps.backupDir, { recursive: true, mode: 0o700 });
    if (await exists(file)) throw transient(what, `${file} already exists (another backup in the same second)`);
    const partial = `${file}.partial`;
    const secretDir = await mkdtemp(join(tmpdir(), 'remediation-mysqldump-'));
    const started = performance.now();
    try {
      const defaults = join(secretDir, 'client.cnf');
      await writeFile(defaults, optionFile(conn), { mode: 0o600, flag: 'wx' });
      // Made first, so that the dump is never readable by others, not even while it is written.
      await writeFile(partial, '', { mode: 0o600, flag: 'w' });
      const args = [
        // Must come first, or the client ignores it.
        `--defaults-extra-file=${defaults}`,
        '--protocol=TCP',
        `--host=${conn.host}`,
        `--port=${conn.port}`,
        ...(conn.user ? [`--user=${conn.user}`] : []),
        '--single-transaction',
        '--quick',
        '--routines',
        '--triggers',
        '--hex-blob',
        '--no-tablespaces',
        '--default-character-set=utf8mb4',
        `--result-file=${partial}`,
        '--',
        database,
      ];
      await heartbeating(dump(programs, args, timeoutMs), { op: 'backup', target: name });
      await rename(partial, file);
    } catch (err) {
      await rm(partial, { force: true });
      const signal = activitySignal();
      if (signal?.aborted) throw signal.reason ?? err;
      throw dumpFailure(what, err, conn, timeoutMs);
    } finally {
      await rm(secretDir, { recursive: true, force: true });
    }
    const [bytes, sha256] = await Promise.all([stat(file).then((s) => s.size), sha256Of(file, { op: 'backup checksum', target: name })]);
    return {
      dryRun: false,
      file,
      bytes,
      sha256,
      summary: `mysqldump of database '${database}' wrote ${bytes} bytes to ${file} in ${formatDuration(performance.now() - started)} (sha256 ${sha256.slice(0, 12)}…)`,
    };
  };

  async function dump(candidates: string[], args: string[], ms: number): Promise<void> {
    for (const [i, program] of candidates.entries()) {
      try {
        await execFileAsync(program, args, {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
          timeout: ms,
          killSignal: 'SIGTERM',
          signal: activitySignal(),
          // The dump goes to --result-file; what is printed is warnings and errors.
          maxBuffer: 1_048_576,
          encoding: 'utf8',
        });
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code === 'ENOENT' && i < candidates.length - 1) continue;
        throw err;
      }
    }
  }
}

export type MysqlBackup = ReturnType<typeof createMysqlBackup>;

/** The [client] group the dump program reads (it knows no connect timeout: the dump's own bound covers a silent server). */
function optionFile(conn: SqlConnection): string {
  const lines = ['[client]'];
  if (conn.password) lines.push(`password="${escapeOption(conn.password.reveal())}"`);
  return `${lines.join('\n')}\n`;
}

/** Inside double quotes an option value may hold anything; backslash escapes what would end or bend it. */
function escapeOption(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

function dumpFailure(what: string, err: unknown, conn: SqlConnection, timeoutMs: number): ApplicationFailure {
  const e = err as { code?: unknown; killed?: boolean; signal?: string; stderr?: string };
  if (e.code === 'ENOENT') return targetNotFound(what, 'neither mysqldump nor mariadb-dump is installed on this worker (not on PATH)');
  if (e.killed || e.signal === 'SIGTERM') return transient(what, `mysqldump did not finish within ${formatDuration(timeoutMs)}`);
  if (!e.stderr) return classify(what, err, [conn.password]);
  const lines = redact(e.stderr, [conn.password]).trim().split('\n');
  const text = capText(lines.filter((l) => /error|fatal|got/i.test(l)).join('; ') || lines.join('; '), 1_000).replace(/"/g, "'");
  // The dump program prints the server's error number ("Got error: 1820: ...", "... (1226)"): the
  // account faults the other MySQL activities name (expired, locked, host refused, its own limits)
  // are no more transient here, and a retry would only knock again.
  const errno = Number(/Got error: (\d{4}):/.exec(text)?.[1] ?? /\((\d{4})\)/.exec(text)?.[1]);
  const refused = accountRefused(errno, text, conn.user);
  if (refused) return authFailed(what, refused);
  if (/access denied/i.test(text)) return authFailed(what, text);
  if (/unknown database/i.test(text)) return targetNotFound(what, text);
  return transient(what, text);
}
