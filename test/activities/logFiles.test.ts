// The logs step's `file:`: a configured application log file read where the target runs, through the
// real facades: inside a busybox container of the demo image (docker exec by the engine; busybox has
// no dd nofollow, so its tail is used), and on a host made from the stack's systemd host image as its
// host agent reads it (GNU dd with nofollow). Files, links and the secret are this file's (t-logf-*).
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetActivities } from '../../activities/contract.js';
import { failureTypes } from '../../activities/failures.js';
import { createEngineActivities, createHostActivities } from '../../activities/index.js';
import { createLogFiles } from '../../activities/logFiles.js';
import { dockerExecRunner } from '../../activities/systemd.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import { docker } from '../support/docker.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';

const suffix = randomUUID().slice(0, 6);
const app = `t-logf-app-${suffix}`;
const host = `t-logf-host-${suffix}`;
const token = `sekrit-${randomUUID()}`;
const logger = pino({ level: 'silent' });
const outputBytes = 2_048;

function config(): EngineConfig {
  const raw: EngineConfigInput = {
    webhook: { token: 'unused-token' },
    docker: { local: { socketPath: stack().dockerSocket } },
    hosts: { 'logf-host': {} },
    secrets: { apiToken: token },
    targets: {
      app: {
        kind: 'container',
        container: app,
        logFiles: { app: '/var/log/app/app.log', linked: '/var/log/app/linked.log', dir: '/var/log/app', missing: '/var/log/app/none.log' },
      },
      web: {
        kind: 'systemd',
        unit: 'demo-web.service',
        host: 'logf-host',
        logFiles: {
          orchestrator: '/var/log/genesis/orchestrator.log',
          big: '/var/log/genesis/big.log',
          swapped: '/var/log/genesis/swapped.log',
        },
      },
      db: { kind: 'postgres', port: stack().pg.port },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
    limits: { outputBytes },
  };
  return { ...engineConfig.parse(raw), runbookDefinitions: {} };
}

let engine: TargetActivities;
let agent: TargetActivities;

const exec = (container: string, script: string) => docker('exec', container, '/bin/sh', '-c', script);

beforeAll(async () => {
  await docker('rm', '-f', app, host).catch(() => undefined);
  await docker('run', '-d', '--network', 'none', '--name', app, stack().busyboxImage, '/bin/busybox', 'sleep', '3600');
  // The systemd host image without systemd running: its userland is what the host agent runs.
  await docker('run', '-d', '--network', 'none', '--name', host, stack().systemdImage, '/bin/sleep', 'infinity');
  await exec(
    app,
    `/bin/busybox mkdir -p /var/log/app && cd /var/log/app && ` +
      `/bin/busybox printf 'INFO started\\nERROR db timeout\\nWARN token=${token}\\nINFO ok\\nCRITICAL out of memory\\n' > app.log && ` +
      `/bin/busybox ln -s /etc/passwd linked.log`,
  );
  await exec(
    host,
    `mkdir -p /var/log/genesis && cd /var/log/genesis && ` +
      `printf 'INFO boot\\nERROR cannot reach mysql\\nINFO retry\\nFATAL giving up token=${token}\\n' > orchestrator.log && ` +
      // 30,000 numbered lines, ~600 KiB: more than the read limit of the test's reader below.
      `seq -f 'line %06g of the big log, padded to be a little longer than short' 1 30000 > big.log && ` +
      `echo 'INFO real' > swapped.log`,
  );
  const c = config();
  engine = createEngineActivities(c, { client: undefined as never, logger });
  agent = createHostActivities(c, 'logf-host', { logger, run: dockerExecRunner(host) });
}, 60_000);

afterAll(async () => {
  await docker('rm', '-f', app, host).catch(() => undefined);
});

describe('a configured log file in a container', () => {
  it('returns its last lines, a pattern keeping only the matching ones, the secret scrubbed before matching', async () => {
    const all = await engine.targetLogs('app', { tail: 3, file: 'app' });
    expect(all.text.split('\n')).toEqual(['WARN token=[redacted]', 'INFO ok', 'CRITICAL out of memory']);
    expect(all).toMatchObject({ lines: 3, matched: 3 });

    const errors = await engine.targetLogs('app', { tail: 100, file: 'app', pattern: 'ERROR|CRITICAL|FATAL' });
    expect(errors.text).toBe('ERROR db timeout\nCRITICAL out of memory');
    expect(errors).toMatchObject({ lines: 5, matched: 2 });
    // The pattern cannot find the secret: it was scrubbed first.
    expect((await engine.targetLogs('app', { tail: 100, file: 'app', pattern: token.slice(0, 12) })).matched).toBe(0);
  });

  it('refuses a symbolic link, a directory, a missing file and a file the config does not name, each by name', async () => {
    const link = await failureOf(engine.targetLogs('app', { tail: 10, file: 'linked' }));
    expect(link.type).toBe(failureTypes.badInput);
    expect(link.message).toBe(
      `read of log file 'linked' of target 'app' refused: /var/log/app/linked.log is a symbolic link; configure the file it points to (a link is never followed)`,
    );
    expect(link.message).not.toMatch(/root:/);

    const dir = await failureOf(engine.targetLogs('app', { tail: 10, file: 'dir' }));
    expect(dir.message).toMatch(/\/var\/log\/app is a directory, not a regular file$/);

    const missing = await failureOf(engine.targetLogs('app', { tail: 10, file: 'missing' }));
    expect(missing.type).toBe(failureTypes.targetNotFound);
    expect(missing.message).toBe(
      `read of log file 'missing' of target 'app' failed: /var/log/app/none.log does not exist in container '${app}'`,
    );

    const unknown = await failureOf(engine.targetLogs('app', { tail: 10, file: '../../etc/shadow' }));
    expect(unknown.type).toBe(failureTypes.badInput);
    expect(unknown.message).toMatch(/the target has no such log file in the config \(known: app, linked, dir, missing\)$/);

    const since = await failureOf(engine.targetLogs('app', { tail: 10, file: 'app', sinceMs: 60_000 }));
    expect(since.message).toMatch(/since is for container logs and journals/);

    const kind = await failureOf(engine.targetLogs('db', { tail: 10, file: 'app' }));
    expect(kind.message).toMatch(/the target has no such log file in the config \(known: none\)$/);
  });
});

describe('a configured log file on a systemd target, read by its host agent', () => {
  it('returns the matching lines of the end of the file, scrubbed', async () => {
    const r = await agent.targetLogs('web', { tail: 50, file: 'orchestrator', pattern: 'ERROR|FATAL' });
    expect(r.text).toBe('ERROR cannot reach mysql\nFATAL giving up token=[redacted]');
    expect(r).toMatchObject({ target: 'web', lines: 4, matched: 2 });
  });

  it('reads only the end of a big file, drops the line cut at the start of the read, and caps what it returns', async () => {
    const r = await agent.targetLogs('web', { tail: 10_000, file: 'big' });
    const lines = r.text.split('\n');
    expect(lines[0]).toBe(`[older lines cut at ${outputBytes} bytes]`);
    expect(lines.at(-1)).toBe('line 030000 of the big log, padded to be a little longer than short');
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(outputBytes);
    expect(r.lines).toBe(10_000);

    // A reader limited to 64 KiB: the first line it sees is cut mid-way and is not counted.
    const small = createLogFiles({ config: config(), hostRunner: dockerExecRunner(host), readBytes: 65_536 });
    const part = await small('web', { tail: 10_000, file: 'big' });
    expect(part.lines).toBeLessThan(1_000);
    expect(part.lines).toBeGreaterThan(900);
    expect(
      part.text
        .split('\n')
        .slice(1)
        .every((l) => /^line \d{6} of the big log/.test(l)),
    ).toBe(true);
  });

  it('refuses a file that became a link to another file, and names a missing file as the host has it', async () => {
    await exec(host, 'cd /var/log/genesis && rm swapped.log && ln -s /etc/shadow swapped.log');
    const swapped = await failureOf(agent.targetLogs('web', { tail: 10, file: 'swapped' }));
    expect(swapped.type).toBe(failureTypes.badInput);
    expect(swapped.message).toMatch(/swapped\.log is a symbolic link/);
    expect(swapped.message).not.toMatch(/root:/);

    await exec(host, 'rm /var/log/genesis/swapped.log');
    const gone = await failureOf(agent.targetLogs('web', { tail: 10, file: 'swapped' }));
    expect(gone.type).toBe(failureTypes.targetNotFound);
    expect(gone.message).toBe(
      `read of log file 'swapped' of target 'web' failed: /var/log/genesis/swapped.log does not exist in the host of 'web'`,
    );
  });

  it('refuses a link swapped in between the check and the read: dd opens the file with nofollow', async () => {
    await exec(host, `cd /var/log/genesis && printf 'INFO fine\\n' > raced.log`);
    const inner = dockerExecRunner(host);
    // The hostile moment: stat has said "regular file", then the file becomes a link before dd opens it.
    const racing: typeof inner = async (cmd, args, opts) => {
      if (cmd === 'dd') await exec(host, 'cd /var/log/genesis && rm raced.log && ln -s /etc/shadow raced.log');
      return inner(cmd, args, opts);
    };
    const c = config();
    const reader = createLogFiles({
      config: {
        ...c,
        targets: {
          ...c.targets,
          web: {
            ...(c.targets.web as Extract<typeof c.targets.web, { kind: 'systemd' }>),
            logFiles: { raced: '/var/log/genesis/raced.log' },
          },
        },
      },
      hostRunner: racing,
    });
    const f = await failureOf(reader('web', { tail: 10, file: 'raced' }));
    expect(f.type).toBe(failureTypes.badInput);
    expect(f.message).toMatch(/raced\.log became a symbolic link while it was read; it is not followed$/);
    expect(f.message).not.toMatch(/root:/);
  });

  it("is refused by the engine, which is not the unit's host agent", async () => {
    const f = await failureOf(engine.targetLogs('web', { tail: 10, file: 'orchestrator' }));
    expect(f.type).toBe(failureTypes.badInput);
    expect(f.message).toMatch(/read on its host, by its host agent; this worker is not one$/);
  });
});
