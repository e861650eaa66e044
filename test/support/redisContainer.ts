// A Redis server of the test's own, in a container: the busybox image running the host's
// redis-server (mounted read-only), so a runbook can stop, restart and ping a real database
// without touching the stack's Redis.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { busyboxRun, docker } from './docker.js';
import { closedPort } from './ports.js';
import { until } from './wait.js';

export interface RedisContainer {
  /** The container's name, `remediation-e2e-redis-<random>`. */
  name: string;
  port: number;
  password: string;
  /** Docker's State.StartedAt: changes exactly when the container is (re)started. */
  startedAt(): Promise<string>;
  /** Docker's State.Status: running, exited, ... */
  state(): Promise<string>;
  /** Whether the server answers PING (with AUTH) right now. */
  ping(): Promise<boolean>;
  /** `docker stop`: the database goes away the way a crashed or stopped server does. */
  stop(): Promise<void>;
  remove(): Promise<void>;
}

/** Runs the server and returns once it answers PING. */
export async function startRedisContainer(): Promise<RedisContainer> {
  const name = `remediation-e2e-redis-${randomUUID().slice(0, 8)}`;
  const port = await closedPort();
  const password = randomUUID();
  await docker(
    ...busyboxRun(name, {
      mounts: ['/usr:/usr:ro', '/usr/lib64:/lib64:ro', '/usr/lib:/lib:ro'],
      // No persistence: a restart must bring back a server, not a dataset, and must not write to /usr.
      command: [
        '/usr/bin/redis-server',
        '--bind',
        '127.0.0.1',
        '--port',
        String(port),
        '--requirepass',
        password,
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
      ],
    }),
  );
  const ping = () => pingRedis(port, password);
  await until(`redis in ${name} answering PING`, 30_000, async () => ((await ping()) ? true : undefined));
  return {
    name,
    port,
    password,
    startedAt: () => docker('inspect', '-f', '{{.State.StartedAt}}', name),
    state: () => docker('inspect', '-f', '{{.State.Status}}', name),
    ping,
    stop: async () => {
      await docker('stop', '-t', '5', name);
    },
    remove: async () => {
      await docker('rm', '-f', name).catch(() => undefined);
    },
  };
}

async function pingRedis(port: number, password: string): Promise<boolean> {
  // Never reconnects or queues: "down" must answer false at once, not hang.
  const client = new Redis({
    host: '127.0.0.1',
    port,
    password,
    lazyConnect: true,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
