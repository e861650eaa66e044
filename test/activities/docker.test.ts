// Docker activities against the real daemon, on containers this file creates (t-docker-*) and removes.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { createDockerActivities, dockerClient, statsSnapshot } from '../../activities/docker.js';
import { createHttpActivities } from '../../activities/http.js';
import { containerActions, docker } from '../support/docker.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const suffix = randomUUID().slice(0, 6);
const web = `t-docker-web-${suffix}`;
const logs = `t-docker-logs-${suffix}`;
const tty = `t-docker-tty-${suffix}`;
const chatty = `t-docker-chatty-${suffix}`;
const busy = `t-docker-busy-${suffix}`;
const created = [web, logs, tty, chatty, busy];
const webPort = 28001;
const webHealth = `http://127.0.0.1:${webPort}/health`;
const hangingSocket = `/tmp/t-docker-hang-${suffix}.sock`;

async function busybox(name: string, extra: string[], ...cmd: string[]): Promise<void> {
  await docker('run', '-d', '--network', 'host', '--name', name, ...extra, stack().busyboxImage, ...cmd);
}

let client: Docker;
let hang: Server;
const hangingConnections = new Set<Socket>();
const clients: Record<string, () => Docker> = {};
const activities = createDockerActivities({
  docker: (endpoint) => {
    const make = clients[endpoint];
    if (!make) throw new Error(`no docker endpoint '${endpoint}' is configured`);
    return make();
  },
  outputBytes: 4_096,
  timeoutMs: (endpoint) => (endpoint === 'hanging' ? 300 : 15_000),
});
const http = createHttpActivities({ outputBytes: 1_024 });
const ref = (container: string, endpoint = 'local') => ({ endpoint, container });

beforeAll(async () => {
  await docker('rm', '-f', ...created).catch(() => undefined);
  client = dockerClient({ socketPath: stack().dockerSocket, timeout: '15s' });
  clients.local = () => client;
  clients.gone = () => dockerClient({ socketPath: `/tmp/t-docker-no-daemon-${suffix}.sock`, timeout: '15s' });
  // A "daemon" that accepts connections and never answers: the case a timeout exists for.
  rmSync(hangingSocket, { force: true });
  hang = createServer((socket) => {
    hangingConnections.add(socket);
    socket.on('close', () => hangingConnections.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => hang.listen(hangingSocket, resolve));
  clients.hanging = () => dockerClient({ socketPath: hangingSocket, timeout: '1s' });

  await busybox(web, [], '/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${webPort}`, '-h', '/www');
  await busybox(logs, [], '/bin/busybox', 'sh', '-c', 'echo out; echo err >&2; sleep 3600');
  await busybox(tty, ['-t'], '/bin/busybox', 'sh', '-c', 'echo out; echo err >&2; sleep 3600');
  await busybox(chatty, [], '/bin/busybox', 'sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; sleep 3600');
  await busybox(busy, ['--memory', '64m'], '/bin/busybox', 'sh', '-c', 'while :; do :; done');
  await eventually(
    () => http.checkHealth({ url: webHealth, timeoutMs: 1_000 }),
    (r) => r.ok,
  );
});

afterAll(async () => {
  await docker('rm', '-f', ...created).catch(() => undefined);
  // Aborted requests close their side; anything still open here would be a leak worth seeing.
  const leaked = hangingConnections.size;
  for (const s of hangingConnections) s.destroy();
  await new Promise((resolve) => hang?.close(resolve));
  expect(leaked).toBe(0);
  rmSync(hangingSocket, { force: true });
});

describe('container status', () => {
  it('reports a running container with its id and start time', async () => {
    const s = await activities.containerStatus(ref(web));
    const id = await docker('inspect', '-f', '{{.Id}}', web);
    expect(s).toMatchObject({ container: web, id: id.slice(0, 12), state: 'running', running: true, exitCode: 0, oomKilled: false });
    expect(Date.parse(s.startedAt!)).toBeGreaterThan(Date.now() - 120_000);
    expect(s.finishedAt).toBeNull();
  });

  it('sees a killed container as exited with code 137 and its health check failing', async () => {
    await docker('kill', web);
    const s = await activities.containerStatus(ref(web));
    expect(s).toMatchObject({ state: 'exited', running: false, exitCode: 137 });
    expect(s.finishedAt).not.toBeNull();
    const health = await http.checkHealth({ url: webHealth, timeoutMs: 1_000 });
    expect(health.ok).toBe(false);
  });

  it('restarts a killed container, advances StartedAt and its /health answers 200 again', async () => {
    if ((await activities.containerStatus(ref(web))).running) await docker('kill', web);
    const before = await activities.containerStatus(ref(web));
    expect(before.running).toBe(false);

    const result = await activities.restartContainer(ref(web), { stopTimeoutS: 1, dryRun: false });

    expect(result.dryRun).toBe(false);
    expect(result.after).toMatchObject({ state: 'running', running: true });
    expect(Date.parse(result.after!.startedAt!)).toBeGreaterThan(Date.parse(before.startedAt!));
    expect(result.summary).toMatch(new RegExp(`^restarted container '${web}': was exited with code 137.*; now running, started `));
    const health = await eventually(
      () => http.checkHealth({ url: webHealth, timeoutMs: 1_000 }),
      (r) => r.ok,
    );
    expect(health).toMatchObject({ ok: true, status: 200 });
  });

  it('heartbeats while a restart of a running container waits out its stop timeout', async () => {
    await activities.startContainer(ref(web), { dryRun: false });
    const before = await activities.containerStatus(ref(web));
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));

    // httpd is PID 1 and ignores SIGTERM, so Docker waits the full stop timeout before SIGKILL.
    const result = (await env.run(activities.restartContainer, ref(web), { stopTimeoutS: 1, dryRun: false })) as Awaited<
      ReturnType<typeof activities.restartContainer>
    >;

    expect(beats.length).toBeGreaterThan(0);
    expect(beats[0]).toEqual({ container: web, step: 'restart' });
    expect(result.after!.running).toBe(true);
    expect(Date.parse(result.after!.startedAt!)).toBeGreaterThan(Date.parse(before.startedAt!));
    expect(result.after!.id).toBe(before.id);
  });

  it('dry-run restart describes the container and leaves StartedAt unchanged', async () => {
    const before = await activities.containerStatus(ref(web));
    expect(before.running).toBe(true);

    const result = await activities.restartContainer(ref(web), { stopTimeoutS: 1, dryRun: true });

    expect(result.dryRun).toBe(true);
    expect(result.after).toBeUndefined();
    expect(result.summary).toBe(`would restart container '${web}' (running, started ${before.startedAt})`);
    const after = await activities.containerStatus(ref(web));
    expect(after.startedAt).toBe(before.startedAt);
  });

  it('starts a stopped container, and dry-run start changes nothing', async () => {
    await docker('kill', web);
    const stopped = await activities.containerStatus(ref(web));

    const dry = await activities.startContainer(ref(web), { dryRun: true });
    expect(dry.summary).toMatch(new RegExp(`^would start container '${web}' \\(exited with code 137, finished `));
    expect((await activities.containerStatus(ref(web))).running).toBe(false);

    const started = await activities.startContainer(ref(web), { dryRun: false });
    expect(started.after!.running).toBe(true);
    expect(Date.parse(started.after!.startedAt!)).toBeGreaterThan(Date.parse(stopped.startedAt!));
    const again = await activities.startContainer(ref(web), { dryRun: false });
    expect(again.summary).toMatch(/is already running.*nothing to start/);
    expect(again.after!.startedAt).toBe(started.after!.startedAt);
  });
});

describe('restart on a retry of the activity', () => {
  type Restart = Awaited<ReturnType<typeof activities.restartContainer>>;
  /** Attempt 2 of a restart activity first scheduled at `scheduledMs`, as Temporal runs it after a timed-out attempt. */
  const secondAttempt = (scheduledMs: number) =>
    new MockActivityEnvironment({ attempt: 2, scheduledTimestampMs: scheduledMs, currentAttemptScheduledTimestampMs: Date.now() }).run(
      activities.restartContainer,
      ref(web),
      { stopTimeoutS: 1, dryRun: false },
    ) as Promise<Restart>;

  beforeAll(async () => {
    await activities.startContainer(ref(web), { dryRun: false });
  });

  it('leaves alone a container the first attempt restarted: StartedAt unchanged, nothing done to it', async () => {
    const scheduled = Date.now();
    // Attempt 1: its restart happened, though (as after a timeout) the activity never reported it.
    await docker('restart', '-t', '1', web);
    const restarted = await activities.containerStatus(ref(web));
    expect(Date.parse(restarted.startedAt!)).toBeGreaterThanOrEqual(scheduled);
    const retried = Date.now();

    const r = await secondAttempt(scheduled);

    expect(r.dryRun).toBe(false);
    expect(r.summary).toBe(
      `not restarted again: the restart of attempt 1 took effect (container '${web}' running, started ${restarted.startedAt})`,
    );
    expect(r.after).toMatchObject({ state: 'running', startedAt: restarted.startedAt });
    const now = await activities.containerStatus(ref(web));
    expect(now.startedAt).toBe(restarted.startedAt);
    expect(await containerActions(web, retried, ['kill', 'stop', 'die', 'start', 'restart'])).toBe('');
  });

  it('restarts a container that has been running since before the first attempt began', async () => {
    const before = await activities.containerStatus(ref(web));
    expect(before.running).toBe(true);
    await new Promise((r) => setTimeout(r, 20));

    const r = await secondAttempt(Date.now());

    expect(r.summary).toMatch(new RegExp(`^restarted container '${web}': was running`));
    expect(Date.parse(r.after!.startedAt!)).toBeGreaterThan(Date.parse(before.startedAt!));
    expect((await activities.containerStatus(ref(web))).startedAt).toBe(r.after!.startedAt);
  });

  it('starts a container that stopped after the first attempt restarted it', async () => {
    const scheduled = Date.now();
    await docker('restart', '-t', '1', web);
    await docker('kill', web);
    const stopped = await activities.containerStatus(ref(web));
    expect(stopped).toMatchObject({ state: 'exited', running: false });

    const r = await secondAttempt(scheduled);

    expect(r.summary).toMatch(new RegExp(`^restarted container '${web}': was exited with code 137`));
    expect(r.after).toMatchObject({ state: 'running', running: true });
    expect(Date.parse(r.after!.startedAt!)).toBeGreaterThan(Date.parse(stopped.startedAt!));
  });
});

describe('container logs', () => {
  it('separates stdout from stderr', async () => {
    const out = await eventually(
      () => activities.containerLogs(ref(logs)),
      (l) => l.stderr !== '',
    );
    expect(out).toEqual({ stdout: 'out\n', stderr: 'err\n' });
  });

  it('reads a TTY container as one plain stream', async () => {
    const out = await eventually(
      () => activities.containerLogs(ref(tty)),
      (l) => l.stdout.includes('err'),
    );
    expect(out.stdout.replace(/\r/g, '')).toBe('out\nerr\n');
    expect(out.stderr).toBe('');
  });

  it('keeps only the newest lines within the byte cap and says how much was cut', async () => {
    const out = await eventually(
      () => activities.containerLogs(ref(chatty), { tail: 3000, maxBytes: 100 }),
      (l) => l.stdout.includes('line 2999'),
    );
    const [marker, ...rest] = out.stdout.split('\n');
    const kept = rest.join('\n');
    expect(kept.endsWith('line 2999\n')).toBe(true);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(100);
    let total = 0;
    for (let i = 0; i < 3000; i++) total += `line ${i}\n`.length;
    expect(marker).toBe(`[... ${total - 100} bytes cut]`);
  });

  it('honours tail and since', async () => {
    const tail = await activities.containerLogs(ref(chatty), { tail: 2 });
    expect(tail.stdout).toBe('line 2998\nline 2999\n');
    const future = await activities.containerLogs(ref(chatty), { since: Math.floor(Date.now() / 1000) + 3600 });
    expect(future).toEqual({ stdout: '', stderr: '' });
  });
});

describe('container stats', () => {
  // Some daemons (nested or without cgroup delegation, like cgroup v1 here in CI) have no cgroup
  // data at all; `docker stats` then shows "0B / 0B", and the snapshot must say so, not report 0%.
  async function daemonHasCgroupData(name: string): Promise<boolean> {
    return (await docker('stats', '--no-stream', '--format', '{{.MemUsage}}', name)) !== '0B / 0B';
  }

  it('measures a busy container near one full CPU and its memory against its 64 MiB limit', async () => {
    const stats = await activities.containerStats(ref(busy));
    expect(stats.running).toBe(true);
    if (!(await daemonHasCgroupData(busy))) {
      expect(stats).toMatchObject({ available: false, cpuPercent: 0, memoryBytes: 0 });
      expect(stats.detail).toBe('no statistics: the docker daemon reports no cgroup data for this container');
      return;
    }
    expect(stats.available).toBe(true);
    expect(stats.cpuPercent).toBeGreaterThan(30);
    expect(stats.cpuPercent).toBeLessThan(150);
    expect(stats.memoryLimitBytes).toBe(64 * 1024 * 1024);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.memoryBytes).toBeLessThan(stats.memoryLimitBytes);
    expect(stats.memoryPercent).toBeCloseTo((stats.memoryBytes / stats.memoryLimitBytes) * 100, 1);
    expect(stats.detail).toMatch(/^cpu \d+\.\d%, memory \d+\.\d MiB of 64\.0 MiB/);
  });

  it('reports a stopped container as not running, without numbers', async () => {
    await docker('kill', logs);
    expect(await activities.containerStats(ref(logs))).toEqual({
      running: false,
      available: false,
      cpuPercent: 0,
      memoryBytes: 0,
      memoryLimitBytes: 0,
      memoryPercent: 0,
      detail: 'not running (exited with code 137, finished ' + (await activities.containerStatus(ref(logs))).finishedAt + ')',
    });
  });

  it('computes CPU as docker stats does (one busy core of four is 100%) and leaves out page cache', () => {
    // One second of wall time on 4 CPUs: the host spent 4e9 ns, the container 1e9 ns.
    const sample = {
      read: '2026-01-01T00:00:01Z',
      cpu_stats: { cpu_usage: { total_usage: 2_000_000_000 }, system_cpu_usage: 104_000_000_000, online_cpus: 4 },
      memory_stats: { usage: 10 * 1_048_576, limit: 64 * 1_048_576, stats: { inactive_file: 2 * 1_048_576 } },
    } as unknown as Docker.ContainerStats;
    const previous = { cpu_usage: { total_usage: 1_000_000_000 }, system_cpu_usage: 100_000_000_000 } as unknown as Docker.CPUStats;
    expect(statsSnapshot(sample, previous)).toEqual({
      available: true,
      cpuPercent: 100,
      memoryBytes: 8 * 1_048_576,
      memoryLimitBytes: 64 * 1_048_576,
      memoryPercent: 12.5,
      detail: 'cpu 100.0%, memory 8.0 MiB of 64.0 MiB (12.5%)',
    });
  });
});

describe('failures', () => {
  const missing = `t-docker-missing-${suffix}`;

  it('a missing container is a non-retryable failure naming the container and endpoint', async () => {
    const restart = await failureOf(activities.restartContainer(ref(missing), { stopTimeoutS: 1, dryRun: false }));
    expect(restart.nonRetryable).toBe(true);
    expect(restart.type).toBe('TargetNotFound');
    expect(restart.message).toBe(`restart of container '${missing}' on docker endpoint 'local' failed: no such container`);
    for (const work of [
      () => activities.containerStatus(ref(missing)),
      () => activities.containerLogs(ref(missing)),
      () => activities.containerStats(ref(missing)),
      () => activities.startContainer(ref(missing), { dryRun: true }),
      () => activities.restartContainer(ref(missing), { stopTimeoutS: 1, dryRun: true }),
    ]) {
      const f = await failureOf(work());
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain(`container '${missing}' on docker endpoint 'local' failed: no such container`);
    }
  });

  it('an unreachable daemon is a retryable failure', async () => {
    const f = await failureOf(activities.containerStatus(ref(web, 'gone')));
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(
      new RegExp(`^status check of container '${web}' on docker endpoint 'gone' failed: docker daemon unreachable`),
    );
  });

  it('a daemon that never answers is cut off at the endpoint timeout, retryably', async () => {
    const started = Date.now();
    const f = await failureOf(activities.restartContainer(ref(web, 'hanging'), { stopTimeoutS: 1, dryRun: false }));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe(
      `restart of container '${web}' on docker endpoint 'hanging' failed: the docker daemon did not answer within 300 ms`,
    );
  });

  it('refuses container names that could reach other API paths, and unknown endpoints', async () => {
    const bad = await failureOf(activities.restartContainer(ref('../images/busybox'), { stopTimeoutS: 1, dryRun: false }));
    expect(bad.nonRetryable).toBe(true);
    expect(bad.type).toBe('BadInput');
    const unknown = await failureOf(activities.containerStatus(ref(web, 'elsewhere')));
    expect(unknown.type).toBe('BadInput');
    expect(unknown.message).toContain("no docker endpoint 'elsewhere' is configured");
  });
});
