// Plain-text tables and time formats for the CLI: readable in a terminal at 3 a.m., greppable after.
import { formatDuration } from '../config/duration.js';

export function renderTable(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** "2025-01-05 02:00:13Z": minutes matter during an incident, milliseconds do not. */
export function formatTime(d: Date | string | undefined): string {
  if (!d) return '-';
  const date = typeof d === 'string' ? new Date(d) : d;
  if (Number.isNaN(date.getTime())) return '-';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function formatSpan(ms: number | undefined): string {
  return ms === undefined ? '-' : formatDuration(ms) || '0s';
}

export function formatRate(rate: number | null): string {
  return rate === null ? '-' : `${(rate * 100).toFixed(1)}%`;
}
