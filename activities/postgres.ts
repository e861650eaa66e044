// PostgreSQL as a runbook sees it: is it answering, how full is it, what is stuck, and the two
// maintenance actions an SRE would otherwise type by hand (VACUUM (ANALYZE) or ANALYZE, and pg_dump).
//
// Every call opens its own short-lived connection and closes it: a remediation engine must not
// hold connections on a server that is running out of them, and a pooled connection broken by
// the very outage being remediated would make the next diagnosis lie.
import { execFile } from 'node:child_process';
import { chmod, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { formatDuration } from '../config/duration.js';
import { redact } from '../config/secret.js';
import { authFailed, badInput, classify, failureTypes, operation, targetNotFound, transient, withTimeout } from './failures.js';
import { activitySignal, capText, heartbeating } from './limits.js';
import { exists, sha256Of, utcStamp } from './backupFiles.js';
import { sqlConnection, type SqlConnection, type SqlPing } from './sqlConnection.js';
import { maskSql, statementCap } from './sqlText.js';

export type PgConnection = SqlConnection;
export type PgPing = SqlPing;
export const pgConnection = sqlConnection;

export interface PgConnections {
  /** "active", "idle", "idle in transaction", …; "hidden" for sessions of other users when the
   * configured user lacks pg_read_all_stats (grant pg_monitor to see them). */
  byState: Record<string, number>;
  total: number;
  max: number;
  usedPercent: number;
}

/** The pg_stat_database row of the connected database, counters as numbers. */
export type PgDatabaseStats = Record<string, number | string | null> & { datname: string; numbackends: number };

export interface PgLongQuery {
  pid: number;
  durationS: number;
  state: string;
  user: string;
  query: string;
}

export interface PgVacuumResult {
  dryRun: boolean;
  tables: string[];
  summary: string;
  deadTuplesBefore: number;
  deadTuplesAfter: number;
}

export interface PgBackupResult {
  dryRun: boolean;
  summary: string;
  file?: string;
  bytes?: number;
  sha256?: string;
}

export interface PostgresDeps {
  /** Cap on text and lists returned (queries, warnings). */
  outputBytes: number;
  backupDir: string;
  /** Bound on VACUUM and pg_dump, which legitimately outlast the connection timeout. Default 1h. */
  maintenanceTimeoutMs?: number;
  /** The pg_dump binary; its major version must be at least the server's. */
  pgDumpPath?: string;
}

const kind = 'postgres';
// Read longer than kept: the masked text is shorter than what the server sends.
const queryCap = 2 * statementCap;
const execFileAsync = promisify(execFile);

export function createPostgresActivities(deps: PostgresDeps) {
  const maintenanceMs = deps.maintenanceTimeoutMs ?? 3_600_000;

  async function maintain(
    statement: 'VACUUM (ANALYZE)' | 'ANALYZE',
    conn: PgConnection,
    name: string,
    tables: string[],
    opts: { dryRun: boolean },
  ): Promise<PgVacuumResult> {
    const op = statement === 'ANALYZE' ? 'analyze' : 'vacuum';
    const what = operation(op, kind, name);
    const idents = tables.map((t) => quoteIdent(what, t));
    const subject = idents.length ? idents.join(', ') : 'the whole database';
    return withClient(conn, what, maintenanceMs, async (c) => {
      const oids = await resolveTables(c, what, tables, idents);
      const before = await deadTuples(c, oids);
      if (opts.dryRun) {
        return {
          dryRun: true,
          tables,
          deadTuplesBefore: before,
          deadTuplesAfter: before,
          summary: `would run ${statement} on ${subject} (${before} dead tuples now)`,
        };
      }
      const warnings: string[] = [];
      // Tables the user does not own are skipped with a WARNING, not an error; the operator must hear about it.
      c.on('notice', (n) => warnings.push(n.message ?? ''));
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const started = performance.now();
      const running = c.query(`${statement} ${idents.join(', ')}`);
      await cancelOnAbort(conn, pid, heartbeating(running, { op, target: name }));
      const took = formatDuration(performance.now() - started);
      const notes = warningSummary(warnings, op);
      if (statement === 'ANALYZE') {
        // ANALYZE replaces the dead-tuple count with its own sample's estimate: a before → after would read as a vacuum.
        return {
          dryRun: false,
          tables,
          deadTuplesBefore: before,
          deadTuplesAfter: before,
          summary: `ANALYZE on ${subject} took ${took}; planner statistics refreshed, nothing vacuumed (${before} dead tuples)${notes}`,
        };
      }
      const after = await deadTuples(c, oids);
      return {
        dryRun: false,
        tables,
        deadTuplesBefore: before,
        deadTuplesAfter: after,
        summary: `VACUUM (ANALYZE) on ${subject} took ${took}; dead tuples ${before} → ${after}${notes}`,
      };
    });
  }

  return {
    /** pg_isready, measured: connect and SELECT 1. Refused or slow is an answer (ok: false), not an error. */
    async ping(conn: PgConnection, name: string): Promise<PgPing> {
      const what = operation('ping', kind, name);
      const started = performance.now();
      try {
        await withClient(conn, what, conn.timeoutMs, (c) => c.query('SELECT 1'));
        return { ok: true, latencyMs: elapsed(started) };
      } catch (err) {
        // A wrong password or a missing database will not fix itself; retrying pings would only hide
        // that. A cancellation is not an answer either.
        if (!(err instanceof ApplicationFailure) || err.type !== failureTypes.transient) throw err;
        return { ok: false, latencyMs: elapsed(started), error: err.message };
      }
    },

    async connections(conn: PgConnection, name: string): Promise<PgConnections> {
      const what = operation('connection count', kind, name);
      return withClient(conn, what, conn.timeoutMs, async (c) => {
        const { rows } = await c.query<{ state: string; n: number; max: number }>(
          `SELECT coalesce(state, 'hidden') AS state, count(*)::int AS n,
                  current_setting('max_connections')::int AS max
             FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1`,
        );
        const byState: Record<string, number> = {};
        let total = 0;
        for (const r of rows) {
          byState[r.state] = r.n;
          total += r.n;
        }
        // Never empty: this very session is a client backend.
        const max = rows[0]!.max;
        return { byState, total, max, usedPercent: percent(total, max) };
      });
    },

    async databaseStats(conn: PgConnection, name: string): Promise<PgDatabaseStats> {
      const what = operation('database statistics', kind, name);
      return withClient(conn, what, conn.timeoutMs, async (c) => {
        const res = await c.query('SELECT * FROM pg_stat_database WHERE datname = current_database()');
        const row = res.rows[0] as Record<string, unknown> | undefined;
        if (!row) throw targetNotFound(what, 'the current database has no pg_stat_database row');
        const out: Record<string, number | string | null> = {};
        for (const field of res.fields) out[field.name] = plainValue(row[field.name], field.dataTypeID);
        return out as PgDatabaseStats;
      });
    },

    /** Non-idle client sessions whose current statement started more than olderThanS ago, oldest first; statements without their literals. */
    async longQueries(conn: PgConnection, name: string, olderThanS: number): Promise<PgLongQuery[]> {
      const what = operation('long query scan', kind, name);
      if (!Number.isFinite(olderThanS) || olderThanS < 0)
        throw badInput(what, `olderThanS must be a number of seconds >= 0, got ${olderThanS}`);
      return withClient(conn, what, conn.timeoutMs, async (c) => {
        const { rows } = await c.query<{ pid: number; duration_s: number; state: string; usename: string | null; query: string | null }>(
          `SELECT pid, extract(epoch FROM clock_timestamp() - query_start)::float8 AS duration_s,
                  state, usename, left(query, ${queryCap}) AS query
             FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
              AND state IS NOT NULL AND state <> 'idle'
              AND query_start < clock_timestamp() - make_interval(secs => $1)
            ORDER BY query_start
            LIMIT 200`,
          [olderThanS],
        );
        const found = rows.map((r) => ({
          pid: r.pid,
          durationS: Math.round(r.duration_s * 10) / 10,
          state: r.state,
          user: r.usename ?? '',
          query: maskSql(r.query ?? '', 'postgres'),
        }));
        return withinBytes(found, deps.outputBytes);
      });
    },

    /**
     * VACUUM (ANALYZE) of the named tables, or of the whole database when the list is empty.
     * Names are taken literally ("Orders" is not "orders"), optionally schema-qualified.
     */
    vacuum(conn: PgConnection, name: string, tables: string[], opts: { dryRun: boolean }): Promise<PgVacuumResult> {
      return maintain('VACUUM (ANALYZE)', conn, name, tables, opts);
    },

    /**
     * ANALYZE alone, same table selection as vacuum: fresh planner statistics, nothing vacuumed or
     * rewritten (it still reads a sample of every table and takes the lock VACUUM takes).
     */
    analyze(conn: PgConnection, name: string, tables: string[], opts: { dryRun: boolean }): Promise<PgVacuumResult> {
      return maintain('ANALYZE', conn, name, tables, opts);
    },

    /** pg_dump -Fc into deps.backupDir as <target>-<UTC timestamp>.dump, with its size and sha256. */
    async backup(conn: PgConnection, name: string, opts: { dryRun: boolean }): Promise<PgBackupResult> {
      const what = operation('backup', kind, name);
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) throw badInput(what, 'the target name cannot be used as a file name');
      const database = conn.database ?? conn.user;
      if (!database) throw badInput(what, 'no database configured');
      // libpq reads a --dbname containing "=" or a URI as a whole connection string, which could point pg_dump elsewhere.
      if (database.includes('=') || /^postgres(ql)?:/i.test(database))
        throw badInput(what, `database name '${database}' looks like a connection string`);
      const file = join(deps.backupDir, `${name}-${utcStamp(new Date())}.dump`);
      if (opts.dryRun) return { dryRun: true, summary: `would run pg_dump -Fc of database '${database}' into ${file}` };

      await mkdir(deps.backupDir, { recursive: true, mode: 0o700 });
      if (await exists(file)) throw transient(what, `${file} already exists (another backup in the same second)`);
      const partial = `${file}.partial`;
      // pg_dump creates its file by the umask (0644 as a rule): made here first, the owner's only,
      // so the dump is never readable by others while it is written (pg_dump truncates, keeping the mode).
      await rm(partial, { force: true });
      await writeFile(partial, '', { mode: 0o600, flag: 'wx' });
      const args = [
        '--format=custom',
        `--file=${partial}`,
        `--host=${conn.host}`,
        `--port=${conn.port}`,
        ...(conn.user ? [`--username=${conn.user}`] : []),
        '--no-password',
        `--lock-wait-timeout=${conn.timeoutMs}`,
        `--dbname=${database}`,
      ];
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        LC_ALL: 'C',
        PGAPPNAME: 'remediation-engine',
        PGCONNECT_TIMEOUT: String(Math.max(2, Math.ceil(conn.timeoutMs / 1_000))),
        // The password travels in the environment of the child only: argv is world-readable in /proc.
        ...(conn.password ? { PGPASSWORD: conn.password.reveal() } : {}),
      };
      const started = performance.now();
      try {
        const dump = execFileAsync(deps.pgDumpPath ?? 'pg_dump', args, {
          env,
          timeout: maintenanceMs,
          killSignal: 'SIGTERM',
          signal: activitySignal(),
          maxBuffer: 1_048_576,
          encoding: 'utf8',
        });
        await heartbeating(dump, { op: 'backup', target: name });
        await chmod(partial, 0o600);
        await rename(partial, file);
      } catch (err) {
        await rm(partial, { force: true });
        throw cancelledOr(err) ?? pgDumpFailure(what, err, conn, maintenanceMs);
      }
      const [bytes, sha256] = await Promise.all([stat(file).then((s) => s.size), sha256Of(file, { op: 'backup checksum', target: name })]);
      return {
        dryRun: false,
        file,
        bytes,
        sha256,
        summary: `pg_dump -Fc of database '${database}' wrote ${bytes} bytes to ${file} in ${formatDuration(performance.now() - started)}`,
      };
    },
  };
}

export type PostgresActivities = ReturnType<typeof createPostgresActivities>;

async function withClient<T>(conn: PgConnection, what: string, statementTimeoutMs: number, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password?.reveal(),
    database: conn.database,
    application_name: 'remediation-engine',
    connectionTimeoutMillis: conn.timeoutMs,
    statement_timeout: statementTimeoutMs,
    // Waiting behind someone else's lock would make the engine part of the pile-up it came to clear.
    lock_timeout: conn.timeoutMs,
    // Client-side backstop for a server that stops answering mid-query.
    query_timeout: statementTimeoutMs + 2_000,
  });
  // A connection dropped by the server between queries emits 'error'; unhandled, it would kill the worker.
  client.on('error', () => {});
  try {
    await client.connect();
    return await work(client);
  } catch (err) {
    throw cancelledOr(err) ?? pgFailure(what, err, conn);
  } finally {
    await withTimeout('close', 2_000, client.end()).catch(() => undefined);
  }
}

/** Once the activity is cancelled, its cancellation is the outcome, not whatever the interrupted call threw. */
function cancelledOr(err: unknown): unknown {
  const signal = activitySignal();
  return signal?.aborted ? (signal.reason ?? err) : undefined;
}

function pgFailure(what: string, err: unknown, conn: PgConnection): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const code = (err as { code?: unknown })?.code;
  const message = () =>
    redact(String((err as Error)?.message ?? err), [conn.password])
      .split('\n')[0]!
      .replace(/"/g, "'")
      .slice(0, 500);
  switch (code) {
    case '28P01': // invalid_password
    case '28000': // invalid_authorization_specification (pg_hba rejects)
    case '42501': // insufficient_privilege: waiting will not grant it
      return authFailed(what, message());
    case '3D000': // invalid_catalog_name: no such database
    case '42P01': // undefined_table
      return targetNotFound(what, message());
    default:
      return classify(what, err, [conn.password]);
  }
}

function pgDumpFailure(what: string, err: unknown, conn: PgConnection, timeoutMs: number): ApplicationFailure {
  const e = err as { code?: unknown; killed?: boolean; signal?: string; stderr?: string; name?: string; message?: string };
  if (e.code === 'ENOENT') return targetNotFound(what, 'pg_dump is not installed on this worker (not on PATH)');
  if (e.killed) return transient(what, `pg_dump did not finish within ${formatDuration(timeoutMs)}`);
  if (!e.stderr) return classify(what, err, [conn.password]);
  const lines = redact(e.stderr, [conn.password]).trim().split('\n');
  const text = capText(lines.filter((l) => /error|fatal/i.test(l)).join('; ') || lines.join('; '), 1_000).replace(/"/g, "'");
  if (/password authentication failed|no password supplied|authentication failed/i.test(text)) return authFailed(what, text);
  if (/database '.*' does not exist/.test(text)) return targetNotFound(what, text);
  if (/server version mismatch/.test(text)) return badInput(what, text);
  return transient(what, text);
}

/** Skips for lack of ownership come one per relation (a whole-database VACUUM or ANALYZE by a database owner
 * skips every shared catalog), so they are counted; anything else is quoted. */
function warningSummary(warnings: string[], op: 'vacuum' | 'analyze'): string {
  const skipped: string[] = [];
  const other: string[] = [];
  for (const w of warnings) {
    const m = /^skipping "([^"]+)" --- only .* can (?:vacuum|analyze) it/.exec(w);
    if (m) skipped.push(m[1]!);
    else other.push(w);
  }
  let text = '';
  if (skipped.length) {
    const names = skipped.slice(0, 5).join(', ') + (skipped.length > 5 ? ', …' : '');
    text += `; skipped ${skipped.length} relation(s) this user may not ${op} (${names})`;
  }
  if (other.length) text += `; warnings: ${capText(other.join('; '), 1_000)}`;
  return text;
}

/** A plain identifier, optionally schema-qualified, as a safely double-quoted SQL name. */
function quoteIdent(what: string, table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(p))) {
    throw badInput(what, `'${table.slice(0, 100)}' is not a table name (letters, digits, "_" and "$", optionally "schema.table")`);
  }
  return parts.map((p) => `"${p}"`).join('.');
}

async function resolveTables(c: pg.Client, what: string, tables: string[], idents: string[]): Promise<number[] | undefined> {
  if (!idents.length) return undefined;
  const { rows } = await c.query<{ ident: string; oid: number | null }>(
    'SELECT ident, to_regclass(ident)::oid::int8 AS oid FROM unnest($1::text[]) WITH ORDINALITY AS t(ident, n) ORDER BY n',
    [idents],
  );
  const missing = tables.filter((_, i) => rows[i]?.oid === null);
  if (missing.length) throw targetNotFound(what, `no table ${missing.map((t) => `'${t}'`).join(', ')}`);
  return rows.map((r) => Number(r.oid));
}

/** Dead tuples of the given tables, or of every user table. */
async function deadTuples(c: pg.Client, oids: number[] | undefined): Promise<number> {
  const { rows } = oids
    ? await c.query('SELECT coalesce(sum(n_dead_tup), 0)::float8 AS dead FROM pg_stat_all_tables WHERE relid = ANY($1::oid[])', [oids])
    : await c.query('SELECT coalesce(sum(n_dead_tup), 0)::float8 AS dead FROM pg_stat_user_tables');
  return Number(rows[0].dead);
}

/** The activity's cancellation reaches the server: closing our socket would not stop a running VACUUM or ANALYZE. */
async function cancelOnAbort<T>(conn: PgConnection, pid: number, work: Promise<T>): Promise<T> {
  const signal = activitySignal();
  if (!signal) return work;
  const cancel = () => {
    const c = new pg.Client({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password?.reveal(),
      database: conn.database,
      connectionTimeoutMillis: conn.timeoutMs,
    });
    c.on('error', () => {});
    void c
      .connect()
      .then(() => c.query('SELECT pg_cancel_backend($1)', [pid]))
      .catch(() => undefined)
      .finally(() => c.end().catch(() => undefined));
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await work;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

// OIDs and float types arrive as numbers already; int8 and numeric arrive as strings so they are
// converted here (counters fit a double for centuries); timestamps become ISO text for history.
const numericTypes = new Set([20, 21, 23, 26, 700, 701, 1700]);
function plainValue(value: unknown, typeId: number): number | string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (numericTypes.has(typeId)) return Number(value);
  return String(value);
}

/** Keeps whole entries, oldest first, while their JSON fits the output budget. */
function withinBytes<T>(items: T[], maxBytes: number): T[] {
  const kept: T[] = [];
  let used = 2;
  for (const item of items) {
    used += Buffer.byteLength(JSON.stringify(item)) + 1;
    if (used > maxBytes) break;
    kept.push(item);
  }
  return kept;
}

function percent(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 1_000) / 10 : 0;
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
