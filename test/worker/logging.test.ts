// One log stream: the engine's lines, the Temporal SDK's and its core's in one format, JSON for
// machines and a line per entry for a terminal; no task tokens, no stack for an expected failure.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { LogTimestamp, type LogMetadata } from '@temporalio/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanMeta, createLogger, logFormat, PinoSdkLogger, prettyLine, sdkLogLevel } from '../../worker/logging.js';
import { e2eConfigInput } from '../e2e/engine.js';
import { repoRoot, spawnEngine, writeConfig, type EngineProcess } from '../support/engineProcess.js';
import { uniqueQueue } from '../support/temporal.js';
import { stack } from '../support/stack.js';
import { until } from '../support/wait.js';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  return {
    lines,
    stream: new Writable({ write: (c: Buffer, _e, done) => (lines.push(...c.toString().split('\n').filter(Boolean)), done()) }),
  };
}

describe('the log format', () => {
  it('writes a LOG_FILE the owner alone may read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'remediation-log-'));
    try {
      const file = join(dir, 'logs', 'engine.log');
      const log = createLogger({ file, format: 'json' });
      log.info({ target: 'api' }, 'a line');
      await until('the line to reach the file', 5_000, async () =>
        existsSync(file) && readFileSync(file, 'utf8').includes('a line') ? true : undefined,
      );
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is pretty on a terminal and JSON otherwise, unless LOG_FORMAT says', () => {
    expect(logFormat(undefined, true)).toBe('pretty');
    expect(logFormat(undefined, false)).toBe('json');
    expect(logFormat('json', true)).toBe('json');
    expect(() => logFormat('xml', true)).toThrow('LOG_FORMAT "xml": expected pretty or json');
    expect(() => createLogger({ level: 'verbose' })).toThrow(/LOG_LEVEL "verbose"/);
  });

  it('prints one line per entry, with untrusted values unable to forge another line', async () => {
    const { lines, stream } = capture();
    const log = createLogger({ format: 'pretty', stream });
    log.warn({ target: 'api', label: 'x\n12:00:00.000 INFO  forged \u001b[31mred' }, 'restart failed');
    await new Promise((r) => setTimeout(r, 20));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.slice(12)).toBe(' WARN  restart failed target=api label="x\\n12:00:00.000 INFO  forged \\u001b[31mred"');
    expect(prettyLine('not json\u0007')).toBe('not json\\u0007');
  });

  it('writes no raw line separator, C1 control or bidi and zero-width character, in either format, and JSON reads the value back whole', async () => {
    const hostile = 'X\u2028{"level":50,"msg":"forged"}\u2029\u202eevil\u200b\u0085end\u{e0041}';
    const json = capture();
    createLogger({ format: 'json', stream: json.stream }).warn({ alert: hostile }, 'alert matched no runbook');
    const pretty = capture();
    createLogger({ format: 'pretty', stream: pretty.stream }).warn({ alert: hostile }, 'alert matched no runbook');
    await new Promise((r) => setTimeout(r, 20));
    for (const line of [...json.lines, ...pretty.lines]) expect(line, line).not.toMatch(/[\u0080-\u009f\u2028\u2029\p{Cf}]/u);
    expect(json.lines).toHaveLength(1);
    expect((JSON.parse(json.lines[0]!) as { alert: string }).alert).toBe(hostile);
    expect(pretty.lines).toHaveLength(1);
    expect(pretty.lines[0]).toContain('\\u2028{');
    expect(pretty.lines[0]).toContain('\\u202eevil\\u200b\\u0085end\\udb40\\udc41');
  });

  it('drops task tokens, and keeps an expected failure to its message', () => {
    const failure = ApplicationFailure.nonRetryable("container 'api' not found", 'TargetMissing');
    const meta = cleanMeta({ taskToken: 'c2VjcmV0', sdkComponent: 'activity', error: failure, attempt: 3 });
    expect(meta).toEqual({
      sdk: 'activity',
      error: { message: "container 'api' not found", type: 'TargetMissing', nonRetryable: true },
      attempt: 3,
    });
    const unexpected = cleanMeta({ error: new TypeError('x is undefined') });
    expect((unexpected.error as { stack: string }).stack).toContain('TypeError: x is undefined');
  });

  it("writes no task token from the core's debug lines, which print them inside whole structs", async () => {
    const { lines, stream } = capture();
    const sdk = new PinoSdkLogger(createLogger({ format: 'json', level: 'debug', stream }), 'DEBUG');
    const token = 'CiQwMWEyNDg3ZC02ZTM4LTdiMDktYTgwNi1jMzc0MTZjZDRi';
    sdk.debug(`New WFT TaskToken(${token})`, {
      sdkComponent: 'core',
      action: `NewWft(PermittedWft(PreparedWFT { task_token: TaskToken(${token}), attempt: 1 }))`,
      taskToken: token,
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(token);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: 'New WFT TaskToken(redacted)',
      action: 'NewWft(PermittedWft(PreparedWFT { task_token: TaskToken(redacted), attempt: 1 }))',
    });
  });

  it('takes TEMPORAL_LOG_LEVEL as warn (unset), info or debug, and names anything else', () => {
    expect([undefined, '', 'warn', 'INFO', 'debug'].map(sdkLogLevel)).toEqual(['WARN', 'WARN', 'WARN', 'INFO', 'DEBUG']);
    expect(() => sdkLogLevel('trace')).toThrow('TEMPORAL_LOG_LEVEL "trace": expected warn, info or debug');
  });

  it("keeps when core wrote a forwarded line, to the microsecond, beside the logger's own time", async () => {
    const { lines, stream } = capture();
    const sdk = new PinoSdkLogger(createLogger({ format: 'json', stream }));
    sdk.warn('from core', { sdkComponent: 'core', [LogTimestamp]: 1_764_970_000_123_456_789n } as LogMetadata);
    sdk.warn('from the SDK', { sdkComponent: 'worker' });
    await new Promise((r) => setTimeout(r, 20));
    const entries = lines.map((l) => JSON.parse(l) as { msg: string; emittedAt?: string });
    expect(entries[0]).toMatchObject({ msg: 'from core', emittedAt: '2025-12-05T21:26:40.123456Z' });
    expect(entries[1]!.emittedAt).toBeUndefined();
  });

  it("logs core's known-harmless ERROR as a WARN that says what it means, and every other ERROR as it is", async () => {
    const { lines, stream } = capture();
    const sdk = new PinoSdkLogger(createLogger({ format: 'json', stream }));
    sdk.error(
      'There should not be any outgoing commands or messages when preparing a completion response if the activation was only an eviction. This is an SDK bug.',
      { sdkComponent: 'core', runId: 'r1' },
    );
    sdk.error('Failed to complete workflow task', { sdkComponent: 'core' });
    sdk.info('not shown below WARN');
    await new Promise((r) => setTimeout(r, 20));
    const entries = lines.map((l) => JSON.parse(l) as { level: number; msg: string; known?: string; runId?: string });
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({ level: 40, runId: 'r1', known: expect.stringContaining('nothing is lost') });
    expect(entries[1]).toMatchObject({ level: 50, msg: 'Failed to complete workflow task' });
    expect(entries[1]!.known).toBeUndefined();
  });
});

describe('a real start', () => {
  const engines: EngineProcess[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.stop()));
  });

  it('logs only JSON lines, SDK included, and bundles the workflows once, quietly', async () => {
    const cfg = e2eConfigInput({
      temporal: { address: stack().temporalAddress, namespace: stack().temporalNamespace, taskQueue: uniqueQueue('logging') },
      webhook: { listen: '127.0.0.1:0', token: 'logging-token-0123456789' },
    });
    // No prebuilt bundle: this start bundles, as a start from the sources does.
    const engine = await spawnEngine(cfg, { env: { REMEDIATION_WORKFLOW_BUNDLE: '', LOG_FORMAT: 'json' }, startTimeoutMs: 120_000 });
    engines.push(engine);
    await engine.stop();
    const lines = engine.output().split('\n').filter(Boolean);
    const notJson = lines.filter((l) => {
      try {
        return typeof JSON.parse(l) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    const entries = lines.map((l) => JSON.parse(l) as { msg: string; time: string; component?: string });
    expect(entries.every((e) => /^\d{4}-\d\d-\d\dT/.test(e.time))).toBe(true);
    expect(entries.filter((e) => e.msg === 'workflow code')).toHaveLength(1);
    expect(engine.output()).not.toMatch(/webpack|asset workflow-bundle|modules by path/i);
    expect(entries.some((e) => e.msg === 'stopped')).toBe(true);
    // The SDK's own warnings are among them, as JSON (the guard's worker registers no activities).
    expect(entries.some((e) => e.component === 'temporal' && /No activities registered/.test(e.msg))).toBe(true);
  }, 180_000);

  it('logs one readable line per entry with LOG_FORMAT=pretty', async () => {
    const cfg = e2eConfigInput({
      temporal: { address: stack().temporalAddress, namespace: stack().temporalNamespace, taskQueue: uniqueQueue('logging') },
      webhook: { listen: '127.0.0.1:0', token: 'logging-token-0123456789' },
    });
    const file = writeConfig(cfg);
    const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts', '--config', file, 'engine'], {
      cwd: repoRoot,
      env: { ...process.env, LOG_FORMAT: 'pretty', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const deadline = Date.now() + 120_000;
    while (!/ engine running /.test(text) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const lines = text.split('\n').filter(Boolean);
    expect(text).toMatch(/ engine running /);
    expect(lines.filter((l) => !/^\d\d:\d\d:\d\d\.\d{3} (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /.test(l))).toEqual([]);
  }, 180_000);
});
