// The command step's activity against the real stack: configured commands run with `docker exec`
// in containers this file creates (t-cmd-*: one of them the demo service's own busybox image, run
// as the stack runs it; the stack's demo container itself is killed by other tests at any moment),
// and on the systemd host as
// its host agent runs them (the agent's facade, its runner executing inside that host), with output
// filtered, masked, scrubbed of the config's secrets and capped, and dry-run honoured.
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { access, chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRequest, TargetActivities } from '../../activities/contract.js';
import { failureTypes } from '../../activities/failures.js';
import { createEngineActivities, createHostActivities } from '../../activities/index.js';
import { dockerExecRunner, localRunner } from '../../activities/systemd.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import { docker } from '../support/docker.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';

const suffix = randomUUID().slice(0, 6);
const app = `t-cmd-app-${suffix}`;
const demo = `t-cmd-demo-${suffix}`;
/** A container of an image that holds busybox alone: no sh to run anything of the engine's in it. */
const bare = `t-cmd-bare-${suffix}`;
const bareImage = `t-cmd-bare-image:${suffix}`;
const marker = `/tmp/t-cmd-marker-${suffix}`;
/** Touched on this machine by a host command, once it has written past the read limit. */
const localMarker = `/tmp/t-cmd-flood-${suffix}`;
const readLimit = 8 * 1_048_576;
/**
 * Host commands whose shell leaves a child behind that would touch a marker on this machine after
 * 3 s; the sleeps' odd lengths are unique to this run, so /proc can tell whether any is still there.
 */
const orphan = (marker: string, n: number): string[] => [
  '/bin/sh',
  '-c',
  `(sleep 3.${n}; touch ${marker}) & sleep 600.${n}; touch ${marker}`,
];
const orphanTag = 100_000 + Math.floor(Math.random() * 800_000);
const orphanMarker = (what: string) => `/tmp/t-cmd-orphan-${what}-${suffix}`;
const dbPassword = `pw-${randomUUID()}`;
const logger = pino({ level: 'silent' });

function config(dryRun = false): EngineConfig {
  const raw: EngineConfigInput = {
    webhook: { token: 'unused-token' },
    dryRun,
    docker: { local: { socketPath: stack().dockerSocket } },
    hosts: { 'cmd-host': {} },
    secrets: { dbPassword },
    targets: {
      demo: {
        kind: 'container',
        container: demo,
        commands: {
          env: { argv: ['/bin/busybox', 'env'], readOnly: true, redact: ['^PORT$', 'hostname'] },
          'env-port': { argv: ['/bin/busybox', 'env'], readOnly: true, keep: '^PORT=' },
          flood: { argv: ['/bin/busybox', 'sh', '-c', 'head -c 9000000 /dev/zero; echo finished >&2; exit 0'], readOnly: true },
        },
      },
      app: {
        kind: 'container',
        container: app,
        commands: {
          // The seeds' `env | grep -E "(DATABASE|REDIS|GITHUB)"`, with secret-looking values masked.
          env: {
            argv: ['/bin/busybox', 'env'],
            readOnly: true,
            keep: '^(DATABASE|REDIS|GITHUB)_',
            redact: ['PASSWORD|TOKEN|SECRET', '_URL$'],
          },
          'touch-marker': { argv: ['/bin/busybox', 'touch', marker] },
          'has-marker': { argv: ['/bin/busybox', 'ls', marker], readOnly: true },
          fails: {
            argv: ['/bin/busybox', 'sh', '-c', 'echo "it went wrong: DATABASE_PASSWORD=$DATABASE_PASSWORD" >&2; exit 3'],
            readOnly: true,
          },
          chatty: { argv: ['/bin/busybox', 'seq', '1', '100000'], readOnly: true, maxOutputBytes: 200 },
          slow: { argv: ['/bin/busybox', 'sleep', '5'], readOnly: true, timeout: '500ms' },
          // Not 3600: the container's own main process is `sleep 3600`. The shell's child proves the kill reaches children.
          hang: { argv: ['/bin/busybox', 'sh', '-c', '/bin/busybox sleep 3599; echo never'], readOnly: true, timeout: '500ms' },
          missing: { argv: ['/usr/bin/no-such-program'], readOnly: true },
          quoted: { argv: ['/bin/busybox', 'echo', '$(id)', '; rm -rf /', '`x`'], readOnly: true },
        },
      },
      gone: { kind: 'container', container: `t-cmd-gone-${suffix}`, commands: { env: { argv: ['env'], readOnly: true } } },
      bare: {
        kind: 'container',
        container: bare,
        commands: { hang: { argv: ['/bin/busybox', 'sleep', '3598'], readOnly: true, timeout: '500ms' } },
      },
      web: {
        kind: 'systemd',
        unit: stack().systemdUnit,
        host: 'cmd-host',
        commands: {
          df: { argv: ['df', '-P', '-k', '/'], readOnly: true },
          loadavg: { argv: ['/bin/cat', '/proc/loadavg', '/proc/uptime'], readOnly: true },
          'touch-marker': { argv: ['/usr/bin/touch', marker] },
          // The pause: the runner closes the pipe a moment before it kills the shell, which meanwhile goes on.
          flood: { argv: ['/bin/sh', '-c', `head -c 9000000 /dev/zero; sleep 1; touch ${localMarker}; exit 0`] },
          'orphan-timeout': { argv: orphan(orphanMarker('timeout'), orphanTag), readOnly: true, timeout: '1s' },
          'orphan-cancel': { argv: orphan(orphanMarker('cancel'), orphanTag + 1), readOnly: true, timeout: '60s' },
        },
      },
      db: { kind: 'postgres', port: stack().pg.port },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
  };
  return { ...engineConfig.parse(raw), runbookDefinitions: {} };
}

/** The engine's facade (containers) and the host agent's (its units, run inside the systemd host). */
let engine: TargetActivities;
let agent: TargetActivities;
let dryEngine: TargetActivities;
let dryAgent: TargetActivities;
/** A host agent as it runs in production: its commands run on this machine. */
let localAgent: TargetActivities;

const req = (command: string, dryRun = false): CommandRequest => ({
  command,
  incidentId: 'incident:test:cmd',
  reason: 'test',
  actor: 'alice',
  dryRun,
});
const inHost = (...args: string[]) => docker('exec', stack().systemdContainer, ...args);

/** An image of /bin/busybox and nothing else: not even the links that name its applets. */
async function bareBusyboxImage(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 't-cmd-bare-'));
  try {
    await mkdir(join(dir, 'root', 'bin'), { recursive: true });
    await copyFile('/bin/busybox', join(dir, 'root', 'bin', 'busybox'));
    await chmod(join(dir, 'root', 'bin', 'busybox'), 0o755);
    await promisify(execFile)('tar', ['-C', join(dir, 'root'), '-cf', join(dir, 'image.tar'), '.']);
    await docker('import', join(dir, 'image.tar'), bareImage);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  await docker('rm', '-f', app, demo, bare).catch(() => undefined);
  await bareBusyboxImage();
  await docker('run', '-d', '--network', 'none', '--name', bare, bareImage, '/bin/busybox', 'sleep', '3600');
  await docker('run', '-d', '--network', 'none', '--name', demo, '-e', 'PORT=18080', stack().busyboxImage);
  await docker(
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    app,
    '-e',
    'DATABASE_URL=postgres://app:hunter2@db/app',
    '-e',
    `DATABASE_PASSWORD=${dbPassword}`,
    '-e',
    'REDIS_HOST=cache',
    '-e',
    'GITHUB_TOKEN=ghp_abcdef',
    '-e',
    'UNRELATED=1',
    stack().busyboxImage,
    '/bin/busybox',
    'sleep',
    '3600',
  );
  const engineOf = (c: EngineConfig) => createEngineActivities(c, { client: undefined as never, logger }) as unknown as TargetActivities;
  engine = engineOf(config());
  dryEngine = engineOf(config(true));
  agent = createHostActivities(config(), 'cmd-host', { logger, run: dockerExecRunner(stack().systemdContainer) });
  dryAgent = createHostActivities(config(true), 'cmd-host', { logger, run: dockerExecRunner(stack().systemdContainer) });
  localAgent = createHostActivities(config(), 'cmd-host', { logger, run: localRunner });
});

afterAll(async () => {
  await docker('rm', '-f', app, demo, bare).catch(() => undefined);
  await docker('rmi', bareImage).catch(() => undefined);
  await inHost('rm', '-f', marker).catch(() => undefined);
  await rm(localMarker, { force: true });
  for (const what of ['timeout', 'cancel']) await rm(orphanMarker(what), { force: true });
});

describe('a configured command in a container (docker exec)', () => {
  it("runs busybox env in a container of the demo's image with the values of matching keys masked", async () => {
    const r = await engine.runTargetCommand('demo', req('env'));
    expect(r).toMatchObject({ target: 'demo', command: 'env', dryRun: false, exitCode: 0, stderr: '' });
    const lines = r.output.split('\n');
    expect(lines).toContain('PORT=[redacted]');
    // redact patterns ignore case: "hostname" masks HOSTNAME.
    expect(lines).toContain('HOSTNAME=[redacted]');
    expect(lines.find((l) => l.startsWith('PATH='))).toMatch(/^PATH=\/.*bin/);
    expect(r.summary).toBe(`'env' in container '${demo}' exited 0`);
    expect((await engine.runTargetCommand('demo', req('env-port'))).output).toBe('PORT=18080');
  });

  it("keeps only the lines the command's keep pattern matches, masks secret-looking values and scrubs the config's secrets", async () => {
    const r = await engine.runTargetCommand('app', req('env'));
    expect(r.output.split('\n').sort()).toEqual([
      'DATABASE_PASSWORD=[redacted]',
      'DATABASE_URL=[redacted]',
      'GITHUB_TOKEN=[redacted]',
      'REDIS_HOST=cache',
    ]);
    // Even where no redact pattern matches, a value the config holds as a secret never leaves.
    const f = await engine.runTargetCommand('app', req('fails'));
    expect(f.exitCode).toBe(3);
    expect(f.stderr).toBe('it went wrong: DATABASE_PASSWORD=[redacted]');
    expect(f.stderr).not.toContain(dbPassword);
  });

  it('passes arguments as written, with no shell to read them', async () => {
    expect((await engine.runTargetCommand('app', req('quoted'))).output).toBe('$(id) ; rm -rf / `x`');
  });

  it("caps the output at the command's maxOutputBytes, keeping the end", async () => {
    const r = await engine.runTargetCommand('app', req('chatty'));
    expect(Buffer.byteLength(r.output)).toBeLessThan(260);
    expect(r.output).toMatch(/^\[\.\.\. \d+ bytes cut\]\n/);
    expect(r.output.endsWith('99999\n100000') || r.output.endsWith('100000')).toBe(true);
  });

  it('in a dry run describes a command that is not readOnly instead of running it, and runs one that is', async () => {
    const r = await dryEngine.runTargetCommand('app', req('touch-marker'));
    expect(r).toMatchObject({ dryRun: true, exitCode: 0 });
    expect(r.summary).toBe(`dry run: would run 'touch-marker' (/bin/busybox touch ${marker}) in container '${app}'`);
    const seen = await engine.runTargetCommand('app', req('has-marker'));
    expect(seen.exitCode).not.toBe(0);
    // The request's own dry-run flag counts as much as the config's.
    expect((await engine.runTargetCommand('app', req('touch-marker', true))).dryRun).toBe(true);
    expect((await dryEngine.runTargetCommand('app', req('has-marker'))).exitCode).not.toBe(0);
    // For real: it runs, and the read-only check (run in a dry run too) sees what it did.
    expect((await engine.runTargetCommand('app', req('touch-marker'))).exitCode).toBe(0);
    expect((await dryEngine.runTargetCommand('app', req('has-marker'))).output).toBe(marker);
  });

  it('refuses an unknown command, a program the container lacks and a database target, without retrying', async () => {
    const unknown = await failureOf(engine.runTargetCommand('app', req('rm-rf')));
    expect(unknown.type).toBe(failureTypes.badInput);
    expect(unknown.nonRetryable).toBe(true);
    expect(unknown.message).toBe(
      "command 'rm-rf' on target 'app' refused: the target has no such command in the config (known: env, touch-marker, has-marker, fails, chatty, slow, hang, missing, quoted)",
    );
    const missing = await failureOf(engine.runTargetCommand('app', req('missing')));
    expect(missing.message).toBe(
      `command 'missing' on target 'app' refused: /usr/bin/no-such-program is not installed in container '${app}'`,
    );
    expect(missing.nonRetryable).toBe(true);
    const db = await failureOf(engine.runTargetCommand('db', req('env')));
    expect(db.message).toBe(
      "command 'env' on target 'db' refused: a postgres target has no commands: commands run in containers and on systemd units' hosts",
    );
    const ghost = await failureOf(engine.runTargetCommand('ghost', req('env')));
    expect(ghost.type).toBe(failureTypes.targetNotFound);
  });

  it('reports a container that does not exist as not found, and a command past its timeout as retryable', async () => {
    const gone = await failureOf(engine.runTargetCommand('gone', req('env')));
    expect(gone.type).toBe(failureTypes.targetNotFound);
    expect(gone.message).toBe(`command 'env' on target 'gone' failed: no such container 't-cmd-gone-${suffix}'`);
    const started = Date.now();
    const slow = await failureOf(engine.runTargetCommand('app', req('slow')));
    expect(slow.type).toBe(failureTypes.transient);
    expect(slow.message).toContain('timed out after 500 ms');
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('a configured command in a container that hangs', () => {
  it('fails fast as a retryable timeout and leaves neither it nor its children running in the container', async () => {
    const started = Date.now();
    const hung = await failureOf(engine.runTargetCommand('app', req('hang')));
    expect(hung.type).toBe(failureTypes.transient);
    expect(hung.message).toContain('timed out after 500 ms');
    expect(Date.now() - started).toBeLessThan(3_000);
    // docker top reads the container's processes from the host side, with no exec of its own.
    const left = async () => (await docker('top', app)).split('\n').filter((l) => /sleep 3599/.test(l));
    const deadline = Date.now() + 3_000;
    while ((await left()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await left()).toEqual([]);
  });
});

describe('a configured command that hangs in a container with no shell', () => {
  it('is killed from the engine side, which shares the daemon host: the second exec has no sh to run', async () => {
    const hung = await failureOf(engine.runTargetCommand('bare', req('hang')));
    expect(hung.type).toBe(failureTypes.transient);
    expect(hung.message).toContain('timed out after 500 ms');
    await expect(docker('exec', bare, 'sh', '-c', 'true')).rejects.toThrow();
    const left = async () => (await docker('top', bare)).split('\n').filter((l) => /sleep 3598/.test(l));
    const deadline = Date.now() + 3_000;
    while ((await left()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await left()).toEqual([]);
    // The container's own process is untouched.
    expect((await docker('top', bare)).split('\n').filter((l) => /sleep 3600/.test(l))).toHaveLength(1);
  });
});

describe('a configured command on a systemd host (its host agent)', () => {
  it('runs df and reads the load where the unit lives', async () => {
    const df = await agent.runTargetCommand('web', req('df'));
    expect(df).toMatchObject({ target: 'web', exitCode: 0, dryRun: false });
    expect(df.output).toMatch(/^Filesystem\s+1024-blocks\s+Used\s+Available\s+Capacity\s+Mounted on\n\S+\s+\d+\s+\d+\s+\d+\s+\d+%\s+\/$/);
    expect(df.summary).toBe("'df' on the host of systemd target 'web' exited 0");
    const load = await agent.runTargetCommand('web', req('loadavg'));
    expect(load.output).toMatch(/^\d+\.\d+ \d+\.\d+ \d+\.\d+ \d+\/\d+ \d+\n\d+\.\d+ \d+\.\d+$/);
  });

  it('in a dry run does not run one that is not readOnly', async () => {
    const r = await dryAgent.runTargetCommand('web', req('touch-marker'));
    expect(r.dryRun).toBe(true);
    await expect(inHost('ls', marker)).rejects.toThrow();
    expect((await agent.runTargetCommand('web', req('touch-marker'))).exitCode).toBe(0);
    expect(await inHost('ls', marker)).toBe(marker);
  });

  it('is refused by the engine, which is not the host agent, and by the agent for anything not its own', async () => {
    const byEngine = await failureOf(engine.runTargetCommand('web', req('df')));
    expect(byEngine.message).toBe(
      "command 'df' on target 'web' refused: commands on systemd target 'web' run on its host, by its host agent; this worker is not one",
    );
    const notMine = await failureOf(agent.runTargetCommand('demo', req('env')));
    expect(notMine.type).toBe(failureTypes.targetNotFound);
    expect(notMine.message).toBe(
      "command 'env' on target 'demo' failed: not a target of the host agent of 'cmd-host', which acts only on that host's systemd units",
    );
  });
});

describe('a configured command whose output passes the read limit', () => {
  it('fails a host command stopped at the read limit, which did not finish, instead of passing it as exit 0', async () => {
    const r = await localAgent.runTargetCommand('web', req('flood'));
    const note = `[stopped after ${readLimit} bytes of output: the command did not finish]`;
    expect(r.exitCode).toBe(137);
    expect(r.summary).toBe(`'flood' on the host of systemd target 'web' was stopped after ${readLimit} bytes of output and did not finish`);
    expect(r.output.endsWith(`\n${note}`)).toBe(true);
    // The last line of stderr is what a failed step quotes.
    expect(r.stderr.trim().split('\n').pop()).toBe(note);
    // It really was stopped half-way: what it does after its output never happens.
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(access(localMarker)).rejects.toThrow();
  });

  it('reports the real exit code of a container command whose output was cut, since it ran to the end', async () => {
    const r = await engine.runTargetCommand('demo', req('flood'));
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('finished');
    expect(r.summary).toBe(`'flood' in container '${demo}' exited 0`);
    expect(r.output.endsWith(`\n[output cut at ${readLimit} bytes; the command ran to the end]`)).toBe(true);
  });
});

/** The processes on this machine whose command line holds `needle`. */
async function processesWith(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) found.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return found;
}

describe('a configured host command that leaves children behind', () => {
  it('at its timeout fails as retryable and is stopped with all its children, which never act afterwards', async () => {
    const started = Date.now();
    const f = await failureOf(localAgent.runTargetCommand('web', req('orphan-timeout')));
    expect(f.type).toBe(failureTypes.transient);
    expect(f.message).toBe("command 'orphan-timeout' on target 'web' failed: no answer: /bin/sh timed out after 1000 ms");
    expect(Date.now() - started).toBeLessThan(4_000);
    await new Promise((r) => setTimeout(r, 5_000));
    await expect(access(orphanMarker('timeout'))).rejects.toThrow();
    expect(await processesWith(`.${orphanTag}`)).toEqual([]);
  });

  it('when its activity is cancelled fails as cancelled and is stopped with all its children', async () => {
    const env = new MockActivityEnvironment();
    const running = env.run(localAgent.runTargetCommand, 'web', req('orphan-cancel'));
    setTimeout(() => env.cancel(), 500);
    const started = Date.now();
    const f = await failureOf(running);
    expect(f.message).toBe("command 'orphan-cancel' on target 'web' failed: /bin/sh was cancelled");
    expect(Date.now() - started).toBeLessThan(4_000);
    await new Promise((r) => setTimeout(r, 5_000));
    await expect(access(orphanMarker('cancel'))).rejects.toThrow();
    expect(await processesWith(`.${orphanTag + 1}`)).toEqual([]);
  });
});
