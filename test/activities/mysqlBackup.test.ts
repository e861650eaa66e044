// The backup and maintain steps on a MySQL target, through the facade, against the stack's MariaDB:
// a mysqldump of a database this file creates (t_bk_*, granted to the engine's user for the test),
// restored into a scratch database and compared row by row; its file's mode, size and checksum; the
// password in no argv and no file left behind; refusals by name. And OPTIMIZE / ANALYZE of every
// table when the target lists none, or ANALYZE alone (analyzeOnly).
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionContext, TargetActivities } from '../../activities/contract.js';
import { failureTypes } from '../../activities/failures.js';
import { createEngineActivities } from '../../activities/index.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';

const run = promisify(execFile);
const suffix = randomUUID().slice(0, 8).replace(/-/g, '');
const source = `t_bk_src_${suffix}`;
const restored = `t_bk_restore_${suffix}`;
const backupDir = mkdtempSync(join(tmpdir(), 't-bk-'));
const logger = pino({ level: 'silent' });
const ctx = (dryRun = false): ActionContext => ({ incidentId: 'incident:test', reason: 'weekly', actor: 'engine', dryRun });

/** The stack's MariaDB as root, over its socket: only root may create the scratch databases. */
async function asRoot(sql: string, database?: string): Promise<string> {
  const { stdout } = await run(
    'mariadb',
    [
      '--no-defaults',
      `--socket=${join(stack().dir, 'mariadb', 'mysqld.sock')}`,
      '--default-character-set=utf8mb4',
      '-u',
      'root',
      '--batch',
      '--skip-column-names',
      ...(database ? [database] : []),
      '-e',
      sql,
    ],
    {
      timeout: 60_000,
    },
  );
  return stdout.trim();
}

function config(database = source, password = stack().mysql.password, dir = backupDir, user = stack().mysql.user): EngineConfig {
  const s = stack().mysql;
  const raw: EngineConfigInput = {
    webhook: { token: 'unused-token' },
    backupDir: dir,
    targets: {
      db: { kind: 'mysql', host: s.host, port: s.port, user, password, database },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
  };
  return { ...engineConfig.parse(raw), runbookDefinitions: {} };
}

const facade = (c: EngineConfig) => createEngineActivities(c, { client: undefined as never, logger }) as unknown as TargetActivities;

const rows = (database: string) =>
  asRoot(
    'SELECT id, name, HEX(data), note, amount FROM orders ORDER BY id; SELECT k, v FROM settings ORDER BY k; SELECT COUNT(*) FROM audit',
    database,
  );

beforeAll(async () => {
  const s = stack().mysql;
  await asRoot(`CREATE DATABASE ${source}; GRANT ALL PRIVILEGES ON ${source}.* TO '${s.user}'@'127.0.0.1'`);
  await asRoot(
    [
      'CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(100) CHARACTER SET utf8mb4, data VARBINARY(16), note TEXT, amount DECIMAL(10,2)) ENGINE=InnoDB',
      // What a careless dump gets wrong: quotes, backslashes, multi-byte text, binary, NULL.
      `INSERT INTO orders VALUES (1, 'O''Brien \\\\ "quoted"', UNHEX('00FF10'), NULL, 12.50), (2, 'Zoë 🚀 naïve', UNHEX(''), 'line1\\nline2', -3.00), (3, 'plain', NULL, '', 0)`,
      'CREATE TABLE settings (k VARCHAR(20) PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB',
      "INSERT INTO settings VALUES ('mode', 'live'), ('retries', '3')",
      'CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME) ENGINE=InnoDB',
      'INSERT INTO audit (at) SELECT NOW() FROM seq_1_to_500',
      'CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (at) VALUES (NOW())',
    ].join(';\n'),
    source,
  );
}, 60_000);

afterAll(async () => {
  const s = stack().mysql;
  await asRoot(
    `DROP DATABASE IF EXISTS ${source}; DROP DATABASE IF EXISTS ${restored}; REVOKE ALL PRIVILEGES ON ${source}.* FROM '${s.user}'@'127.0.0.1'`,
  ).catch(() => undefined);
  rmSync(backupDir, { recursive: true, force: true });
});

describe('mysql backup', () => {
  it('writes a mysqldump a scratch database restores row for row, mode 0600, with its size and sha256', async () => {
    // A temporary directory of this test's own, to see that the password's option file is gone afterwards.
    const scratch = mkdtempSync(join(tmpdir(), 't-bk-tmp-'));
    const before = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    let r;
    try {
      r = await facade(config()).backupTarget('db', ctx());
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
    expect(await readdir(scratch)).toEqual([]);
    rmSync(scratch, { recursive: true });
    expect(r.dryRun).toBe(false);
    expect(r.file).toMatch(new RegExp(`^${backupDir}/db-\\d{8}T\\d{6}Z\\.sql$`));
    const file = r.file!;
    const info = await stat(file);
    expect(info.mode & 0o777).toBe(0o600);
    expect(r.bytes).toBe(info.size);
    expect(r.sha256).toBe(
      createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    );
    expect(r.summary).toMatch(
      new RegExp(`^mysqldump of database '${source}' wrote ${info.size} bytes to ${file} in .* \\(sha256 ${r.sha256!.slice(0, 12)}…\\)$`),
    );
    // Nothing of the run is left beside the dump: no partial file.
    expect(await readdir(backupDir)).toEqual([file.slice(backupDir.length + 1)]);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(stack().mysql.password);
    expect(text).not.toMatch(/CREATE DATABASE|^USE /m);

    await asRoot(`CREATE DATABASE ${restored}`);
    await run('sh', ['-c', `mariadb --no-defaults --socket="$SOCK" --default-character-set=utf8mb4 -u root "$DB" < "$FILE"`], {
      env: { PATH: process.env.PATH, SOCK: join(stack().dir, 'mariadb', 'mysqld.sock'), DB: restored, FILE: file },
      timeout: 60_000,
    });
    const original = await rows(source);
    expect(original).toContain('Zoë 🚀 naïve');
    expect(original).toContain('00FF10');
    expect(await rows(restored)).toBe(original);
    expect(await asRoot(`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${restored}'`)).toBe('orders_audit');
  });

  it('in a dry run says what it would do and writes nothing', async () => {
    const files = await readdir(backupDir);
    const r = await facade(config()).backupTarget('db', ctx(true));
    expect(r).toMatchObject({ dryRun: true });
    expect(r.summary).toMatch(
      new RegExp(`^would run mysqldump --single-transaction of database '${source}' into ${backupDir}/db-\\d{8}T\\d{6}Z\\.sql$`),
    );
    expect(await readdir(backupDir)).toEqual(files);
  });

  it('fails without retry on a wrong password or a database that does not exist, naming the target and never the password', async () => {
    const wrong = `not-${randomUUID()}`;
    // A directory of their own: a backup file of the same second would be refused first (as transient).
    const dir = join(backupDir, 'failures');
    const denied = await failureOf(facade(config(source, wrong, dir)).backupTarget('db', ctx()));
    expect(denied.type, denied.message).toBe(failureTypes.authFailed);
    expect(denied.message).toMatch(/^backup of mysql 'db' failed: .*Access denied/);
    expect(denied.message).not.toContain(wrong);

    const missing = await failureOf(facade(config(`t_bk_none_${suffix}`, undefined, join(dir, 'missing'))).backupTarget('db', ctx()));
    expect([failureTypes.targetNotFound, failureTypes.authFailed]).toContain(missing.type);
    expect(missing.message).toMatch(/^backup of mysql 'db' failed: /);

    const odd = await failureOf(facade(config('--all-databases')).backupTarget('db', ctx()));
    expect(odd.type).toBe(failureTypes.badInput);
    expect(odd.message).toBe(`backup of mysql 'db' refused: '--all-databases' is not a plain database name`);
    // Failed runs leave no partial dump behind.
    expect(await readdir(dir)).toEqual(['missing']);
    expect(await readdir(join(dir, 'missing'))).toEqual([]);
  });
});

describe('mysql backup with an account the server refuses', () => {
  // The host the engine connects from, not '%': an account with a wildcard host makes MariaDB accept
  // every client host until its privileges are next reloaded, so the test in mysql.test.ts of a
  // host no account names would see "Access denied" instead of "Host … is not allowed" (order-dependent).
  const host = stack().mysql.host === 'localhost' ? 'localhost' : '127.0.0.1';
  const password = `pw-${randomUUID()}`;
  const expired = `t_bk_exp_${suffix}`;
  const limited = `t_bk_lim_${suffix}`;
  const dir = join(backupDir, 'accounts');

  beforeAll(async () => {
    await asRoot(
      [
        `CREATE USER '${expired}'@'${host}' IDENTIFIED BY '${password}'`,
        `CREATE USER '${limited}'@'${host}' IDENTIFIED BY '${password}' WITH MAX_USER_CONNECTIONS 1`,
        `GRANT SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON \`${source}\`.* TO '${expired}'@'${host}', '${limited}'@'${host}'`,
        `ALTER USER '${expired}'@'${host}' PASSWORD EXPIRE`,
      ].join('; '),
    );
  });

  afterAll(async () => {
    await asRoot([expired, limited].map((u) => `DROP USER IF EXISTS '${u}'@'${host}'`).join('; '));
  });

  it('fails without retry, saying what to do, when the password has expired or the account used up its own connections', async () => {
    const gone = await failureOf(facade(config(source, password, dir, expired)).backupTarget('db', ctx()));
    expect(gone.type, gone.message).toBe(failureTypes.authFailed);
    expect(gone.nonRetryable).toBe(true);
    expect(gone.message).toMatch(
      new RegExp(`^backup of mysql 'db' failed: the password of account '${expired}' has expired .*: set a new one`),
    );

    const s = stack().mysql;
    const held = await mysql.createConnection({ host: s.host, port: s.port, user: limited, password });
    held.on('error', () => {});
    try {
      const full = await failureOf(facade(config(source, password, dir, limited)).backupTarget('db', ctx()));
      expect(full.type, full.message).toBe(failureTypes.authFailed);
      expect(full.message).toMatch(new RegExp(`refuses account '${limited}' more: it has reached a limit of its own`));
      expect(JSON.stringify([gone, full])).not.toContain(password);
    } finally {
      await held.end();
    }
  });
});

describe('mysql maintenance of every table', () => {
  it('runs OPTIMIZE and ANALYZE TABLE on every table of the database when the target lists none', async () => {
    const r = await facade(config()).maintainTarget('db', ctx());
    expect(r.summary).toMatch(
      /^OPTIMIZE TABLE on audit, orders, settings took .*: ok; ANALYZE TABLE on audit, orders, settings took .*: ok$/,
    );
    const dry = await facade(config()).maintainTarget('db', ctx(true));
    expect(dry.summary).toBe('would run OPTIMIZE TABLE on audit, orders, settings; would run ANALYZE TABLE on audit, orders, settings');
  });

  it('with analyzeOnly runs ANALYZE TABLE alone: no table is rebuilt, its statistics are refreshed, and a dry run says so', async () => {
    // OPTIMIZE on InnoDB recreates the table (a new CREATE_TIME); ANALYZE saves fresh persistent statistics.
    const created = () =>
      asRoot(`SELECT TABLE_NAME, CREATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${source}' ORDER BY TABLE_NAME`);
    const analyzed = () =>
      asRoot(`SELECT table_name, last_update FROM mysql.innodb_table_stats WHERE database_name = '${source}' ORDER BY table_name`);
    const [createdBefore, analyzedBefore] = [await created(), await analyzed()];
    // Both are kept to the second.
    await new Promise((r) => setTimeout(r, 1_100));

    const dry = await facade(config()).maintainTarget('db', ctx(true), { analyzeOnly: true });
    expect(dry.summary).toBe('would run ANALYZE TABLE on audit, orders, settings');
    expect(await analyzed()).toBe(analyzedBefore);

    const r = await facade(config()).maintainTarget('db', ctx(), { analyzeOnly: true });
    expect(r.summary).toMatch(/^ANALYZE TABLE on audit, orders, settings took \d+(ms|s): ok$/);
    expect(await created()).toBe(createdBefore);
    const after = (await analyzed()).split('\n');
    const before = analyzedBefore.split('\n');
    expect(after.map((l) => l.split('\t')[0])).toEqual(['audit', 'orders', 'settings']);
    for (const [i, line] of after.entries()) expect(line, line).not.toBe(before[i]);
  });

  it('is refused, not skipped, when the target names neither tables nor a database', async () => {
    const c = config();
    const t = c.targets.db as Extract<(typeof c.targets)['db'], { kind: 'mysql' }>;
    const none = { ...c, targets: { db: { ...t, database: undefined } } };
    const f = await failureOf(facade(none).maintainTarget('db', ctx()));
    expect(f.type).toBe(failureTypes.badInput);
    expect(f.message).toBe(`optimize of mysql 'db' refused: no tables named and no database configured`);
  });
});
