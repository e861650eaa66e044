// A runbook's `hostDiagnostics` step: what an on-call engineer types first on the box (df, free,
// uptime, top, ss, nc -z, du -s), gathered read-only where the target runs: on a systemd unit's host
// by its host agent, inside a container through `docker exec`.
//
// The figures come from /proc (meminfo, loadavg, uptime, each process's stat and status, net/tcp
// and udp) read with `grep -H`, plus `df -P` and `du -s`: programs every Linux userland has (the
// stack's systemd host has no procps or iproute2, and a busybox image may have only /bin/busybox,
// which is then asked for the applet). Nothing runs through a shell; TCP connects are made by this
// process with Node's net, and only to hosts the config names.
import { connect } from 'node:net';
import type { EngineConfig, Target } from '../config/schema.js';
import { redact } from '../config/secret.js';
import type { DiagnosticSection, HostDiagnosticSection, HostDiagnostics, HostDiagnosticsRequest, HostFigures } from './contract.js';
import type { DockerExec } from './dockerExec.js';
import { badInput, classify, TimeoutError, targetNotFound, transient } from './failures.js';
import { activitySignal, capText, heartbeating } from './limits.js';
import { configSecrets } from './redaction.js';
import type { CommandResult, CommandRunner } from './systemd.js';
import { bytes, disk, load, memory, parseStat, problemWith, sockets, ticksPerSecond } from './hostFigures.js';

export interface HostDiagnosticsDeps {
  config: EngineConfig;
  /** Containers: `docker exec` through the engine's Docker clients. */
  dockerExec?: DockerExec;
  /** systemd units: this host, for the host agent that owns them. */
  hostRunner?: CommandRunner;
  /** The hosts a TCP check may connect to: those the whole config names (config/runbookReferences.ts). */
  tcpHosts: Set<string>;
  owner?: string;
  /** Between the two samples of process CPU time. */
  sampleMs?: number;
}

const allSections: HostDiagnosticSection[] = ['disk', 'memory', 'load', 'processes', 'sockets', 'tcp', 'paths'];
const runMs = 30_000;
const duMs = 60_000;
const connectMs = 3_000;
const maxProcesses = 2_000;
/** What is read from one program: /proc of 2,000 processes is well under it. */
const readBytes = 4 * 1_048_576;

class Unavailable extends Error {}

export function createHostDiagnostics(
  deps: HostDiagnosticsDeps,
): (target: string, req: HostDiagnosticsRequest) => Promise<HostDiagnostics> {
  const { config } = deps;
  const secrets = configSecrets(config);
  const sampleMs = deps.sampleMs ?? 1_000;

  function runnerFor(what: string, name: string, t: Target): { run: CommandRunner; place: string } {
    if (t.kind === 'container') {
      if (!deps.dockerExec) throw badInput(what, `containers are the engine's; this worker cannot look inside them`);
      return {
        run: deps.dockerExec.runner({ endpoint: t.docker, container: t.container }, { env: ['LANG=C', 'LC_ALL=C'] }),
        place: `container '${t.container}'`,
      };
    }
    if (t.kind === 'systemd') {
      if (!deps.hostRunner)
        throw badInput(what, `systemd target '${name}' is diagnosed on its host, by its host agent; this worker is not one`);
      return { run: deps.hostRunner, place: `the host of '${name}'` };
    }
    throw badInput(what, `host diagnostics are for containers and systemd units, and '${name}' is a ${t.kind} target`);
  }

  return async function hostDiagnostics(name: string, req: HostDiagnosticsRequest): Promise<HostDiagnostics> {
    const what = `host diagnostics of target '${name}'`;
    const t = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
    if (!t) throw targetNotFound(what, deps.owner ? `not a target of ${deps.owner}` : 'no such target in the config');
    const tcp = checkRequest(what, req, deps.tcpHosts);
    const paths = t.kind === 'container' || t.kind === 'systemd' ? t.diagnosticPaths : [];
    const wanted = req.sections ?? allSections.filter((s) => (s === 'tcp' ? tcp.length > 0 : s === 'paths' ? paths.length > 0 : true));
    const { run, place } = runnerFor(what, name, t);
    const host = new Host(run, place);
    // Whether the target's host or container can be reached at all: one failure, not seven.
    await host.probe(what);

    const sectionBytes = Math.max(512, Math.floor(config.limits.outputBytes / Math.max(1, wanted.length)));
    const figures: HostFigures = { diskMaxPercent: -1, memoryUsedPercent: -1, load1: -1, cpus: 0, tcpFailed: [] };
    const work: Record<HostDiagnosticSection, () => Promise<{ ok: boolean; text: string }>> = {
      disk: async () => disk(await host.tool(['df', '-P', '-k'], runMs), figures),
      memory: async () => memory(await host.files(memoryFiles), figures),
      load: async () => load(await host.files(['/proc/loadavg', '/proc/uptime']), await host.cpus(), figures),
      processes: async () => processes(host, req.top, sampleMs),
      sockets: async () => sockets(await host.files(['/proc/net/tcp', '/proc/net/tcp6', '/proc/net/udp', '/proc/net/udp6'])),
      tcp: async () => connects(tcp, figures),
      paths: async () => pathSizes(host, paths),
    };
    const sections: DiagnosticSection[] = await heartbeating(
      Promise.all(
        wanted.map(async (title) => {
          try {
            const r = await work[title]();
            return { title, ok: r.ok, text: capText(redact(r.text, secrets), sectionBytes) };
          } catch (err) {
            if (activitySignal()?.aborted) throw err;
            return { title, ok: false, text: capText(`unavailable: ${redact(reason(err), secrets)}`, sectionBytes) };
          }
        }),
      ),
      { what },
    );
    const summary = sections.map((s) => `${s.ok ? 'ok' : 'FAILED'}: ${s.title}: ${headline(s.text)}`).join('\n');
    return { target: name, sections, summary, figures };
  };
}

function checkRequest(what: string, req: HostDiagnosticsRequest, allowed: Set<string>): string[] {
  if (!Number.isInteger(req?.top) || req.top < 1 || req.top > 50)
    throw badInput(what, `top must be a whole number from 1 to 50, got ${String(req?.top)}`);
  if (req.sections !== undefined && (!Array.isArray(req.sections) || !req.sections.every((s) => allSections.includes(s)))) {
    throw badInput(what, `sections must be among ${allSections.join(', ')}`);
  }
  if (!Array.isArray(req.tcp) || req.tcp.length > 20) throw badInput(what, 'tcp must list at most 20 host:port');
  for (const hp of req.tcp) {
    const m = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})$/.exec(String(hp));
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535) throw badInput(what, `'${String(hp).slice(0, 80)}' is not host:port`);
    if (!allowed.has(m[1]!.toLowerCase()))
      throw badInput(what, `tcp check of ${hp}: '${m[1]}' is not a host the config names (known: ${[...allowed].join(', ') || 'none'})`);
  }
  return req.tcp;
}

const memoryFiles = [
  '/proc/meminfo',
  // cgroup v2, then v1: a container's own use and limit, which /proc/meminfo does not show.
  '/sys/fs/cgroup/memory.current',
  '/sys/fs/cgroup/memory.max',
  '/sys/fs/cgroup/memory/memory.usage_in_bytes',
  '/sys/fs/cgroup/memory/memory.limit_in_bytes',
];

/** Programs run where the target is, each by name and, where a busybox image lacks the link, as a busybox applet. */
class Host {
  #busybox = false;
  constructor(
    private readonly run: CommandRunner,
    readonly place: string,
  ) {}

  async probe(what: string): Promise<void> {
    try {
      await this.tool(['cat', '/proc/loadavg'], runMs);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOCONTAINER') throw targetNotFound(what, (err as Error).message);
      if (err instanceof Unavailable) throw badInput(what, `${this.place} cannot run cat: ${err.message}`);
      if (code === 'ENOTRUNNING' || err instanceof TimeoutError) throw transient(what, (err as Error).message);
      throw classify(what, err);
    }
  }

  async tool(argv: string[], timeoutMs: number): Promise<CommandResult> {
    const opts = { timeoutMs, maxBytes: readBytes, signal: activitySignal() };
    if (!this.#busybox) {
      try {
        return await this.run(argv[0]!, argv.slice(1), opts);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
    try {
      const r = await this.run('/bin/busybox', argv, opts);
      this.#busybox = true;
      return r;
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') throw new Unavailable(`${argv[0]} is not available in ${this.place}`);
      throw err;
    }
  }

  /** The lines of each file that exists, by path (grep -H prints "path:line"). */
  async files(paths: string[], pattern = ''): Promise<Map<string, string[]>> {
    const r = await this.tool(['grep', '-H', '-E', '-e', pattern, '--', ...paths], runMs);
    // 1: nothing matched; 2: some file could not be read (gone, or not there on this kernel).
    if (r.code > 2 || (r.code === 2 && r.stdout === '')) {
      if (r.code === 2 && /No such file|can't open/i.test(r.stderr)) return new Map();
      throw new Error(`grep exited ${r.code}: ${firstLine(r.stderr)}`);
    }
    const byPath = new Map<string, string[]>();
    const known = [...paths].sort((a, b) => b.length - a.length);
    for (const line of r.stdout.split('\n')) {
      const path = known.find((p) => line.startsWith(`${p}:`));
      if (path === undefined) continue;
      let lines = byPath.get(path);
      if (!lines) byPath.set(path, (lines = []));
      lines.push(line.slice(path.length + 1));
    }
    return byPath;
  }

  async cpus(): Promise<number> {
    try {
      const r = await this.tool(['nproc'], runMs);
      const n = Number(r.stdout.trim());
      if (r.code === 0 && Number.isInteger(n) && n > 0) return n;
    } catch {
      // No nproc: count the CPUs /proc/stat lists.
    }
    const stat = await this.files(['/proc/stat'], '^cpu[0-9]');
    return stat.get('/proc/stat')?.length ?? 0;
  }
}

async function processes(host: Host, top: number, sampleMs: number): Promise<{ ok: boolean; text: string }> {
  const listing = await host.tool(['ls', '/proc'], runMs);
  const pids = listing.stdout
    .split(/\s+/)
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
  const kept = pids.slice(0, maxProcesses);
  const statPaths = kept.map((p) => `/proc/${p}/stat`);
  const sample = async () => {
    const files = await host.files(['/proc/uptime', ...statPaths]);
    return { up: Number((files.get('/proc/uptime')?.[0] ?? '').split(/\s+/)[0]), procs: parseStat(files) };
  };
  const first = await sample();
  await new Promise((r) => setTimeout(r, sampleMs));
  const second = await sample();
  const mem = await host.files(['/proc/meminfo', ...kept.map((p) => `/proc/${p}/status`)], '^(VmRSS|MemTotal):');
  const totalK = Number(/(\d+)/.exec(mem.get('/proc/meminfo')?.[0] ?? '')?.[1] ?? 0);
  const elapsed = second.up - first.up;
  const rows = [...second.procs].map(([pid, s]) => {
    const before = first.procs.get(pid);
    const cpu = before && before.comm === s.comm && elapsed > 0 ? ((s.ticks - before.ticks) / ticksPerSecond / elapsed) * 100 : 0;
    const rssK = Number(/(\d+)/.exec(mem.get(`/proc/${pid}/status`)?.[0] ?? '')?.[1] ?? 0);
    return { pid, comm: s.comm, cpu: Math.max(0, cpu), rssK, mem: totalK > 0 ? (rssK / totalK) * 100 : 0 };
  });
  if (rows.length === 0) throw new Error('no process could be read under /proc');
  const table = (list: typeof rows) => [
    '    PID   %CPU   %MEM        RSS COMMAND',
    ...list.map(
      (r) =>
        `${String(r.pid).padStart(7)} ${r.cpu.toFixed(1).padStart(6)} ${r.mem.toFixed(1).padStart(6)} ${bytes(r.rssK * 1024).padStart(10)} ${r.comm}`,
    ),
  ];
  const byCpu = [...rows].sort((a, b) => b.cpu - a.cpu || b.rssK - a.rssK).slice(0, top);
  const byMem = [...rows].sort((a, b) => b.rssK - a.rssK).slice(0, top);
  const head = `${rows.length} processes${pids.length > kept.length ? ` (the first ${kept.length} of ${pids.length} read)` : ''}; CPU over ${(elapsed || sampleMs / 1_000).toFixed(1)} s`;
  return { ok: true, text: [head, `by CPU:`, ...table(byCpu), `by memory:`, ...table(byMem)].join('\n') };
}

/** Each host:port, connected to from this process (the host agent, or the engine for a container). */
async function connects(list: string[], figures: HostFigures): Promise<{ ok: boolean; text: string }> {
  const results = await Promise.all(list.map(async (hp) => ({ hp, ...(await tryConnect(hp)) })));
  figures.tcpFailed = results.filter((r) => !r.ok).map((r) => r.hp);
  return {
    ok: figures.tcpFailed.length === 0,
    text: results.map((r) => (r.ok ? `ok     ${r.hp} (${r.ms} ms)` : `FAILED ${r.hp}: ${r.error}`)).join('\n'),
  };
}

function tryConnect(hostPort: string): Promise<{ ok: boolean; ms: number; error?: string }> {
  const at = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(hostPort.slice(at + 1));
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: connectMs });
    const done = (ok: boolean, error?: string) => {
      socket.destroy();
      resolve({ ok, ms: Date.now() - started, ...(error ? { error } : {}) });
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false, `no answer within ${connectMs} ms`));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(false, err.code === 'ECONNREFUSED' ? 'connection refused (ECONNREFUSED)' : `${err.code ?? err.message}`),
    );
  });
}

async function pathSizes(host: Host, paths: string[]): Promise<{ ok: boolean; text: string }> {
  if (paths.length === 0) return { ok: true, text: 'no diagnosticPaths configured for this target' };
  const r = await host.tool(['du', '-s', '-k', '--', ...paths], duMs);
  const sizes = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (m) sizes.set(m[2]!, Number(m[1]) * 1024);
  }
  const lines = paths.map((p) =>
    sizes.has(p) ? `${bytes(sizes.get(p)!).padStart(10)} ${p}` : `${'missing'.padStart(10)} ${p}: ${problemWith(r.stderr, p)}`,
  );
  return { ok: paths.every((p) => sizes.has(p)), text: lines.join('\n') };
}

function headline(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').slice(0, 240);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

function reason(err: unknown): string {
  return firstLine((err as Error)?.message ?? String(err));
}
