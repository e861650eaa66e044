// Redis as a runbook sees it: is it answering, and the INFO sections that explain why not
// (clients, memory, stats, server).
//
// One short-lived client per call that never reconnects or queues: ioredis's defaults retry
// forever, which would turn "Redis is down" into an activity that hangs until its timeout.
import { ApplicationFailure } from '@temporalio/common';
import { Redis } from 'ioredis';
import { parseDuration } from '../config/duration.js';
import type { RedisTarget } from '../config/schema.js';
import { redact, type Secret } from '../config/secret.js';
import { authFailed, badInput, classify, failureTypes, operation, withTimeout } from './failures.js';

export interface RedisConnection {
  host: string;
  port: number;
  password?: Secret;
  /** Connect timeout and command timeout. */
  timeoutMs: number;
}

export function redisConnection(target: RedisTarget): RedisConnection {
  const { host, port, password } = target;
  return { host, port, password, timeoutMs: parseDuration(target.timeout) };
}

export interface RedisPing {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

export const infoSections = ['clients', 'memory', 'stats', 'server'] as const;
export type InfoSection = (typeof infoSections)[number];
export type RedisInfo = Partial<Record<InfoSection, Record<string, number | string>>>;

const kind = 'redis';

export function createRedisActivities() {
  return {
    /** Connect (with AUTH) and PING, measured. Unreachable or slow is an answer (ok: false), not an error. */
    async ping(conn: RedisConnection, name: string): Promise<RedisPing> {
      const what = operation('ping', kind, name);
      const started = performance.now();
      try {
        const reply = await withRedis(conn, what, (r) => r.ping());
        if (reply !== 'PONG')
          return { ok: false, latencyMs: elapsed(started), error: `${what} failed: unexpected reply '${String(reply).slice(0, 100)}'` };
        return { ok: true, latencyMs: elapsed(started) };
      } catch (err) {
        // A password the server refuses (or has no use for) says nothing of whether the server is up:
        // reported as ok:false, it would have a runbook restart a healthy Redis. It fails, naming
        // what to fix, and is not retried.
        if (!(err instanceof ApplicationFailure) || err.type !== failureTypes.transient) throw err;
        return { ok: false, latencyMs: elapsed(started), error: err.message };
      }
    },

    /** INFO of the given sections, one map per section; numeric values as numbers. */
    async info(conn: RedisConnection, name: string, sections: InfoSection[]): Promise<RedisInfo> {
      const what = operation('info', kind, name);
      const unknown = sections.filter((s) => !(infoSections as readonly string[]).includes(s));
      if (unknown.length || !sections.length) {
        throw badInput(what, `sections must be some of ${infoSections.join(', ')}, got ${JSON.stringify(sections).slice(0, 200)}`);
      }
      return withRedis(conn, what, async (r) => {
        const out: RedisInfo = {};
        // One INFO per section: servers before 7.0 accept only one section per call.
        for (const section of sections) out[section] = parseInfo(await r.info(section));
        return out;
      });
    },
  };
}

export type RedisActivities = ReturnType<typeof createRedisActivities>;

/** "key:value" lines; "#" headers and blanks skipped; plain decimal numbers become numbers. */
export function parseInfo(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const value = line.slice(colon + 1);
    out[line.slice(0, colon)] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return out;
}

async function withRedis<T>(conn: RedisConnection, what: string, work: (r: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    host: conn.host,
    port: conn.port,
    lazyConnect: true,
    connectTimeout: conn.timeoutMs,
    commandTimeout: conn.timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: () => false,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    autoResubscribe: false,
  });
  // ioredis reports why a connection failed (refused, WRONGPASS) only as an 'error' event and
  // rejects connect() with a bare "Connection is closed."; keep the reason. Without a listener it
  // would also print "Unhandled error event" for every failed connect.
  let reason: unknown;
  client.on('error', (err) => {
    reason ??= err;
  });
  try {
    // connectTimeout covers the TCP handshake; the outer bound is the backstop should connect() neither resolve nor reject.
    await withTimeout(what, conn.timeoutMs + 1_000, client.connect());
    // AUTH by hand rather than through the `password` option: ioredis sends that one without
    // waiting for the reply, so a WRONGPASS races the first command and surfaces as a closed stream.
    if (conn.password) await client.auth(conn.password.reveal());
    return await work(client);
  } catch (err) {
    const closed = /^Connection is closed/.test(String((err as Error)?.message));
    throw redisFailure(what, closed && reason ? reason : err, conn);
  } finally {
    client.disconnect();
  }
}

function redisFailure(what: string, err: unknown, conn: RedisConnection): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const message = redact(String((err as Error)?.message ?? err), [conn.password])
    .split('\n')[0]!
    .slice(0, 500);
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(message) || /invalid (password|username-password pair)/i.test(message))
    return authFailed(what, message);
  // Redis 6+: "ERR AUTH <password> called without any password configured for the default user";
  // before: "ERR Client sent AUTH, but no password is set". The server is up and would answer.
  if (/called without any password configured|no password is set/i.test(message)) {
    return authFailed(
      what,
      `the target is configured with a password but the server has none for its default user (${message}): remove the password from the target's config, or set one on the server (requirepass) if it should have one`,
    );
  }
  return classify(what, err, [conn.password]);
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
