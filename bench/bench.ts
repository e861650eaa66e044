// Benchmarks of the engine against the real local stack: how much slower than a bare `docker start`
// an alert-driven recovery is, what an alert storm does to the webhook, and what many open incidents
// cost while they sit on their escalation timers. Prints one markdown table.
//
// Each bench runs its own in-process engine (real webhook on 127.0.0.1:0, real worker, real
// activities) on its own task queue with its own guard workflow, so nothing here touches the
// stack's Alertmanager-driven engine, the shared guard, or the demo containers. Everything a bench
// starts is terminated before the next one begins.
import { execFile, spawn } from 'node:child_process';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { parseConfig } from '../config/load.js';
import { percentile } from '../triggers/reports/report.js';
import { parsePeerTable, peerRss } from './peerTable.js';
import { leanPoster, type LeanPoster, type Posted } from './leanPost.js';
import { forwardingAfterwards } from '../triggers/alerts/alertmanager.js';
import { floorActivities } from './floor/activities.js';
import type { floorRestart, floorRestartGuarded } from './floor/workflow.js';
import type { EngineConfigInput } from '../config/schema.js';
import { workflowBundleOptions } from '../worker/bundle.js';
import { incidentWorkflowId, localReadTypes } from '../workflows/messages.js';
import { alertmanagerPayload } from '../test/support/alertmanagerPayload.js';
import { eventTimeMs } from '../test/support/history.js';
import { spawnEngine } from '../test/support/engineProcess.js';
import { stack, stackDir } from '../test/support/stack.js';
import { temporalConfigInput, temporalConnectOptions, terminateRunning } from '../test/support/temporal.js';

// The SDK logs every expected activity failure (restarts refused for lack of restartVia) at WARN.
// Core (Rust) logs, e.g. late completions of activities whose workflow the bench terminated, too.
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR', other: 'ERROR' }), forward: {} } },
});
const run = execFileAsync();
const benchId = randomBytes(3).toString('hex');
const svcName = 'bench-svc';
const svcPort = 28600;
const svcUrl = `http://127.0.0.1:${svcPort}/health`;
/** Nothing listens here: http targets pointed at it are down, and cannot be restarted (no restartVia). */
const closedUrl = 'http://127.0.0.1:28601/health';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    storm: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '20' },
    rate: { type: 'string', default: '200' },
    open: { type: 'string', default: '500' },
    /** Engine processes holding the open incidents, on one task queue. */
    engines: { type: 'string', default: '1' },
    idle: { type: 'string', default: '30' },
    /** The engine's temporal.maxCachedWorkflows (default: the config's own default). */
    cached: { type: 'string' },
    only: { type: 'string', default: 'peers,recovery,restart,storm,open' },
    /** Side-by-side runs (bench/peers.sh) and rounds in each. */
    'peer-runs': { type: 'string', default: '3' },
    'peer-rounds': { type: 'string', default: '20' },
    /** Storm variants to run: which webhook, which load, which alerts (default all of each). */
    webhook: { type: 'string', default: 'spooled,synchronous,intake,storms' },
    load: { type: 'string', default: 'paced,flat' },
    alerts: { type: 'string', default: 'distinct,copies' },
    /** Storms of distinct alerts repeated, the floor then the engine each time (spread within one run). */
    repeat: { type: 'string', default: '1' },
    /**
     * The storms' and open incidents' HTTP client: `lean` (bench/leanPost.ts, the default since
     * session 28) or `node` (Node's own, as before it, for comparing with earlier figures).
     */
    client: { type: 'string', default: 'lean' },
  },
});
const runs = Number(opts.runs);
const stormSize = Number(opts.storm);
const inFlight = Number(opts.concurrency);
const stormRate = Number(opts.rate);
const openCount = Number(opts.open);
const openEngines = Number(opts.engines);
const peerRuns = Number(opts['peer-runs']);
const peerRounds = Number(opts['peer-rounds']);
const idleS = Number(opts.idle);
const only = new Set(opts.only!.split(','));
const stormWebhooks = new Set(opts.webhook!.split(','));
/**
 * How the webhook answers: once the alerts are fsynced to its spool (the default with the embedded
 * dev server, `npm start`); once Temporal took them (the default with a cluster); once they are in
 * Temporal's intake workflow, one signal a wave (webhook.intake: always); and synchronously unless
 * a storm, then through the intake (webhook.intake: storms).
 */
const webhookConfig = {
  synchronous: { spool: false, intake: 'off' },
  spooled: { spool: true, intake: 'off' },
  intake: { spool: false, intake: 'always' },
  storms: { spool: false, intake: 'storms' },
} as const;
type WebhookMode = keyof typeof webhookConfig;
const webhookModes = (Object.keys(webhookConfig) as WebhookMode[]).filter((m) => stormWebhooks.has(m));
const stormLoads = new Set(opts.load!.split(','));
const stormAlerts = new Set(opts.alerts!.split(','));
const stormRepeats = Number(opts.repeat);
if (opts.client !== 'lean' && opts.client !== 'node') throw new Error(`--client is lean or node, not ${opts.client}`);
const leanClient = opts.client === 'lean';

type Row = [bench: string, metric: string, value: string];
const rows: Row[] = [];
const notes: string[] = [];

// ---------------------------------------------------------------------------------------------
// The engine exactly as an operator runs it: its own process (`dist/worker/main.js engine` with a
// config file and a prebuilt bundle), on a task queue of its own, so its guard workflow (one per queue) and
// its incidents are the bench's alone, and its memory and CPU are its own, not the bench's.

interface BenchEngine {
  url: string;
  client: Client;
  taskQueue: string;
  /** Resident memory and CPU time (user+system) of the engine process, from /proc. */
  usage(): { rss: number; cpuMs: number };
  /** The main thread's V8 heap in use and memory outside it, from the engine's /metrics. */
  heap(): Promise<{ used: number; external: number }>;
  /** Local reads its worker dropped (evicting runs from its cache) and runs asked again, from /metrics. */
  droppedReads(): Promise<number>;
  /** The main thread's event-loop delay since the last call (prom-client resets it per scrape). */
  loopDelay(): Promise<{ p99: number; max: number }>;
  /** Webhook requests answered 200 so far, and how many of them within 10, 20 and 50 ms by the engine's clock. */
  answered(): Promise<{ all: number; within10ms: number; within20ms: number; within50ms: number }>;
  /** SIGTERM; resolves with how long the engine took to exit (SIGKILL after 60 s). */
  stop(): Promise<number>;
  /** kill -9, as a crash or an OOM kill ends it; resolves once it has exited. */
  kill(): Promise<unknown>;
}

let bundleFile: string | undefined;
/** bench/floor's workflow code, bundled once for both webhook modes. */
let floorBundle: string | undefined;
const quietBundler = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m) };
let benchClient: Client | undefined;

async function startBenchEngine(name: string, overrides: Partial<EngineConfigInput>): Promise<BenchEngine> {
  const s = stack();
  const taskQueue = `bench-${benchId}-${name}`;
  const input: EngineConfigInput = {
    // On the stack's cluster, over mTLS with the engine's client certificate, as an operator deploys it.
    temporal: { ...temporalConfigInput('engine'), taskQueue, ...(opts.cached ? { maxCachedWorkflows: Number(opts.cached) } : {}) },
    webhook: { listen: '127.0.0.1:0', token: s.webhookToken },
    alertmanager: { url: s.alertmanagerUrl },
    targets: {},
    channels: { log: { type: 'log' } },
    // The first level is an hour away: an incident that reaches escalation sits on its timer.
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '1h', channels: ['log'] }] } } },
    operators: [{ name: 'bench', role: 'viewer' }],
    ...overrides,
  };
  parseConfig(input, `bench ${name} config`);
  if (!bundleFile) {
    // The engine runs compiled, as `npm start` runs it: built here so it is never stale.
    await run('npm', ['run', '--silent', 'build']);
    // Bundled once for all benches, as a deployment would at build time.
    const { code } = await bundleWorkflowCode({ ...workflowBundleOptions, logger: quietBundler });
    bundleFile = join(mkdtempSync(join(tmpdir(), 'remediation-bench-')), 'workflows.js');
    writeFileSync(bundleFile, code);
  }
  benchClient ??= new Client({ connection: await Connection.connect(temporalConnectOptions()), namespace: s.temporalNamespace });
  // MALLOC_ARENA_MAX as scripts/start.sh sets it.
  // To profile the engine alone: ENGINE_EXEC_ARGV='--cpu-prof --cpu-prof-dir=/tmp/prof' (test/support/engineProcess.ts).
  const env = {
    REMEDIATION_WORKFLOW_BUNDLE: bundleFile,
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
  };
  const engine = await spawnEngine(input, { env, fromBuild: true });
  let stopped: Promise<number> | undefined;
  return {
    url: `${engine.webhookUrl}/alertmanager`,
    client: benchClient,
    taskQueue,
    usage: () => processUsage(engine.pid),
    kill: () => (engine.kill('SIGKILL'), engine.exited),
    async heap() {
      const value = await metricsOf(engine.webhookUrl);
      return { used: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') };
    },
    async droppedReads() {
      const value = await metricsOf(engine.webhookUrl);
      return localReadTypes.map((activity) => value(`local_reads_dropped_total{activity="${activity}"}`)).reduce((a, b) => a + b, 0);
    },
    async answered() {
      const value = await metricsOf(engine.webhookUrl);
      // Absent until the first 200: none answered yet.
      const count = (name: string) => value(name) || 0;
      return {
        all: count('webhook_request_duration_seconds_count{code="200"}'),
        within10ms: count('webhook_request_duration_seconds_bucket{le="0.01",code="200"}'),
        within20ms: count('webhook_request_duration_seconds_bucket{le="0.02",code="200"}'),
        within50ms: count('webhook_request_duration_seconds_bucket{le="0.05",code="200"}'),
      };
    },
    async loopDelay() {
      const value = await metricsOf(engine.webhookUrl);
      return { p99: value('nodejs_eventloop_lag_p99_seconds') * 1_000, max: value('nodejs_eventloop_lag_max_seconds') * 1_000 };
    },
    // Once: a bench that stopped it to time the exit also stops it again in its cleanup.
    stop() {
      return (stopped ??= (async () => {
        const t0 = performance.now();
        await engine.stop(60_000);
        const { signal } = await engine.exited;
        if (signal === 'SIGKILL') notes.push(`${name}: the engine did not exit within 60 s of SIGTERM and was killed`);
        return performance.now() - t0;
      })());
    },
  };
}

/** The run's latest timer is the escalation's (an hour long) and has not fired. */
async function onEscalationTimer(client: Client, workflowId: string): Promise<boolean> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const started = events.filter((e) => e.timerStartedEventAttributes).at(-1);
  const timeout = Number(started?.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? 0);
  const timerId = started?.timerStartedEventAttributes?.timerId;
  return timeout >= 3_000 && !events.some((e) => e.timerFiredEventAttributes?.timerId === timerId);
}

/** The engine's /metrics, as a lookup of unlabelled series. */
async function metricsOf(webhookUrl: string): Promise<(name: string) => number> {
  const text = await (await fetch(`${webhookUrl}/metrics`)).text();
  const escape = (name: string) => name.replace(/[{}"=.]/g, (c) => `\\${c}`);
  return (name) => Number(new RegExp(`^${escape(name)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/**
 * The processes of the stack's Temporal this run uses: the dev server, or the cluster's four services
 * and its PostgreSQL (the postmaster and its backends). Empty when they are not the stack's.
 */
function serverPids(): { temporal: number[]; postgres: number[] } {
  const pidOf = (file: string) => Number(readFileSync(file, 'utf8').split('\n')[0]);
  try {
    if (stack().temporalMode === 'dev') return { temporal: [pidOf(join(stackDir, 'pids', 'temporal.pid'))], postgres: [] };
    const temporal = ['frontend', 'history', 'matching', 'worker'].map((svc) => pidOf(join(stackDir, 'pids', `temporal-${svc}.pid`)));
    const postmaster = pidOf(join(stackDir, 'temporal-cluster', 'postgres', 'data', 'postmaster.pid'));
    return { temporal, postgres: [postmaster, ...childrenOf(postmaster)] };
  } catch {
    return { temporal: [], postgres: [] };
  }
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent ? [Number(d)] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
}

/** CPU time of the stack's Temporal (all its processes; NaN when it is not ours, e.g. an external cluster). */
function serverCpuMs(): number {
  const { temporal, postgres } = serverPids();
  const pids = [...temporal, ...postgres];
  if (pids.length === 0) return NaN;
  return pids.reduce((sum, pid) => sum + (safeUsage(pid)?.cpuMs ?? 0), 0);
}

/**
 * Memory of the stack's Temporal: PSS (shared pages split among the processes sharing them, so
 * PostgreSQL's shared buffers count once), Temporal's processes and PostgreSQL's apart.
 */
function serverMemory(): { temporal: number; temporalRss: number; postgres: number } {
  const pss = (pid: number) => {
    try {
      return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  };
  const { temporal, postgres } = serverPids();
  const sum = (pids: number[], of: (pid: number) => number) => (pids.length ? pids.reduce((a, pid) => a + of(pid), 0) : NaN);
  return { temporal: sum(temporal, pss), temporalRss: sum(temporal, (pid) => safeUsage(pid)?.rss ?? 0), postgres: sum(postgres, pss) };
}

function safeUsage(pid: number): { rss: number; cpuMs: number } | undefined {
  try {
    return processUsage(pid);
  } catch {
    return undefined;
  }
}

function processUsage(pid: number): { rss: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  // Fields 14 and 15 of /proc/pid/stat (after the command in parentheses): utime and stime in ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rss: rssKb * 1024, cpuMs: (ticks * 1000) / 100 };
}

/** Terminates every running workflow on the bench's queue (incidents and its guard). */
function cleanUp(engine: BenchEngine): Promise<number> {
  return terminateRunning(engine.client, engine.taskQueue, 'benchmark finished');
}

// ---------------------------------------------------------------------------------------------
// Alertmanager's side: a version-4 webhook payload, posted with the stack's token.

/** The stack's Alertmanager notification for ServiceDown alerts, as a body to post. */
function payload(alerts: Array<{ labels: Record<string, string>; fingerprint: string }>): string {
  return JSON.stringify(
    alertmanagerPayload(
      alerts.map((a) => ({
        labels: { alertname: 'ServiceDown', severity: 'critical', ...a.labels },
        annotations: { summary: 'benchmark alert' },
        fingerprint: a.fingerprint,
      })),
    ),
  );
}

// Storms and open incidents post over kept-alive connections, as Alertmanager's Go client does:
// fetch (undici) cost the bench process more CPU per request than the bare floor server spent
// answering it, and capped both at the client. Node's own client (`--client node`, below) costs
// less; bench/leanPost.ts (the default) less again.
const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 256 });

function postNode(url: string, body: string): Promise<Posted> {
  const t0 = performance.now();
  const target = new URL(url);
  return new Promise((resolve) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent: keepAlive,
        timeout: 30_000,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Authorization: `Bearer ${stack().webhookToken}`,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => resolve({ status: 0, ms: performance.now() - t0, text: String(err) }));
    req.end(body);
  });
}

/** A poster for one URL, with the chosen client; close it when its posting is over. */
function poster(url: string): LeanPoster {
  if (!leanClient) return { post: (body) => postNode(url, body), close: () => undefined };
  return leanPoster(url, { 'Content-Type': 'application/json', Authorization: `Bearer ${stack().webhookToken}` });
}

async function post(url: string, body: string): Promise<{ status: number; ms: number; text: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${stack().webhookToken}` },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, ms: performance.now() - t0, text };
  } catch (err) {
    return { status: 0, ms: performance.now() - t0, text: String(err) };
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Alert to recovery, against a bare docker start of the same container.

async function healthy(): Promise<boolean> {
  try {
    const res = await fetch(svcUrl, { signal: AbortSignal.timeout(500) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Polls /health every 20 ms; resolves with the time of the first healthy answer. */
async function firstHealthy(deadlineMs: number): Promise<number> {
  const end = performance.now() + deadlineMs;
  while (performance.now() < end) {
    if (await healthy()) return performance.now();
    await sleep(20);
  }
  throw new Error(`${svcName} not healthy on ${svcUrl} within ${deadlineMs} ms`);
}

/** The bench's busybox web server, made anew. */
async function benchService(): Promise<void> {
  await run('docker', ['rm', '-f', svcName]).catch(() => {});
  await run('docker', ['run', '-d', '--network', 'host', '--name', svcName, '-e', `PORT=${svcPort}`, stack().busyboxImage]);
}

/** The bench's service as the engine's config names it. */
function benchServiceTarget(target: string): EngineConfigInput['targets'][string] {
  return { kind: 'container', container: svcName, stopTimeout: '1s', labels: { service: target }, health: { url: svcUrl, timeout: '1s' } };
}

/** The floor: the container killed, then started by hand, then probed as the engine's rounds are. */
async function dockerStartFloor(): Promise<number> {
  await run('docker', ['kill', svcName]);
  const f0 = performance.now();
  await run('docker', ['start', svcName]);
  return (await firstHealthy(20_000)) - f0;
}

async function benchRecovery(): Promise<void> {
  // Synchronous (the cluster default) and spooled (the `npm start` default): the spool's fsync and
  // hand-off to the forwarder are on the path from webhook to restart.
  for (const webhook of webhookModes) await recoveryRuns(webhook);
}

/**
 * Each round: the floor (a bare `docker start`), then the serviceDown runbook file through the
 * interpreter and the compiled serviceDown (a binding pinned with `compiled: true`), which of the
 * two first alternating by round, so the three are measured under the same load within one run.
 */
async function recoveryRuns(webhook: WebhookMode): Promise<void> {
  const s = stack();
  const { spool, intake } = webhookConfig[webhook];
  await benchService();
  const target = `bench-${benchId}-svc`;
  const engine = await startBenchEngine(`recovery-${webhook}`, {
    webhook: { listen: '127.0.0.1:0', token: s.webhookToken, spool, intake },
    targets: { [target]: benchServiceTarget(target) },
    bindings: [
      { alert: 'ServiceDown', targetLabel: 'service', targets: [target], runbook: 'serviceDown' },
      { alert: 'ServiceDownCompiled', targetLabel: 'service', targets: [target], runbook: 'serviceDown', compiled: true },
    ],
    guardrails: { restarts: { max: 10000, window: '1h' }, restartBackoff: '1s', verifyDeadline: '20s', verifyInterval: '100ms' },
  });
  const floor: number[] = [];
  // Temporal's own floor, in the same rounds: bench/floor (an eager start, one local activity, an
  // Engine API start), and the same with a claim on a guard workflow, on workers in this process
  // against the same server. Eager start needs a client on the worker's own connection.
  const floorQueue = `bench-${benchId}-floor-${webhook}`;
  const floorConnection = await NativeConnection.connect(temporalConnectOptions());
  const floorClient = new Client({ connection: floorConnection, namespace: s.temporalNamespace });
  floorBundle ??= (
    await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./floor/workflow.ts', import.meta.url)), logger: quietBundler })
  ).code;
  const floorWorker = await Worker.create({
    connection: floorConnection,
    namespace: s.temporalNamespace,
    taskQueue: floorQueue,
    workflowBundle: { code: floorBundle },
    activities: floorActivities(floorClient, `${floorQueue}-guard`),
  });
  const floorGuardWorker = await Worker.create({
    connection: floorConnection,
    namespace: s.temporalNamespace,
    taskQueue: `${floorQueue}-guard`,
    workflowBundle: { code: floorBundle },
  });
  const floorGuardId = `${floorQueue}-guard`;
  const floorRunning = Promise.all([floorWorker.run(), floorGuardWorker.run()]);
  const temporalFloor: number[] = [];
  const guardedFloor: number[] = [];
  const variants = [
    {
      name: 'interpreter (runbooks/serviceDown.yaml)',
      alertname: 'ServiceDown',
      toHealthy: [] as number[],
      toDone: [] as number[],
      outcomes: new Map<string, number>(),
    },
    {
      name: 'compiled serviceDown',
      alertname: 'ServiceDownCompiled',
      toHealthy: [] as number[],
      toDone: [] as number[],
      outcomes: new Map<string, number>(),
    },
  ];
  try {
    await firstHealthy(15_000);
    for (let i = 0; i < runs; i++) {
      floor.push(await dockerStartFloor());

      for (const [workflow, times] of [
        ['floorRestart', temporalFloor],
        ['floorRestartGuarded', guardedFloor],
      ] as const) {
        await run('docker', ['kill', svcName]);
        const t0 = performance.now();
        const started = floorClient.workflow.start<typeof floorRestart | typeof floorRestartGuarded>(workflow, {
          taskQueue: floorQueue,
          workflowId: `${floorQueue}-${workflow}-${i}`,
          args: [svcName, floorGuardId],
          requestEagerStart: true,
        });
        const healthyAt = firstHealthy(60_000);
        await (await started).result();
        times.push((await healthyAt) - t0);
      }

      // Alternate which goes first, so neither gains from the order (a container just started, a warm cache).
      for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
        await run('docker', ['kill', svcName]);
        const body = payload([
          { labels: { alertname: v.alertname, service: target }, fingerprint: `bench-${benchId}-recovery-${webhook}-${v.alertname}-${i}` },
        ]);
        const t0 = performance.now();
        const posting = post(engine.url, body);
        const healthyAt = firstHealthy(60_000);
        const res = await posting;
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${res.text.slice(0, 300)}`);
        v.toHealthy.push((await healthyAt) - t0);
        const result = (await engine.client.workflow.getHandle(incidentWorkflowId('serviceDown', target)).result()) as { outcome: string };
        v.toDone.push(performance.now() - t0);
        v.outcomes.set(result.outcome, (v.outcomes.get(result.outcome) ?? 0) + 1);
      }
    }
  } finally {
    await floorClient.workflow
      .getHandle(floorGuardId)
      .terminate('bench done')
      .catch(() => {});
    floorWorker.shutdown();
    floorGuardWorker.shutdown();
    await floorRunning;
    await floorConnection.close();
    await cleanUp(engine);
    await engine.stop();
    await run('docker', ['rm', '-f', svcName]).catch(() => {});
  }
  const b = `1. alert→recovery (${runs} rounds, ${webhook})`;
  const p50f = pct(floor, 50);
  rows.push([b, 'floor: docker start → first healthy probe, p50 / p95', `${ms(p50f)} / ${ms(pct(floor, 95))}`]);
  const p50t = pct(temporalFloor, 50);
  rows.push([
    b,
    'Temporal floor (bench/floor: an eager start, one local activity, an Engine API start) → first healthy probe, p50 / p95; over the floor',
    `${ms(p50t)} / ${ms(pct(temporalFloor, 95))}; ${ms(p50t - p50f)}`,
  ]);
  const p50g = pct(guardedFloor, 50);
  rows.push([
    b,
    'Temporal floor with a guard (its local activity also an update-with-start on a guard workflow) → first healthy probe, p50 / p95; over the floor',
    `${ms(p50g)} / ${ms(pct(guardedFloor, 95))}; ${ms(p50g - p50f)}`,
  ]);
  for (const v of variants) {
    const p50h = pct(v.toHealthy, 50);
    rows.push([b, `${v.name}: webhook POST → first healthy probe, p50 / p95`, `${ms(p50h)} / ${ms(pct(v.toHealthy, 95))}`]);
    rows.push([b, `${v.name}: webhook POST → workflow completed, p50 / p95`, `${ms(pct(v.toDone, 50))} / ${ms(pct(v.toDone, 95))}`]);
    rows.push([
      b,
      `${v.name}: overhead to healthy (p50 − floor p50), ratio; over the Temporal floor; over the floor with a guard`,
      `${ms(p50h - p50f)}, ×${(p50h / p50f).toFixed(2)}; ${ms(p50h - p50t)}; ${ms(p50h - p50g)}`,
    ]);
    rows.push([b, `${v.name}: outcomes`, [...v.outcomes].map(([k, n]) => `${k} ${n}`).join(', ')]);
  }
  const [interp, compiled] = variants.map((v) => pct(v.toHealthy, 50) - p50f);
  rows.push([b, 'interpreter − compiled, overhead p50', `${ms(interp! - compiled!)}`]);
  // Per-round differences: the spread of the comparison, not of the machine.
  const diffs = variants[0]!.toHealthy.map((t, i) => t - variants[1]!.toHealthy[i]!);
  rows.push([
    b,
    'interpreter − compiled per round: p25 / p50 / p75',
    `${ms(pct(diffs, 25))} / ${ms(pct(diffs, 50))} / ${ms(pct(diffs, 75))}`,
  ]);
  // Round 1's interpreter alert is the engine's first since it started (worker/codecWarmup.ts).
  const first = variants[0]!.toHealthy[0]!;
  const rest = variants[0]!.toHealthy.slice(1);
  rows.push([
    b,
    "the engine's first alert since its start (round 1, the interpreter): POST → first healthy probe; over round 1's floor; the other rounds' p50 over theirs",
    `${ms(first)}; ${ms(first - floor[0]!)}; ${rest.length > 0 ? ms(pct(rest, 50) - pct(floor.slice(1), 50)) : 'no other round'}`,
  ]);
}

// ---------------------------------------------------------------------------------------------
// 1r. The first alert after the engine (re)starts: a deploy, or the reboot that is why alerts come.

/**
 * Each round starts the engine anew on the same task queue (so from round 2 on its guard exists,
 * with the history earlier rounds wrote), lets it idle 2 s, then kills the container and posts one
 * alert: the engine's first since its start. The round ends its engine as a deploy does (SIGTERM) or
 * as a crash does (kill -9), in turn, so the next start follows each. The floor is a bare `docker
 * start` in the same round.
 */
async function benchRestart(): Promise<void> {
  const s = stack();
  const rounds = Math.max(3, Math.min(runs, 7));
  const target = `bench-${benchId}-svc`;
  await benchService();
  const floor: number[] = [];
  const first: number[] = [];
  let last: BenchEngine | undefined;
  try {
    await firstHealthy(15_000);
    for (let i = 0; i < rounds; i++) {
      floor.push(await dockerStartFloor());

      const engine = (last = await startBenchEngine('restart', {
        webhook: { listen: '127.0.0.1:0', token: s.webhookToken, spool: true },
        targets: { [target]: benchServiceTarget(target) },
        bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: [target], runbook: 'serviceDown' }],
        guardrails: { restarts: { max: 10000, window: '1h' }, restartBackoff: '1s', verifyDeadline: '20s', verifyInterval: '100ms' },
      }));
      await sleep(2_000);
      await run('docker', ['kill', svcName]);
      const body = payload([{ labels: { alertname: 'ServiceDown', service: target }, fingerprint: `bench-${benchId}-restart-${i}` }]);
      const t0 = performance.now();
      const posting = post(engine.url, body);
      const healthyAt = firstHealthy(60_000);
      const res = await posting;
      if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${res.text.slice(0, 300)}`);
      first.push((await healthyAt) - t0);
      await engine.client.workflow.getHandle(incidentWorkflowId('serviceDown', target)).result();
      // Ended as a deploy ends it, then as a crash does, in turn: the next round's start follows it.
      if (i % 2 === 0) await engine.stop();
      else await engine.kill();
    }
  } finally {
    if (last) {
      await cleanUp(last);
      await last.stop();
    }
    await run('docker', ['rm', '-f', svcName]).catch(() => {});
  }
  const b = `1r. the first alert after an engine start (${rounds} starts, spooled)`;
  const over = first.map((t, i) => t - floor[i]!);
  rows.push([b, 'floor: docker start → first healthy probe, p50', ms(pct(floor, 50))]);
  rows.push([b, 'round 1 (no guard yet): webhook POST → first healthy probe; over its floor', `${ms(first[0]!)}; ${ms(over[0]!)}`]);
  for (const [after, parity] of [
    ['SIGTERM', 1],
    ['kill -9', 0],
  ] as const) {
    const these = over.filter((_, i) => i > 0 && i % 2 === parity);
    rows.push([
      b,
      `after a ${after} (the guard there): POST → first healthy probe over the round's floor, each; p50`,
      `${these.map(ms).join(' / ')}; ${ms(pct(these, 50))}`,
    ]);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Alert storms: many distinct alerts, and many copies of one.

/** http targets whose health URL is a closed port and that have no restartVia. */
function downTargets(prefix: string, n: number) {
  const names = Array.from({ length: n }, (_, i) => `bench-${benchId}-${prefix}${i}`);
  const targets: EngineConfigInput['targets'] = {};
  for (const name of names) targets[name] = { kind: 'http', health: { url: closedUrl, timeout: '1s' } };
  return { names, targets };
}

/**
 * Posts every body. `rate` set: an open-loop schedule (body i leaves at i/rate seconds whatever the
 * earlier answers), the load Alertmanager produces. Unset: as fast as the receiver accepts,
 * `inFlight` at a time.
 */
async function postAll(url: string, bodies: string[], rate?: number): Promise<{ statuses: number[]; times: number[]; postedMs: number }> {
  const statuses: number[] = [];
  const times: number[] = [];
  const record = (r: { status: number; ms: number }) => {
    statuses.push(r.status);
    times.push(r.ms);
  };
  const client = poster(url);
  const t0 = performance.now();
  try {
    if (rate) {
      await Promise.all(
        bodies.map(async (body, i) => {
          await sleep(Math.max(0, t0 + (i * 1_000) / rate - performance.now()));
          record(await client.post(body));
        }),
      );
    } else {
      await mapLimited(bodies, inFlight, async (body) => record(await client.post(body)));
    }
    return { statuses, times, postedMs: performance.now() - t0 };
  } finally {
    client.close();
  }
}

/** Reports what the webhook answered to a storm, and what it cost the engine. */
async function storm(engine: BenchEngine, bodies: string[], expectWorkflows: number, label: string, rate?: number): Promise<void> {
  let peakRss = engine.usage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, engine.usage().rss)), 100);
  const cpu0 = { engine: engine.usage().cpuMs, server: serverCpuMs() };
  await engine.loopDelay();
  const answered0 = await engine.answered();
  const t0 = performance.now();
  const wall0 = Date.now();
  try {
    const { statuses, times, postedMs: postedAt } = await postAll(engine.url, bodies, rate);
    const loop = await engine.loopDelay();
    const answered1 = await engine.answered();
    // The webhook answers 200 once Temporal accepted the start (or, spooled, once the alert is on
    // disk); visibility shows the workflow a little later.
    // Incidents by id, whatever runs them: a runbook file's interpreter (`runbook`) or a compiled runbook.
    const query = `TaskQueue = "${engine.taskQueue}" AND WorkflowId STARTS_WITH "incident:" AND ExecutionStatus = "Running"`;
    const deadline = performance.now() + 120_000;
    let seen = 0;
    while (performance.now() < deadline) {
      seen = (await engine.client.workflow.count(query)).count;
      if (seen >= expectWorkflows) break;
      await sleep(100);
    }
    const allStarted = performance.now() - t0;
    const share = (cpuMs: number) => `${((cpuMs / allStarted) * 100).toFixed(0)} %`;
    const cpu = { engine: share(engine.usage().cpuMs - cpu0.engine), server: share(serverCpuMs() - cpu0.server) };
    // Let the runbooks reach their escalation timers before reading memory.
    await sleep(5_000);
    const accepted = statuses.filter((s) => s >= 200 && s < 300).length;
    rows.push([label, 'accepted (2xx) / lost (non-2xx or no answer)', `${accepted} / ${statuses.length - accepted}`]);
    const load = rate ? `paced at ${rate}/s` : `${inFlight} in flight`;
    rows.push([
      label,
      `webhook response at the client p50 / p99 / max (${load})`,
      `${ms(pct(times, 50))} / ${ms(pct(times, 99))} / ${ms(Math.max(...times))}`,
    ]);
    const all = answered1.all - answered0.all;
    const within = (n: number) => `${((n / all) * 100).toFixed(1)} %`;
    rows.push([
      label,
      "answered by the engine's own clock (its request histogram) within 10 / 20 / 50 ms",
      `${within(answered1.within10ms - answered0.within10ms)} / ${within(answered1.within20ms - answered0.within20ms)} / ${within(answered1.within50ms - answered0.within50ms)} of ${all}`,
    ]);
    rows.push([label, 'engine event-loop delay while posting, p99 / max', `${ms(loop.p99)} / ${ms(loop.max)}`]);
    rows.push([label, 'all posted (throughput)', `${ms(postedAt)} (${((bodies.length / postedAt) * 1000).toFixed(0)} alerts/s)`]);
    rows.push([
      label,
      `every workflow started (visible: ${seen} of ${expectWorkflows})`,
      seen >= expectWorkflows ? ms(allStarted) : `not within 120 s`,
    ]);
    // When the server itself started the last of them: each run's start time, which visibility
    // lists only once its (asynchronous) record is written, so the row above also counts that lag.
    const runs = await stormRuns(engine.client, query);
    const lastStart = runs.length > 0 ? Math.max(...runs.map((r) => r.start)) : undefined;
    rows.push([
      label,
      "every workflow started, by the server's own start times (the last one); visible that much later",
      lastStart ? `${ms(lastStart - wall0)}; ${ms(allStarted - (lastStart - wall0))}` : 'none listed',
    ]);
    // Acceptance first (triggers/alerts/acceptanceFirst.ts): how many starts competed with the answers.
    const duringPosting = runs.filter((r) => r.start - wall0 <= postedAt);
    rows.push([
      label,
      "runs started while the alerts were still being posted (the first one's start)",
      `${duringPosting.length}${runs.length > 0 ? ` (${ms(Math.min(...runs.map((r) => r.start)) - wall0)})` : ''}`,
    ]);
    if (expectWorkflows >= firstTaskSample) {
      // Started is not acting: a run's first workflow task asks its reads and the guard's restart
      // claim, and only then does the runbook act.
      const through = await firstTasksDone(engine.client, runs, 120_000);
      const after = through.at.map((at) => at - wall0);
      rows.push([
        label,
        "every run through its first workflow task (its reads, the guard's restart claim, its first action asked): p50 / last",
        through.missing === 0
          ? `${ms(pct(after, 50))} / ${ms(Math.max(...after))}`
          : `${through.missing} of ${through.runs} not within 120 s (p50 of the rest ${ms(pct(after, 50))})`,
      ]);
    }
    rows.push([label, 'engine process RSS: peak during storm / 5 s after', `${mb(peakRss)} / ${mb(engine.usage().rss)}`]);
    rows.push([label, 'CPU until every workflow started, % of one core: engine / Temporal server', `${cpu.engine} / ${cpu.server}`]);
    if (expectWorkflows >= firstTaskSample) {
      const applied = await firstTaskApplied(engine.client, runs);
      rows.push([
        label,
        `Temporal applying a run's first workflow task (${applied.runs} runs read after the storm): p50 / p90; events it wrote`,
        `${ms1(pct(applied.ms, 50))} / ${ms1(pct(applied.ms, 90))}; ${pct(applied.events, 50)}`,
      ]);
    }
  } finally {
    clearInterval(sampler);
  }
}

const firstTaskSample = 40;

interface StormRun {
  workflowId: string;
  runId: string;
  /** The server's start time, ms since the epoch. */
  start: number;
}

/** The runs the query lists (visibility lists a run once its asynchronous record is written). */
async function stormRuns(client: Client, query: string): Promise<StormRun[]> {
  const runs: StormRun[] = [];
  for await (const wf of client.workflow.list({ query, pageSize: 1_000 })) {
    runs.push({ workflowId: wf.workflowId, runId: wf.runId, start: wf.startTime.getTime() });
  }
  return runs;
}

/**
 * When each run completed its first workflow task (ms since the epoch), from its history. Waits
 * until the ten runs started last are through (a full pass before that would only load the
 * server), then reads every run once, and again only those not through yet.
 */
async function firstTasksDone(
  client: Client,
  runs: StormRun[],
  withinMs: number,
): Promise<{ runs: number; at: number[]; missing: number }> {
  let pending = [...runs].sort((a, b) => b.start - a.start);
  const at: number[] = [];
  const firstTaskAt = async (r: StormRun): Promise<number | undefined> => {
    const events = (await client.workflow.getHandle(r.workflowId, r.runId).fetchHistory()).events ?? [];
    const done = events.find((e) => e.workflowTaskCompletedEventAttributes);
    return done ? eventTimeMs(done) : undefined;
  };
  /** Reads each of `rs` once: the times of those through go to `at`, the rest come back. */
  const readAll = async (rs: StormRun[]): Promise<StormRun[]> => {
    const still: StormRun[] = [];
    for (let i = 0; i < rs.length; i += 8) {
      const slice = rs.slice(i, i + 8);
      (await Promise.all(slice.map(firstTaskAt))).forEach((t, j) => (t === undefined ? still.push(slice[j]!) : at.push(t)));
    }
    return still;
  };
  const deadline = performance.now() + withinMs;
  while (pending.length > 0 && performance.now() < deadline) {
    const last = await Promise.all(pending.slice(0, 10).map(firstTaskAt));
    if (last.some((t) => t === undefined)) {
      await sleep(1_000);
      continue;
    }
    pending = await readAll(pending);
  }
  // Out of time with the newest still waiting: the rest read once, so the row counts the runs that
  // did get through instead of calling every one of them missing.
  if (pending.length > 0 && at.length === 0) pending = await readAll(pending);
  return { runs: runs.length, at, missing: pending.length };
}

/**
 * For some runs of a storm, read once it is over (so the reading is not the load): how long the
 * server took from a run's first *workflow task completed* event to the last event written for that
 * task's commands (each names the completion it came from), and how many there were. A storm's
 * rows count runs started; this is the server's cost of what each run asked first.
 */
async function firstTaskApplied(client: Client, runs: StormRun[]): Promise<{ runs: number; ms: number[]; events: number[] }> {
  const out = { runs: 0, ms: [] as number[], events: [] as number[] };
  for (const wf of runs) {
    const events = (await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory()).events ?? [];
    const completed = events.find((e) => e.workflowTaskCompletedEventAttributes);
    if (completed) {
      const id = Number(completed.eventId);
      const batch = events.filter((e) =>
        Object.entries(e).some(
          ([key, value]) =>
            key.endsWith('EventAttributes') &&
            Number((value as { workflowTaskCompletedEventId?: unknown } | null)?.workflowTaskCompletedEventId ?? 0) === id,
        ),
      );
      out.runs++;
      out.events.push(batch.length);
      out.ms.push(Math.max(eventTimeMs(completed), ...batch.map(eventTimeMs)) - eventTimeMs(completed));
    }
    if (out.runs >= firstTaskSample) break;
  }
  return out;
}

/**
 * The floor: the same bodies, the same client, posted to a bare Node server that only parses each
 * body and appends it to a file, answering after a group-committed fdatasync (bench/stormFloor.ts).
 */
async function stormFloor(bodies: string[], label: string, rate?: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'remediation-floor-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'stormFloor.ts'), dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`the floor server exited (${code}) before listening`)));
    });
    const url = `http://127.0.0.1:${port}/`;
    // The client's first requests are slow (connections, JIT): warmed here once, untimed.
    await postAll(url, bodies.slice(0, 200));
    await fetch(url);
    const cpu0 = processUsage(child.pid!).cpuMs;
    const { statuses, times, postedMs } = await postAll(url, bodies, rate);
    const cpuMs = processUsage(child.pid!).cpuMs - cpu0;
    const own = (await (await fetch(url)).json()) as number[];
    const accepted = statuses.filter((s) => s === 200).length;
    const load = rate ? `paced at ${rate}/s` : `${inFlight} in flight`;
    rows.push([label, 'accepted (200) / lost', `${accepted} / ${statuses.length - accepted}`]);
    rows.push([
      label,
      `response at the client p50 / p99 / max (${load})`,
      `${ms(pct(times, 50))} / ${ms(pct(times, 99))} / ${ms(Math.max(...times))}`,
    ]);
    rows.push([
      label,
      "by the server's own clock p50 / p99 / max",
      `${ms1(pct(own, 50))} / ${ms1(pct(own, 99))} / ${ms1(Math.max(...own))}`,
    ]);
    rows.push([
      label,
      'all posted (throughput); server CPU, % of one core',
      `${ms(postedMs)} (${((bodies.length / postedMs) * 1000).toFixed(0)} alerts/s); ${((cpuMs / postedMs) * 100).toFixed(0)} %`,
    ]);
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Temporal's own floor for a storm's starts: as many runs started straight at the server, as many
 * at a time as the forwarder sends them (`forwardingAfterwards`), with a tiny input, no search attributes and no worker polling
 * their queue. What the engine's "every workflow started" row takes above it is the engine's, and
 * its runs' first tasks competing for the same server.
 */
async function startsFloor(client: Client, label: string): Promise<void> {
  const queue = `bench-${benchId}-starts-floor-${++startsFloors}`;
  const ids = Array.from({ length: stormSize }, (_, n) => `${queue}:${n}`);
  const cpu0 = serverCpuMs();
  const t0 = performance.now();
  await mapLimited(ids, forwardingAfterwards, async (workflowId) => {
    await client.workflow.start('startsFloor', { workflowId, taskQueue: queue, args: [] });
  });
  const tookMs = performance.now() - t0;
  const cpuMs = serverCpuMs() - cpu0;
  rows.push([
    label,
    'all started (throughput); Temporal server CPU a start, % of one core',
    `${ms(tookMs)} (${((stormSize / tookMs) * 1000).toFixed(0)} starts/s); ` +
      // A server not the stack's own (a cluster elsewhere) has no CPU to read here.
      (Number.isNaN(cpuMs) ? 'server CPU not readable' : `${(cpuMs / stormSize).toFixed(1)} ms, ${((cpuMs / tookMs) * 100).toFixed(0)} %`),
  ]);
  // By id, not through visibility (which lists a run a little after its start).
  await mapLimited(ids, 20, (id) =>
    client.workflow
      .getHandle(id)
      .terminate('starts floor measured')
      .then(() => undefined),
  );
  await serverQuiet();
}
let startsFloors = 0;

/**
 * Waits until the stack's Temporal has been under 15 % of a core for 250 ms (at most 10 s), so work
 * left by what came before (the terminations above) does not land in the next measurement.
 */
async function serverQuiet(): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const before = serverCpuMs();
    await sleep(250);
    const share = (serverCpuMs() - before) / 250;
    if (!(share >= 0.15)) return; // NaN (a server not ours) counts as quiet: nothing to wait for
  }
  notes.push('the Temporal server was still busy 10 s after a starts floor; the storm after it went ahead');
}

async function benchStorms(): Promise<void> {
  // Both ways the webhook can answer: once the alerts are fsynced to its spool (the default with
  // the embedded dev server, `npm start`), and once Temporal took them (the default with a cluster).
  const loads = (
    [
      ['paced', stormRate],
      ['flat out', undefined],
    ] as const
  ).filter(([mode]) => stormLoads.has(mode === 'paced' ? 'paced' : 'flat'));
  for (const webhook of webhookModes) {
    const { spool, intake } = webhookConfig[webhook];
    if (!stormWebhooks.has(webhook)) continue;
    // Targets of their own for each repeat: a storm on the targets of the one before would reuse
    // its (just terminated) runs' workflow ids, which Temporal starts more slowly (10.2 → 13.2 s for
    // the third storm against 10.6 → 8.7 s with fresh ones), so the repeats would not measure alike.
    const { names, targets } = downTargets(`s${webhook[0]}`, stormSize * stormRepeats * loads.length);
    const distinctOf = (repeat: number) =>
      names
        .slice((repeat - 1) * stormSize, repeat * stormSize)
        .map((name, i) => payload([{ labels: { service: name }, fingerprint: `bench-${benchId}-${webhook}-distinct-${repeat}-${i}` }]));
    let stormsRun = 0;
    const engine = await startBenchEngine(`storm-${webhook}`, {
      webhook: { listen: '127.0.0.1:0', token: stack().webhookToken, spool, intake },
      targets,
      bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: names, runbook: 'serviceDown' }],
      // Every incident asks the guard for a restart reservation and a slot before finding out the
      // target cannot be restarted; the default cap of 2 would queue them behind each other.
      guardrails: {
        restarts: { max: 10000, window: '1h' },
        maxConcurrentDestructive: 10000,
        verifyDeadline: '2s',
        verifyInterval: '500ms',
      },
    });
    try {
      // One alert repeated: one workflow; the copies are coalesced or fold into it as signals.
      const one = payload([{ labels: { service: names[0]! }, fingerprint: `bench-${benchId}-${webhook}-same` }]);
      const copies = Array.from({ length: stormSize }, () => one);
      for (const [mode, rate] of loads) {
        for (let r = 1; r <= stormRepeats && stormAlerts.has('distinct'); r++) {
          const nth = stormRepeats > 1 ? ` (run ${r})` : '';
          const distinct = distinctOf(++stormsRun);
          // Just before, with the engine idle: the floor for these bodies, this client, this disk.
          if (spool)
            await stormFloor(
              distinct,
              `2f. floor: ${stormSize} distinct alerts, ${mode}, bare Node parse + group-committed fdatasync${nth}`,
              rate,
            );
          await startsFloor(
            engine.client,
            `2s. floor: ${stormSize} runs started straight at Temporal, ${forwardingAfterwards} at a time, no worker${nth}`,
          );
          await storm(engine, distinct, stormSize, `2a. ${stormSize} distinct alerts, ${mode}, ${webhook}${nth}`, rate);
          notes.push(`storm (distinct, ${mode}, ${webhook}${nth}): terminated ${await cleanUp(engine)} workflows afterwards`);
        }
        if (stormAlerts.has('copies')) {
          await storm(engine, copies, 1, `2b. ${stormSize} copies of one alert, ${mode}, ${webhook}`, rate);
          notes.push(`storm (copies, ${mode}, ${webhook}): terminated ${await cleanUp(engine)} workflows afterwards`);
        }
      }
    } finally {
      await cleanUp(engine);
      await engine.stop();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 0. Side by side with what SREs would run instead (../shared/peers through bench/peers.sh): the
// engine as `npm start` runs it beside adnanh/webhook + a shell runbook and the `docker start` floors,
// in the same interleaved rounds. Compared within a run only (the paired Δ), over several runs.

async function benchPeers(): Promise<void> {
  const label = `0. side by side (bench/peers.sh, ${peerRounds} rounds a run)`;
  const gaps: number[] = [];
  const overApi: number[] = [];
  for (let i = 1; i <= peerRuns; i++) {
    const { stdout } = await promisify(execFile)('bash', ['bench/peers.sh'], {
      // Built once, by the first run.
      env: { ...process.env, ROUNDS: String(peerRounds), ...(i > 1 ? { PEERS_BUILT: '1' } : {}) },
      timeout: 30 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const t = parsePeerTable(stdout);
    const [floor, api, script, engine] = ['floor-start', 'floor-api', 'webhook', 'engine'].map((k) => t.get(k));
    if (!floor || !api || !script || !engine) throw new Error(`run ${i}: the peers' table lacks a row:\n${stdout.slice(-2_000)}`);
    const rss = peerRss(stdout, 'engine');
    gaps.push(engine.delta - script.delta);
    overApi.push(engine.delta - api.delta);
    rows.push([
      label,
      `run ${i}: p50 (paired Δ vs \`docker start\`): floor ${floor.p50} ms; Engine API ${api.p50} ms (${signed(api.delta)}); webhook + shell ${script.p50} ms (${signed(script.delta)}); the engine ${engine.p50} ms (${signed(engine.delta)})`,
      `engine − script **${signed(engine.delta - script.delta)}**; engine − Engine API ${signed(engine.delta - api.delta)}${rss ? `; engine RSS idle ${rss.idle}, peak ${rss.peak}` : ''}`,
    ]);
  }
  const range = (xs: number[]) => `${signed(Math.min(...xs))} … ${signed(Math.max(...xs))}`;
  rows.push([
    label,
    `engine − webhook script over ${peerRuns} runs (target ≤ +20 ms)`,
    `${range(gaps)}: ${Math.max(...gaps) <= 20 ? 'met' : 'missed'}`,
  ]);
  rows.push([
    label,
    `engine − Engine API floor over ${peerRuns} runs (target < 40 ms)`,
    `${range(overApi)}: ${Math.max(...overApi) < 40 ? 'met' : 'missed'}`,
  ]);
}

function signed(v: number): string {
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(0)} ms`;
}

// ---------------------------------------------------------------------------------------------
// 3. Many open incidents, each waiting on its escalation timer.

async function benchOpen(): Promise<void> {
  const { names, targets } = downTargets('o', openCount);
  const openConfig: Partial<EngineConfigInput> = {
    targets,
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: names, runbook: 'serviceDown' }],
    guardrails: { restarts: { max: 10000, window: '1h' }, maxConcurrentDestructive: 10000, verifyDeadline: '2s', verifyInterval: '500ms' },
  };
  // N engine processes on one task queue (one guard, the incidents shared out by Temporal's matching),
  // each its own webhook; alerts posted round-robin, as a load balancer in front of them would.
  const startAll = () => Promise.all(Array.from({ length: openEngines }, () => startBenchEngine('open', openConfig)));
  let engines = await startAll();
  const label = `3. ${openCount} open incidents${openEngines > 1 ? `, ${openEngines} engines` : ''}`;
  const each = (of: (e: BenchEngine) => string) => engines.map(of).join(' / ');
  const rssBefore = engines.map((e) => e.usage().rss);
  const peakRss = [...rssBefore];
  const sampler = setInterval(() => engines.forEach((e, i) => (peakRss[i] = Math.max(peakRss[i]!, e.usage().rss))), 100);
  try {
    const bodies = names.map((name, i) => payload([{ labels: { service: name }, fingerprint: `bench-${benchId}-open-${i}` }]));
    const since = new Date().toISOString();
    const t0 = performance.now();
    let lost = 0;
    let nth = 0;
    // Not 200: posted again a second later, up to 5 times, as Alertmanager delivers again (a 503
    // carries Retry-After); the refusals counted by status, lost only what no attempt delivered.
    const refused = new Map<number, number>();
    const clients = engines.map((e) => poster(e.url));
    await mapLimited(bodies, inFlight, async (body) => {
      for (let attempt = 1; ; attempt++) {
        const { status } = await clients[nth++ % clients.length]!.post(body);
        if (status === 200) return;
        refused.set(status, (refused.get(status) ?? 0) + 1);
        if (attempt === 5) return void lost++;
        await sleep(1_000);
      }
    });
    for (const c of clients) c.close();
    const posted = performance.now() - t0;
    // Open means: the runbook gave up restarting (no restartVia) and sits in escalation, on its 1 h timer.
    const client = engines[0]!.client;
    const waiting = new Set<string>();
    // 500 took 24–41 s; the bound grows with the count (10,000: 17 min on the dev server, more than
    // 28 min on the cluster with three engines).
    const deadline = performance.now() + Math.max(300_000, openCount * 300);
    // A run that failed never pages and never waits: it must be none (58 of 10,000 did, once, under
    // a backlog). Counted each round, so that failed runs do not hold the bench to its deadline.
    let failed = 0;
    const countFailed = async () =>
      (await client.workflow.count(`TaskQueue = '${engines[0]!.taskQueue}' AND ExecutionStatus = 'Failed' AND StartTime > '${since}'`))
        .count;
    while (waiting.size + failed < names.length - lost && performance.now() < deadline) {
      await mapLimited(
        names.filter((n) => !waiting.has(n)),
        20,
        async (name) => {
          // Read from the server's history, not by querying the workflow: 500 status queries a
          // second would each be a workflow task for the worker being measured.
          try {
            if (await onEscalationTimer(client, incidentWorkflowId('serviceDown', name))) waiting.add(name);
          } catch {
            // Not started yet: asked again next round.
          }
        },
      );
      failed = await countFailed();
      // Every round reads each history not yet seen waiting: spaced out, so the reading is not the load.
      if (waiting.size + failed < names.length - lost) await sleep(openCount > 1_000 ? 15_000 : 3_000);
    }
    const reached = performance.now() - t0;
    // Settle, then measure a quiet window: nothing should run but the worker's pollers.
    await sleep(2_000);
    const cpu0 = engines.map((e) => e.usage().cpuMs);
    const w0 = performance.now();
    await sleep(idleS * 1_000);
    const wall = performance.now() - w0;
    const cpuPct = engines.map((e, i) => ((e.usage().cpuMs - cpu0[i]!) / wall) * 100);
    const rss = engines.map((e) => e.usage().rss);
    clearInterval(sampler);
    rows.push([
      label,
      'all posted in / answers not 200, posted again (by status) / lost / all waiting on escalation timer after',
      `${ms(posted)} / ${[...refused].map(([c, n]) => `${n}× ${c}`).join(', ') || 'none'} / ${lost} / ${waiting.size} of ${names.length} in ${ms(reached)}`,
    ]);
    rows.push([label, 'runs that failed instead of escalating (Temporal visibility)', String(failed)]);
    rows.push([
      label,
      `local reads the worker dropped evicting runs, asked again (engine /metrics)${openEngines > 1 ? ' (each engine)' : ''}`,
      (await Promise.all(engines.map((e) => e.droppedReads()))).join(' / '),
    ]);
    const per = openEngines > 1 ? ' (each engine)' : '';
    rows.push([
      label,
      `engine process RSS${per}: before alerts / peak / all open, after the ${idleS} s idle window`,
      engines.map((_, i) => `${mb(rssBefore[i]!)} / ${mb(peakRss[i]!)} / ${mb(rss[i]!)}`).join('; '),
    ]);
    const heaps = await Promise.all(engines.map((e) => e.heap()));
    rows.push([
      label,
      `of which the main thread${per}: V8 heap in use / external`,
      heaps.map((h) => `${mb(h.used)} / ${mb(h.external)}`).join('; '),
    ]);
    rows.push([
      label,
      `CPU over ${idleS} s idle window${per} (user+system, % of one core)`,
      cpuPct.map((c) => `${c.toFixed(2)} %`).join(' / '),
    ]);
    const server = serverMemory();
    const what =
      stack().temporalMode === 'dev' ? 'Temporal dev server (its own process)' : 'Temporal cluster (4 services; its PostgreSQL apart)';
    rows.push([label, `${what} with all open: PSS (RSS)`, `${mb(server.temporal)} (${mb(server.temporalRss)})`]);
    if (stack().temporalMode === 'cluster') rows.push([label, "the cluster's PostgreSQL with all open: PSS", mb(server.postgres)]);
    // An operator restarting the engines now: SIGTERM with every incident open, then new engines on
    // the same queue (the same incidents, none of them in a cache).
    rows.push([
      label,
      `SIGTERM to exit with all incidents open${per}`,
      (await Promise.all(engines.map((e) => e.stop()))).map(ms).join(' / '),
    ]);
    const s0 = performance.now();
    engines = await startAll();
    const started = performance.now() - s0;
    await sleep(idleS * 1_000);
    const c0 = engines.map((e) => e.usage().cpuMs);
    await sleep(10_000);
    rows.push([
      label,
      `restart with all open: start to running (process spawn included) / RSS after ${idleS} s${per} / CPU over the next 10 s${per}`,
      `${ms(started)} / ${each((e) => mb(e.usage().rss))} / ${engines.map((e, i) => `${(((e.usage().cpuMs - c0[i]!) / 10_000) * 100).toFixed(2)} %`).join(' / ')}`,
    ]);
    rows.push([
      label,
      `the restarted engines: SIGTERM to exit${per}`,
      (await Promise.all(engines.map((e) => e.stop()))).map(ms).join(' / '),
    ]);
    engines = [await startBenchEngine('open', openConfig)];
  } finally {
    // Before the engines go: reading /proc of an exited process would throw in the timer.
    clearInterval(sampler);
    const terminated = await cleanUp(engines[0]!);
    notes.push(`open incidents: terminated ${terminated} workflows afterwards`);
    await Promise.all(engines.map((e) => e.stop()));
  }
}

// ---------------------------------------------------------------------------------------------

function execFileAsync() {
  const p = promisify(execFile);
  return (cmd: string, args: string[]) => p(cmd, args, { timeout: 60_000 });
}

function sleep(msec: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msec));
}

/** The nearest-rank percentile `remediate report` uses; NaN (shown "n/a") when nothing was measured. */
function pct(values: number[], p: number): number {
  return values.length === 0 ? NaN : percentile(values, p / 100);
}

function ms(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(0)} ms` : 'n/a';
}

function ms1(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'n/a';
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

async function mapLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function main(): Promise<void> {
  const failures: string[] = [];
  const serverBefore = serverMemory();
  const benches: Array<[string, () => Promise<void>]> = [
    ['peers', benchPeers],
    ['recovery', benchRecovery],
    ['restart', benchRestart],
    ['storm', benchStorms],
    ['open', benchOpen],
  ];
  for (const [name, fn] of benches) {
    if (!only.has(name)) continue;
    const t0 = performance.now();
    console.error(`[bench] ${name}…`);
    try {
      await fn();
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      rows.push([name, 'FAILED', (err instanceof Error ? err.message : String(err)).slice(0, 200)]);
    }
    console.error(`[bench] ${name} took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }

  const after = serverMemory();
  const what = stack().temporalMode === 'dev' ? 'dev server' : 'cluster (4 services)';
  rows.push([
    'Temporal',
    `${what} PSS (RSS): before / after the benches`,
    `${mb(serverBefore.temporal)} (${mb(serverBefore.temporalRss)}) / ${mb(after.temporal)} (${mb(after.temporalRss)})`,
  ]);
  if (stack().temporalMode === 'cluster')
    rows.push(['Temporal', 'its PostgreSQL PSS: before / after the benches', `${mb(serverBefore.postgres)} / ${mb(after.postgres)}`]);
  const machine = `${availableParallelism()} CPUs (nproc), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, Node ${process.version}, Temporal ${what} at ${stack().temporalAddress}${stack().temporalTls ? ' (mTLS)' : ''}`;
  console.log(`\nMachine: ${machine}\n`);
  console.log('| bench | metric | value |');
  console.log('|---|---|---|');
  for (const [b, m, v] of rows) console.log(`| ${b} | ${m} | ${v} |`);
  if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
  process.exit(failures.length ? 1 : 0);
}

await main();
