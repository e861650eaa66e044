// The logs step through the target facade: container logs from the real daemon (containers this
// file creates, t-logs-*), a unit's journal inside the stack's systemd container (a unit this file
// creates) as a host agent reads it, and the refusals a runbook author should see.
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import type { LogResult, TargetActivities } from '../../activities/contract.js';
import { createDockerActivities, dockerClient } from '../../activities/docker.js';
import { createHttpActivities } from '../../activities/http.js';
import { createHostActivities } from '../../activities/index.js';
import { createMysqlActivities } from '../../activities/mysql.js';
import { createPostgresActivities } from '../../activities/postgres.js';
import { createRedisActivities } from '../../activities/redis.js';
import { createSystemdActivities, dockerExecRunner } from '../../activities/systemd.js';
import { createTargetActivities } from '../../activities/targets.js';
import { docker } from '../support/docker.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const suffix = randomUUID().slice(0, 6);
const app = `t-logs-app-${suffix}`;
const chatty = `t-logs-chatty-${suffix}`;
const missing = `t-logs-missing-${suffix}`;
const unit = `t-logs-unit-${suffix}.service`;
const missingUnit = `t-logs-nounit-${suffix}.service`;
const token = `sekrit-${randomUUID()}`;
const outputBytes = 1_024;
const logger = pino({ level: 'silent' });

function config(): EngineConfig {
  const raw: EngineConfigInput = {
    webhook: { token: 'unused-token' },
    docker: { local: { socketPath: stack().dockerSocket } },
    secrets: { apiToken: token },
    targets: {
      app: { kind: 'container', container: app },
      chatty: { kind: 'container', container: chatty },
      ghost: { kind: 'container', container: missing },
      'app-cache': { kind: 'redis', port: 1, restartVia: 'app' },
      'plain-cache': { kind: 'redis', port: 1 },
      web: { kind: 'systemd', unit, host: 'h1' },
      gone: { kind: 'systemd', unit: missingUnit, host: 'h1' },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
    limits: { outputBytes },
  };
  return { ...engineConfig.parse(raw), runbookDefinitions: {} };
}

/** Containers are the engine's and units their host agent's: one facade with both stands in for the pair. */
let agent: TargetActivities;

/** The docker-exec runner stands in for a host agent running on the systemd host itself. */
function inHost(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', ['exec', stack().systemdContainer, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

const unitFile = `[Unit]
Description=t-logs test unit that logs known lines
[Service]
ExecStart=/bin/sh -c 'echo "INFO unit starting"; echo "ERROR unit cannot open /data"; echo "WARN unit token=${token}"; exec sleep infinity'
`;

beforeAll(async () => {
  await docker('rm', '-f', app, chatty).catch(() => undefined);
  const busybox = (name: string, script: string) =>
    docker('run', '-d', '--network', 'none', '--name', name, stack().busyboxImage, '/bin/busybox', 'sh', '-c', script);
  // Apart in time (for since) and never two streams at once: Docker may order simultaneous lines of stdout and stderr either way.
  await busybox(
    app,
    `echo "INFO old: starting"; sleep 0.2; echo "ERROR old: config missing" >&2; sleep 3; echo "INFO new: ready"; sleep 0.2; ` +
      `echo "ERROR new: disk full" >&2; sleep 0.2; echo "WARN new: token=${token}"; sleep 3600`,
  );
  await busybox(chatty, 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; sleep 3600');

  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      'docker',
      ['exec', '-i', stack().systemdContainer, 'tee', `/etc/systemd/system/${unit}`],
      { timeout: 30_000 },
      (err) => (err ? reject(err) : resolve()),
    );
    child.stdin!.end(unitFile);
  });
  await inHost('systemctl', 'daemon-reload');
  await inHost('systemctl', 'start', unit);

  agent = createTargetActivities({
    config: config(),
    logger,
    docker: createDockerActivities({ docker: () => dockerClient({ socketPath: stack().dockerSocket, timeout: '15s' }), outputBytes }),
    http: createHttpActivities({ outputBytes }),
    postgres: createPostgresActivities({ outputBytes, backupDir: '/tmp' }),
    mysql: createMysqlActivities({ outputBytes }),
    redis: createRedisActivities(),
    systemd: createSystemdActivities({ run: dockerExecRunner(stack().systemdContainer), timeoutMs: 90_000, outputBytes }),
  });
  await eventually(
    () => agent.targetLogs('app', { tail: 100 }),
    (r) => r.lines === 5,
  );
  await eventually(
    () => agent.targetLogs('chatty', { tail: 5 }),
    (r) => r.text.endsWith('line 2999'),
  );
});

afterAll(async () => {
  await docker('rm', '-f', app, chatty).catch(() => undefined);
  await inHost('systemctl', 'stop', unit).catch(() => undefined);
  await inHost('rm', '-f', `/etc/systemd/system/${unit}`).catch(() => undefined);
  await inHost('systemctl', 'daemon-reload').catch(() => undefined);
});

/** The log lines without Docker's timestamps ("2024-05-01T02:03:04.123Z "). */
const messages = (r: LogResult) =>
  r.text === '' ? [] : r.text.split('\n').map((l) => l.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /, ''));

describe('container logs', () => {
  it('reads stdout and stderr as written, oldest first, each line with the time Docker logged it', async () => {
    const r = await agent.targetLogs('app', { tail: 100 });
    expect(r).toMatchObject({ target: 'app', lines: 5, matched: 5 });
    expect(messages(r)).toEqual([
      'INFO old: starting',
      'ERROR old: config missing',
      'INFO new: ready',
      'ERROR new: disk full',
      'WARN new: token=[redacted]',
    ]);
    const stamps = r.text.split('\n').map((l) => Date.parse(l.slice(0, 24)));
    expect(stamps.every((s) => Date.now() - s < 10 * 60_000)).toBe(true);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });

  it('reads only the last `tail` lines', async () => {
    const r = await agent.targetLogs('app', { tail: 2 });
    expect(r).toMatchObject({ lines: 2, matched: 2 });
    expect(messages(r)).toEqual(['ERROR new: disk full', 'WARN new: token=[redacted]']);
  });

  it('keeps only the lines matching the pattern, counting lines read and lines kept', async () => {
    const r = await agent.targetLogs('app', { tail: 100, pattern: 'ERROR|WARN' });
    expect(r).toMatchObject({ lines: 5, matched: 3 });
    expect(messages(r)).toEqual(['ERROR old: config missing', 'ERROR new: disk full', 'WARN new: token=[redacted]']);
    const none = await agent.targetLogs('app', { tail: 100, pattern: 'FATAL' });
    expect(none).toEqual({ target: 'app', text: '', lines: 5, matched: 0 });
  });

  it('leaves out lines older than since', async () => {
    const all = await agent.targetLogs('app', { tail: 100 });
    const at = (word: string) =>
      Date.parse(
        all.text
          .split('\n')
          .find((l) => l.includes(word))!
          .slice(0, 24),
      );
    // Half-way through the 3 s pause between the old lines and the new ones.
    const middle = (at('ERROR old') + at('INFO new')) / 2;
    const r = await agent.targetLogs('app', { tail: 100, sinceMs: Math.round(Date.now() - middle) });
    expect(messages(r)).toEqual(['INFO new: ready', 'ERROR new: disk full', 'WARN new: token=[redacted]']);
    expect(r).toMatchObject({ lines: 3, matched: 3 });
  });

  it('scrubs secrets the config holds before matching, so a pattern cannot find them either', async () => {
    const r = await agent.targetLogs('app', { tail: 100, pattern: 'sekrit' });
    expect(r).toMatchObject({ lines: 5, matched: 0, text: '' });
    const all = await agent.targetLogs('app', { tail: 100 });
    expect(all.text).not.toContain(token);
  });

  it('caps the text at limits.outputBytes, keeping the newest lines and saying older ones were cut', async () => {
    const r = await agent.targetLogs('chatty', { tail: 3_000 });
    expect(r).toMatchObject({ lines: 3_000, matched: 3_000 });
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(outputBytes);
    const [marker, ...kept] = r.text.split('\n');
    expect(marker).toBe(`[older lines cut at ${outputBytes} bytes]`);
    expect(messages({ ...r, text: kept.join('\n') })).toEqual(
      Array.from({ length: kept.length }, (_, i) => `line ${3_000 - kept.length + i}`),
    );
    expect(kept.length).toBeGreaterThan(20);
  });

  it('filters the whole tail before capping: matches far from the end are found', async () => {
    const r = await agent.targetLogs('chatty', { tail: 3_000, pattern: '^\\S+ line 1\\d$' });
    expect(r).toMatchObject({ lines: 3_000, matched: 10 });
    expect(messages(r)).toEqual(Array.from({ length: 10 }, (_, i) => `line ${10 + i}`));
  });

  it('reads the logs of the container that runs a database (restartVia)', async () => {
    const r = await agent.targetLogs('app-cache', { tail: 100, pattern: 'ERROR' });
    expect(r.target).toBe('app-cache');
    expect(messages(r)).toEqual(['ERROR old: config missing', 'ERROR new: disk full']);
  });
});

describe('unit journal', () => {
  it("reads the unit's journal where the unit lives, filtered by the pattern and scrubbed", async () => {
    const r = await eventually(
      () => agent.targetLogs('web', { tail: 50, pattern: 'unit (cannot|token)' }),
      (x) => x.matched >= 2,
    );
    expect(r.target).toBe('web');
    expect(r.matched).toBe(2);
    expect(r.lines).toBeGreaterThan(r.matched);
    const kept = r.text.split('\n');
    expect(kept[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* \S+ sh\[\d+\]: ERROR unit cannot open \/data$/);
    expect(kept[1]).toMatch(/ WARN unit token=\[redacted\]$/);
    expect(r.text).not.toContain(token);
  });

  it('honours since: lines logged seconds ago are older than the last second', async () => {
    const all = await eventually(
      () => agent.targetLogs('web', { tail: 50, pattern: 'unit starting' }),
      (x) => x.matched === 1,
    );
    await new Promise((r) => setTimeout(r, 2_500));
    const recent = await agent.targetLogs('web', { tail: 50, sinceMs: 1_000, pattern: 'unit starting' });
    expect(recent.matched).toBe(0);
    const wider = await agent.targetLogs('web', { tail: 50, sinceMs: 600_000, pattern: 'unit starting' });
    expect(wider.text).toBe(all.text);
  });

  it('a unit systemd does not know is a non-retryable failure naming it, not an empty log', async () => {
    const f = await failureOf(agent.targetLogs('gone', { tail: 10 }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'TargetNotFound' });
    expect(f.message).toContain(`systemd unit '${missingUnit}'`);
  });

  it("the host agent reads its unit's journal, and refuses a container's log (the engine's)", async () => {
    const host = createHostActivities(config(), 'h1', { logger, run: dockerExecRunner(stack().systemdContainer) });
    const r = await eventually(
      () => host.targetLogs('web', { tail: 50, pattern: 'unit starting' }),
      (x) => x.matched === 1,
    );
    expect(r.target).toBe('web');
    const f = await failureOf(host.targetLogs('app', { tail: 10 }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'TargetNotFound' });
  });

  it('the engine, which runs no units, refuses a unit target instead of reading its own host', async () => {
    const outputs = { outputBytes };
    const engine = createTargetActivities({
      config: config(),
      logger,
      docker: createDockerActivities({ docker: () => dockerClient({ socketPath: stack().dockerSocket, timeout: '15s' }), outputBytes }),
      http: createHttpActivities(outputs),
      postgres: createPostgresActivities({ outputBytes, backupDir: '/tmp' }),
      mysql: createMysqlActivities(outputs),
      redis: createRedisActivities(),
    });
    const f = await failureOf(engine.targetLogs('web', { tail: 10 }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(f.message).toBe(
      `log read of systemd target 'web' refused: systemd units are handled by their host agent; this worker is not one`,
    );
  });
});

describe('refusals', () => {
  it('a missing container is a non-retryable failure naming it', async () => {
    const f = await failureOf(agent.targetLogs('ghost', { tail: 10 }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'TargetNotFound' });
    expect(f.message).toBe(`log read of container '${missing}' on docker endpoint 'local' failed: no such container`);
  });

  it('a target not in the config is a non-retryable failure naming it', async () => {
    const f = await failureOf(agent.targetLogs('nope', { tail: 10 }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'TargetNotFound' });
    expect(f.message).toBe("log read of target 'nope' failed: no such target in the config");
  });

  it('a database with no container or unit behind it has no logs to read', async () => {
    const f = await failureOf(agent.targetLogs('plain-cache', { tail: 10 }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(f.message).toBe(
      "log read refused: target 'plain-cache' (a redis target) has no logs: no restartVia container or unit is configured",
    );
  });

  it('a pattern that is not a regular expression is bad input, and nothing is read', async () => {
    const f = await failureOf(agent.targetLogs('ghost', { tail: 10, pattern: 'ERROR(' }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(f.message).toMatch(
      /^log read of target 'ghost' refused: pattern is not a regular expression: Invalid regular expression: \/ERROR\(\/: Unterminated group/,
    );
  });

  it.each([0, 10_001, 2.5])('refuses a tail of %s lines', async (tail) => {
    const f = await failureOf(agent.targetLogs('app', { tail }));
    expect(f).toMatchObject({ nonRetryable: true, type: 'BadInput' });
    expect(f.message).toContain('tail must be a whole number of lines from 1 to 10000');
  });
});
