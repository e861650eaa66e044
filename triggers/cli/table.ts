// Plain-text tables and time formats for the CLI: readable in a terminal at 3 a.m., greppable after.
import { formatDuration } from '../../config/duration.js';

/**
 * Text from alerts (labels, annotations) and from services, made safe to print on a terminal: an
 * escape sequence could recolour, move the cursor or retitle the window, a newline or carriage
 * return could print a forged row, and bidirectional overrides could reorder what is shown. Each is
 * shown as a visible escape instead (\n, \r, \t, \x1b, \u202e).
 */
export function terminalSafe(text: string): string {
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    if (named[c]) return named[c]!;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Columns padded to their widest cell; every cell printed through terminalSafe, so one row stays one line. */
export function renderTable(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '';
  headers = headers.map(terminalSafe);
  rows = rows.map((r) => r.map(terminalSafe));
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
