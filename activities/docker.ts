// Docker containers through the Engine API: status, restart, start, log tails and a stats snapshot.
//
// Container names go into Engine API paths, so they are checked before any call; every call is
// bounded and aborted on timeout or activity cancellation, and a missing container is reported
// as such (non-retryable) rather than as a generic 404 that Temporal would retry for an hour.
import type { IncomingMessage } from 'node:http';
import Docker from 'dockerode';
import { ApplicationFailure } from '@temporalio/common';
import type { DockerEndpoint } from '../config/schema.js';
import { authFailed, badInput, classify, operation, targetNotFound, TimeoutError, transient, withTimeout } from './failures.js';
import { FrameDemuxer, LineSplitter, TailBuffer } from './dockerLogStream.js';
import { activitySignal, firstAttemptBegan, heartbeating } from './limits.js';

export interface ContainerRef {
  /** A configured docker endpoint name, such as "local". */
  endpoint: string;
  container: string;
}

export interface ContainerStatus {
  container: string;
  /** Short id: tells a recreated container (same name, new id) from a restarted one. */
  id: string;
  /** created, running, paused, restarting, removing, exited or dead. */
  state: string;
  /** Running and serving: false while paused or restarting, although Docker calls those "Running". */
  running: boolean;
  /** starting, healthy or unhealthy, when the image defines a HEALTHCHECK. */
  health?: string;
  /** Docker counts only restarts made by its restart policy, not ours: compare startedAt instead. */
  restartCount: number;
  /** Docker's own RFC 3339 timestamp (nanoseconds); null if the container never started. */
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number;
  oomKilled: boolean;
}

export interface ContainerActionResult {
  dryRun: boolean;
  before: ContainerStatus;
  after?: ContainerStatus;
  summary: string;
}

export interface ContainerLogs {
  stdout: string;
  stderr: string;
}

export interface ContainerStatsSnapshot {
  running: boolean;
  /** False when the daemon has no cgroup data (stopped, or a daemon that cannot read cgroups): the numbers are then 0, not measurements. */
  available: boolean;
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  memoryPercent: number;
  /** One line for diagnostics: "cpu 97.5%, memory 1.2 MiB of 64.0 MiB (1.9%)". */
  detail: string;
}

export interface DockerActivityDeps {
  docker: (endpointName: string) => Docker;
  outputBytes: number;
  /** Bound of one Engine API call (the endpoint's configured timeout); 15 s when not given. */
  timeoutMs?: number | ((endpointName: string) => number);
}

/**
 * A client for one configured endpoint. Every option is set, even to undefined, because
 * docker-modem fills gaps from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: a socket
 * endpoint would otherwise quietly become whatever the worker's environment points at.
 * No client-side socket timeout is set: it would cut a restart that legitimately waits out the
 * container's stop timeout; calls are bounded one by one instead.
 */
export function dockerClient(endpoint: DockerEndpoint): Docker {
  const none = {
    socketPath: undefined,
    host: undefined,
    port: undefined,
    protocol: undefined,
    username: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
    sshOptions: undefined,
    timeout: undefined,
    pathPrefix: undefined,
  };
  if (endpoint.socketPath) {
    return new Docker({ ...none, socketPath: endpoint.socketPath, protocol: 'http' } as Docker.DockerOptions);
  }
  if (!endpoint.host) throw badInput('docker endpoint', 'set exactly one of socketPath or host');
  const tls = Boolean(endpoint.ca || endpoint.cert || endpoint.key);
  const protocol = endpoint.protocol ?? (tls ? 'https' : 'http');
  const defaultPort = { http: 2375, https: 2376, ssh: 22 }[protocol];
  if (protocol === 'ssh') {
    // Over SSH the key is the private key for the login; the agent is used when there is one.
    return new Docker({
      ...none,
      host: endpoint.host,
      port: endpoint.port ?? defaultPort,
      protocol,
      username: endpoint.username,
      sshOptions: { agent: process.env.SSH_AUTH_SOCK, privateKey: endpoint.key?.reveal() },
    } as Docker.DockerOptions);
  }
  return new Docker({
    ...none,
    host: endpoint.host,
    port: endpoint.port ?? defaultPort,
    protocol,
    ca: endpoint.ca?.reveal(),
    cert: endpoint.cert?.reveal(),
    key: endpoint.key?.reveal(),
  } as Docker.DockerOptions);
}

// Docker's own rule for names, and hex ids: anything else ("../images/x") would reach other API paths.
const containerName = /^\/?[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
const neverStarted = '0001-01-01T00:00:00Z';
const defaultLogTail = 1_000;

export function createDockerActivities(deps: DockerActivityDeps) {
  const timeoutOf = (endpoint: string): number =>
    typeof deps.timeoutMs === 'function' ? deps.timeoutMs(endpoint) : (deps.timeoutMs ?? 15_000);

  /** "restart of container 'api' on docker endpoint 'local'" */
  const subject = (op: string, ref: ContainerRef) =>
    `${operation(op, 'container', String(ref?.container))} on docker endpoint '${String(ref?.endpoint)}'`;

  function open(what: string, ref: ContainerRef): { docker: Docker; container: Docker.Container; timeoutMs: number } {
    if (typeof ref?.container !== 'string' || !containerName.test(ref.container)) {
      throw badInput(what, 'a container name is letters, digits, "_", "." or "-"');
    }
    let docker: Docker;
    try {
      docker = deps.docker(ref.endpoint);
    } catch (err) {
      throw badInput(what, (err as Error).message);
    }
    return { docker, container: docker.getContainer(ref.container.replace(/^\//, '')), timeoutMs: timeoutOf(ref.endpoint) };
  }

  async function inspect(what: string, ref: ContainerRef, container: Docker.Container, timeoutMs: number) {
    const info = await bounded(what, timeoutMs, (abortSignal) => container.inspect({ abortSignal }));
    return { info, status: toStatus(ref, info) };
  }

  async function containerStatus(ref: ContainerRef): Promise<ContainerStatus> {
    const what = subject('status check', ref);
    const { container, timeoutMs } = open(what, ref);
    return (await inspect(what, ref, container, timeoutMs)).status;
  }

  async function restartContainer(ref: ContainerRef, opts: { stopTimeoutS: number; dryRun: boolean }): Promise<ContainerActionResult> {
    const what = subject('restart', ref);
    if (!Number.isInteger(opts?.stopTimeoutS) || opts.stopTimeoutS < 0 || opts.stopTimeoutS > 3_600) {
      throw badInput(what, `stop timeout must be whole seconds between 0 and 3600, got ${String(opts?.stopTimeoutS)}`);
    }
    const { container, timeoutMs } = open(what, ref);
    const { status: before } = await inspect(what, ref, container, timeoutMs);
    if (opts.dryRun) {
      return { dryRun: true, before, summary: `would restart container '${ref.container}' (${describe(before)})` };
    }
    // A retry after a timed-out attempt: aborting the request did not stop the daemon's restart. A
    // container started since that attempt began was restarted by it (or is being): a second restart
    // would only kill it again. Verification decides whether it came up well.
    const firstBegan = firstAttemptBegan();
    if (firstBegan !== undefined && startedSince(before, firstBegan)) {
      const state = before.state === 'restarting' ? 'is under way' : 'took effect';
      return {
        dryRun: false,
        before,
        after: before,
        summary: `not restarted again: the restart of attempt 1 ${state} (container '${ref.container}' ${before.state}, started ${before.startedAt})`,
      };
    }
    // Docker answers only once the container is stopped (up to the stop timeout) and started again.
    const restartMs = opts.stopTimeoutS * 1_000 + 2 * timeoutMs;
    await heartbeating(
      bounded(what, restartMs, (abortSignal) => container.restart({ t: opts.stopTimeoutS, abortSignal })),
      { container: ref.container, step: 'restart' },
    );
    const { status: after } = await inspect(what, ref, container, timeoutMs);
    return {
      dryRun: false,
      before,
      after,
      summary: `restarted container '${ref.container}': was ${describe(before)}; now ${describe(after)}`,
    };
  }

  async function startContainer(ref: ContainerRef, opts: { dryRun: boolean }): Promise<ContainerActionResult> {
    const what = subject('start', ref);
    const { container, timeoutMs } = open(what, ref);
    const { status: before } = await inspect(what, ref, container, timeoutMs);
    if (before.state === 'paused') throw badInput(what, 'the container is paused; it needs unpausing, not starting');
    if (before.running) {
      return {
        dryRun: Boolean(opts?.dryRun),
        before,
        after: before,
        summary: `container '${ref.container}' is already ${describe(before)}; nothing to start`,
      };
    }
    if (opts?.dryRun) {
      return { dryRun: true, before, summary: `would start container '${ref.container}' (${describe(before)})` };
    }
    await heartbeating(
      bounded(what, 2 * timeoutMs, (abortSignal) =>
        container.start({ abortSignal }).catch((err: { statusCode?: number }) => {
          // 304: it started between our inspect and this call, which is what we wanted.
          if (err?.statusCode !== 304) throw err;
        }),
      ),
      { container: ref.container, step: 'start' },
    );
    const { status: after } = await inspect(what, ref, container, timeoutMs);
    return {
      dryRun: false,
      before,
      after,
      summary: `started container '${ref.container}': was ${describe(before)}; now ${describe(after)}`,
    };
  }

  /** Streams the container's log to `onChunk` in the order Docker wrote it, within the endpoint's timeout. */
  async function readLog(
    what: string,
    ref: ContainerRef,
    opts: { tail?: number; since?: number; timestamps?: boolean },
    onChunk: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
  ): Promise<void> {
    for (const key of ['tail', 'since'] as const) {
      const v = opts[key];
      if (v !== undefined && (!Number.isFinite(v) || v < 0 || (key === 'tail' && !Number.isInteger(v)))) {
        throw badInput(what, `${key} must be a ${key === 'tail' ? 'whole ' : ''}number >= 0, got ${String(v)}`);
      }
    }
    const { docker, container, timeoutMs } = open(what, ref);
    const { info } = await inspect(what, ref, container, timeoutMs);
    const query: Record<string, unknown> = {
      stdout: true,
      stderr: true,
      follow: false,
      // A log is never read whole by default: a chatty service's gigabytes would only time out.
      tail: opts.tail ?? defaultLogTail,
    };
    // Docker takes "seconds.fraction" as well as whole seconds, and compares it with each line's own time.
    if (opts.since !== undefined) query.since = Number.isInteger(opts.since) ? opts.since : opts.since.toFixed(3);
    if (opts.timestamps) query.timestamps = true;
    await bounded(what, timeoutMs, async (abortSignal) => {
      const res = await new Promise<IncomingMessage>((resolve, reject) =>
        docker.modem.dial(
          {
            path: `/containers/${info.Id}/logs?`,
            method: 'GET',
            isStream: true,
            abortSignal,
            statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
            options: query,
          },
          (err, result) => (err ? reject(err) : resolve(result as IncomingMessage)),
        ),
      );
      abortSignal.addEventListener('abort', () => res.destroy(), { once: true });
      // With a TTY Docker sends the raw terminal stream; without one, 8-byte framed stdout/stderr.
      const demux = info.Config.Tty ? undefined : new FrameDemuxer(onChunk);
      for await (const chunk of res as AsyncIterable<Buffer>) {
        if (demux) demux.push(chunk);
        else onChunk('stdout', chunk);
      }
    });
  }

  async function containerLogs(ref: ContainerRef, opts: { tail?: number; since?: number; maxBytes?: number } = {}): Promise<ContainerLogs> {
    const what = subject('log read', ref);
    const v = opts.maxBytes;
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw badInput(what, `maxBytes must be a whole number >= 0, got ${String(v)}`);
    const maxBytes = Math.min(opts.maxBytes ?? deps.outputBytes, deps.outputBytes);
    const stdout = new TailBuffer(maxBytes);
    const stderr = new TailBuffer(maxBytes);
    await readLog(what, ref, { tail: opts.tail, since: opts.since }, (stream, chunk) =>
      (stream === 'stderr' ? stderr : stdout).push(chunk),
    );
    return { stdout: stdout.text(), stderr: stderr.text() };
  }

  /**
   * The newest `tail` lines (since `since`, in seconds since the epoch), stdout and stderr interleaved
   * as they were written, oldest first, each starting with the time Docker logged it
   * ("2024-05-01T02:03:04.123Z message"). Lines go to `onLine` one by one, so a long tail can be
   * filtered without being held in memory.
   */
  async function containerLogLines(
    ref: ContainerRef,
    opts: { tail: number; since?: number },
    onLine: (line: string) => void,
  ): Promise<void> {
    const what = subject('log read', ref);
    const splitters = { stdout: new LineSplitter(onLine), stderr: new LineSplitter(onLine) };
    await readLog(what, ref, { ...opts, timestamps: true }, (stream, chunk) => splitters[stream].push(chunk));
    splitters.stdout.end();
    splitters.stderr.end();
  }

  async function containerStats(ref: ContainerRef): Promise<ContainerStatsSnapshot> {
    const what = subject('stats snapshot', ref);
    const { container, timeoutMs } = open(what, ref);
    const { status } = await inspect(what, ref, container, timeoutMs);
    if (!status.running) return { running: false, ...noStats(`not running (${describe(status)})`) };
    const sample = () =>
      bounded(what, timeoutMs, (abortSignal) =>
        // The typings omit abortSignal for stats, though dockerode passes it on like everywhere else.
        container.stats({ stream: false, abortSignal } as { stream: false }),
      );
    // Without one-shot the daemon waits for a second sample and fills precpu_stats; a freshly
    // started container can still come back without it, and then we take our own second sample.
    const first = await sample();
    if (!hasSample(first))
      return { running: true, ...noStats('no statistics: the docker daemon reports no cgroup data for this container') };
    let current = first;
    let previous = first.precpu_stats;
    if (!previous?.system_cpu_usage) {
      await new Promise((r) => setTimeout(r, 1_000));
      current = await sample();
      previous = first.cpu_stats;
    }
    return { running: true, ...statsSnapshot(current, previous) };
  }

  return { containerStatus, restartContainer, startContainer, containerLogs, containerLogLines, containerStats };
}

export type DockerActivities = ReturnType<typeof createDockerActivities>;

/** Runs one Engine API call with an abort signal that fires on timeout or activity cancellation. */
async function bounded<T>(what: string, ms: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const cancelled = activitySignal();
  const onCancel = () => controller.abort(cancelled?.reason);
  if (cancelled?.aborted) onCancel();
  else cancelled?.addEventListener('abort', onCancel, { once: true });
  try {
    return await withTimeout(what, ms, call(controller.signal), () => controller.abort());
  } catch (err) {
    if (err instanceof TimeoutError) throw transient(what, `the docker daemon did not answer within ${ms} ms`);
    throw dockerFailure(what, err);
  } finally {
    cancelled?.removeEventListener('abort', onCancel);
  }
}

/** Running or being restarted by Docker, on a start at or after `sinceMs` (Docker's clock). */
function startedSince(s: ContainerStatus, sinceMs: number): boolean {
  if (s.state !== 'running' && s.state !== 'restarting') return false;
  const started = s.startedAt ? Date.parse(s.startedAt) : NaN;
  return Number.isFinite(started) && started >= sinceMs;
}

function dockerFailure(what: string, err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = err as { statusCode?: number; code?: string; json?: { message?: string }; message?: string };
  const daemonSays = String(e?.json?.message ?? e?.message ?? err)
    .split('\n')[0]!
    .slice(0, 300);
  if (e?.statusCode === 404) return targetNotFound(what, 'no such container');
  if (e?.statusCode === 400) return badInput(what, `the docker daemon rejected the request: ${daemonSays}`);
  if (e?.statusCode === 401 || e?.statusCode === 403) return authFailed(what, `the docker daemon refused access: ${daemonSays}`);
  // A socket the worker may not open will not become openable by retrying for an hour.
  if (e?.code === 'EACCES') return authFailed(what, `permission denied on the docker socket (${daemonSays})`);
  if (e?.code === 'ENOENT' || e?.code === 'ECONNREFUSED') return transient(what, `docker daemon unreachable (${daemonSays})`);
  return classify(what, err);
}

function toStatus(ref: ContainerRef, info: Docker.ContainerInspectInfo): ContainerStatus {
  const s = info.State;
  const status: ContainerStatus = {
    container: ref.container,
    id: info.Id.slice(0, 12),
    state: s.Status,
    running: s.Running && !s.Paused && !s.Restarting,
    restartCount: info.RestartCount,
    startedAt: s.StartedAt && s.StartedAt !== neverStarted ? s.StartedAt : null,
    finishedAt: s.FinishedAt && s.FinishedAt !== neverStarted ? s.FinishedAt : null,
    exitCode: s.ExitCode,
    oomKilled: s.OOMKilled,
  };
  if (s.Health?.Status) status.health = s.Health.Status;
  return status;
}

/** "running, started 2024-05-01T02:03:04.5Z" / "exited with code 137 (OOM killed), finished …" */
function describe(s: ContainerStatus): string {
  const health = s.health ? ` (${s.health})` : '';
  if (s.running) return `running${health}, started ${s.startedAt ?? 'at an unknown time'}`;
  if (s.state === 'exited' || s.state === 'dead') {
    const oom = s.oomKilled ? ' (OOM killed)' : '';
    return `${s.state} with code ${s.exitCode}${oom}${s.finishedAt ? `, finished ${s.finishedAt}` : ''}`;
  }
  return s.state;
}

// A daemon without cgroup access (rootless without delegation, some nested setups) answers with
// an empty sample whose read time is Go's zero time.
function hasSample(stats: Docker.ContainerStats): boolean {
  return Boolean(stats?.read && stats.read !== neverStarted && stats.cpu_stats?.system_cpu_usage);
}

function noStats(detail: string): Omit<ContainerStatsSnapshot, 'running'> {
  return { available: false, cpuPercent: 0, memoryBytes: 0, memoryLimitBytes: 0, memoryPercent: 0, detail };
}

/**
 * CPU % the way `docker stats` computes it (share of all host CPUs × CPU count, so one busy core
 * reads 100%), and memory without the page cache the kernel can drop.
 */
export function statsSnapshot(current: Docker.ContainerStats, previous: Docker.CPUStats): Omit<ContainerStatsSnapshot, 'running'> {
  const cpu = current.cpu_stats;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (previous?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (previous?.system_cpu_usage ?? 0);
  const cpus = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1;
  const cpuPercent = round2(cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0);
  const mem = current.memory_stats ?? ({} as Docker.MemoryStats);
  const usage = mem.usage ?? 0;
  // cgroup v2 reports inactive_file, v1 total_inactive_file.
  const cache = mem.stats?.inactive_file ?? mem.stats?.total_inactive_file ?? 0;
  const memoryBytes = cache < usage ? usage - cache : usage;
  const memoryLimitBytes = mem.limit ?? 0;
  const memoryPercent = memoryLimitBytes > 0 ? round2((memoryBytes / memoryLimitBytes) * 100) : 0;
  return {
    available: true,
    cpuPercent,
    memoryBytes,
    memoryLimitBytes,
    memoryPercent,
    detail: `cpu ${cpuPercent.toFixed(1)}%, memory ${mib(memoryBytes)} of ${mib(memoryLimitBytes)} (${memoryPercent.toFixed(1)}%)`,
  };
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;
const round2 = (n: number) => Math.round(n * 100) / 100;
