// Maintenance schedules are handed to Temporal as cron strings, and Temporal parses them only when
// the engine syncs its schedules, after start-up: a typo there used to stop a running engine. This
// checks them at load with the grammar of Temporal's own parser (service/worker/scheduler, the
// ScheduleSpec.cronExpressions documentation): 5, 6 or 7 fields, @hourly…@yearly, @every, "#" comments.
//
// Pure, no Node built-ins.

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Shortest prefix of a name that is accepted (Temporal: three letters for months, two for days). */
  prefix?: number;
}

const months = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const days = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const second: Field = { name: 'second', min: 0, max: 59 };
const minute: Field = { name: 'minute', min: 0, max: 59 };
const hour: Field = { name: 'hour', min: 0, max: 23 };
const dayOfMonth: Field = { name: 'day of month', min: 1, max: 31 };
const month: Field = { name: 'month', min: 1, max: 12, names: months, prefix: 3 };
// 7 is Sunday too, as in most crons.
const dayOfWeek: Field = { name: 'day of week', min: 0, max: 7, names: days, prefix: 2 };
const year: Field = { name: 'year', min: 2000, max: 2100 };

const layouts: Record<number, Field[]> = {
  5: [minute, hour, dayOfMonth, month, dayOfWeek],
  6: [minute, hour, dayOfMonth, month, dayOfWeek, year],
  7: [second, minute, hour, dayOfMonth, month, dayOfWeek, year],
};

const predefined: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Nanoseconds per unit, as Temporal's duration parser reads them (Go's, plus "d" for 24 hours). */
const units: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  '\u00b5s': 1_000n,
  '\u03bcs': 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};
const interval = /^(\d+(\.\d+)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d))+$/;
const intervalPart = /(\d+)(?:\.(\d+))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d)/g;
/** Temporal refuses a shorter interval ("interval is too small": service/worker/scheduler, validateInterval). */
const shortestInterval = units.s!;
/** Go's time.Duration: an interval longer than this is not a duration to Temporal at all. */
const longestDuration = 2n ** 63n - 1n;

/** The length of a well-formed interval ("1h30m", "1.5d") in nanoseconds. */
function nanoseconds(text: string): bigint {
  let total = 0n;
  for (const [, whole, fraction = '', unit] of text.matchAll(intervalPart)) {
    const per = units[unit!]!;
    total += BigInt(whole!) * per + (BigInt(fraction || '0') * per) / 10n ** BigInt(fraction.length);
  }
  return total;
}

/** What is wrong with a cron string as Temporal would read it, or undefined when it is valid. */
export function cronProblem(cron: string): string | undefined {
  let text = cron.trim();
  if (/^(CRON_)?TZ=/.test(text)) return "a time zone inside the cron string is not supported here; set the schedule's timezone instead";
  text = text.split('#')[0]!.trim();
  if (text === '') return 'the cron string is empty';
  if (text.startsWith('@every')) {
    const [, every, ...rest] = text.split(/\s+/);
    if (!every || rest.length > 0) return '"@every" takes one interval such as "@every 12h" or "@every 24h/2h"';
    // Temporal takes the interval from after the first space: a second space, or a tab, leaves it unreadable.
    if (text !== `@every ${every}`) return '"@every" and its interval are separated by one space, such as "@every 12h"';
    const [length, phase, ...more] = every.split('/');
    if (more.length > 0 || !interval.test(length!) || (phase !== undefined && !interval.test(phase))) {
      return `"${every}" is not an interval such as "12h" or "24h/2h"`;
    }
    const ns = nanoseconds(length!);
    if (ns > longestDuration || (phase !== undefined && nanoseconds(phase) > longestDuration))
      return `"${every}" is longer than Temporal can hold (about 292 years)`;
    if (ns < shortestInterval) return `the interval of "@every" must be at least 1s (Temporal's shortest), not ${length}`;
    // Temporal: "phase cannot be greater than Interval", also when they are equal.
    if (phase !== undefined && nanoseconds(phase) >= ns)
      return `the phase ${phase} must be shorter than the interval ${length} (it is the offset of each run within one interval)`;
    return undefined;
  }
  if (text.startsWith('@')) {
    const expanded = predefined[text];
    if (!expanded) return `"${text}" is not one of ${Object.keys(predefined).join(', ')}, or @every`;
    text = expanded;
  }
  const parts = text.split(/\s+/);
  const layout = layouts[parts.length];
  if (!layout)
    return `expected 5 fields (minute hour day-of-month month day-of-week), or 6 with a year, or 7 with seconds first; got ${parts.length}`;
  for (const [i, part] of parts.entries()) {
    const problem = fieldProblem(part, layout[i]!);
    if (problem) return problem;
  }
  return undefined;
}

function fieldProblem(text: string, f: Field): string | undefined {
  for (const item of text.split(',')) {
    const bad = (why: string) => `${f.name} "${text}": ${why}`;
    const [range, step, ...extra] = item.split('/');
    if (extra.length > 0) return bad('more than one "/"');
    if (step !== undefined && !/^[1-9]\d*$/.test(step)) return bad(`the step "${step}" is not a whole number above 0`);
    if (range === '*') continue;
    const [from, to, ...more] = range!.split('-');
    if (more.length > 0) return bad('more than one "-"');
    const start = value(from!, f);
    if (start === undefined) return bad(`"${from}" is not ${allowed(f)}`);
    if (to === undefined) continue;
    const end = value(to, f);
    if (end === undefined) return bad(`"${to}" is not ${allowed(f)}`);
    if (end < start) return bad(`the range ${from}-${to} ends before it starts`);
  }
  return undefined;
}

function value(text: string, f: Field): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= f.min && n <= f.max ? n : undefined;
  }
  if (f.names && f.prefix && text.length >= f.prefix) {
    const lower = text.toLowerCase();
    const i = f.names.findIndex((n) => n.startsWith(lower));
    if (i >= 0) return f === month ? i + 1 : i;
  }
  return undefined;
}

function allowed(f: Field): string {
  return `${f.min}–${f.max}${f.names ? ` or a ${f === month ? 'month' : 'day'} name` : ''}`;
}

/**
 * What is wrong with a time zone name, or undefined when it is one (IANA names, as Temporal loads them).
 * Temporal (Go's time.LoadLocation) reads the name case-sensitively, and Node's Intl does not.
 */
export function timeZoneProblem(zone: string): string | undefined {
  const notIana = 'not an IANA time zone name such as "UTC" or "Europe/Berlin"';
  // Offsets ("+02:00") are accepted by newer JavaScript engines but are not IANA zone names.
  if (zone === '' || /^[+-]/.test(zone) || zone.trim() !== zone) return notIana;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return notIana;
  }
  if (resolved === zone) return undefined;
  const misspelt = 'not spelled as in the IANA database (Temporal reads time zone names case-sensitively)';
  if (resolved.toLowerCase() === zone.toLowerCase()) return `${misspelt}: did you mean '${resolved}'?`;
  // Another name of the zone Intl resolved to ("Asia/Kolkata" and "Asia/Calcutta", "Etc/UTC" and
  // "UTC"), whose own spelling Intl does not give; every word of an IANA name starts with a capital.
  if (zone.split('/').some((word) => !/^[A-Z]/.test(word))) return `${misspelt}: did you mean '${resolved}' (the same zone)?`;
  return undefined;
}

/** The values a field of a valid cron string stands for (fieldProblem has passed). */
function expand(text: string, f: Field): Set<number> {
  const out = new Set<number>();
  for (const item of text.split(',')) {
    const [range, step] = item.split('/');
    const [from, to] = range === '*' ? [f.min, f.max] : range!.split('-').map((v) => value(v, f)!);
    const last = to ?? (step !== undefined ? f.max : from!);
    for (let v = from!; v <= last; v += step ? Number(step) : 1) out.add(f === dayOfWeek && v === 7 ? 0 : v);
  }
  return out;
}

const clocks = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of an instant in a time zone. */
function wallClock(ms: number, zone: string): { y: number; mo: number; d: number; h: number; mi: number } {
  let f = clocks.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    clocks.set(zone, f);
  }
  const parts = f.formatToParts(ms);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return { y: get('year'), mo: get('month'), d: get('day'), h: get('hour'), mi: get('minute') };
}

/** The zone's offset from UTC at an instant, in ms (to the minute). */
function offsetAt(ms: number, zone: string): number {
  const w = wallClock(ms, zone);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi) - Math.floor(ms / 60_000) * 60_000;
}

/**
 * The local times a 5-field cron names in `zone` that do not exist there, within `days` days from
 * `fromMs` (the hour the clocks skip when they go forward): Temporal has no instant for them, so the
 * schedule skips that run without a word. "2027-03-28 02:00" for "0 2 * * 0" in Europe/Berlin.
 */
export function skippedByClockChange(cron: string, zone: string, fromMs: number, days = 400): string[] {
  const text = (predefined[cron.trim()] ?? cron).split('#')[0]!.trim();
  const fields = text.split(/\s+/);
  if (fields.length !== 5 || cronProblem(text) || timeZoneProblem(zone)) return [];
  const [mins, hours, doms, months_, dows] = fields.map((t, i) => expand(t, layouts[5]![i]!));
  const skipped: string[] = [];
  const pad = (n: number) => String(n).padStart(2, '0');
  // Local calendar days from the zone's date at fromMs (stepping 24 h of instants would jump over a
  // day when the clocks change at night).
  const first = wallClock(fromMs, zone);
  for (let i = 0; i < days; i++) {
    const date = new Date(Date.UTC(first.y, first.mo - 1, first.d + i));
    const day = { y: date.getUTCFullYear(), mo: date.getUTCMonth() + 1, d: date.getUTCDate() };
    const weekday = date.getUTCDay();
    if (!months_!.has(day.mo) || !doms!.has(day.d) || !dows!.has(weekday)) continue;
    // A day with one offset throughout has every local time: only a day the clocks change is looked at.
    const midnight = Date.UTC(day.y, day.mo - 1, day.d);
    const [before, after] = [offsetAt(midnight - 14 * 3_600_000, zone), offsetAt(midnight + 38 * 3_600_000, zone)];
    if (before === after) continue;
    for (const h of hours!)
      for (const mi of mins!) {
        // A local time exists if reading it with the offset before or after the change gives it back.
        const naive = Date.UTC(day.y, day.mo - 1, day.d, h, mi);
        const exists = [before, after].some((o) => {
          const w = wallClock(naive - o, zone);
          return w.d === day.d && w.h === h && w.mi === mi;
        });
        if (!exists) skipped.push(`${day.y}-${pad(day.mo)}-${pad(day.d)} ${pad(h)}:${pad(mi)}`);
      }
  }
  return skipped;
}
