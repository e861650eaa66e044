// A runbook's `logs` step with `file:`: the newest lines of an application log file the target's
// config names (`logFiles: { app: /var/log/app/app.log }`), read where the target runs: on a systemd
// unit's host by its host agent, inside a container with `docker exec`. The runbook names the file
// by its key only; the path is the config's.
//
// Only the end of the file is read (at most readBytes), with programs every userland has: `stat`
// first (a missing file, a directory or a symbolic link is refused by name), then GNU `dd` with
// `iflag=nofollow`, so a link swapped in after the check is refused by the kernel rather than
// followed to a file the config never named; where dd lacks that flag (busybox), `tail -c`. Lines
// are scrubbed of every secret the config holds before the pattern sees them, and capped.
import type { EngineConfig, Target } from '../config/schema.js';
import { redact } from '../config/secret.js';
import type { LogRequest, LogResult } from './contract.js';
import type { DockerExec } from './dockerExec.js';
import { badInput, classify, TimeoutError, targetNotFound, transient } from './failures.js';
import { activitySignal, heartbeating } from './limits.js';
import { configSecrets } from './redaction.js';
import type { CommandResult, CommandRunner } from './systemd.js';
import { checkRequest, NewestLines } from './targetLogs.js';

export interface LogFileDeps {
  config: EngineConfig;
  /** Containers: `docker exec` through the engine's Docker clients. */
  dockerExec?: DockerExec;
  /** systemd units: this host, for the host agent that owns them. */
  hostRunner?: CommandRunner;
  owner?: string;
  /** What is read from the end of the file at most. */
  readBytes?: number;
}

const runMs = 30_000;
const defaultReadBytes = 8 * 1_048_576;

export function createLogFiles(deps: LogFileDeps): (name: string, req: LogRequest) => Promise<LogResult> {
  const { config } = deps;
  const secrets = configSecrets(config);
  const readBytes = deps.readBytes ?? defaultReadBytes;

  function runnerFor(what: string, name: string, t: Target): { run: CommandRunner; place: string } {
    if (t.kind === 'container') {
      if (!deps.dockerExec) throw badInput(what, `containers are the engine's; this worker cannot read files in them`);
      return {
        run: deps.dockerExec.runner({ endpoint: t.docker, container: t.container }, { env: ['LANG=C', 'LC_ALL=C'] }),
        place: `container '${t.container}'`,
      };
    }
    if (t.kind === 'systemd') {
      if (!deps.hostRunner)
        throw badInput(what, `log files of systemd target '${name}' are read on its host, by its host agent; this worker is not one`);
      return { run: deps.hostRunner, place: `the host of '${name}'` };
    }
    throw badInput(what, `a ${t.kind} target has no log files: they are read in containers and on systemd units' hosts`);
  }

  return async function readLogFile(name: string, req: LogRequest): Promise<LogResult> {
    const key = String(req?.file).slice(0, 63);
    const what = `read of log file '${key}' of target '${name}'`;
    const t = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
    if (!t) throw targetNotFound(what, deps.owner ? `not a target of ${deps.owner}` : 'no such target in the config');
    if (req.sinceMs !== undefined) throw badInput(what, 'since is for container logs and journals; a log file is read by its last lines');
    const { tail, pattern } = checkRequest(what, req);
    const files = t.kind === 'container' || t.kind === 'systemd' ? t.logFiles : {};
    const path = typeof req.file === 'string' && Object.hasOwn(files, req.file) ? files[req.file]! : undefined;
    if (!path) throw badInput(what, `the target has no such log file in the config (known: ${Object.keys(files).join(', ') || 'none'})`);
    const { run, place } = runnerFor(what, name, t);
    const tool = programs(run);

    const raw = await heartbeating(
      (async () => {
        const size = await regularFileSize(tool, what, path, place);
        return readEnd(tool, what, path, size, readBytes);
      })().catch((err: unknown) => {
        throw fileFailure(what, err, place, secrets);
      }),
      { what },
    );

    const kept = new NewestLines(config.limits.outputBytes);
    // A read that started mid-file starts mid-line: that first piece is not a line of the log.
    const all = raw.text.split('\n');
    if (raw.cut) all.shift();
    if (all.at(-1) === '') all.pop();
    const newest = all.slice(-tail);
    let matched = 0;
    for (const line of newest) {
      // Scrubbed before matching, so that a pattern cannot tell whether a secret was in the log.
      const clean = redact(line, secrets);
      if (pattern && !pattern.test(clean)) continue;
      matched += 1;
      kept.push(clean);
    }
    return { target: name, text: kept.text(), lines: newest.length, matched };
  };
}

type Tool = (argv: string[]) => Promise<CommandResult>;

/** Runs a program where the target is, and, where a busybox image lacks the link, the busybox applet. */
function programs(run: CommandRunner): Tool {
  let busybox = false;
  return async (argv) => {
    const opts = { timeoutMs: runMs, maxBytes: defaultReadBytes + 65_536, signal: activitySignal() };
    if (!busybox) {
      try {
        return await run(argv[0]!, argv.slice(1), opts);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
    const r = await run('/bin/busybox', argv, opts);
    busybox = true;
    return r;
  };
}

class Refused extends Error {
  constructor(
    message: string,
    readonly missing = false,
  ) {
    super(message);
  }
}

/** The file's size, once `stat` (not following a link) says it is a regular file. */
async function regularFileSize(tool: Tool, what: string, path: string, place: string): Promise<number> {
  const r = await tool(['stat', '-c', '%F|%s', '--', path]);
  if (r.code !== 0) {
    if (/no such file|can't stat|cannot stat/i.test(r.stderr)) throw new Refused(`${path} does not exist in ${place}`, true);
    throw new Error(`stat exited ${r.code}: ${firstLine(r.stderr)}`);
  }
  const m = /^([a-z ]+)\|(\d+)$/.exec(r.stdout.trim());
  if (!m) throw new Error(`stat printed ${JSON.stringify(r.stdout.slice(0, 80))}`);
  if (m[1] === 'symbolic link') throw new Refused(`${path} is a symbolic link; configure the file it points to (a link is never followed)`);
  if (!/^regular (empty )?file$/.test(m[1]!)) throw new Refused(`${path} is a ${m[1]}, not a regular file`);
  return Number(m[2]);
}

/** The last `limit` bytes of the file, as text, and whether it started mid-file. */
async function readEnd(tool: Tool, what: string, path: string, size: number, limit: number): Promise<{ text: string; cut: boolean }> {
  const skip = Math.max(0, size - limit);
  const dd = await tool([
    'dd',
    `if=${path}`,
    'iflag=nofollow,skip_bytes,count_bytes',
    `skip=${skip}`,
    `count=${limit}`,
    'bs=65536',
    'status=none',
  ]);
  if (dd.code === 0) return { text: dd.stdout, cut: skip > 0 };
  if (/too many levels of symbolic links/i.test(dd.stderr))
    throw new Refused(`${path} became a symbolic link while it was read; it is not followed`);
  if (!/invalid|unknown|bad/i.test(dd.stderr)) throw new Error(`dd exited ${dd.code}: ${firstLine(dd.stderr)}`);
  // busybox dd has no nofollow: tail, right after stat said it is no link.
  const t = await tool(['tail', '-c', String(Math.min(limit, Math.max(size, 1))), '--', path]);
  if (t.code !== 0) throw new Error(`tail exited ${t.code}: ${firstLine(t.stderr)}`);
  return { text: t.stdout, cut: skip > 0 };
}

function fileFailure(what: string, err: unknown, place: string, secrets: ReturnType<typeof configSecrets>) {
  // Once the activity is cancelled, its cancellation is the outcome, not whatever the stopped read threw.
  const signal = activitySignal();
  if (signal?.aborted) return signal.reason ?? err;
  if (err instanceof Refused) return err.missing ? targetNotFound(what, err.message) : badInput(what, err.message);
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return badInput(what, `${place} has no stat, dd or tail`);
  if (code === 'ENOCONTAINER') return targetNotFound(what, (err as Error).message);
  if (code === 'ENOTRUNNING') return transient(what, (err as Error).message);
  if (err instanceof TimeoutError) return transient(what, `no answer: ${err.message}`);
  return classify(what, err, secrets);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 300) ?? '';
}
