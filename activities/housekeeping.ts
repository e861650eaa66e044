// A runbook's `housekeeping` and `logrotate` steps, on a systemd unit's host by its host agent: the
// seeds' `find orchestrator_runs/ -mtime +30 … rm` and `logrotate -f /etc/logrotate.d/genesis`,
// limited to what the target's config names (`housekeeping: { paths: [...], logrotate: file }`).
//
// Old files are deleted by GNU find itself (`-delete`, which unlinks relative to the directory it
// walks and never follows a symbolic link), so a directory swapped for a link mid-run cannot steer a
// deletion elsewhere; `-xdev` keeps it on the directory's filesystem, `-type f` to regular files.
// A configured directory that is itself a link is refused. Each deletion is printed after it
// succeeded; what is read of that list is bounded, and the result is a count, bytes and the first
// paths. A dry run runs the same find without `-delete`; a dry-run logrotate is `logrotate -d`.
import type { Logger } from 'pino';
import type { EngineConfig, SystemdTarget } from '../config/schema.js';
import { redact } from '../config/secret.js';
import type { ActionContext, HousekeepingRequest, HousekeepingResult, LogrotateResult } from './contract.js';
import { badInput, classify, TimeoutError, targetNotFound, transient } from './failures.js';
import { activitySignal, capText, heartbeating } from './limits.js';
import { configSecrets } from './redaction.js';
import type { CommandResult, CommandRunner } from './systemd.js';

export interface HousekeepingDeps {
  config: EngineConfig;
  logger: Logger;
  /** This host, for the host agent that owns the units. */
  hostRunner?: CommandRunner;
  owner?: string;
  /** What is read of one directory's list of files (deleted or to go); past it the list stops. */
  listBytes?: number;
}

const statMs = 30_000;
const findMs = 10 * 60_000;
const logrotateMs = 5 * 60_000;
const listedPerDir = 20;
const listedInAll = 50;
const maxDays = 3_650;

export interface HousekeepingActivities {
  housekeepFiles(target: string, req: HousekeepingRequest): Promise<HousekeepingResult>;
  rotateLogs(target: string, ctx: ActionContext): Promise<LogrotateResult>;
}

export function createHousekeeping(deps: HousekeepingDeps): HousekeepingActivities {
  const { config, logger } = deps;
  const secrets = configSecrets(config);
  const listBytes = deps.listBytes ?? 8 * 1_048_576;

  function unitTarget(what: string, name: string): { t: SystemdTarget; run: CommandRunner } {
    const t = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
    if (!t) throw targetNotFound(what, deps.owner ? `not a target of ${deps.owner}` : 'no such target in the config');
    if (t.kind !== 'systemd') throw badInput(what, `housekeeping runs on a systemd unit's host, and '${name}' is a ${t.kind} target`);
    if (!deps.hostRunner)
      throw badInput(what, `it runs on the host of systemd target '${name}', by its host agent; this worker is not one`);
    return { t, run: deps.hostRunner };
  }

  const audit = (action: string, target: string, ctx: ActionContext, dryRun: boolean, summary: string) =>
    logger.info({ action, target, incident: ctx.incidentId, actor: ctx.actor, reason: ctx.reason, dryRun }, summary);

  async function run(what: string, runner: CommandRunner, argv: string[], timeoutMs: number, maxBytes = 65_536): Promise<CommandResult> {
    try {
      return await heartbeating(runner(argv[0]!, argv.slice(1), { timeoutMs, maxBytes, signal: activitySignal() }), { what });
    } catch (err) {
      const signal = activitySignal();
      if (signal?.aborted) throw signal.reason ?? err;
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT') throw targetNotFound(what, `${argv[0]} is not installed on the host`);
      if (code === 'ENOCONTAINER') throw targetNotFound(what, (err as Error).message);
      if (err instanceof TimeoutError) throw transient(what, `no answer: ${err.message}`);
      throw classify(what, err, secrets);
    }
  }

  /** What `stat` (not following a link) says the path is: "directory", "regular file", "symbolic link", or undefined when absent. */
  async function kindOf(what: string, runner: CommandRunner, path: string): Promise<string | undefined> {
    const r = await run(what, runner, ['stat', '-c', '%F', '--', path], statMs);
    if (r.code === 0) return r.stdout.trim();
    if (/no such file/i.test(r.stderr)) return undefined;
    throw transient(what, `stat of ${path} exited ${r.code}: ${firstLine(redact(r.stderr, secrets))}`);
  }

  async function housekeepFiles(name: string, req: HousekeepingRequest): Promise<HousekeepingResult> {
    const what = `housekeeping of target '${name}'`;
    const { t, run: runner } = unitTarget(what, name);
    const days = req?.olderThanDays;
    if (!Number.isInteger(days) || days < 1 || days > maxDays)
      throw badInput(what, `olderThanDays must be a whole number from 1 to ${maxDays}, got ${String(days)}`);
    const dirs = t.housekeeping?.paths ?? [];
    if (dirs.length === 0) throw badInput(what, 'the target has no housekeeping.paths in the config');
    const dryRun = Boolean(req.dryRun || config.dryRun);

    let files = 0;
    let bytes = 0;
    let complete = true;
    const listed: string[] = [];
    const lines: string[] = [];
    for (const dir of dirs) {
      const kind = await kindOf(what, runner, dir);
      if (kind === undefined) {
        lines.push(`${dir}: does not exist; nothing to do`);
        continue;
      }
      if (kind !== 'directory')
        throw badInput(what, `${dir} is a ${kind}, not a directory${kind === 'symbolic link' ? ' (a link is never followed)' : ''}`);
      // -mmin: "older than N days" to the minute; -mtime +N would mean N+1 whole days.
      const argv = [
        'find',
        '-P',
        dir,
        '-xdev',
        '-type',
        'f',
        '-mmin',
        `+${days * 1_440}`,
        ...(dryRun ? [] : ['-delete']),
        '-printf',
        '%s\\t%p\\0',
      ];
      const r = await run(what, runner, argv, findMs, listBytes);
      const found = parseList(r.stdout);
      files += found.files;
      bytes += found.bytes;
      for (const p of found.paths.slice(0, listedPerDir)) if (listed.length < listedInAll) listed.push(redact(p, secrets));
      if (r.truncated) complete = false;
      // find goes on past a file it could not delete (and says so); the rest was still done.
      const problems = r.code === 0 ? '' : `; find exited ${r.code}: ${capText(redact(firstLine(r.stderr), secrets), 300)}`;
      const counted = `${r.truncated ? 'at least ' : ''}${found.files} file(s), ${formatBytes(found.bytes)}`;
      lines.push(
        `${dir}: ${dryRun ? 'would delete' : 'deleted'} ${counted} older than ${days} day(s)${r.truncated ? ' (list cut short: run it again)' : ''}${problems}`,
      );
      if (r.code !== 0 && found.files === 0 && !r.truncated) {
        // Nothing deleted and find failed: permission denied on the directory, most likely. Waiting will not help.
        throw badInput(what, lines.at(-1)!);
      }
    }
    const summary = lines.join('\n');
    audit('housekeeping', name, req, dryRun, summary);
    return { target: name, dryRun, files, bytes, listed, complete, summary };
  }

  async function rotateLogs(name: string, ctx: ActionContext): Promise<LogrotateResult> {
    const what = `logrotate of target '${name}'`;
    const { t, run: runner } = unitTarget(what, name);
    const file = t.housekeeping?.logrotate;
    if (!file) throw badInput(what, 'the target has no housekeeping.logrotate file in the config');
    const dryRun = Boolean(ctx?.dryRun || config.dryRun);
    const kind = await kindOf(what, runner, file);
    if (kind === undefined) throw targetNotFound(what, `${file} does not exist on the host`);
    if (!/^regular (empty )?file$/.test(kind)) throw badInput(what, `${file} is a ${kind}, not a regular file`);
    // -d reports what would happen and changes nothing, not even the state file.
    const r = await run(what, runner, ['logrotate', ...(dryRun ? ['-d'] : []), '-f', '--', file], logrotateMs, 1_048_576);
    // Killed at the read limit (a config matching thousands of files, in a dry run's chatter): it did
    // not finish, and some logs may be rotated and others not.
    if (r.stoppedAtLimit) {
      const problem = 'logrotate was stopped after 1 MiB of output and did not finish; some logs may be rotated and others not';
      audit('logrotate', name, ctx, dryRun, problem);
      throw transient(what, problem);
    }
    const output = capText(
      redact([r.stdout, r.stderr].filter(Boolean).join('\n').trim(), secrets),
      Math.min(4_000, config.limits.outputBytes),
    );
    if (r.code !== 0) {
      const problem = `logrotate exited ${r.code}: ${firstError(redact(r.stderr || r.stdout, secrets))}`;
      audit('logrotate', name, ctx, dryRun, problem);
      // A configuration logrotate rejects (syntax, unsafe permissions) stays rejected.
      throw badInput(what, problem);
    }
    const summary = dryRun ? `dry run: logrotate -d -f ${file} reported what it would rotate` : `logrotate -f ${file}: rotated`;
    audit('logrotate', name, ctx, dryRun, summary);
    return { target: name, dryRun, output, summary };
  }

  return { housekeepFiles, rotateLogs };
}

/** "size\tpath\0" records; a record cut by the read limit is not counted. */
function parseList(text: string): { files: number; bytes: number; paths: string[] } {
  const records = text.split('\0');
  // The text after the last NUL is a record not yet finished (cut, or empty).
  records.pop();
  let bytes = 0;
  const paths: string[] = [];
  for (const rec of records) {
    const tab = rec.indexOf('\t');
    if (tab < 0) continue;
    bytes += Number(rec.slice(0, tab)) || 0;
    // Names are the host's: shown printable.
    paths.push(rec.slice(tab + 1).replace(/[\x00-\x1f\x7f]/g, '?'));
  }
  return { files: paths.length, bytes, paths: paths.sort() };
}

function formatBytes(n: number): string {
  if (n < 1_024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1_024;
  let i = 0;
  while (v >= 1_024 && i < units.length - 1) {
    v /= 1_024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}

/** logrotate prints its debug chatter and its errors together: the first "error:" line says why (the next ones what it skipped). */
function firstError(text: string): string {
  const lines = text.trim().split('\n');
  return (lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? '').slice(0, 300);
}
