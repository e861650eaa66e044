// MySQL / MariaDB as a runbook sees it: is it answering, how many threads, what is stuck, the
// last deadlock, and OPTIMIZE / ANALYZE TABLE for maintenance windows.
//
// One short-lived connection per call, always closed: the server may be out of connections,
// which is often the very thing being remediated.
import { ApplicationFailure } from '@temporalio/common';
import mysql from 'mysql2/promise';
import { formatDuration } from '../config/duration.js';
import { redact } from '../config/secret.js';
import { authFailed, badInput, classify, failureTypes, operation, targetNotFound, transient, withTimeout } from './failures.js';
import { activityInfo, activitySignal, capText, heartbeatNow, heartbeating } from './limits.js';
import { sqlConnection, type SqlConnection, type SqlPing } from './sqlConnection.js';
import { maskDeadlockReport, maskSql, statementCap } from './sqlText.js';
import { accountRefused } from './mysqlAccounts.js';
import { createMysqlBackup, type MysqlBackup } from './mysqlBackup.js';

export type MysqlConnection = SqlConnection;
export type MysqlPing = SqlPing;
export const mysqlConnection = sqlConnection;

export interface MysqlThreads {
  threadsConnected: number;
  maxConnections: number;
  usedPercent: number;
}

export interface MysqlThread {
  id: number;
  user: string;
  db: string | null;
  command: string;
  timeS: number;
  state: string | null;
  info: string | null;
}

export interface MysqlProcesslist {
  /** Threads visible to the configured user (all of them with the PROCESS privilege), ours excluded. */
  total: number;
  byCommand: Record<string, number>;
  byUser: Record<string, number>;
  /** Statements running for at least olderThanS, longest first; idle connections are not listed. */
  long: MysqlThread[];
}

export interface MysqlTableMessage {
  table: string;
  op: string;
  msgType: string;
  msgText: string;
}

export interface MysqlMaintenanceResult {
  dryRun: boolean;
  tables: string[];
  /** False when the server reported an error for any table. */
  ok: boolean;
  rows: MysqlTableMessage[];
  summary: string;
}

export interface MysqlDeadlock {
  found: boolean;
  text?: string;
}

export interface MysqlDeps {
  /** Cap on text and lists returned (processlist, deadlock report). */
  outputBytes: number;
  /** Bound on OPTIMIZE / ANALYZE TABLE, which may rebuild a table, and on a backup. Default 1h. */
  maintenanceTimeoutMs?: number;
  /** Where backups are written (mysqldump); unset: backups are refused. */
  backupDir?: string;
}

const kind = 'mysql';
// Read longer than kept: the masked text is shorter than what the server sends.
const infoCap = 2 * statementCap;
// Threads that are connected but not running a statement; "long" means a statement that runs long.
const notRunning = new Set(['Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Slave_IO', 'Slave_SQL', 'Slave_worker']);

const retryableTableError = /lock wait timeout|deadlock found|query execution was interrupted|max_statement_time exceeded/i;

export function createMysqlActivities(deps: MysqlDeps) {
  const maintenanceMs = deps.maintenanceTimeoutMs ?? 3_600_000;
  const backup: MysqlBackup = deps.backupDir
    ? createMysqlBackup({ backupDir: deps.backupDir, timeoutMs: maintenanceMs })
    : async (_conn, name) => {
        throw badInput(operation('backup', kind, name), 'no backup directory configured for this worker');
      };

  async function maintain(
    op: 'OPTIMIZE' | 'ANALYZE',
    conn: MysqlConnection,
    name: string,
    tables: string[],
    opts: { dryRun: boolean },
  ): Promise<MysqlMaintenanceResult> {
    const what = operation(op.toLowerCase(), kind, name);
    // Refused before connecting: a bad name is a config error, not something to try on the server.
    for (const t of tables) quoteIdent(what, t);
    return withConnection(conn, what, maintenanceMs, async (c) => {
      // Bounded like the ordinary calls, not by the maintenance timeout: a server that hangs after the
      // login must not hold the call (and its connection) for an hour before the first heartbeat.
      const setup: Setup = { conn, c };
      const targets = tables.length ? await checkTables(setup, what, tables) : await allTables(setup, what);
      const names = targets.map((t) => t.name);
      if (!targets.length) return { dryRun: opts.dryRun, tables: [], ok: true, rows: [], summary: 'no tables to maintain' };
      if (opts.dryRun) return { dryRun: true, tables: names, ok: true, rows: [], summary: `would run ${op} TABLE on ${names.join(', ')}` };
      const started = performance.now();
      const deadline = Date.now() + maintenanceMs;
      // Table by table (as the server runs a list anyway), heartbeating the ones done: a retry, after
      // a lock wait or a lost connection, skips what the last heartbeat that reached Temporal says
      // was done. Heartbeats reach Temporal within a second (worker/temporal.ts): after a worker
      // died, only tables finished in its last second run again.
      const progress = attemptProgress(name);
      const key = op === 'OPTIMIZE' ? 'optimize' : 'analyze';
      const done = (progress.done[key] ??= []);
      const before = new Set(done);
      const todo = targets.filter((t) => !before.has(t.name));
      const rows: MysqlMaintenanceResult['rows'] = [];
      const signal = activitySignal();
      for (const t of todo) {
        // Given up between two tables: the next is not begun.
        if (signal?.aborted) throw signal.reason;
        const running = c.query({ sql: `${op} TABLE ${t.quoted}`, timeout: Math.max(1_000, deadline - Date.now()) + 2_000 });
        const [result] = await stoppedOnGiveUp(conn, c, heartbeating(running, progress));
        const own = (result as Array<Record<string, unknown>>).map((r) => ({
          table: String(r.Table),
          op: String(r.Op),
          msgType: String(r.Msg_type),
          msgText: capText(String(r.Msg_text ?? ''), statementCap),
        }));
        rows.push(...own);
        if (!own.some((r) => r.msgType.toLowerCase() === 'error')) {
          done.push(t.name);
          heartbeatNow(progress);
        }
      }
      const errors = rows.filter((r) => r.msgType.toLowerCase() === 'error');
      const took = formatDuration(performance.now() - started);
      const listed = capText(errors.map((e) => `${e.table}: ${e.msgText}`).join('; '), 1_000);
      // The server reports these as rows, not errors; they are the ones waiting can cure.
      if (errors.some((e) => retryableTableError.test(e.msgText))) throw transient(what, listed);
      const earlier = before.size ? ` (${names.filter((n) => before.has(n)).join(', ')} done by an earlier attempt)` : '';
      return {
        dryRun: false,
        tables: names,
        ok: errors.length === 0,
        rows: withinBytes(rows, deps.outputBytes),
        summary: errors.length
          ? `${op} TABLE on ${todo.length} table(s) took ${took}; errors: ${listed}${earlier}`
          : `${op} TABLE on ${todo.map((t) => t.name).join(', ') || 'no table'} took ${took}: ok${earlier}`,
      };
    });
  }

  return {
    /** mysqldump of the configured database into the backup directory, with its size and sha256 (activities/mysqlBackup.ts). */
    backup,

    /** Connect and SELECT 1, measured. Unreachable or slow is an answer (ok: false), not an error. */
    async ping(conn: MysqlConnection, name: string): Promise<MysqlPing> {
      const what = operation('ping', kind, name);
      const started = performance.now();
      try {
        await withConnection(conn, what, conn.timeoutMs, (c) => c.query({ sql: 'SELECT 1', timeout: conn.timeoutMs }));
        return { ok: true, latencyMs: elapsed(started) };
      } catch (err) {
        // An account the server refuses (wrong password, expired, locked, over its own limits) or a
        // missing database says nothing of whether the server is up: reported as ok:false, it would
        // have a runbook restart a healthy database. It fails, naming what to fix, and is not retried.
        if (!(err instanceof ApplicationFailure) || err.type !== failureTypes.transient) throw err;
        return { ok: false, latencyMs: elapsed(started), error: err.message };
      }
    },

    async threads(conn: MysqlConnection, name: string): Promise<MysqlThreads> {
      const what = operation('thread count', kind, name);
      return withConnection(conn, what, conn.timeoutMs, async (c) => {
        const [status] = await c.query({ sql: "SHOW GLOBAL STATUS LIKE 'Threads_connected'", timeout: conn.timeoutMs });
        const [vars] = await c.query({ sql: 'SELECT @@GLOBAL.max_connections AS max', timeout: conn.timeoutMs });
        const threadsConnected = Number((status as Array<{ Value: string }>)[0]?.Value ?? NaN);
        const maxConnections = Number((vars as Array<{ max: number }>)[0]?.max ?? NaN);
        return {
          threadsConnected,
          maxConnections,
          usedPercent: maxConnections > 0 ? Math.round((threadsConnected / maxConnections) * 1_000) / 10 : 0,
        };
      });
    },

    async processlist(conn: MysqlConnection, name: string, olderThanS: number): Promise<MysqlProcesslist> {
      const what = operation('processlist', kind, name);
      if (!Number.isFinite(olderThanS) || olderThanS < 0)
        throw badInput(what, `olderThanS must be a number of seconds >= 0, got ${olderThanS}`);
      return withConnection(conn, what, conn.timeoutMs, async (c) => {
        const [result] = await c.query({
          sql: `SELECT ID AS id, USER AS user, DB AS db, COMMAND AS command, TIME AS timeS, STATE AS state,
                       LEFT(INFO, ${infoCap}) AS info
                  FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() ORDER BY TIME DESC`,
          timeout: conn.timeoutMs,
        });
        const threads = (result as Array<Record<string, unknown>>).map((r) => ({
          id: Number(r.id),
          user: String(r.user ?? ''),
          db: r.db == null ? null : String(r.db),
          command: String(r.command ?? ''),
          timeS: Number(r.timeS),
          state: r.state == null || r.state === '' ? null : String(r.state),
          info: r.info == null ? null : maskSql(String(r.info), 'mysql'),
        }));
        const byCommand: Record<string, number> = {};
        const byUser: Record<string, number> = {};
        for (const t of threads) {
          byCommand[t.command] = (byCommand[t.command] ?? 0) + 1;
          byUser[t.user] = (byUser[t.user] ?? 0) + 1;
        }
        const long = threads.filter((t) => !notRunning.has(t.command) && t.user !== 'system user' && t.timeS >= olderThanS);
        return { total: threads.length, byCommand, byUser, long: withinBytes(long, deps.outputBytes) };
      });
    },

    /** OPTIMIZE TABLE of the named tables, or of every base table of the configured database when the list is empty. */
    optimize(conn: MysqlConnection, name: string, tables: string[], opts: { dryRun: boolean }): Promise<MysqlMaintenanceResult> {
      return maintain('OPTIMIZE', conn, name, tables, opts);
    },

    /** ANALYZE TABLE, same table selection as optimize. */
    analyze(conn: MysqlConnection, name: string, tables: string[], opts: { dryRun: boolean }): Promise<MysqlMaintenanceResult> {
      return maintain('ANALYZE', conn, name, tables, opts);
    },

    /** The LATEST DETECTED DEADLOCK section of SHOW ENGINE INNODB STATUS (needs the PROCESS privilege). */
    async latestDeadlock(conn: MysqlConnection, name: string): Promise<MysqlDeadlock> {
      const what = operation('deadlock report', kind, name);
      return withConnection(conn, what, conn.timeoutMs, async (c) => {
        const [result] = await c.query({ sql: 'SHOW ENGINE INNODB STATUS', timeout: conn.timeoutMs });
        const status = String((result as Array<{ Status?: string }>)[0]?.Status ?? '');
        const text = deadlockSection(status);
        return text === undefined ? { found: false } : { found: true, text: capText(maskDeadlockReport(text), deps.outputBytes) };
      });
    },
  };
}

export type MysqlActivities = ReturnType<typeof createMysqlActivities>;

/** The report sits between its own header and the next "----\nHEADER\n----" block. */
export function deadlockSection(status: string): string | undefined {
  const lines = status.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'LATEST DETECTED DEADLOCK');
  if (start < 0) return undefined;
  const body = start + 2;
  let end = lines.length;
  for (let i = body; i + 2 < lines.length; i++) {
    if (/^-{3,}$/.test(lines[i]!.trim()) && /^[A-Z][A-Z /]+$/.test(lines[i + 1]!.trim()) && /^-{3,}$/.test(lines[i + 2]!.trim())) {
      end = i;
      break;
    }
  }
  return lines.slice(body, end).join('\n').trim();
}

async function withConnection<T>(
  conn: MysqlConnection,
  what: string,
  statementTimeoutMs: number,
  work: (c: mysql.Connection) => Promise<T>,
): Promise<T> {
  let c: mysql.Connection | undefined;
  let timedOut = false;
  try {
    c = await mysql.createConnection({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password?.reveal(),
      database: conn.database,
      connectTimeout: conn.timeoutMs,
      multipleStatements: false,
      supportBigNumbers: true,
      dateStrings: true,
    });
    // A connection dropped by the server emits 'error'; unhandled, it would kill the worker.
    c.on('error', () => {});
    await limitSession(c, statementTimeoutMs, conn.timeoutMs);
    return await work(c);
  } catch (err) {
    timedOut = (err as { code?: unknown })?.code === 'PROTOCOL_SEQUENCE_TIMEOUT';
    // Once the activity is cancelled, its cancellation is the outcome, not whatever the killed statement threw.
    const signal = activitySignal();
    if (signal?.aborted) throw signal.reason ?? err;
    throw mysqlFailure(what, err, conn);
  } finally {
    const open = c;
    // After a statement timed out, QUIT would only queue behind it: the socket is closed at once.
    if (open && timedOut) dropConnection(open);
    else if (open) await withTimeout('close', 2_000, open.end()).catch(() => dropConnection(open));
  }
}

/**
 * Closes the socket now. mysql2's destroy() only half-closes it: a server that has stopped reading
 * never closes its side, and the connection would stay open for as long as the process runs.
 */
function dropConnection(c: mysql.Connection): void {
  const stream = (c as unknown as { connection?: { stream?: { destroyed?: boolean; destroy?: () => void } } }).connection?.stream;
  if (stream?.destroyed) return;
  c.destroy();
  stream?.destroy?.();
}

/**
 * The server stops the statement itself, so a client timeout does not leave it running; and lock
 * waits are short, so the engine never queues behind someone else's lock (and everyone behind it).
 */
async function limitSession(c: mysql.Connection, statementMs: number, lockWaitMs: number): Promise<void> {
  const lockS = Math.max(1, Math.ceil(lockWaitMs / 1_000));
  try {
    // MariaDB: max_statement_time in seconds, for every kind of statement.
    await c.query({
      sql: 'SET SESSION max_statement_time = ?, lock_wait_timeout = ?, innodb_lock_wait_timeout = ?',
      values: [statementMs / 1_000, lockS, lockS],
      timeout: lockWaitMs,
    });
  } catch (err) {
    if ((err as { errno?: number }).errno !== 1193) throw err; // ER_UNKNOWN_SYSTEM_VARIABLE: MySQL, whose limit covers SELECT only
    await c.query({
      sql: 'SET SESSION max_execution_time = ?, lock_wait_timeout = ?, innodb_lock_wait_timeout = ?',
      values: [Math.round(statementMs), lockS, lockS],
      timeout: lockWaitMs,
    });
  }
}

function mysqlFailure(what: string, err: unknown, conn: MysqlConnection): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const code = (err as { code?: unknown })?.code;
  const message = () =>
    redact(String((err as Error)?.message ?? err), [conn.password])
      .split('\n')[0]!
      .slice(0, 500);
  const refused = accountRefused((err as { errno?: unknown })?.errno, message(), conn.user);
  if (refused) return authFailed(what, refused);
  switch (code) {
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR':
      return authFailed(what, message());
    case 'ER_BAD_DB_ERROR':
    case 'ER_NO_SUCH_TABLE':
      return targetNotFound(what, message());
    default:
      return classify(what, err, [conn.password]);
  }
}

interface TableRef {
  name: string;
  quoted: string;
}

/** A plain identifier, optionally "db.table", backtick-quoted. */
function quoteIdent(what: string, table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || !parts.every((p) => /^[A-Za-z0-9_$]{1,64}$/.test(p) && !/^\d+$/.test(p))) {
    throw badInput(what, `'${table.slice(0, 100)}' is not a table name (letters, digits, "_" and "$", optionally "db.table")`);
  }
  return parts.map((p) => `\`${p}\``).join('.');
}

/** The connection a maintenance call looks up its tables on, and the target's bound for ordinary calls. */
interface Setup {
  conn: MysqlConnection;
  c: mysql.Connection;
}

/**
 * A look-up before the maintenance statement, within the target's timeout. The session's server-side
 * limit is the maintenance timeout, so a look-up the client gives up on is killed on the server, in
 * the background: the server may be the one not answering, and the call fails now, not after that.
 */
async function lookup(s: Setup, sql: string, values?: unknown[]): Promise<unknown> {
  try {
    const [rows] = await s.c.query({ sql, values, timeout: s.conn.timeoutMs });
    return rows;
  } catch (err) {
    if ((err as { code?: unknown })?.code === 'PROTOCOL_SEQUENCE_TIMEOUT') void killQuery(s.conn, s.c.threadId);
    throw err;
  }
}

/** OPTIMIZE on a missing table only reports an error row; refusing up front makes a config typo non-retryable. */
async function checkTables(s: Setup, what: string, tables: string[]): Promise<TableRef[]> {
  const current = await currentDatabase(s);
  const refs = tables.map((t) => {
    const [a, b] = t.split('.');
    return b === undefined ? { schema: current, table: a!, name: t } : { schema: a!, table: b, name: t };
  });
  const unqualified = refs.filter((r) => r.schema === null);
  if (unqualified.length) throw badInput(what, `no database configured to find ${unqualified.map((r) => `'${r.name}'`).join(', ')} in`);
  const result = await lookup(
    s,
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES
      WHERE (TABLE_SCHEMA, TABLE_NAME) IN (${refs.map(() => '(?, ?)').join(', ')})`,
    refs.flatMap((r) => [r.schema, r.table]),
  );
  // information_schema compares names case-insensitively; so does this check.
  const found = new Set((result as Array<{ s: string; t: string }>).map((r) => `${r.s}.${r.t}`.toLowerCase()));
  const missing = refs.filter((r) => !found.has(`${r.schema}.${r.table}`.toLowerCase()));
  if (missing.length) throw targetNotFound(what, `no table ${missing.map((m) => `'${m.name}'`).join(', ')}`);
  return refs.map((r) => ({ name: r.name, quoted: quoteIdent(what, r.name) }));
}

async function allTables(s: Setup, what: string): Promise<TableRef[]> {
  if ((await currentDatabase(s)) === null) throw badInput(what, 'no tables named and no database configured');
  const result = await lookup(
    s,
    "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
  );
  // Names that need more than backticks (spaces, quotes) are left out rather than quoted creatively.
  return (result as Array<{ t: string }>)
    .filter((r) => /^[A-Za-z0-9_$]{1,64}$/.test(r.t))
    .map((r) => ({ name: r.t, quoted: `\`${r.t}\`` }));
}

async function currentDatabase(s: Setup): Promise<string | null> {
  const rows = await lookup(s, 'SELECT DATABASE() AS db');
  return (rows as Array<{ db: string | null }>)[0]?.db ?? null;
}

/**
 * A statement that stops on the server when the engine stops waiting for it: on the activity's
 * cancellation, and on the client's own timeout. A closed socket does not stop a table rebuild, and
 * mysql2's timeout only rejects the call: the statement runs on, and end() queues QUIT behind it.
 * On MySQL nothing else bounds it (max_execution_time covers SELECT only).
 */
export async function stoppedOnGiveUp<T>(conn: MysqlConnection, c: mysql.Connection, work: Promise<T>): Promise<T> {
  const threadId = c.threadId;
  const signal = activitySignal();
  const kill = () => void killQuery(conn, threadId);
  signal?.addEventListener('abort', kill, { once: true });
  try {
    const result = await work;
    // A killed OPTIMIZE may answer with an error row instead of an error.
    if (signal?.aborted) throw signal.reason;
    return result;
  } catch (err) {
    if ((err as { code?: unknown })?.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
      await killQuery(conn, threadId);
      // mysql2's destroy() only half-closes, and would wait for the server like end() does.
      (c as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
    }
    throw err;
  } finally {
    signal?.removeEventListener('abort', kill);
  }
}

/** KILL QUERY over a connection of its own: the statement's own connection is busy waiting for it. */
async function killQuery(conn: MysqlConnection, threadId: number): Promise<void> {
  const k = await mysql
    .createConnection({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password?.reveal(),
      connectTimeout: conn.timeoutMs,
    })
    .catch(() => undefined);
  if (!k) return;
  k.on('error', () => {});
  await withTimeout('kill query', conn.timeoutMs, k.query('KILL QUERY ?', [threadId])).catch(() => undefined);
  await withTimeout('close', 2_000, k.end()).catch(() => dropConnection(k));
}

/** Keeps whole entries, in order, while their JSON fits the output budget. */
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

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

/**
 * What a maintenance activity heartbeats: the tables it has finished, per operation (its OPTIMIZE
 * and then its ANALYZE run in one activity), for a retry to skip.
 */
interface MaintenanceProgress {
  target: string;
  done: { optimize?: string[]; analyze?: string[] };
}

/** Each running activity's progress, by its info (one object per activity attempt). */
const attempts = new WeakMap<object, MaintenanceProgress>();

/**
 * This attempt's progress on `target`, begun with what the last heartbeat of an earlier attempt
 * said was done. Outside an activity (a direct call): nothing done, and nothing kept.
 */
function attemptProgress(target: string): MaintenanceProgress {
  const info = activityInfo();
  if (!info) return { target, done: {} };
  const kept = attempts.get(info);
  if (kept?.target === target) return kept;
  const last = (info.attempt > 1 ? info.heartbeatDetails : undefined) as Partial<MaintenanceProgress> | undefined;
  const tables = (v: unknown) => (Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : undefined);
  const done = last?.target === target && typeof last.done === 'object' && last.done !== null ? last.done : {};
  const progress: MaintenanceProgress = { target, done: { optimize: tables(done.optimize), analyze: tables(done.analyze) } };
  attempts.set(info, progress);
  return progress;
}
