// The figures of host diagnostics, read from what a host's programs print: `df -P`, /proc/meminfo,
// /proc/loadavg, /proc/<pid>/stat, /proc/net/tcp and udp, `du -s`. Pure text in, figures and the
// lines a human reads out; activities/hostDiagnostics.ts runs the programs.
import type { HostFigures } from './contract.js';
import type { CommandResult } from './systemd.js';

/** USER_HZ: the unit of /proc/<pid>/stat's CPU times on every Linux architecture in use. */
export const ticksPerSecond = 100;
const maxSockets = 200;

export function disk(r: CommandResult, figures: HostFigures): { ok: boolean; text: string } {
  let rows = r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 6 && /^\d+$/.test(f[1]!) && Number(f[1]) > 0)
    .map((f) => ({
      fs: f[0]!,
      totalK: Number(f[1]),
      usedK: Number(f[2]),
      availK: Number(f[3]),
      percent: Number(f[4]!.replace('%', '')),
      mount: f.slice(5).join(' '),
    }));
  if (rows.length === 0) throw new Error(`df printed no filesystems${r.code ? ` (exit ${r.code}: ${firstLine(r.stderr)})` : ''}`);
  // Docker masks parts of /proc and /sys with tmpfs, and binds single files (/etc/hosts) from the
  // host's disk: one line per filesystem, under its shortest mount point, is what a human reads.
  const seen = new Set<string>();
  rows = rows
    .filter((x) => !/^\/(proc|sys)(\/|$)/.test(x.mount))
    .sort((a, b) => a.mount.length - b.mount.length)
    .filter((x) => {
      const key = `${x.fs} ${x.totalK} ${x.usedK} ${x.availK}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
  rows.sort((a, b) => b.percent - a.percent || a.mount.localeCompare(b.mount));
  figures.diskMaxPercent = rows[0]!.percent;
  const lines = rows.map(
    (x) =>
      `${String(x.percent).padStart(3)}% ${x.mount}: ${bytes(x.usedK * 1024)} used, ${bytes(x.availK * 1024)} free of ${bytes(x.totalK * 1024)} (${x.fs})`,
  );
  return { ok: true, text: lines.join('\n') };
}

export function memory(files: Map<string, string[]>, figures: HostFigures): { ok: boolean; text: string } {
  const info = new Map<string, number>();
  for (const line of files.get('/proc/meminfo') ?? []) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)(?: kB)?$/.exec(line.trim());
    if (m) info.set(m[1]!, Number(m[2]) * (line.trim().endsWith('kB') ? 1024 : 1));
  }
  const total = info.get('MemTotal');
  if (!total) throw new Error('/proc/meminfo has no MemTotal');
  const available = info.get('MemAvailable') ?? (info.get('MemFree') ?? 0) + (info.get('Buffers') ?? 0) + (info.get('Cached') ?? 0);
  const used = Math.max(0, total - available);
  figures.memoryUsedPercent = Math.round((used / total) * 100);
  const swapTotal = info.get('SwapTotal') ?? 0;
  const swapUsed = swapTotal - (info.get('SwapFree') ?? 0);
  const lines = [
    `${figures.memoryUsedPercent}% used: ${bytes(used)} of ${bytes(total)}, ${bytes(available)} available`,
    `swap: ${bytes(swapUsed)} used of ${bytes(swapTotal)}`,
  ];
  const one = (p: string) => files.get(p)?.[0]?.trim();
  const cgUsed = one('/sys/fs/cgroup/memory.current') ?? one('/sys/fs/cgroup/memory/memory.usage_in_bytes');
  const cgMax = one('/sys/fs/cgroup/memory.max') ?? one('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  if (cgUsed && /^\d+$/.test(cgUsed)) {
    // v1 writes "no limit" as a huge number; v2 as "max".
    const limited = cgMax && /^\d+$/.test(cgMax) && Number(cgMax) < total;
    lines.push(
      `cgroup: ${bytes(Number(cgUsed))} used${limited ? ` of a ${bytes(Number(cgMax))} limit (${Math.round((Number(cgUsed) / Number(cgMax)) * 100)}%)` : ", no limit below the host's memory"}`,
    );
  }
  return { ok: true, text: lines.join('\n') };
}

export function load(files: Map<string, string[]>, cpus: number, figures: HostFigures): { ok: boolean; text: string } {
  const avg = (files.get('/proc/loadavg')?.[0] ?? '').trim().split(/\s+/);
  const [l1, l5, l15, tasks] = avg;
  if (!l1 || Number.isNaN(Number(l1))) throw new Error('/proc/loadavg could not be read');
  figures.load1 = Number(l1);
  figures.cpus = cpus;
  const up = Number((files.get('/proc/uptime')?.[0] ?? '').trim().split(/\s+/)[0]);
  const perCpu = cpus > 0 ? `, ${(Number(l1) / cpus).toFixed(2)} per CPU` : '';
  return {
    ok: true,
    text: `load ${l1} ${l5} ${l15} on ${cpus || 'an unknown number of'} CPU${cpus === 1 ? '' : 's'}${perCpu}; ${tasks ?? '?'} running/total tasks${Number.isFinite(up) ? `; up ${duration(up)}` : ''}`,
  };
}

export interface ProcSample {
  comm: string;
  ticks: number;
}

export function parseStat(lines: Map<string, string[]>): Map<number, ProcSample> {
  const out = new Map<number, ProcSample>();
  for (const [path, [line]] of lines) {
    const m = /^\/proc\/(\d+)\/stat$/.exec(path);
    if (!m || !line) continue;
    // comm is between the first "(" and the last ")": it may hold spaces and parentheses itself.
    const open = line.indexOf('(');
    const close = line.lastIndexOf(')');
    if (open < 0 || close < open) continue;
    const rest = line.slice(close + 2).split(' ');
    // After comm: state(3) … utime(14) stime(15), counted from 1 with pid and comm as 1 and 2.
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) continue;
    out.set(Number(m[1]), { comm: line.slice(open + 1, close), ticks: utime + stime });
  }
  return out;
}

/** Listening TCP sockets and bound UDP ones, as `ss -tuln` lists them (without the owning process). */
export function sockets(files: Map<string, string[]>): { ok: boolean; text: string } {
  if (files.size === 0) throw new Error('/proc/net/tcp and /proc/net/udp could not be read');
  const seen = new Set<string>();
  const rows: Array<{ proto: string; addr: string; port: number }> = [];
  for (const [path, lines] of files) {
    const proto = path.slice('/proc/net/'.length);
    for (const line of lines.slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, remote, state] = [f[1], f[2], f[3]];
      if (!local || !remote || !state) continue;
      const listening = proto.startsWith('tcp') ? state === '0A' : state === '07' && /:0000$/.test(remote);
      if (!listening) continue;
      const [hex, portHex] = local.split(':');
      const addr = hexAddress(hex ?? '');
      const port = parseInt(portHex ?? '', 16);
      const key = `${proto} ${addr}:${port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push({ proto, addr, port });
    }
  }
  rows.sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  const lines = rows.slice(0, maxSockets).map((r) => `${r.proto.padEnd(5)} ${r.addr.includes(':') ? `[${r.addr}]` : r.addr}:${r.port}`);
  if (rows.length > maxSockets) lines.push(`… ${rows.length - maxSockets} more`);
  return { ok: true, text: [`${rows.length} listening`, ...lines].join('\n') };
}

/** /proc/net's addresses: each 32-bit word in host (little-endian) order. */
function hexAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytesOf = (w: string) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16));
  if (words.length === 1) return bytesOf(words[0]!).join('.');
  const all = words.flatMap(bytesOf);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((all[i]! << 8) | all[i + 1]!).toString(16));
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `::ffff:${all.slice(12).join('.')}`;
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

export function problemWith(stderr: string, path: string): string {
  const line = stderr.split('\n').find((l) => l.includes(path));
  return line
    ? line
        .slice(line.indexOf(path) + path.length)
        .replace(/^['":\s]+/, '')
        .slice(0, 200) || 'not readable'
    : 'not readable';
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}
