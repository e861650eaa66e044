// A runbook's `command` step: a command the config lists for a target, named by its key. The config
// holds the argument array, so a runbook file or an alert can only pick among commands somebody
// wrote down: inside a container through `docker exec` (the engine), on a systemd unit's host
// through its host agent, never through a shell.
//
// Output is what a human pasted into a ticket before: it may hold credentials. Every secret the
// config holds is scrubbed, then the values of keys the command's `redact` patterns match are
// masked, then only lines matching its `keep` pattern are kept, then it is capped. A command the
// config does not mark `readOnly` changes something: a dry run only describes it.
import type { Logger } from 'pino';
import type { EngineConfig, Target } from '../config/schema.js';
import type { TargetCommand } from '../config/targetCommands.js';
import { parseDuration } from '../config/duration.js';
import { redact, type Secret } from '../config/secret.js';
import type { CommandRequest, CommandRun } from './contract.js';
import type { DockerExec } from './dockerExec.js';
import { badInput, classify, TimeoutError, targetNotFound, transient } from './failures.js';
import { activitySignal, capText, heartbeating } from './limits.js';
import { configSecrets } from './redaction.js';
import type { CommandRunner } from './systemd.js';

export interface TargetCommandDeps {
  config: EngineConfig;
  logger: Logger;
  /** Containers: `docker exec` through the engine's Docker clients. */
  dockerExec?: DockerExec;
  /** systemd units: this host, for the host agent that owns them. */
  hostRunner?: CommandRunner;
  /** Who serves these targets when that is not the engine, for refusals. */
  owner?: string;
}

/** Read more than is kept: `keep` filters before the cap. On a host, a command still writing at this limit is killed. */
const readBytes = 8 * 1_048_576;
const stderrChars = 2_000;
/**
 * What a program killed at the read limit is reported as: 128 + SIGKILL, as a shell or Docker
 * reports a killed process. It did not finish (a change it was making may be half done), so the
 * step must fail as any unexpected exit does, and never pass as 0.
 */
const stoppedExitCode = 137;

export function createTargetCommands(deps: TargetCommandDeps): (target: string, req: CommandRequest) => Promise<CommandRun> {
  const { config, logger } = deps;
  const secrets = configSecrets(config);

  function where(name: string, t: Target): string {
    return t.kind === 'container' ? `in container '${t.container}'` : `on the host of systemd target '${name}'`;
  }

  function runnerFor(what: string, name: string, t: Target): CommandRunner {
    if (t.kind === 'container') {
      if (!deps.dockerExec) throw badInput(what, `containers are the engine's; this worker cannot run commands in them`);
      return deps.dockerExec.runner({ endpoint: t.docker, container: t.container });
    }
    if (t.kind === 'systemd') {
      if (!deps.hostRunner)
        throw badInput(what, `commands on systemd target '${name}' run on its host, by its host agent; this worker is not one`);
      return deps.hostRunner;
    }
    throw badInput(what, `a ${t.kind} target has no commands: commands run in containers and on systemd units' hosts`);
  }

  return async function runTargetCommand(name: string, req: CommandRequest): Promise<CommandRun> {
    const what = `command '${String(req?.command).slice(0, 63)}' on target '${name}'`;
    const t = Object.hasOwn(config.targets, name) ? config.targets[name] : undefined;
    if (!t) throw targetNotFound(what, deps.owner ? `not a target of ${deps.owner}` : 'no such target in the config');
    if (t.kind !== 'container' && t.kind !== 'systemd')
      throw badInput(what, `a ${t.kind} target has no commands: commands run in containers and on systemd units' hosts`);
    const spec = typeof req?.command === 'string' && Object.hasOwn(t.commands, req.command) ? t.commands[req.command]! : undefined;
    if (!spec)
      throw badInput(what, `the target has no such command in the config (known: ${Object.keys(t.commands).join(', ') || 'none'})`);
    const argv = spec.argv;
    const shown = argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
    const dryRun = Boolean(req.dryRun || config.dryRun);
    const audit = (summary: string, exitCode?: number) =>
      logger.info(
        {
          action: 'command',
          target: name,
          command: req.command,
          exitCode,
          incident: req.incidentId,
          actor: req.actor,
          reason: req.reason,
          dryRun,
        },
        summary,
      );

    if (dryRun && !spec.readOnly) {
      const summary = `dry run: would run '${req.command}' (${redact(shown, secrets)}) ${where(name, t)}`;
      audit(summary);
      return { target: name, command: req.command, dryRun: true, exitCode: 0, output: summary, stderr: '', summary };
    }
    const run = runnerFor(what, name, t);
    let result;
    try {
      result = await heartbeating(
        run(argv[0]!, argv.slice(1), { timeoutMs: parseDuration(spec.timeout), maxBytes: readBytes, signal: activitySignal() }),
        { what },
      );
    } catch (err) {
      const failure = commandFailure(what, err, argv[0]!, where(name, t), secrets);
      if (!spec.readOnly) audit(`'${req.command}' failed: ${failure.message}`);
      throw failure;
    }
    const cap = Math.min(spec.maxOutputBytes ?? config.limits.outputBytes, config.limits.outputBytes);
    // The host's runner kills a program at the read limit; a container's reads on and drops the rest.
    const stopped = Boolean(result.stoppedAtLimit);
    const note = stopped
      ? `[stopped after ${readBytes} bytes of output: the command did not finish]`
      : result.truncated
        ? `[output cut at ${readBytes} bytes; the command ran to the end]`
        : '';
    const output = capText(cleanOutput(result.stdout, spec, secrets), cap) + (note ? `\n${note}` : '');
    const stderrText = tail(cleanOutput(result.stderr, { redact: spec.redact }, secrets), Math.min(stderrChars, cap));
    // A failed step quotes the last line of stderr: there, it says why.
    const stderr = stopped ? `${stderrText ? `${stderrText}\n` : ''}${note}` : stderrText;
    const exitCode = stopped ? stoppedExitCode : result.code;
    const summary = stopped
      ? `'${req.command}' ${where(name, t)} was stopped after ${readBytes} bytes of output and did not finish`
      : `'${req.command}' ${where(name, t)} exited ${result.code}`;
    if (!spec.readOnly) audit(summary, exitCode);
    return { target: name, command: req.command, dryRun: false, exitCode, output, stderr, summary };
  };
}

function commandFailure(what: string, err: unknown, program: string, place: string, secrets: Secret[]) {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return badInput(what, `${program} is not installed ${place}`);
  if (code === 'ENOCONTAINER') return targetNotFound(what, (err as Error).message);
  if (code === 'EINVAL') return badInput(what, (err as Error).message);
  if (code === 'ENOTRUNNING') return transient(what, (err as Error).message);
  if (err instanceof TimeoutError) return transient(what, `no answer: ${err.message}`);
  return classify(what, err, secrets);
}

/**
 * Secrets scrubbed first (so that neither `keep` nor anything after can tell one was there), then
 * the values of keys a `redact` pattern matches masked, then only the lines `keep` matches kept.
 */
export function cleanOutput(text: string, spec: Pick<TargetCommand, 'redact' | 'keep'>, secrets: Secret[]): string {
  const masks = spec.redact.map((p) => new RegExp(p, 'i'));
  const keep = spec.keep === undefined ? undefined : new RegExp(spec.keep);
  const lines = redact(text, secrets).replace(/\n$/, '').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const masked = maskValue(line, masks);
    if (keep && !keep.test(masked)) continue;
    out.push(masked);
  }
  return text === '' ? '' : out.join('\n');
}

/** `KEY=value` or `KEY: value`: the value goes when the key matches a mask. */
function maskValue(line: string, masks: RegExp[]): string {
  if (masks.length === 0) return line;
  const m = /^(\s*)([^\s=:][^=:]*?)(\s*[=:]\s*)(.*)$/.exec(line);
  if (!m || m[4] === '') return line;
  return masks.some((r) => r.test(m[2]!)) ? `${m[1]}${m[2]}${m[3]}[redacted]` : line;
}

function tail(text: string, max: number): string {
  return text.length <= max ? text : `[cut …]${text.slice(text.length - max + 7)}`;
}
