// Where the engine's memory goes at rest: the engine started as `npm start` runs it (compiled, the
// build's bundle, MALLOC_ARENA_MAX=2), left idle, then asked for a breakdown by bench/memoryProbe.cjs
// (preloaded into every thread): the V8 heap of each isolate (the main thread, and the workflow
// thread of each of the engine's two Temporal workers: incidents and the guard), what the process
// maps from files (node itself, Temporal's native core), and the anonymous rest (malloc: the Rust
// core, Node, ICU; thread stacks). With --embedded the engine starts its own dev server, whose
// memory is shown apart (it is another process). Prints one markdown table, each value per run.
//
// Usage: npx tsx bench/memory.ts [--runs 3] [--settle 15] [--embedded] [--bundle file.js]
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { EngineConfigInput } from '../config/schema.js';
import { repoRoot, spawnEngine } from '../test/support/engineProcess.js';
import { stack } from '../test/support/stack.js';
import { temporalConfigInput } from '../test/support/temporal.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    settle: { type: 'string', default: '15' },
    embedded: { type: 'boolean', default: false },
    /** Another workflow bundle for both workers (what a smaller one would save; default: the build's). */
    bundle: { type: 'string' },
  },
});
const runs = Number(opts.runs);
const settleS = Number(opts.settle);

interface Isolate {
  threadId: number;
  script: string;
  heapUsed: number;
  heapTotal: number;
  physical: number;
  external: number;
  malloced: number;
  contexts: number;
  code: number;
}
interface Report {
  memoryUsage: NodeJS.MemoryUsage;
  main: Isolate;
  workers: Isolate[];
  smapsRollup: string;
  smaps: string;
  status: string;
}

/** Rss of the mappings in /proc/pid/smaps, by what is mapped. */
function mappings(smaps: string): Map<string, number> {
  const byWhat = new Map<string, number>();
  let what = 'anonymous';
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[1]!.trim();
      what =
        path === '' || path === '[heap]' || path.startsWith('[anon')
          ? 'anonymous'
          : path.startsWith('[stack')
            ? 'anonymous'
            : path === '/usr/bin/node' || /\/node$/.test(path)
              ? 'file: node executable'
              : /core-bridge|temporalio/.test(path)
                ? "file: Temporal's native core (core-bridge .node)"
                : path.startsWith('[')
                  ? 'kernel ([vdso], [vvar])'
                  : 'file: other (libc, libstdc++, ICU data, …)';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) byWhat.set(what, (byWhat.get(what) ?? 0) + Number(rss[1]) * 1024);
  }
  return byWhat;
}

function kb(text: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
}

function rssOf(pid: number): number {
  try {
    return kb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
  } catch {
    return NaN;
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
        return [];
      }
    });
}

async function measureOnce(bundle: string): Promise<{ rows: Map<string, number>; threads: number; embeddedRss: number }> {
  const s = stack();
  const out = join(mkdtempSync(join(tmpdir(), 'remediation-memory-')), 'report.json');
  const taskQueue = `bench-memory-${process.pid}-${Date.now().toString(36)}`;
  // The embedded server on ports of its own (four from `port`), clear of the stack's and of tests'.
  const embeddedPort = 27_400 + Math.floor(Math.random() * 50) * 20;
  const temporal = opts.embedded
    ? { port: embeddedPort, uiPort: embeddedPort + 5, taskQueue }
    : { ...temporalConfigInput('engine'), taskQueue };
  const input: EngineConfigInput = {
    temporal,
    webhook: { listen: '127.0.0.1:0', token: s.webhookToken },
    alertmanager: { url: s.alertmanagerUrl },
    targets: {},
    channels: { log: { type: 'log' } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '1h', channels: ['log'] }] } } },
    operators: [{ name: 'bench', role: 'viewer' }],
  };
  const engine = await spawnEngine(input, {
    fromBuild: true,
    startTimeoutMs: 120_000,
    env: {
      REMEDIATION_WORKFLOW_BUNDLE: bundle,
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
      NODE_OPTIONS: `--require ${join(repoRoot, 'bench', 'memoryProbe.cjs')}`,
      MEMORY_PROBE_OUT: out,
    },
  });
  try {
    await new Promise((r) => setTimeout(r, settleS * 1_000));
    engine.kill('SIGUSR2');
    const deadline = Date.now() + 10_000;
    let report: Report | undefined;
    while (!report && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      try {
        report = JSON.parse(readFileSync(out, 'utf8')) as Report;
      } catch {
        // Not written yet.
      }
    }
    if (!report) throw new Error(`the engine wrote no memory report to ${out}`);
    const embeddedRss = childrenOf(engine.pid).reduce((sum, pid) => sum + rssOf(pid), 0);
    const rows = new Map<string, number>();
    const rss = kb(report.smapsRollup, 'Rss');
    rows.set('engine process RSS (smaps_rollup)', rss);
    const maps = mappings(report.smaps);
    const anon = maps.get('anonymous') ?? 0;
    for (const [what, bytes] of [...maps].sort((a, b) => b[1] - a[1])) if (what !== 'anonymous') rows.set(what, bytes);
    rows.set('anonymous (heaps, malloc, stacks)', anon);
    // Temporal's workflow threads, in the order the engine creates its workers: incidents, then the guard.
    const workers = [...report.workers].sort((a, b) => a.threadId - b.threadId);
    const named: Array<[string, Isolate]> = [
      ['main thread', report.main],
      ...workers.map((w, i): [string, Isolate] => [
        /workflow-worker-thread/.test(w.script)
          ? i === 0
            ? 'incidents workflow thread'
            : i === 1
              ? 'guard workflow thread'
              : `workflow thread ${i + 1}`
          : `thread ${w.threadId} (${w.script.split('/').slice(-2).join('/')})`,
        w,
      ]),
    ];
    let v8Used = 0;
    for (const [name, iso] of named) {
      rows.set(`  V8 isolate, ${name}: heap committed (physical)`, iso.physical);
      rows.set(`  V8 isolate, ${name}: heap used`, iso.heapUsed);
      rows.set(`  V8 isolate, ${name}: code space used`, iso.code);
      rows.set(`  V8 isolate, ${name}: malloced by V8`, iso.malloced);
      v8Used += iso.heapUsed + iso.malloced;
    }
    rows.set('  ArrayBuffers and other external memory (main thread)', report.memoryUsage.external);
    // What is left for Temporal's Rust core, Node's and ICU's malloc, thread stacks. Near zero or
    // below: V8's own counters then include pages the kernel never made resident (reserved, untouched).
    rows.set('  anonymous less every isolate heap used and V8 malloc (native core, Node, stacks)', anon - v8Used);
    const threads = Number(/^Threads:\s+(\d+)/m.exec(report.status)?.[1] ?? NaN);
    return { rows, threads, embeddedRss };
  } finally {
    await engine.stop(30_000);
    if (!process.env.MEMORY_KEEP) rmSync(join(out, '..'), { recursive: true, force: true });
    else console.error(`[memory] report kept: ${out}`);
  }
}

async function main(): Promise<void> {
  const run = promisify(execFile);
  // The engine runs compiled, as `npm start` runs it: built here so it is never stale.
  await run('npm', ['run', '--silent', 'build'], { cwd: repoRoot, timeout: 300_000 });
  const bundle = opts.bundle ?? join(repoRoot, 'dist', 'workflows.bundle.js');
  const results: Array<Awaited<ReturnType<typeof measureOnce>>> = [];
  for (let i = 0; i < runs; i++) {
    console.error(`[memory] run ${i + 1} of ${runs}…`);
    results.push(await measureOnce(bundle));
  }
  const mib = (b: number) => (Number.isFinite(b) ? (b / 1_048_576).toFixed(1) : 'n/a');
  const where = opts.embedded ? 'its embedded dev server' : `the stack's Temporal at ${stack().temporalAddress}`;
  console.log(
    `\nMachine: ${availableParallelism()} CPUs, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, Node ${process.version}; engine idle ${settleS} s after start, on ${where}; ${runs} runs\n`,
  );
  console.log('| part of the engine process | MiB, each run |');
  console.log('|---|---|');
  for (const key of results[0]!.rows.keys()) console.log(`| ${key} | ${results.map((r) => mib(r.rows.get(key) ?? NaN)).join(' / ')} |`);
  console.log(`| threads (OS) | ${results.map((r) => r.threads).join(' / ')} |`);
  if (opts.embedded) console.log(`| embedded dev server (its own process), RSS | ${results.map((r) => mib(r.embeddedRss)).join(' / ')} |`);
}

await main();
