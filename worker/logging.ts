// One log stream per process: the engine's own lines, the Temporal SDK's (worker, activities,
// workflows) and its native core's, all through one pino logger, in one format — JSON for machines,
// a line per entry for a terminal (LOG_FORMAT=pretty|json; pretty by default on a TTY).
import { Writable } from 'node:stream';
import { LogLevel, LogTimestamp, Runtime, makeTelemetryFilterString, type Logger as SdkLogger, type LogMetadata } from '@temporalio/worker';
import { pino, destination, type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'pretty' | 'json';

export interface LoggingOptions {
  level?: string;
  format?: string;
  /** Append to this file instead of stdout (a host agent started detached). */
  file?: string;
  isTTY?: boolean;
  /** Where lines go (tests); stdout or the file otherwise. */
  stream?: NodeJS.WritableStream;
}

const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function createLogger(opts: LoggingOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!levels.includes(level)) throw new Error(`LOG_LEVEL ${JSON.stringify(level)}: expected one of ${levels.join(', ')}`);
  const format = logFormat(opts.format, opts.isTTY ?? process.stdout.isTTY === true);
  const sink: DestinationStream | NodeJS.WritableStream =
    // The log names targets, alerts and errors: the owner's only, as the engine's other state is.
    opts.stream ?? (opts.file ? destination({ dest: opts.file, append: true, mkdir: true, mode: 0o600 }) : destination(1));
  const out = format === 'json' ? sink : prettyStream(sink);
  return pino(
    { name: 'remediation', level, timestamp: pino.stdTimeFunctions.isoTime, hooks: { streamWrite: escapeInvisible } },
    out as DestinationStream,
  );
}

/**
 * Characters JSON leaves raw that make a log line lie where people read it (Loki, Grafana, a
 * browser, a terminal): line and paragraph separators, C1 controls (NEL), and format characters (a
 * bidi override reorders what follows, a zero-width one hides). Alert labels and operators' text
 * reach log lines; each such character is written as its \u escape, which JSON reads back whole.
 */
const invisible = /[\u0080-\u009f\u2028\u2029\p{Cf}]/gu;
export function escapeInvisible(line: string): string {
  return line.replace(invisible, (c) =>
    [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

export function logFormat(value: string | undefined, isTTY: boolean): LogFormat {
  if (value === undefined || value === '') return isTTY ? 'pretty' : 'json';
  if (value === 'pretty' || value === 'json') return value;
  throw new Error(`LOG_FORMAT ${JSON.stringify(value)}: expected pretty or json`);
}

export type SdkLogLevel = 'WARN' | 'INFO' | 'DEBUG';

/**
 * TEMPORAL_LOG_LEVEL: how much of the SDK's and its core's own log to keep (WARN unless set). DEBUG
 * shows every workflow task and activation with when the core wrote it (emittedAt): where an
 * incident's milliseconds went. Verbose: for a diagnosis, not for production.
 */
export function sdkLogLevel(value: string | undefined): SdkLogLevel {
  if (value === undefined || value === '') return 'WARN';
  const upper = value.toUpperCase();
  if (upper === 'WARN' || upper === 'INFO' || upper === 'DEBUG') return upper;
  throw new Error(`TEMPORAL_LOG_LEVEL ${JSON.stringify(value)}: expected warn, info or debug`);
}

/**
 * Routes the SDK's logs, and its native core's (forwarded), through the engine's logger. Call once,
 * before any worker or connection is made; the SDK keeps the first runtime it was given.
 */
export function installSdkLogging(logger: Logger, level: SdkLogLevel = 'WARN'): void {
  Runtime.install({
    logger: new PinoSdkLogger(logger.child({ component: 'temporal' }), level),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: level, other: 'ERROR' }), forward: {} } },
  });
}

const sdkSeverity: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };
const pinoLevel: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Core messages logged at ERROR that this engine has traced to a harmless cause, logged as WARN with
 * what they mean, so that a page-worthy ERROR in the engine's log stays one. Nothing else is
 * rewritten.
 */
export const knownCoreMessages: ReadonlyArray<{ match: RegExp; meaning: string }> = [
  {
    // managed_run.rs prepare_complete_resp: a local read the worker dropped while evicting a run
    // (steps/activities.ts asks it again after a 1 s timer) whose cancellation came with the
    // eviction itself. Core drops the timer with the evicted run; the run replays from its history.
    match:
      /There should not be any outgoing commands or messages when preparing a completion response if the activation was only an eviction/,
    meaning:
      'a run evicted from the worker cache while its local read was being asked again; its task is retried from history and nothing is lost (local_reads_dropped_total counts these)',
  },
];

/** The SDK's Logger interface over pino: metadata made one line, task tokens and stacks of expected failures dropped. */
export class PinoSdkLogger implements SdkLogger {
  private readonly min: number;
  constructor(
    private readonly logger: Logger,
    level: LogLevel = 'WARN',
  ) {
    this.min = sdkSeverity[level];
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const known = level === 'ERROR' ? knownCoreMessages.find((k) => k.match.test(message)) : undefined;
    if (known) {
      this.logger.warn({ ...cleanMeta(meta), known: known.meaning }, message);
      return;
    }
    if (sdkSeverity[level] < this.min) return;
    this.logger[pinoLevel[level]]({ ...cleanMeta(meta), ...emittedAt(meta) }, withoutTaskTokens(message));
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * When the SDK's core wrote a line it forwards: core hands its lines over in batches, so the
 * logger's own time can be tens of milliseconds later than the event, and out of order with the
 * engine's lines. Microseconds, UTC.
 */
function emittedAt(meta: LogMetadata | undefined): { emittedAt?: string } {
  const ns = (meta as Record<symbol, unknown> | undefined)?.[LogTimestamp];
  if (typeof ns !== 'bigint') return {};
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return { emittedAt: `${iso.slice(0, 23)}${String((ns / 1_000n) % 1_000n).padStart(3, '0')}Z` };
}

/**
 * A task token is a credential for completing someone else's task: it never reaches a log. An
 * expected failure (an ApplicationFailure: "container 'api' not found") is its message, type and
 * retryability on one line, not a 30-line stack; an unexpected error keeps its stack.
 */
export function cleanMeta(meta: LogMetadata | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta ?? {})) {
    if (/token/i.test(key)) continue;
    if (key === 'sdkComponent') out.sdk = value;
    else if (value instanceof Error) out[key] = describeError(value);
    else if (typeof value === 'string') out[key] = withoutTaskTokens(value);
    else out[key] = value;
  }
  return out;
}

/**
 * The core's debug lines print whole structs, task tokens inside them ("task_token:
 * TaskToken(CiQw…)"): each is written as "TaskToken(redacted)".
 */
export function withoutTaskTokens(text: string): string {
  return text.replace(/TaskToken\([^)]*\)/g, 'TaskToken(redacted)');
}

function describeError(err: Error): Record<string, unknown> {
  const chain: string[] = [];
  let expected = false;
  let type: string | undefined;
  let nonRetryable: boolean | undefined;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    chain.push(e.message);
    if (e.name === 'ApplicationFailure') {
      expected = true;
      type ??= (e as { type?: string }).type ?? undefined;
      nonRetryable ??= (e as { nonRetryable?: boolean }).nonRetryable;
    }
    if (e.name === 'ActivityFailure' || e.name === 'TimeoutFailure' || e.name === 'CancelledFailure') expected = true;
  }
  return {
    message: chain.filter((m, i) => m && chain.indexOf(m) === i).join(': '),
    ...(type ? { type } : {}),
    ...(nonRetryable !== undefined ? { nonRetryable } : {}),
    ...(expected ? {} : { stack: err.stack }),
  };
}

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * pino's JSON made one readable line: `12:00:01.234 INFO  engine running webhook=… namespace=…`.
 * Values come from alerts and operators too: control characters are escaped, so a line is a line.
 */
export function prettyStream(sink: NodeJS.WritableStream | DestinationStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) sink.write(`${prettyLine(line)}\n`);
      done();
    },
  });
}

export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return printable(json);
  }
  const { level, time, msg, name: _name, pid: _pid, hostname: _host, ...rest } = entry;
  const at = typeof time === 'string' ? time.slice(11, 23) : new Date(Number(time)).toISOString().slice(11, 23);
  const fields = Object.entries(rest)
    .filter(([k]) => k !== 'stack')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? quoteIfNeeded(v) : JSON.stringify(v)}`);
  const head = `${at} ${(levelNames[Number(level)] ?? 'LOG').padEnd(5)} ${printable(String(msg ?? ''))}`;
  return printable([head, ...fields].join(' '));
}

function quoteIfNeeded(v: string): string {
  return /^[^\s"=]{1,200}$/.test(v) ? v : JSON.stringify(v.length > 2_000 ? `${v.slice(0, 2_000)}…` : v);
}

function printable(s: string): string {
  return escapeInvisible(
    s.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  ).replace(/\n/g, '\\n');
}
