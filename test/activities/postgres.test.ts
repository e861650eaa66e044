// Runs the PostgreSQL activities against the stack's server, on tables named t_db_* that this file
// creates and drops. The configured user owns the database but is not a superuser.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionContext, TargetActivities } from '../../activities/contract.js';
import { createEngineActivities } from '../../activities/index.js';
import { createPostgresActivities, type PgConnection } from '../../activities/postgres.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import { Secret } from '../../config/secret.js';
import { failureOf, silentServer } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { cancellableActivity } from '../support/activityEnv.js';
import { until } from '../support/wait.js';

const run = promisify(execFile);
const suffix = randomUUID().slice(0, 8);
const vacTable = `t_db_vac_${suffix}`;
const anaTable = `t_db_ana_${suffix}`;
const backupTable = `t_db_bk_${suffix}`;
const target = 't_db_pg';

let conn: PgConnection;
let admin: pg.Client;
let scratch: string;

function client(overrides: Partial<pg.ClientConfig> = {}): pg.Client {
  const s = stack().pg;
  const c = new pg.Client({ host: s.host, port: s.port, user: s.user, password: s.password, database: s.database, ...overrides });
  c.on('error', () => {});
  return c;
}

async function tableStats(table: string): Promise<{ n_dead_tup: number; last_vacuum: Date | null; last_analyze: Date | null }> {
  const { rows } = await admin.query('SELECT n_dead_tup::int, last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = $1', [
    table,
  ]);
  return rows[0];
}

beforeAll(async () => {
  const s = stack().pg;
  conn = { host: s.host, port: s.port, user: s.user, password: Secret.of(s.password), database: s.database, timeoutMs: 5_000 };
  admin = client();
  await admin.connect();
  scratch = await mkdtemp(join(tmpdir(), 't_db_pg-'));
});

afterAll(async () => {
  await admin?.query(`DROP TABLE IF EXISTS ${vacTable}, ${anaTable}, ${backupTable}`);
  await admin?.end();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/**
 * Runs `op` on `table` while another session holds the table locked, cancels its activity once the
 * statement waits for the lock, and checks it stopped on the server at once, having heartbeated,
 * and did nothing (`stat` of the table unchanged).
 */
async function cancelledWhileLocked(op: 'vacuum' | 'analyze', table: string, statement: string, stat: 'last_vacuum' | 'last_analyze') {
  const before = (await tableStats(table))[stat];
  const locker = client();
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  try {
    const pg = createPostgresActivities({ outputBytes: 16_384, backupDir: join(scratch, 'unused') });
    const { beats, outcome, cancel } = cancellableActivity(() =>
      pg[op]({ ...conn, timeoutMs: 30_000 }, target, [table], { dryRun: false }),
    );
    const waiting = `SELECT pid FROM pg_stat_activity WHERE query = '${statement}' AND state = 'active'`;
    await until(`${op} to wait for the lock`, 15_000, async () =>
      (await admin.query(`${waiting} AND wait_event_type = 'Lock'`)).rowCount ? true : undefined,
    );
    cancel();
    const started = Date.now();
    expect(await outcome).toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(5_000);
    await until(`${op} to stop on the server`, 5_000, async () => ((await admin.query(waiting)).rowCount === 0 ? true : undefined));
    expect(beats).toContainEqual({ op, target });
    await locker.query('ROLLBACK');
    expect((await tableStats(table))[stat]).toEqual(before);
  } finally {
    await locker.query('ROLLBACK');
    await locker.end();
  }
}

describe('postgres ping', () => {
  const pgx = () => createPostgresActivities({ outputBytes: 16_384, backupDir: join(scratch, 'unused') });

  it('answers ok with its latency when the server is up', async () => {
    const result = await pgx().ping(conn, target);
    expect(result.ok).toBe(true);
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThan(0);
    expect(result.latencyMs).toBeLessThan(5_000);
  });

  it('reports ok:false quickly, naming the target, when nothing listens on the port', async () => {
    const started = Date.now();
    const result = await pgx().ping({ ...conn, port: await closedPort() }, target);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^ping of postgres 't_db_pg' failed: .*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports ok:false within its timeout when the server accepts but never answers', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const result = await pgx().ping({ ...conn, port: silent.port, timeoutMs: 500 }, target);
      expect(result.ok).toBe(false);
      expect(result.error).toMatch(/^ping of postgres 't_db_pg' failed: /);
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      await silent.close();
    }
  });

  it('fails non-retryably on a wrong password, without the password in the message', async () => {
    const wrong = `t_db_wrong_${suffix}_Pw`;
    const failure = await failureOf(pgx().ping({ ...conn, password: Secret.of(wrong) }, target));
    expect(failure.type).toBe('AuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(`ping of postgres 't_db_pg' failed: password authentication failed for user '${conn.user}'`);
    expect(JSON.stringify(failure)).not.toContain(wrong);

    const again = await failureOf(pgx().connections({ ...conn, password: Secret.of(wrong) }, target));
    expect(again.type).toBe('AuthFailed');
    expect(again.message).not.toContain(wrong);
  });

  it('fails non-retryably with target-not-found for a database that does not exist', async () => {
    const failure = await failureOf(pgx().ping({ ...conn, database: `t_db_missing_${suffix}` }, target));
    expect(failure.type).toBe('TargetNotFound');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`t_db_missing_${suffix}`);
  });
});

describe('postgres diagnostics', () => {
  const pgx = () => createPostgresActivities({ outputBytes: 16_384, backupDir: join(scratch, 'unused') });

  it('counts client connections by state against max_connections', async () => {
    const idle = client();
    await idle.connect();
    try {
      const result = await pgx().connections(conn, target);
      const max = Number((await admin.query('SHOW max_connections')).rows[0].max_connections);
      expect(result.max).toBe(max);
      // Ours, the admin's and the idle one at least; the user has pg_monitor, so nothing is hidden.
      expect(result.total).toBeGreaterThanOrEqual(3);
      expect(Object.values(result.byState).reduce((a, b) => a + b, 0)).toBe(result.total);
      expect(result.byState.idle).toBeGreaterThanOrEqual(2);
      expect(result.byState.active).toBeGreaterThanOrEqual(1);
      expect(result.usedPercent).toBeCloseTo((result.total / max) * 100, 1);
    } finally {
      await idle.end();
    }
  });

  it("reads the current database's pg_stat_database row with counters as numbers", async () => {
    const stats = await pgx().databaseStats(conn, target);
    expect(stats.datname).toBe(conn.database);
    for (const key of ['numbackends', 'xact_commit', 'xact_rollback', 'blks_read', 'blks_hit', 'deadlocks', 'temp_bytes', 'tup_returned']) {
      expect(typeof stats[key], key).toBe('number');
    }
    expect(stats.numbackends).toBeGreaterThanOrEqual(1);
    expect(stats.xact_commit as number).toBeGreaterThan(0);
  });

  it('finds a statement running longer than the threshold, without its literals, capped, never its own, and the statement can be cancelled', async () => {
    const sleeper = client();
    await sleeper.connect();
    const pid = (await sleeper.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const padding = 'x'.repeat(600);
    const sleeping = sleeper.query(`SELECT pg_sleep(30), 'hunter2-in-a-literal' AS note /* t_db_sleeper ${padding} */`).then(
      () => undefined,
      (err: { code?: string }) => err,
    );
    try {
      const found = await until('the sleeping query to show up', 15_000, async () => {
        const long = await pgx().longQueries(conn, target, 1);
        return long.find((q) => q.pid === pid);
      });
      expect(found.durationS).toBeGreaterThanOrEqual(1);
      expect(found.durationS).toBeLessThan(30);
      expect(found.state).toBe('active');
      expect(found.user).toBe(conn.user);
      // Other sessions' literals are their data: the statement's shape only.
      expect(found.query).toMatch(/^SELECT pg_sleep\(\?\), \? AS note \/\* t_db_sleeper x+$/);
      expect(found.query).not.toContain('hunter2');
      expect(found.query.length).toBe(500);

      const everything = await pgx().longQueries(conn, target, 0);
      expect(everything.some((q) => q.pid === pid)).toBe(true);
      expect(everything.some((q) => q.query.includes('pg_stat_activity'))).toBe(false);

      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
      expect(await sleeping).toMatchObject({ code: '57014' });
      const after = await pgx().longQueries(conn, target, 0);
      expect(after.some((q) => q.pid === pid)).toBe(false);
    } finally {
      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
      await sleeper.end();
    }
  });

  it('refuses a negative threshold', async () => {
    const failure = await failureOf(pgx().longQueries(conn, target, -1));
    expect(failure.type).toBe('BadInput');
  });
});

describe('postgres vacuum', () => {
  const pgx = () => createPostgresActivities({ outputBytes: 16_384, backupDir: join(scratch, 'unused') });

  beforeAll(async () => {
    await admin.query(`CREATE TABLE ${vacTable} (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false)`);
    const writer = client();
    await writer.connect();
    await writer.query(`INSERT INTO ${vacTable} SELECT g, repeat('p', 100) FROM generate_series(1, 5000) g`);
    await writer.query(`DELETE FROM ${vacTable} WHERE id > 1000`);
    // A backend flushes its table counters at exit at the latest.
    await writer.end();
    await until('dead tuples to be counted', 15_000, async () => ((await tableStats(vacTable))?.n_dead_tup >= 4000 ? true : undefined));
  });

  it('in dry-run reports the dead tuples and changes nothing', async () => {
    const result = await pgx().vacuum(conn, target, [vacTable], { dryRun: true });
    expect(result.dryRun).toBe(true);
    expect(result.deadTuplesBefore).toBeGreaterThanOrEqual(4000);
    expect(result.deadTuplesAfter).toBe(result.deadTuplesBefore);
    expect(result.summary).toBe(`would run VACUUM (ANALYZE) on "${vacTable}" (${result.deadTuplesBefore} dead tuples now)`);
    const stats = await tableStats(vacTable);
    expect(stats.n_dead_tup).toBe(result.deadTuplesBefore);
    expect(stats.last_vacuum).toBeNull();
    expect(stats.last_analyze).toBeNull();
  });

  it('of the whole database in dry-run only reports', async () => {
    const result = await pgx().vacuum(conn, target, [], { dryRun: true });
    expect(result.summary).toMatch(/^would run VACUUM \(ANALYZE\) on the whole database/);
    expect(result.deadTuplesBefore).toBeGreaterThanOrEqual(4000);
    expect((await tableStats(vacTable)).last_vacuum).toBeNull();
  });

  it('of a schema-qualified table leaves fewer dead tuples and records the vacuum', async () => {
    const result = await pgx().vacuum(conn, target, [`public.${vacTable}`], { dryRun: false });
    expect(result.dryRun).toBe(false);
    expect(result.tables).toEqual([`public.${vacTable}`]);
    expect(result.deadTuplesBefore).toBeGreaterThanOrEqual(4000);
    expect(result.deadTuplesAfter).toBeLessThan(result.deadTuplesBefore);
    expect(result.deadTuplesAfter).toBe(0);
    expect(result.summary).toContain(`dead tuples ${result.deadTuplesBefore} → 0`);
    const stats = await tableStats(vacTable);
    expect(stats.n_dead_tup).toBe(0);
    expect(stats.last_vacuum).not.toBeNull();
    expect(stats.last_analyze).not.toBeNull();
  });

  it('when its activity is cancelled, stops the VACUUM on the server, having heartbeated while it waited', async () => {
    // Someone else holds the table: VACUUM queues behind the lock until cancelled.
    await cancelledWhileLocked('vacuum', vacTable, `VACUUM (ANALYZE) "${vacTable}"`, 'last_vacuum');
  });

  it('gives up on a table someone holds locked after its timeout, retryably, instead of queueing behind the lock', async () => {
    const locker = client();
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${vacTable} IN ACCESS EXCLUSIVE MODE`);
    try {
      const started = Date.now();
      const failure = await failureOf(pgx().vacuum({ ...conn, timeoutMs: 1_000 }, target, [vacTable], { dryRun: false }));
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(failure.type).toBe('Transient');
      expect(failure.message).toBe(`vacuum of postgres 't_db_pg' failed: canceling statement due to lock timeout`);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  it('reports relations the user was not allowed to vacuum instead of claiming success silently', async () => {
    // Only a superuser may vacuum pg_authid; the configured user is the database owner, not a superuser.
    const result = await pgx().vacuum(conn, target, ['pg_catalog.pg_authid'], { dryRun: false });
    expect(result.summary).toMatch(/; skipped 1 relation\(s\) this user may not vacuum \(pg_authid\)$/);
  });

  it('refuses names that are not plain identifiers, before connecting', async () => {
    for (const bad of [`${vacTable}; DROP TABLE ${vacTable}`, 'a"b', 'a.b.c', '', '1abc', `${vacTable} `, 'x'.repeat(64)]) {
      const failure = await failureOf(pgx().vacuum({ ...conn, port: 1 }, target, [bad], { dryRun: false }));
      expect(failure.type, bad).toBe('BadInput');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/^vacuum of postgres 't_db_pg' refused: /);
    }
    expect(await tableStats(vacTable)).toBeDefined();
  });

  it('fails non-retryably, naming the table, when a table does not exist', async () => {
    const failure = await failureOf(pgx().vacuum(conn, target, [vacTable, `t_db_missing_${suffix}`], { dryRun: true }));
    expect(failure.type).toBe('TargetNotFound');
    expect(failure.message).toBe(`vacuum of postgres 't_db_pg' failed: no table 't_db_missing_${suffix}'`);
  });
});

describe('postgres analyze (maintain with analyzeOnly)', () => {
  const pgx = () => createPostgresActivities({ outputBytes: 16_384, backupDir: join(scratch, 'unused') });

  beforeAll(async () => {
    await admin.query(`CREATE TABLE ${anaTable} (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false)`);
    const writer = client();
    await writer.connect();
    await writer.query(`INSERT INTO ${anaTable} SELECT g, repeat('p', 100) FROM generate_series(1, 5000) g`);
    await writer.query(`DELETE FROM ${anaTable} WHERE id > 1000`);
    await writer.end();
    await until('dead tuples to be counted', 15_000, async () => ((await tableStats(anaTable))?.n_dead_tup >= 4000 ? true : undefined));
  });

  it('in dry-run says what it would run and touches nothing', async () => {
    const result = await pgx().analyze(conn, target, [anaTable], { dryRun: true });
    expect(result.dryRun).toBe(true);
    expect(result.summary).toBe(`would run ANALYZE on "${anaTable}" (${result.deadTuplesBefore} dead tuples now)`);
    const whole = await pgx().analyze(conn, target, [], { dryRun: true });
    expect(whole.summary).toMatch(/^would run ANALYZE on the whole database \(\d+ dead tuples now\)$/);
    const stats = await tableStats(anaTable);
    expect(stats.last_analyze).toBeNull();
    expect(stats.last_vacuum).toBeNull();
  });

  it('refreshes the statistics and vacuums nothing: last_analyze advances, last_vacuum does not, the dead tuples stay', async () => {
    const result = await pgx().analyze(conn, target, [`public.${anaTable}`], { dryRun: false });
    expect(result.dryRun).toBe(false);
    expect(result.tables).toEqual([`public.${anaTable}`]);
    expect(result.summary).toMatch(
      new RegExp(
        `^ANALYZE on "public"\\."${anaTable}" took \\d+(ms|s); planner statistics refreshed, nothing vacuumed \\(\\d+ dead tuples\\)$`,
      ),
    );
    const stats = await tableStats(anaTable);
    expect(stats.last_analyze).not.toBeNull();
    expect(stats.last_vacuum).toBeNull();
    expect(stats.n_dead_tup).toBeGreaterThanOrEqual(4000);
    const { rows } = await admin.query<{ reltuples: number }>('SELECT reltuples::float8 AS reltuples FROM pg_class WHERE relname = $1', [
      anaTable,
    ]);
    expect(rows[0]!.reltuples).toBe(1000);
  });

  it('when its activity is cancelled, stops the ANALYZE on the server, having heartbeated while it waited', async () => {
    await cancelledWhileLocked('analyze', anaTable, `ANALYZE "${anaTable}"`, 'last_analyze');
  });

  it("is what a maintain step with analyzeOnly runs on the target's maintenanceTables; without it, VACUUM (ANALYZE) as before", async () => {
    const s = stack().pg;
    const raw: EngineConfigInput = {
      webhook: { token: 'unused-token' },
      backupDir: join(scratch, 'unused'),
      targets: {
        db: {
          kind: 'postgres',
          host: s.host,
          port: s.port,
          user: s.user,
          password: s.password,
          database: s.database,
          maintenanceTables: [anaTable],
        },
      },
      escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
      channels: { log: { type: 'log' } },
    };
    const config: EngineConfig = { ...engineConfig.parse(raw), runbookDefinitions: {} };
    const facade = createEngineActivities(config, {
      client: undefined as never,
      logger: pino({ level: 'silent' }),
    }) as unknown as TargetActivities;
    const ctx = (dryRun: boolean): ActionContext => ({ incidentId: 'incident:test', reason: 'slow', actor: 'alice', dryRun });

    expect((await facade.maintainTarget('db', ctx(true))).summary).toMatch(new RegExp(`^would run VACUUM \\(ANALYZE\\) on "${anaTable}"`));
    expect((await facade.maintainTarget('db', ctx(true), { analyzeOnly: true })).summary).toMatch(
      new RegExp(`^would run ANALYZE on "${anaTable}"`),
    );
    const lastAnalyze = (await tableStats(anaTable)).last_analyze!;
    const r = await facade.maintainTarget('db', ctx(false), { analyzeOnly: true });
    expect(r).toMatchObject({ target: 'db', action: 'maintenance', dryRun: false });
    expect(r.summary).toMatch(new RegExp(`^ANALYZE on "${anaTable}" took `));
    const stats = await tableStats(anaTable);
    expect(stats.last_analyze!.getTime()).toBeGreaterThan(lastAnalyze.getTime());
    expect(stats.last_vacuum).toBeNull();
    expect(stats.n_dead_tup).toBeGreaterThanOrEqual(4000);
  });

  it('reports relations the user was not allowed to analyze, and refuses bad or missing names like vacuum', async () => {
    const result = await pgx().analyze(conn, target, ['pg_catalog.pg_authid'], { dryRun: false });
    expect(result.summary).toMatch(/; skipped 1 relation\(s\) this user may not analyze \(pg_authid\)$/);
    const bad = await failureOf(pgx().analyze({ ...conn, port: 1 }, target, [`${anaTable}; DROP TABLE ${anaTable}`], { dryRun: false }));
    expect(bad.type).toBe('BadInput');
    expect(bad.message).toMatch(/^analyze of postgres 't_db_pg' refused: /);
    const missing = await failureOf(pgx().analyze(conn, target, [`t_db_missing_${suffix}`], { dryRun: false }));
    expect(missing.type).toBe('TargetNotFound');
    expect(missing.message).toBe(`analyze of postgres 't_db_pg' failed: no table 't_db_missing_${suffix}'`);
  });
});

describe('postgres backup', () => {
  const rows = 1234;

  beforeAll(async () => {
    await admin.query(`CREATE TABLE ${backupTable} (id int PRIMARY KEY, note text)`);
    await admin.query(`INSERT INTO ${backupTable} SELECT g, 'row ' || g FROM generate_series(1, ${rows}) g`);
  });

  it("makes the dump file the owner's only before pg_dump writes a byte of it", async () => {
    const backupDir = join(scratch, 'mode', 'backups');
    // pg_dump, with a look first at the file it is told to write: its mode then, or that it is not there yet.
    const wrapper = join(scratch, 'pg_dump-looking');
    const marker = join(scratch, 'mode-seen');
    await writeFile(
      wrapper,
      [
        '#!/bin/sh',
        'for a in "$@"; do case "$a" in --file=*) f="${a#--file=}";; esac; done',
        `if [ -e "$f" ]; then stat -c %a "$f" > '${marker}'; else echo absent > '${marker}'; fi`,
        'exec pg_dump "$@"',
      ].join('\n'),
      { mode: 0o700 },
    );
    const result = await createPostgresActivities({ outputBytes: 16_384, backupDir, pgDumpPath: wrapper }).backup(conn, target, {
      dryRun: false,
    });
    expect((await readFile(marker, 'utf8')).trim()).toBe('600');
    expect((await stat(result.file!)).mode & 0o777).toBe(0o600);
  });

  it('writes a custom-format dump that restores the table with all its rows', async () => {
    const backupDir = join(scratch, 'restore', 'backups');
    const result = await createPostgresActivities({ outputBytes: 16_384, backupDir }).backup(conn, target, { dryRun: false });
    expect(result.dryRun).toBe(false);
    const file = result.file!;
    expect(dirname(file)).toBe(backupDir);
    expect(basename(file)).toMatch(/^t_db_pg-\d{8}T\d{6}Z\.dump$/);
    const content = await readFile(file);
    expect(content.subarray(0, 5).toString()).toBe('PGDMP');
    expect(result.bytes).toBe(content.length);
    expect(result.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect((await stat(file)).mode & 0o077).toBe(0);
    expect(await readdir(backupDir)).toEqual([basename(file)]);

    const list = await run('pg_restore', ['--list', file]);
    expect(list.stdout).toContain(`TABLE public ${backupTable}`);
    expect(list.stdout).toContain(`TABLE DATA public ${backupTable}`);

    // A real restore of the one table: drop it, restore it from the dump, count its rows.
    await admin.query(`DROP TABLE ${backupTable}`);
    const s = stack().pg;
    await run(
      'pg_restore',
      [
        '--host',
        s.host,
        '--port',
        String(s.port),
        '--username',
        s.user,
        '--dbname',
        s.database,
        '--no-owner',
        '--table',
        backupTable,
        file,
      ],
      {
        env: { PATH: process.env.PATH, PGPASSWORD: s.password },
        timeout: 30_000,
      },
    );
    const { rows: counted } = await admin.query(`SELECT count(*)::int AS n FROM ${backupTable}`);
    expect(counted[0].n).toBe(rows);
  });

  it('when its activity is cancelled, stops pg_dump and leaves no file behind', async () => {
    const backupDir = join(scratch, 'cancel', 'backups');
    const locker = client();
    await locker.connect();
    await locker.query('BEGIN');
    // pg_dump needs a share lock on every table; this one is held, so it waits.
    await locker.query(`LOCK TABLE ${backupTable} IN ACCESS EXCLUSIVE MODE`);
    try {
      const pgx = createPostgresActivities({ outputBytes: 16_384, backupDir });
      const { beats, outcome, cancel } = cancellableActivity(() => pgx.backup({ ...conn, timeoutMs: 30_000 }, target, { dryRun: false }));
      const dumping =
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'remediation-engine' AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'";
      await until('pg_dump to wait for the lock', 15_000, async () => ((await admin.query(dumping)).rowCount ? true : undefined));
      cancel();
      const failure = await outcome;
      expect(failure).toBeInstanceOf(Error);
      expect(failure).not.toBeInstanceOf(ApplicationFailure);
      expect(beats).toContainEqual({ op: 'backup', target });
      await until('pg_dump to disconnect', 5_000, async () => ((await admin.query(dumping)).rowCount === 0 ? true : undefined));
      expect(await readdir(backupDir)).toEqual([]);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  it('in dry-run writes nothing, not even the backup directory', async () => {
    const backupDir = join(scratch, 'dry', 'backups');
    const result = await createPostgresActivities({ outputBytes: 16_384, backupDir }).backup(conn, target, { dryRun: true });
    expect(result.dryRun).toBe(true);
    expect(result.file).toBeUndefined();
    expect(result.summary).toMatch(
      new RegExp(`^would run pg_dump -Fc of database '${conn.database}' into ${backupDir}/t_db_pg-\\d{8}T\\d{6}Z\\.dump$`),
    );
    await expect(stat(join(scratch, 'dry'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('with a wrong password fails non-retryably, without the password, and leaves no partial file', async () => {
    const backupDir = join(scratch, 'wrong', 'backups');
    const wrong = `t_db_wrong_${suffix}_Pw`;
    const failure = await failureOf(
      createPostgresActivities({ outputBytes: 16_384, backupDir }).backup({ ...conn, password: Secret.of(wrong) }, target, {
        dryRun: false,
      }),
    );
    expect(failure.type).toBe('AuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/^backup of postgres 't_db_pg' failed: .*password authentication failed/);
    expect(JSON.stringify(failure)).not.toContain(wrong);
    expect(await readdir(backupDir)).toEqual([]);
  });

  it('refuses a target name that would escape the backup directory', async () => {
    const backupDir = join(scratch, 'escape', 'backups');
    const failure = await failureOf(
      createPostgresActivities({ outputBytes: 16_384, backupDir }).backup(conn, '../t_db_pg', { dryRun: false }),
    );
    expect(failure.type).toBe('BadInput');
    await expect(stat(join(scratch, 'escape'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
