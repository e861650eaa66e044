// Runs the MySQL activities against the stack's MariaDB, on tables named t_db_* that this file
// creates and drops. The configured user has PROCESS (sees every thread, reads InnoDB status).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect as connectTcp, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlActivities, deadlockSection, stoppedOnGiveUp, type MysqlConnection } from '../../activities/mysql.js';
import { Secret } from '../../config/secret.js';
import { failureOf, silentServer } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { cancellableActivity } from '../support/activityEnv.js';
import { until } from '../support/wait.js';

const suffix = randomUUID().slice(0, 8);
const optTable = `t_db_opt_${suffix}`;
const lockTable = `t_db_dl_${suffix}`;
const optTable2 = `t_db_opt2_${suffix}`;
const target = 't_db_mysql';
/** What OPTIMIZE and ANALYZE answer. */
type Maintained = Awaited<ReturnType<ReturnType<typeof createMysqlActivities>['optimize']>>;

let conn: MysqlConnection;
let admin: mysql.Connection;
const my = () => createMysqlActivities({ outputBytes: 16_384 });

/** The stack's MariaDB as root, over its socket: only root may create accounts. */
async function asRoot(sql: string): Promise<string> {
  const socket = join(stack().dir, 'mariadb', 'mysqld.sock');
  const args = ['--no-defaults', `--socket=${socket}`, '-u', 'root', '--batch', '--skip-column-names', '-e', sql];
  const { stdout } = await promisify(execFile)('mariadb', args, { timeout: 30_000 });
  return stdout.trim();
}

async function connect(): Promise<mysql.Connection> {
  const s = stack().mysql;
  const c = await mysql.createConnection({ host: s.host, port: s.port, user: s.user, password: s.password, database: s.database });
  c.on('error', () => {});
  return c;
}

/** InnoDB's id for the table: OPTIMIZE rebuilds the table, which gives it a new one. */
async function innodbTableId(table: string): Promise<number> {
  const [rows] = await admin.query('SELECT TABLE_ID AS id FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ?', [
    `${conn.database}/${table}`,
  ]);
  return Number((rows as Array<{ id: number }>)[0]!.id);
}

/**
 * A relay to the stack's MariaDB that goes silent once the client sends a statement matching
 * `stallAt`: the login and the session set-up pass, the statement and everything after it are
 * swallowed, and the relay never closes its side (a server that hangs after login). It records
 * when each stalled client closed its connection.
 */
async function stallingRelay(stallAt: RegExp) {
  const stalled: Array<{ closedAt?: number }> = [];
  const sockets = new Set<Socket>();
  const relay = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connectTcp({ host: conn.host, port: conn.port });
    for (const sock of [client, upstream]) {
      sockets.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => sockets.delete(sock));
    }
    let stall: { closedAt?: number } | undefined;
    client.on('data', (chunk: Buffer) => {
      if (!stall && stallAt.test(chunk.toString('latin1'))) {
        stall = {};
        stalled.push(stall);
        const closed = () => (stall!.closedAt ??= Date.now());
        client.on('end', closed);
        client.on('close', closed);
      }
      if (!stall) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!stall) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    port: (relay.address() as AddressInfo).port,
    stalled,
    close: async () => {
      for (const sock of sockets) sock.destroy();
      await new Promise((resolve) => relay.close(resolve));
    },
  };
}

/** The promise's outcome, or a failure of the test once `ms` have passed without one. */
function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

beforeAll(async () => {
  const s = stack().mysql;
  conn = { host: s.host, port: s.port, user: s.user, password: Secret.of(s.password), database: s.database, timeoutMs: 5_000 };
  admin = await connect();
});

afterAll(async () => {
  await admin?.query(`DROP TABLE IF EXISTS ${optTable}, ${optTable2}, ${lockTable}`);
  await admin?.end();
});

describe('mysql ping', () => {
  it('answers ok with its latency when the server is up', async () => {
    const result = await my().ping(conn, target);
    expect(result).toMatchObject({ ok: true });
    expect(result.latencyMs).toBeGreaterThan(0);
    expect(result.latencyMs).toBeLessThan(5_000);
  });

  it('reports ok:false quickly, naming the target, when nothing listens on the port', async () => {
    const started = Date.now();
    const result = await my().ping({ ...conn, port: await closedPort() }, target);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^ping of mysql 't_db_mysql' failed: .*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports ok:false within its timeout when the server accepts but never answers', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const result = await my().ping({ ...conn, port: silent.port, timeoutMs: 500 }, target);
      expect(result.ok).toBe(false);
      expect(result.error).toMatch(/^ping of mysql 't_db_mysql' failed: /);
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      await silent.close();
    }
  });

  it('fails non-retryably on a wrong password, without the password in the message', async () => {
    const wrong = `t_db_wrong_${suffix}_Pw`;
    const failure = await failureOf(my().ping({ ...conn, password: Secret.of(wrong) }, target));
    expect(failure.type).toBe('AuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(new RegExp(`^ping of mysql 't_db_mysql' failed: Access denied for user '${conn.user}'`));
    expect(JSON.stringify(failure)).not.toContain(wrong);

    const again = await failureOf(my().optimize({ ...conn, password: Secret.of(wrong) }, target, [optTable], { dryRun: true }));
    expect(again.type).toBe('AuthFailed');
    expect(again.message).not.toContain(wrong);
  });

  it('fails non-retryably for a database that does not exist', async () => {
    const failure = await failureOf(my().ping({ ...conn, database: `t_db_missing_${suffix}` }, target));
    // MariaDB answers "access denied to database" rather than "unknown database" when the user has
    // no grant there, so as not to reveal which databases exist.
    expect(failure.type).toBe('AuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`t_db_missing_${suffix}`);
  });
});

describe('mysql ping of an account the server refuses', () => {
  // Accounts of this file's own, made by root over the socket (the configured user may not create
  // users): the server is up throughout, so none of these may read as "the server is down".
  const host = '127.0.0.1';
  const password = `t_db_acct_${suffix}_Pw`;
  const expired = `t_db_exp_${suffix}`;
  const locked = `t_db_lock_${suffix}`;
  const limited = `t_db_lim_${suffix}`;
  const as = (user: string): MysqlConnection => ({ ...conn, user, password: Secret.of(password), database: undefined });

  beforeAll(async () => {
    await asRoot(
      [expired, locked, limited]
        .map((u) => `CREATE USER '${u}'@'${host}' IDENTIFIED BY '${password}'${u === limited ? ' WITH MAX_USER_CONNECTIONS 1' : ''}`)
        .join('; '),
    );
  });

  afterAll(async () => {
    await asRoot([expired, locked, limited].map((u) => `DROP USER IF EXISTS '${u}'@'${host}'`).join('; '));
  });

  function expectAccountFault(failure: ApplicationFailure, problem: RegExp): void {
    expect(failure.type).toBe('AuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/^ping of mysql 't_db_mysql' failed: /);
    expect(failure.message).toMatch(problem);
    expect(JSON.stringify(failure)).not.toContain(password);
  }

  it('fails non-retryably, saying to reset it, when the password has expired, whether the server lets the login in or not', async () => {
    await asRoot(`ALTER USER '${expired}'@'${host}' PASSWORD EXPIRE`);
    // MariaDB's default: logged in, then every statement refused (ER_MUST_CHANGE_PASSWORD).
    const sandboxed = await failureOf(my().ping(as(expired), target));
    expectAccountFault(sandboxed, new RegExp(`the password of account '${expired}' has expired .*: set a new one`));
    expect(sandboxed.message).toContain('You must SET PASSWORD');

    // MySQL's default, and MariaDB's with disconnect_on_expired_password: the login itself is refused
    // (ER_MUST_CHANGE_PASSWORD_LOGIN). Only logins of expired accounts notice the setting.
    const before = await asRoot('SELECT @@GLOBAL.disconnect_on_expired_password');
    await asRoot('SET GLOBAL disconnect_on_expired_password = ON');
    try {
      const refused = await failureOf(my().ping(as(expired), target));
      expectAccountFault(refused, new RegExp(`the password of account '${expired}' has expired .*Your password has expired`));
    } finally {
      await asRoot(`SET GLOBAL disconnect_on_expired_password = ${before === '1' ? 'ON' : 'OFF'}`);
    }
  });

  it('fails non-retryably, saying to unlock it, when the account is locked', async () => {
    await asRoot(`ALTER USER '${locked}'@'${host}' ACCOUNT LOCK`);
    const failure = await failureOf(my().ping(as(locked), target));
    expectAccountFault(failure, new RegExp(`account '${locked}' is locked \\(Access denied, this account is locked\\): unlock it`));
  });

  it('fails non-retryably, naming the limit, when the account has used up its own connections', async () => {
    const s = stack().mysql;
    const held = await mysql.createConnection({ host: s.host, port: s.port, user: limited, password });
    held.on('error', () => {});
    try {
      const failure = await failureOf(my().ping(as(limited), target));
      expectAccountFault(
        failure,
        new RegExp(`refuses account '${limited}' more: it has reached a limit of its own .*'max_user_connections'`),
      );
    } finally {
      await held.end();
    }
    // The server lets the account's connection go a moment after the client quit: until it has,
    // the account is still at its limit (CI, ecc9054: refused right after end()).
    expect(
      await until('the held connection let go by the server', 10_000, () =>
        my()
          .ping(as(limited), target)
          .catch(() => undefined),
      ),
    ).toMatchObject({ ok: true });
  });

  it('fails non-retryably when the server accepts no account from the engine host', async () => {
    // An account with a wildcard host, made and dropped by an earlier run, leaves MariaDB accepting
    // every host until its privileges are reloaded.
    await asRoot('FLUSH PRIVILEGES');
    // The server sees this proxy's connections come from 127.0.0.2, a host no account names.
    const proxy = createServer((client) => {
      const upstream = connectTcp({ host: conn.host, port: conn.port, localAddress: '127.0.0.2' });
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (proxy.address() as AddressInfo).port;
      const failure = await failureOf(my().ping({ ...conn, port }, target));
      expect(failure.type).toBe('AuthFailed');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(
        /^ping of mysql 't_db_mysql' failed: the server accepts no account from the engine's host \(Host '127\.0\.0\.2' is not allowed/,
      );
      expect(JSON.stringify(failure)).not.toContain(conn.password!.reveal());
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('mysql diagnostics', () => {
  it('counts connected threads against max_connections', async () => {
    const result = await my().threads(conn, target);
    const [vars] = await admin.query('SELECT @@GLOBAL.max_connections AS max');
    const max = Number((vars as Array<{ max: number }>)[0]!.max);
    expect(result.maxConnections).toBe(max);
    // Its own connection and the admin's at least.
    expect(result.threadsConnected).toBeGreaterThanOrEqual(2);
    expect(result.usedPercent).toBeCloseTo((result.threadsConnected / max) * 100, 1);
  });

  it('lists a statement running longer than the threshold, without its literals, capped, never its own, and the statement can be killed', async () => {
    const sleeper = await connect();
    const id = sleeper.threadId;
    const sleeping = sleeper.query(`SELECT SLEEP(30) AS slept, 'hunter2-in-a-literal' AS note /* t_db_sleeper ${'x'.repeat(600)} */`).then(
      () => 'finished',
      (err: { code?: string }) => err.code,
    );
    try {
      const list = await until('the sleeping statement to show up', 15_000, async () => {
        const l = await my().processlist(conn, target, 1);
        return l.long.some((t) => t.id === id) ? l : undefined;
      });
      const found = list.long.find((t) => t.id === id)!;
      expect(found).toMatchObject({ user: conn.user, db: conn.database, command: 'Query' });
      expect(found.timeS).toBeGreaterThanOrEqual(1);
      expect(found.timeS).toBeLessThan(30);
      // Other sessions' literals are their data: the statement's shape only.
      expect(found.info).toMatch(/^SELECT SLEEP\(\?\) AS slept, \? AS note \/\* t_db_sleeper x+$/);
      expect(found.info).not.toContain('hunter2');
      expect(found.info!.length).toBe(500);
      expect(list.byUser[conn.user!]).toBeGreaterThanOrEqual(2);
      expect(list.byCommand.Query).toBeGreaterThanOrEqual(1);
      expect(Object.values(list.byCommand).reduce((a, b) => a + b, 0)).toBe(list.total);

      const everything = await my().processlist(conn, target, 0);
      expect(everything.long.some((t) => t.id === id)).toBe(true);
      expect(everything.long.some((t) => t.info?.includes('information_schema.PROCESSLIST'))).toBe(false);
      // The admin connection is idle: connected, counted, but not a long statement.
      expect(everything.long.some((t) => t.id === admin.threadId)).toBe(false);

      await admin.query('KILL QUERY ?', [id]);
      expect(await sleeping).toBe('ER_QUERY_INTERRUPTED');
      const after = await my().processlist(conn, target, 0);
      expect(after.long.some((t) => t.id === id)).toBe(false);
    } finally {
      await admin.query('KILL QUERY ?', [id]).catch(() => undefined);
      await sleeping;
      await sleeper.end();
    }
  });

  it("reports the latest deadlock, naming the tables involved, without the statements' values or the locked rows", async () => {
    await admin.query(`CREATE TABLE ${lockTable} (id INT PRIMARY KEY, v BIGINT, note VARCHAR(100)) ENGINE=InnoDB`);
    await admin.query(`INSERT INTO ${lockTable} VALUES (1, 0, 'row-secret-1'), (2, 0, 'row-secret-2')`);
    const a = await connect();
    const b = await connect();
    try {
      await a.query('SET SESSION innodb_lock_wait_timeout = 20');
      await b.query('SET SESSION innodb_lock_wait_timeout = 20');
      await a.beginTransaction();
      await b.beginTransaction();
      await a.query(`UPDATE ${lockTable} SET v = 1 WHERE id = 1`);
      await b.query(`UPDATE ${lockTable} SET v = 2 WHERE id = 2`);
      // Formatted SQL: keywords alone on their lines, the literals on others. The server prints it as sent.
      const aWaits = a
        .query(`UPDATE ${lockTable}\nSET\n  v = 4111111111111111, note = 'hunter2-secret'\nWHERE\n  id = 2\nAND\n  v >= 0`)
        .then(
          () => undefined,
          (err: { code?: string }) => err.code,
        );
      await until('a to wait for the lock', 15_000, async () => {
        const l = await my().processlist(conn, target, 0);
        return l.long.some((t) => t.id === a.threadId && t.info?.startsWith('UPDATE')) ? true : undefined;
      });
      const bCloses = b
        .query(
          `INSERT INTO ${lockTable} (id, v, note)\nVALUES\n  (1, 97531, "dq-secret")\nON DUPLICATE KEY UPDATE\n  note = 'it\\'s-secret'`,
        )
        .then(
          () => undefined,
          (err: { code?: string }) => err.code,
        );
      const codes = await Promise.all([aWaits, bCloses]);
      expect(codes).toContain('ER_LOCK_DEADLOCK');

      const report = await my().latestDeadlock(conn, target);
      expect(report.found).toBe(true);
      expect(report.text).toContain(lockTable);
      expect(report.text).toContain('*** (1) TRANSACTION');
      expect(report.text).not.toMatch(/^-+\n?TRANSACTIONS/m);
      expect(report.text).toContain(`UPDATE ${lockTable}\nSET\n  v = ?, note = ?\nWHERE\n  id = ?\nAND\n  v >= ?\n`);
      expect(report.text).toContain(`INSERT INTO ${lockTable} (id, v, note)\nVALUES\n  (?, ?, ?)\nON DUPLICATE KEY UPDATE\n  note = ?\n`);
      expect(report.text).not.toMatch(/secret|4111111111111111|97531|= \d|; hex [0-9a-f]+; asc /);
      expect(report.text).toMatch(
        /^RECORD LOCKS space id \d+ page no \d+ n bits \d+ index PRIMARY of table `[^`]+`\.`t_db_dl_\w+` .*lock_mode X/m,
      );
      expect(report.text).toContain('*** WE ROLL BACK TRANSACTION');
      expect(report.text).toMatch(/\[\d+ record dump line\(s\) left out/);
      expect(report.text).not.toContain('unrecognised');
    } finally {
      await a.rollback().catch(() => undefined);
      await b.rollback().catch(() => undefined);
      await a.end();
      await b.end();
    }
  });

  it('finds no deadlock section in a status that has none', () => {
    const status =
      '=====\nINNODB MONITOR OUTPUT\n=====\n----------\nSEMAPHORES\n----------\nOS WAIT ARRAY INFO\n------------\nTRANSACTIONS\n------------\nTrx id counter 1\n';
    expect(deadlockSection(status)).toBeUndefined();
  });
});

describe('mysql table maintenance', () => {
  beforeAll(async () => {
    await admin.query(`CREATE TABLE ${optTable} (id INT PRIMARY KEY, payload VARCHAR(200)) ENGINE=InnoDB`);
    await admin.query(`INSERT INTO ${optTable} SELECT seq, REPEAT('p', 150) FROM seq_1_to_2000`);
    await admin.query(`DELETE FROM ${optTable} WHERE id > 500`);
  });

  it('OPTIMIZE in dry-run names the tables and leaves them untouched', async () => {
    const before = await innodbTableId(optTable);
    const result = await my().optimize(conn, target, [optTable], { dryRun: true });
    expect(result).toMatchObject({
      dryRun: true,
      tables: [optTable],
      rows: [],
      ok: true,
      summary: `would run OPTIMIZE TABLE on ${optTable}`,
    });
    expect(await innodbTableId(optTable)).toBe(before);
  });

  it("OPTIMIZE rebuilds the table and reports the server's rows for it", async () => {
    const before = await innodbTableId(optTable);
    const result = await my().optimize(conn, target, [`${conn.database}.${optTable}`], { dryRun: false });
    expect(result.ok).toBe(true);
    expect(result.rows.length).toBeGreaterThanOrEqual(1);
    for (const row of result.rows) expect(row).toMatchObject({ table: `${conn.database}.${optTable}`, op: 'optimize' });
    expect(result.rows.at(-1)).toMatchObject({ msgType: 'status', msgText: 'OK' });
    expect(await innodbTableId(optTable)).not.toBe(before);
    const [count] = await admin.query(`SELECT COUNT(*) AS n FROM ${optTable}`);
    expect(Number((count as Array<{ n: number }>)[0]!.n)).toBe(500);
  });

  it('ANALYZE reports a status row per table; in dry-run it runs nothing', async () => {
    const dry = await my().analyze(conn, target, [optTable], { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, rows: [], summary: `would run ANALYZE TABLE on ${optTable}` });
    const result = await my().analyze(conn, target, [optTable], { dryRun: false });
    expect(result.ok).toBe(true);
    expect(result.rows).toEqual([
      {
        table: `${conn.database}.${optTable}`,
        op: 'analyze',
        msgType: 'status',
        msgText: expect.stringMatching(/^(OK|Table is already up to date)$/),
      },
    ]);
  });

  it('when its activity is cancelled, kills the waiting OPTIMIZE on the server, having heartbeated', async () => {
    const before = await innodbTableId(optTable);
    const locker = await connect();
    // OPTIMIZE needs the table's metadata lock; this session holds it, so OPTIMIZE waits.
    await locker.query(`LOCK TABLES ${optTable} WRITE`);
    try {
      const { beats, outcome, cancel } = cancellableActivity(() =>
        my().optimize({ ...conn, timeoutMs: 30_000 }, target, [optTable], { dryRun: false }),
      );
      const waiting = async () =>
        (await my().processlist(conn, target, 0)).long.filter((t) => t.info?.startsWith(`OPTIMIZE TABLE \`${optTable}\``));
      await until('OPTIMIZE to wait for the lock', 15_000, async () =>
        (await waiting()).some((t) => /metadata lock/i.test(t.state ?? '')) ? true : undefined,
      );
      cancel();
      const started = Date.now();
      expect(await outcome).toBeInstanceOf(CancelledFailure);
      expect(Date.now() - started).toBeLessThan(5_000);
      await until('OPTIMIZE to stop on the server', 5_000, async () => ((await waiting()).length === 0 ? true : undefined));
      expect(beats).toContainEqual({ target, done: { optimize: [] } });
      await locker.query('UNLOCK TABLES');
      expect(await innodbTableId(optTable)).toBe(before);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
  });

  it('a retry after a table someone held locked rebuilds only the tables its first attempt did not finish', async () => {
    await admin.query(`CREATE TABLE IF NOT EXISTS ${optTable2} (id INT PRIMARY KEY) ENGINE=InnoDB`);
    const [first, second] = [await innodbTableId(optTable), await innodbTableId(optTable2)];
    const locker = await connect();
    await locker.query(`LOCK TABLES ${optTable2} WRITE`);
    const beats: unknown[] = [];
    try {
      const env = new MockActivityEnvironment({ attempt: 1 });
      // A copy of each: the activity heartbeats one object it keeps adding to.
      env.on('heartbeat', (d: unknown) => beats.push(structuredClone(d)));
      const failure = await failureOf(
        env.run(() => my().optimize({ ...conn, timeoutMs: 1_000 }, target, [optTable, optTable2], { dryRun: false })),
      );
      expect(failure.type).toBe('Transient');
      expect(failure.message).toContain(`${optTable2}: Lock wait timeout exceeded`);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
    // The first table was rebuilt, and its attempt said so before it failed on the second.
    const rebuilt = await innodbTableId(optTable);
    expect(rebuilt).not.toBe(first);
    expect(await innodbTableId(optTable2)).toBe(second);
    const last = beats.at(-1);
    expect(last).toEqual({ target, done: { optimize: [optTable] } });
    // Said as soon as the first table was done, not only at the end.
    expect(beats[0]).toEqual({ target, done: { optimize: [] } });
    // Temporal hands the retry its last heartbeat: only the second table is rebuilt.
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
    const result = (await retry.run(() => my().optimize(conn, target, [optTable, optTable2], { dryRun: false }))) as Maintained;
    expect(result.ok).toBe(true);
    expect(result.tables).toEqual([optTable, optTable2]);
    expect(new Set(result.rows.map((r) => r.table))).toEqual(new Set([`${conn.database}.${optTable2}`]));
    expect(result.summary).toMatch(new RegExp(`^OPTIMIZE TABLE on ${optTable2} took .*: ok \\(${optTable} done by an earlier attempt\\)$`));
    expect(await innodbTableId(optTable)).toBe(rebuilt);
    expect(await innodbTableId(optTable2)).not.toBe(second);
    // Another target's progress is not taken for this one's, nor one operation's for another's.
    const elsewhere = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { target: 'elsewhere', done: { optimize: [optTable] } },
    });
    const again = (await elsewhere.run(() => my().optimize(conn, target, [optTable], { dryRun: false }))) as Maintained;
    expect(again.rows.map((r) => r.table)).toContain(`${conn.database}.${optTable}`);
    const analyzed = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { target, done: { optimize: [optTable] } } });
    const analysis = (await analyzed.run(() => my().analyze(conn, target, [optTable], { dryRun: false }))) as Maintained;
    expect(analysis.rows.map((r) => r.table)).toEqual([`${conn.database}.${optTable}`]);
  });

  it('gives up on a table someone holds locked after its timeout, retryably, instead of queueing behind the lock', async () => {
    const locker = await connect();
    await locker.query(`LOCK TABLES ${optTable} WRITE`);
    try {
      const started = Date.now();
      const failure = await failureOf(my().optimize({ ...conn, timeoutMs: 1_000 }, target, [optTable], { dryRun: false }));
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(failure.type).toBe('Transient');
      expect(failure.message).toMatch(
        new RegExp(`^optimize of mysql 't_db_mysql' failed: ${conn.database}\\.${optTable}: Lock wait timeout exceeded`),
      );
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
  });

  it('with no tables named, in dry-run covers every base table of the database', async () => {
    const result = await my().optimize(conn, target, [], { dryRun: true });
    expect(result.tables).toContain(optTable);
    expect(result.rows).toEqual([]);
  });

  it('gives up within its timeout on a server that stops answering after the login, and closes its connection at once', async () => {
    const relay = await stallingRelay(/SELECT DATABASE\(\)/);
    try {
      // No tables named (every table of the database is looked up) and named tables (each is checked).
      for (const tables of [[], [optTable]]) {
        const started = Date.now();
        const work = my().optimize({ ...conn, port: relay.port, timeoutMs: 1_000 }, target, tables, { dryRun: true });
        const failure = await within(8_000, failureOf(work));
        const took = Date.now() - started;
        expect(failure.type).toBe('Transient');
        expect(failure.nonRetryable).toBe(false);
        expect(failure.message).toBe("optimize of mysql 't_db_mysql' failed: Query inactivity timeout");
        expect(took).toBeGreaterThanOrEqual(1_000);
        expect(took).toBeLessThan(2_500);
        const stall = relay.stalled.at(-1)!;
        expect(relay.stalled).toHaveLength(tables.length === 0 ? 1 : 2);
        // Closed with the failure, not 2 s later behind a QUIT that would never be answered.
        await until('the stalled connection to be closed by the client', 500, async () => (stall.closedAt ? true : undefined), 20);
        expect(stall.closedAt! - started).toBeLessThan(took + 500);
      }
    } finally {
      await relay.close();
    }
  });

  it('refuses names that are not plain identifiers, before connecting', async () => {
    for (const bad of [`${optTable}; DROP TABLE ${optTable}`, 'a`b', 'a.b.c', '', '123', `${optTable} `, 'x'.repeat(65)]) {
      const failure = await failureOf(my().optimize({ ...conn, port: 1 }, target, [bad], { dryRun: false }));
      expect(failure.type, bad).toBe('BadInput');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/^optimize of mysql 't_db_mysql' refused: /);
    }
    const analyze = await failureOf(my().analyze({ ...conn, port: 1 }, target, ['x`; DROP'], { dryRun: false }));
    expect(analyze.type).toBe('BadInput');
  });

  it('fails non-retryably, naming the table, when a table does not exist', async () => {
    const failure = await failureOf(my().optimize(conn, target, [optTable, `t_db_missing_${suffix}`], { dryRun: false }));
    expect(failure.type).toBe('TargetNotFound');
    expect(failure.message).toBe(`optimize of mysql 't_db_mysql' failed: no table 't_db_missing_${suffix}'`);
  });
});

describe('a maintenance statement the client stops waiting for', () => {
  it('is killed on the server and its connection dropped when the client times out, even where no server limit would stop it', async () => {
    const c = await connect();
    try {
      // As on MySQL, where max_execution_time covers SELECT only: nothing on the server ends it.
      await c.query('SET SESSION max_statement_time = 0');
      const started = Date.now();
      const failure = await stoppedOnGiveUp(conn, c, c.query({ sql: 'DO SLEEP(30)', timeout: 300 })).catch((err: unknown) => err);
      expect(failure).toMatchObject({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' });
      const thread = async () => {
        const [rows] = await admin.query('SELECT INFO AS info FROM information_schema.PROCESSLIST WHERE ID = ?', [c.threadId]);
        return rows as Array<{ info: string | null }>;
      };
      await until('the sleeping statement and its connection to be gone from the server', 2_000, async () =>
        (await thread()).length === 0 ? true : undefined,
      );
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      c.destroy();
    }
  });
});
