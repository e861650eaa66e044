// A runbook's `logs` step: the newest lines of the log that explains a target (its container's log,
// its unit's journal, or those of the container or unit that runs it), kept when they match the
// runbook's pattern, scrubbed of every secret the config holds, and capped with the newest kept.
import type { ContainerTarget, EngineConfig, SystemdTarget } from '../config/schema.js';
import { redact } from '../config/secret.js';
import type { LogRequest, LogResult } from './contract.js';
import type { DockerActivities } from './docker.js';
import { badInput, targetNotFound } from './failures.js';
import { configSecrets } from './redaction.js';
import type { SystemdActivities } from './systemd.js';

export const maxLogTail = 10_000;
const maxPatternLength = 1_000;

export interface TargetLogDeps {
  config: EngineConfig;
  docker: DockerActivities;
  /** Only on a host agent: a unit's journal is read where the unit lives. */
  systemd?: SystemdActivities;
}

export function createTargetLogs(deps: TargetLogDeps): (name: string, req: LogRequest) => Promise<LogResult> {
  const { config } = deps;
  const secrets = configSecrets(config);

  /** The container or unit whose log tells about the target: itself, or what runs it. */
  function logSource(name: string): { name: string; target: ContainerTarget | SystemdTarget } {
    const what = `log read of target '${name}'`;
    const t = config.targets[name];
    if (!t) throw targetNotFound(what, 'no such target in the config');
    if (t.kind === 'container' || t.kind === 'systemd') return { name, target: t };
    if (!t.restartVia)
      throw badInput('log read', `target '${name}' (a ${t.kind} target) has no logs: no restartVia container or unit is configured`);
    const via = config.targets[t.restartVia];
    if (!via) throw targetNotFound(what, `its restartVia target '${t.restartVia}' is not in this worker's config`);
    if (via.kind !== 'container' && via.kind !== 'systemd') {
      throw badInput(what, `its restartVia target '${t.restartVia}' is a ${via.kind} target, not a container or unit`);
    }
    return { name: t.restartVia, target: via };
  }

  return async function targetLogs(name: string, req: LogRequest): Promise<LogResult> {
    const what = `log read of target '${name}'`;
    const { tail, sinceMs, pattern } = checkRequest(what, req);
    const from = logSource(name);
    const kept = new NewestLines(config.limits.outputBytes);
    let lines = 0;
    let matched = 0;
    // Scrubbed before matching, so that a pattern cannot tell whether a secret was in the log.
    const take = (raw: string) => {
      lines += 1;
      const line = redact(raw, secrets);
      if (pattern && !pattern.test(line)) return;
      matched += 1;
      kept.push(line);
    };
    const cutoffMs = sinceMs === undefined ? undefined : Date.now() - sinceMs;
    const t = from.target;
    if (t.kind === 'container') {
      const since = cutoffMs === undefined ? {} : { since: cutoffMs / 1_000 };
      await deps.docker.containerLogLines({ endpoint: t.docker, container: t.container }, { tail, ...since }, take);
    } else {
      if (!deps.systemd)
        throw badInput(
          `log read of systemd target '${from.name}'`,
          'systemd units are handled by their host agent; this worker is not one',
        );
      const since = cutoffMs === undefined ? {} : { since: new Date(cutoffMs).toISOString() };
      const journal = await deps.systemd.journalLines(t.unit, { lines: tail, ...since });
      // journalctl answers "-- No entries --" for a unit it never heard of; systemd knows whether it exists.
      if (journal.length === 0) await deps.systemd.unitStatus(t.unit);
      for (const line of journal) take(line);
    }
    return { target: name, text: kept.text(), lines, matched };
  };
}

export function checkRequest(what: string, req: LogRequest): { tail: number; sinceMs?: number; pattern?: RegExp } {
  const { tail, sinceMs, pattern } = req ?? ({} as LogRequest);
  if (!Number.isInteger(tail) || tail < 1 || tail > maxLogTail)
    throw badInput(what, `tail must be a whole number of lines from 1 to ${maxLogTail}, got ${String(tail)}`);
  if (sinceMs !== undefined && (!Number.isInteger(sinceMs) || sinceMs <= 0)) {
    throw badInput(what, `sinceMs must be a whole number of milliseconds above 0, got ${String(sinceMs)}`);
  }
  if (pattern === undefined) return { tail, sinceMs };
  if (typeof pattern !== 'string' || pattern.length > maxPatternLength)
    throw badInput(what, `pattern must be a regular expression of at most ${maxPatternLength} characters`);
  try {
    return { tail, sinceMs, pattern: new RegExp(pattern) };
  } catch (err) {
    throw badInput(what, `pattern is not a regular expression: ${(err as Error).message}`);
  }
}

/** The newest lines whose text, with a marker when older ones were cut, stays within maxBytes. */
export class NewestLines {
  #lines: string[] = [];
  /** Of the held lines, each with its "\n". */
  #bytes = 0;
  #cut = false;
  constructor(private readonly maxBytes: number) {}

  push(line: string): void {
    this.#lines.push(line);
    this.#bytes += Buffer.byteLength(line) + 1;
    while (this.#lines.length > 1 && this.#bytes - 1 > this.maxBytes) this.#dropOldest();
  }

  text(): string {
    if (!this.#cut && this.#bytes - 1 <= this.maxBytes) return this.#lines.join('\n');
    const marker = `[older lines cut at ${this.maxBytes} bytes]`;
    const markerBytes = Buffer.byteLength(marker) + 1;
    while (this.#lines.length > 1 && markerBytes + this.#bytes - 1 > this.maxBytes) this.#dropOldest();
    const newest = this.#lines[0] ?? '';
    if (markerBytes + this.#bytes - 1 > this.maxBytes) {
      // One line longer than the cap: its end is the newest part of it.
      const cutMarker = `[start of the line cut at ${this.maxBytes} bytes]`;
      const buf = Buffer.from(newest, 'utf8');
      const room = Math.max(0, this.maxBytes - Buffer.byteLength(cutMarker) - 1);
      return `${cutMarker}\n${buf
        .subarray(buf.length - room)
        .toString('utf8')
        .replace(/^\uFFFD+/, '')}`;
    }
    return [marker, ...this.#lines].join('\n');
  }

  #dropOldest(): void {
    this.#bytes -= Buffer.byteLength(this.#lines.shift()!) + 1;
    this.#cut = true;
  }
}
