// Runs the Redis activities against the stack's password-protected Redis. Keys are t:db:*.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisActivities, parseInfo, type InfoSection, type RedisConnection } from '../../activities/redis.js';
import { Secret } from '../../config/secret.js';
import { stack } from '../support/stack.js';
import { failureOf, silentServer } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { until } from '../support/wait.js';

const suffix = randomUUID().slice(0, 8);
const key = `t:db:${suffix}`;
const target = 't_db_redis';
const redis = createRedisActivities();

let conn: RedisConnection;
let admin: Redis;

beforeAll(async () => {
  const s = stack().redis;
  conn = { host: s.host, port: s.port, password: Secret.of(s.password), timeoutMs: 3_000 };
  admin = new Redis({ host: s.host, port: s.port, password: s.password, lazyConnect: true });
  await admin.connect();
});

afterAll(async () => {
  await admin?.del(key);
  admin?.disconnect();
});

describe('redis ping', () => {
  it('answers ok with its latency when the server is up', async () => {
    const result = await redis.ping(conn, target);
    expect(result).toMatchObject({ ok: true });
    expect(result.error).toBeUndefined();
    expect(result.latencyMs).toBeGreaterThan(0);
    expect(result.latencyMs).toBeLessThan(3_000);
  });

  it('reports ok:false quickly, naming the target, when nothing listens on the port', async () => {
    const started = Date.now();
    const result = await redis.ping({ ...conn, port: await closedPort() }, target);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^ping of redis 't_db_redis' failed: .*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports ok:false within its timeout when the server accepts but never answers', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const result = await redis.ping({ ...conn, port: silent.port, timeoutMs: 500 }, target);
      expect(result.ok).toBe(false);
      expect(result.error).toMatch(/^ping of redis 't_db_redis' failed: /);
      expect(Date.now() - started).toBeLessThan(2_500);
    } finally {
      await silent.close();
    }
  });

  it('fails non-retryably on a wrong password, without the password in the message', async () => {
    const wrong = `t_db_wrong_${suffix}_Pw`;
    const failure = await failureOf(redis.ping({ ...conn, password: Secret.of(wrong) }, target));
    expect(failure.type).toBe('AuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/^ping of redis 't_db_redis' failed: WRONGPASS/);
    expect(JSON.stringify(failure)).not.toContain(wrong);
  });

  it('fails non-retryably when no password is given to a server that needs one', async () => {
    const failure = await failureOf(redis.info({ ...conn, password: undefined }, target, ['clients']));
    expect(failure.type).toBe('AuthFailed');
    expect(failure.message).toMatch(/^info of redis 't_db_redis' failed: NOAUTH/);
  });

  it('fails non-retryably, as a config problem and not the server down, when the target has a password and the server none', async () => {
    // A server of this test's own: the stack's requires a password, and AUTH with one password
    // only ever speaks to the default user.
    const port = await closedPort();
    const server = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    try {
      const open = { ...conn, port, password: undefined };
      await until('the password-less redis to answer', 10_000, async () => ((await redis.ping(open, target)).ok ? true : undefined));
      const failure = await failureOf(redis.ping({ ...conn, port }, target));
      expect(failure.type).toBe('AuthFailed');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(
        /^ping of redis 't_db_redis' failed: the target is configured with a password but the server has none for its default user \(ERR AUTH <password> called without any password configured .*\): remove the password from the target's config/,
      );
      expect(JSON.stringify(failure)).not.toContain(conn.password!.reveal());
    } finally {
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve));
        server.kill();
        await exited;
      }
    }
  });
});

describe('redis info', () => {
  it('returns the asked sections with numbers parsed as numbers', async () => {
    await admin.set(key, 'x'.repeat(1_000));
    const info = await redis.info(conn, target, ['clients', 'memory', 'stats', 'server']);
    expect(Object.keys(info).sort()).toEqual(['clients', 'memory', 'server', 'stats']);
    // Ours and the admin's at least.
    expect(info.clients!.connected_clients).toBeGreaterThanOrEqual(2);
    expect(typeof info.memory!.used_memory).toBe('number');
    expect(info.memory!.used_memory as number).toBeGreaterThan(1_000);
    expect(typeof info.memory!.used_memory_human).toBe('string');
    expect(typeof info.memory!.mem_fragmentation_ratio).toBe('number');
    expect(typeof info.stats!.total_commands_processed).toBe('number');
    expect(info.server!.tcp_port).toBe(conn.port);
    // A version has two dots and stays text.
    expect(info.server!.redis_version).toMatch(/^\d+\.\d+\.\d+$/);

    const later = await redis.info(conn, target, ['stats']);
    expect(Object.keys(later)).toEqual(['stats']);
    expect(later.stats!.total_commands_processed as number).toBeGreaterThan(info.stats!.total_commands_processed as number);
  });

  it('refuses sections it does not know, before connecting', async () => {
    for (const bad of [['keyspace'], ['clients', 'all'], [], ['clients\r\nFLUSHALL']]) {
      const failure = await failureOf(redis.info({ ...conn, port: 1 }, target, bad as InfoSection[]));
      expect(failure.type).toBe('BadInput');
      expect(failure.nonRetryable).toBe(true);
    }
    expect(await admin.exists(key)).toBe(1);
  });

  it('is a retryable failure when the server is down', async () => {
    const failure = await failureOf(redis.info({ ...conn, port: await closedPort() }, target, ['clients']));
    expect(failure.type).toBe('Transient');
    expect(failure.nonRetryable).toBe(false);
  });

  it('parses INFO text: headers skipped, integers and decimals as numbers, the rest as text', () => {
    expect(parseInfo('# Memory\r\nused_memory:1024\r\nratio:1.25\r\nneg:-3\r\nhuman:1.00K\r\nversion:7.0.15\r\nempty:\r\n\r\n')).toEqual({
      used_memory: 1024,
      ratio: 1.25,
      neg: -3,
      human: '1.00K',
      version: '7.0.15',
      empty: '',
    });
  });
});
