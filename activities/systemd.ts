// systemd units on the host that runs this process (the host agent), through systemctl and journalctl.
//
// Unit names arrive from config and, indirectly, from alert labels, and end up in argv. They are
// checked against systemd's own naming rules before any process starts, and are placed after "--"
// (or glued to "--unit=") so that nothing can ever be read as an option.
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { unitNameProblem } from '../config/systemdUnits.js';
import { badInput, classify, operation, targetNotFound, authFailed, TimeoutError } from './failures.js';
import { activitySignal, capLines, capText, firstAttemptBegan, heartbeating } from './limits.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The output reached maxBytes; stdout and stderr hold at most their first maxBytes. */
  truncated?: boolean;
  /**
   * The program was killed when its output reached maxBytes (the local runner's way of capping):
   * it did not finish, and `code` is no exit status of its own. A reader that wants only the start
   * of the output may take it; a caller that needs the program to have run to the end must not.
   */
  stoppedAtLimit?: boolean;
}

/** Runs a program with an argument array (never a shell). Resolves with the exit code, whatever it
 * is; rejects only when the program could not run or finish: not found, timed out, cancelled. */
export type CommandRunner = (
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; maxBytes: number; signal?: AbortSignal },
) => Promise<CommandResult>;

// systemctl and journalctl localise dates and messages and may start a pager; parsing needs neither.
const quietEnv = { LANG: 'C', LC_ALL: 'C', SYSTEMD_PAGER: '', SYSTEMD_COLORS: '0', SYSTEMD_URLIFY: '0' };

/** Between the TERM to a timed-out or cancelled program's process group and the KILL. */
const killGraceMs = 1_000;

/** Process groups of programs still running, or being stopped: what is left of them dies with this process. */
const liveGroups = new Set<number>();
let killOnExit = false;

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/**
 * Runs a program with an argument array, never a shell, in a process group of its own (it is the
 * group's leader), with no stdin. A timeout or a cancellation stops the whole group, the program
 * and every child it started that stayed in it (TERM, then KILL after a grace): killing the program
 * alone would leave a shell's children running on, re-parented, to act after the step has been
 * reported failed, one more copy per retry. So does stopping the program at maxBytes (KILL at once).
 * When this process exits, every group still running or being stopped is killed with it.
 * A program that finishes is not chased: what it started and left in the background stays.
 */
function execFileRunner(env: NodeJS.ProcessEnv, describe: (cmd: string) => string, timeoutBackstopMs = 0): CommandRunner {
  return (cmd, args, opts) =>
    new Promise((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new Error(`${describe(cmd)} was cancelled`));
      if (!killOnExit) {
        killOnExit = true;
        process.on('exit', () => {
          for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
        });
      }
      const child = spawn(cmd, args, {
        env,
        shell: false,
        windowsHide: true,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const pgid = child.pid;
      if (pgid !== undefined) liveGroups.add(pgid);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const length = { out: 0, err: 0 };
      let stopped: 'timeout' | 'cancelled' | 'limit' | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      let settled = false;

      const release = () => {
        if (pgid !== undefined) liveGroups.delete(pgid);
      };
      const stop = (why: NonNullable<typeof stopped>) => {
        if (stopped) return;
        stopped = why;
        child.stdout.destroy();
        child.stderr.destroy();
        if (pgid === undefined) return;
        if (why === 'limit') {
          killGroup(pgid, 'SIGKILL');
          return release();
        }
        killGroup(pgid, 'SIGTERM');
        // Children that ignore TERM, or outlive the program, are killed after the grace even when
        // the program itself is gone. Unreferenced: this timer never holds the engine up; an exit
        // before it fires kills the group anyway.
        graceTimer = setTimeout(() => {
          killGroup(pgid, 'SIGKILL');
          release();
        }, killGraceMs);
        graceTimer.unref();
      };
      const timer = setTimeout(() => stop('timeout'), opts.timeoutMs + timeoutBackstopMs);
      const onAbort = () => stop('cancelled');
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      const collect = (chunks: Buffer[], which: 'out' | 'err') => (chunk: Buffer) => {
        if (stopped) return;
        const room = opts.maxBytes - length[which];
        length[which] += chunk.length;
        if (length[which] <= opts.maxBytes) return chunks.push(chunk);
        chunks.push(chunk.subarray(0, room));
        stop('limit');
      };
      child.stdout.on('data', collect(out, 'out'));
      child.stderr.on('data', collect(err, 'err'));

      const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (!stopped) release();
        // A program stopped at maxBytes may have been cut inside a character: that half is dropped.
        const text = (chunks: Buffer[]) =>
          stopped === 'limit' ? new StringDecoder('utf8').write(Buffer.concat(chunks)) : Buffer.concat(chunks).toString('utf8');
        const stdout = text(out);
        const stderr = text(err);
        if (stopped === 'limit') return resolve({ code: 0, stdout, stderr, truncated: true, stoppedAtLimit: true });
        if (stopped === 'cancelled') return reject(new Error(`${describe(cmd)} was cancelled`));
        if (stopped === 'timeout') return reject(new TimeoutError(describe(cmd), opts.timeoutMs));
        if (error) return reject(error);
        if (typeof code === 'number') return resolve({ code, stdout, stderr });
        // A signal from elsewhere (OOM killer, an operator) is an outcome, not a failure to run.
        return resolve({ code: 128, stdout, stderr: `${stderr}killed by ${signal}` });
      };
      // Not started (ENOENT, EACCES): no process, no group; `code` names the reason.
      child.on('error', (e) => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(null, null, e);
      });
      child.on('close', (code, signal) => finish(code, signal));
    });
}

/** Runs commands on this host. The environment is minimal: the child needs no secrets of ours. */
export const localRunner: CommandRunner = execFileRunner(
  { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...quietEnv },
  (cmd) => cmd,
);

const containerName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,253}$/;

/**
 * Runs commands inside a container with `docker exec`, as if this process ran on that host.
 * Killing the docker client does not kill the process inside the container, so the command is also
 * wrapped in coreutils `timeout` there; the client's own timeout is only a backstop.
 */
export function dockerExecRunner(container: string): CommandRunner {
  if (!containerName.test(container)) throw new Error(`'${container}' is not a valid container name`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DOCKER_') || k === 'PATH' || k === 'HOME'));
  const docker = execFileRunner(env, (cmd) => `${cmd} in container '${container}'`, 2_000);
  return async (cmd, args, opts) => {
    const inner = ['timeout', '--kill-after=1', `${(opts.timeoutMs / 1000).toFixed(3)}`, cmd, ...args];
    const envFlags = Object.entries(quietEnv).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const result = await docker('docker', ['exec', ...envFlags, container, ...inner], opts);
    // 124: timeout stopped it with TERM; 137: it needed the KILL.
    if (result.code === 124 || result.code === 137) throw new TimeoutError(`${cmd} in container '${container}'`, opts.timeoutMs);
    if (result.code !== 0 && /^Error response from daemon:/m.test(result.stderr)) {
      const message = result.stderr.trim().split('\n')[0]!;
      throw Object.assign(new Error(message), { code: /No such container/i.test(message) ? 'ENOCONTAINER' : 'EDOCKER' });
    }
    // 126/127 come from `timeout` itself: the program is missing in the container.
    if (result.code === 127 || result.code === 126) {
      throw Object.assign(new Error(`${cmd} cannot run in container '${container}'`), { code: 'ENOENT' });
    }
    return result;
  };
}

function shown(name: string): string {
  const printable = name.replace(/[\x00-\x1f\x7f]/g, '?');
  return printable.length > 80 ? `${printable.slice(0, 80)}…` : printable;
}

/** Returns the unit name when it is valid; otherwise throws a non-retryable badInput naming it. */
export function validUnitName(name: string, op = 'use'): string {
  const problem = unitNameProblem(name);
  if (problem) throw badInput(operation(op, 'systemd unit', shown(name)), `not a valid unit name: ${problem}`);
  return name;
}

export interface UnitStatus {
  unit: string;
  /** loaded, not-found, masked, bad-setting, error. */
  loadState: string;
  /** active, reloading, inactive, failed, activating, deactivating. */
  activeState: string;
  /** running, exited, dead, failed, auto-restart, … */
  subState: string;
  /** Automatic restarts (Restart=) since the unit was last started by hand; services only. */
  nRestarts?: number;
  /** 0 when no main process runs. */
  mainPid: number;
  /** Exit status of the last main process; services only. */
  execMainStatus?: number;
  /** When the unit entered its current state, as ISO 8601. */
  since?: string;
}

export interface UnitRestart {
  unit: string;
  dryRun: boolean;
  before: UnitStatus;
  after?: UnitStatus;
  summary: string;
}

export interface JournalTail {
  lines: string[];
  text: string;
}

export interface SystemdDeps {
  run: CommandRunner;
  /** Bound on every systemctl/journalctl run, including a restart waiting for its unit to start. */
  timeoutMs: number;
  /** Cap on captured output (journal tails, error text). */
  outputBytes: number;
}

const statusProperties = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'NRestarts',
  'MainPID',
  'ExecMainStatus',
  'ActiveEnterTimestamp',
  'StateChangeTimestamp',
];

function parseProperties(text: string): Record<string, string> {
  const props: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return props;
}

/**
 * `--timestamp=us+utc` prints "Sat 2024-06-10 06:13:20.123456 UTC": to the microsecond, as a start
 * is compared with the activity's own times (`unix` gives whole seconds). Unset timestamps are
 * empty or "n/a".
 */
function isoFromSystemd(value: string | undefined): string | undefined {
  const m = /^(?:[A-Za-z]{3} )?(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))? UTC$/.exec(value ?? '');
  if (!m) return undefined;
  // Milliseconds, cut rather than rounded: a start is never moved later than it was.
  const ms = Date.parse(`${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z`);
  return Number.isNaN(ms) || ms === 0 ? undefined : new Date(ms).toISOString();
}

function optionalInt(value: string | undefined): number | undefined {
  if (value === undefined || value === '' || value === '[not set]') return undefined;
  const n = Number(value);
  return Number.isInteger(n) ? n : undefined;
}

function firstLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim()
      .slice(0, 300) ?? ''
  );
}

function describe(s: UnitStatus): string {
  const pid = s.mainPid > 0 ? `, MainPID ${s.mainPid}` : '';
  return `${s.activeState}/${s.subState}${pid}`;
}

/**
 * Active, starting or reloading, having entered that state at or after `sinceMs` (the host's clock):
 * for `active` when it became active, for the others when the start or reload began.
 */
function startedSince(s: UnitStatus, sinceMs: number): boolean {
  if (!['active', 'activating', 'reloading'].includes(s.activeState)) return false;
  const since = s.since ? Date.parse(s.since) : NaN;
  return Number.isFinite(since) && since >= sinceMs;
}

// journalctl --since accepts its own forms; an ISO timestamp becomes epoch seconds, which every
// version understands, and anything else must look like one of systemd.time(7)'s relative forms.
function journalSince(since: string, what: string): string {
  if (/^\d{4}-\d{2}-\d{2}T/.test(since)) {
    const ms = Date.parse(since);
    if (Number.isNaN(ms)) throw badInput(what, `since '${shown(since)}' is not a valid timestamp`);
    return `@${Math.floor(ms / 1000)}`;
  }
  if (/^(-?\d+ ?[a-z]+( ?\d+ ?[a-z]+)*( ago)?|today|yesterday|now|\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?)$/.test(since)) return since;
  throw badInput(what, `since '${shown(since)}' is neither an ISO timestamp nor a relative time like "-15min"`);
}

// What a filtering reader may take from journalctl at once: 10,000 long lines, held only while filtered.
const journalReadBytes = 8 * 1_048_576;

export function createSystemdActivities(deps: SystemdDeps) {
  const { run, timeoutMs, outputBytes } = deps;

  async function runOrFail(what: string, cmd: string, args: string[], maxBytes = outputBytes) {
    try {
      return await heartbeating(run(cmd, args, { timeoutMs, maxBytes, signal: activitySignal() }), { what });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT') throw targetNotFound(what, `${cmd} is not installed on this host`);
      if (code === 'ENOCONTAINER') throw targetNotFound(what, firstLine((err as Error).message));
      throw classify(what, err);
    }
  }

  /** systemctl failures that no retry can fix; undefined for everything else. */
  function refusal(what: string, stderr: string) {
    if (/access denied|interactive authentication required|permission denied/i.test(stderr)) {
      return authFailed(what, `systemctl was refused: ${firstLine(stderr)}`);
    }
    if (/not found|not loaded|no such file/i.test(stderr)) return targetNotFound(what, 'no such unit');
    return undefined;
  }

  async function status(unit: string, what: string): Promise<UnitStatus> {
    const args = ['show', '--timestamp=us+utc', `--property=${statusProperties.join(',')}`, '--', unit];
    const out = await runOrFail(what, 'systemctl', args);
    if (out.code !== 0)
      throw refusal(what, out.stderr) ?? classify(what, new Error(`systemctl show exited ${out.code}: ${firstLine(out.stderr)}`));
    const p = parseProperties(out.stdout);
    if (!p.LoadState) throw classify(what, new Error(`systemctl show printed no LoadState: ${firstLine(out.stdout + out.stderr)}`));
    if (p.LoadState === 'not-found') throw targetNotFound(what, 'no such unit');
    const activeState = p.ActiveState ?? 'unknown';
    const since =
      activeState === 'active'
        ? (isoFromSystemd(p.ActiveEnterTimestamp) ?? isoFromSystemd(p.StateChangeTimestamp))
        : (isoFromSystemd(p.StateChangeTimestamp) ?? isoFromSystemd(p.ActiveEnterTimestamp));
    return {
      unit: p.Id || unit,
      loadState: p.LoadState,
      activeState,
      subState: p.SubState ?? 'unknown',
      nRestarts: optionalInt(p.NRestarts),
      mainPid: optionalInt(p.MainPID) ?? 0,
      execMainStatus: optionalInt(p.ExecMainStatus),
      since,
    };
  }

  /** Newest first, so that when the byte cap stops journalctl it is the oldest lines that are lost. */
  async function readJournal(op: string, unit: string, opts: { lines: number; since?: string }, maxBytes: number) {
    const what = operation(op, 'systemd unit', shown(unit));
    validUnitName(unit, op);
    if (!Number.isInteger(opts.lines) || opts.lines < 1 || opts.lines > 10_000) {
      throw badInput(what, `lines must be an integer from 1 to 10000, not ${opts.lines}`);
    }
    const args = [`--unit=${unit}`, `--lines=${opts.lines}`, '--no-pager', '--quiet', '--output=short-iso'];
    if (opts.since !== undefined) args.push(`--since=${journalSince(opts.since, what)}`);
    args.push('--reverse');
    const out = await runOrFail(what, 'journalctl', args, maxBytes);
    if (out.code !== 0) {
      const problem = firstLine(out.stderr);
      if (/failed to parse/i.test(problem)) throw badInput(what, problem);
      throw refusal(what, out.stderr) ?? classify(what, new Error(`journalctl exited ${out.code}: ${problem}`));
    }
    // "-- No entries --", and "-- Boot … --" between boots, are journalctl's notes, not the unit's lines.
    const newestFirst = out.stdout.split('\n').filter((l) => l !== '' && !/^-- .* --$/.test(l));
    return { newestFirst, truncated: Boolean(out.truncated) };
  }

  return {
    async unitStatus(unit: string): Promise<UnitStatus> {
      const what = operation('status', 'systemd unit', shown(unit));
      return status(validUnitName(unit, 'status'), what);
    },

    /**
     * Restarts the unit and waits (up to timeoutMs) for systemd to report it started. A unit that
     * fails to start is a result, not an error: the caller verifies `after` and decides what next.
     */
    async restartUnit(unit: string, opts: { dryRun: boolean }): Promise<UnitRestart> {
      const what = operation('restart', 'systemd unit', shown(unit));
      validUnitName(unit, 'restart');
      const before = await status(unit, what);
      // masked is an operator's decision and bad-setting needs a fixed unit file: waiting changes neither.
      if (before.loadState !== 'loaded') throw badInput(what, `the unit is ${before.loadState}`);
      if (opts.dryRun) {
        return { unit, dryRun: true, before, summary: `dry run: would restart systemd unit '${unit}' (now ${describe(before)})` };
      }
      // A retry after a timed-out attempt: killing systemctl did not cancel the restart job it queued.
      // A unit started (or starting) since that attempt began was restarted by it: a second restart
      // would replace the start job, killing the half-started service. Verification decides.
      const firstBegan = firstAttemptBegan();
      if (firstBegan !== undefined && startedSince(before, firstBegan)) {
        const state = before.activeState === 'active' ? 'took effect' : 'is under way';
        return {
          unit,
          dryRun: false,
          before,
          after: before,
          summary: `not restarted again: the restart of attempt 1 ${state} (systemd unit '${unit}' ${before.activeState} since ${before.since}; ${describe(before)})`,
        };
      }
      const out = await runOrFail(what, 'systemctl', ['restart', '--', unit]);
      if (out.code !== 0) {
        // "Job for x.service failed because …": systemd ran the restart and the unit did not come up.
        if (!/^Job for /m.test(out.stderr)) {
          throw refusal(what, out.stderr) ?? classify(what, new Error(`systemctl restart exited ${out.code}: ${firstLine(out.stderr)}`));
        }
      }
      const after = await status(unit, what);
      const outcome =
        out.code === 0
          ? `restarted systemd unit '${unit}': ${describe(before)} → ${describe(after)}`
          : `restart of systemd unit '${unit}' did not succeed: ${describe(before)} → ${describe(after)}; ${firstLine(out.stderr)}`;
      return { unit, dryRun: false, before, after, summary: outcome };
    },

    /** The newest journal lines of the unit, oldest first, within maxBytes. */
    async journalTail(unit: string, opts: { lines: number; since?: string; maxBytes: number }): Promise<JournalTail> {
      const maxBytes = Math.max(1, Math.min(opts.maxBytes, outputBytes));
      const { newestFirst, truncated } = await readJournal('journal tail', unit, opts, maxBytes);
      if (!truncated) {
        const lines = capLines(newestFirst.reverse(), opts.lines);
        return { lines, text: capText(lines.join('\n'), maxBytes) };
      }
      // The last line read is cut mid-way; keep whole lines that fit beside the marker.
      const marker = `[older lines cut at ${maxBytes} bytes]`;
      const kept: string[] = [];
      let bytes = Buffer.byteLength(marker);
      for (const line of newestFirst.slice(0, -1)) {
        bytes += Buffer.byteLength(line) + 1;
        if (bytes > maxBytes) break;
        kept.push(line);
      }
      // A single line longer than the cap still says something: keep its start.
      if (kept.length === 0 && newestFirst[0]) kept.push(newestFirst[0]);
      const lines = kept.reverse();
      return { lines, text: capText([marker, ...lines].join('\n'), maxBytes) };
    },

    /**
     * The newest journal lines of the unit, oldest first, whole and uncapped by outputBytes: for a
     * caller that filters them first and caps what it keeps. Past journalReadBytes the oldest are lost.
     */
    async journalLines(unit: string, opts: { lines: number; since?: string }): Promise<string[]> {
      const { newestFirst, truncated } = await readJournal('journal read', unit, opts, journalReadBytes);
      // The last line read (the oldest) was cut mid-way.
      return (truncated ? newestFirst.slice(0, -1) : newestFirst).reverse();
    },
  };
}

export type SystemdActivities = ReturnType<typeof createSystemdActivities>;

export { unitNameProblem };
