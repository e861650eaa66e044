// Pure duration parsing, shared by the config loader and by workflow code (so no Node built-ins).

export const durationPattern = /^(\d+(ms|s|m|h|d))+$/;

const unitMs: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1h30m" → 5_400_000. Throws on anything that is not a duration, naming the value. */
export function parseDuration(text: string): number {
  if (!durationPattern.test(text)) throw new Error(`"${text}" is not a duration such as "30s", "15m" or "1h"`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(amount) * unitMs[unit!]!;
  return total;
}

/** 5_400_000 → "1h30m": for timelines and messages people read. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
