// Reads the tables ../shared/peers/run.sh prints: each peer's p50 and its paired Δ vs `docker start`
// in the same round, and each receiver's memory.

export interface PeerRow {
  p50: number;
  /** Median of the per-round differences to `docker start` (0 for the floor itself). */
  delta: number;
}

/** `86 ms` → 86; `−14 ms` (a minus sign) or `-14 ms` → −14; `1.2 s` → 1200. */
function msOf(cell: string): number {
  const m = /^([+−-]?)([\d.]+) (ms|s)$/.exec(cell.trim());
  if (!m) return NaN;
  const v = Number(m[2]) * (m[3] === 's' ? 1_000 : 1);
  return m[1] === '−' || m[1] === '-' ? -v : v;
}

/** The timing table: | peer | what | n ok / fail | p50 | p95 | min | max | paired Δ | HTTP answer | warm-up |. */
export function parsePeerTable(out: string): Map<string, PeerRow> {
  const rows = new Map<string, PeerRow>();
  for (const line of out.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 11 || !/^\d+ \/ \d+$/.test(cells[3] ?? '')) continue;
    const delta = cells[8] === '–' ? 0 : msOf(cells[8]!);
    const p50 = msOf(cells[4]!);
    if (Number.isFinite(p50) && Number.isFinite(delta)) rows.set(cells[1]!, { p50, delta });
  }
  return rows;
}

/** The memory table: | receiver | start-up | RSS idle (tree) | RSS after rounds | peak RSS of the tree | VmHWM |. */
export function peerRss(out: string, receiver: string): { idle: string; peak: string } | undefined {
  for (const line of out.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells[1] === receiver && cells.length >= 8 && /MiB$/.test(cells[3] ?? '')) return { idle: cells[3]!, peak: cells[5]! };
  }
  return undefined;
}
