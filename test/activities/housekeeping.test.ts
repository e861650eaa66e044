// The housekeeping and logrotate steps' activities as a host agent runs them, on a host made from the
// stack's systemd host image (GNU find, logrotate), files and links this file creates: what a dry run
// lists, what a real run deletes and never deletes (fresh files, links, anything a link points to,
// other file types), refusals by name, and a forced rotation of a configured logrotate file.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionContext, TargetActivities } from '../../activities/contract.js';
import { failureTypes } from '../../activities/failures.js';
import { createHousekeeping } from '../../activities/housekeeping.js';
import { createEngineActivities, createHostActivities } from '../../activities/index.js';
import { dockerExecRunner } from '../../activities/systemd.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import { docker } from '../support/docker.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';

const suffix = randomUUID().slice(0, 6);
const host = `t-upkeep-host-${suffix}`;
const logger = pino({ level: 'silent' });
const runs = '/var/lib/genesis/runs';

function config(dryRun = false): EngineConfig {
  const raw: EngineConfigInput = {
    webhook: { token: 'unused-token' },
    dryRun,
    docker: { local: { socketPath: stack().dockerSocket } },
    hosts: { 'upkeep-host': {} },
    targets: {
      orchestrator: {
        kind: 'systemd',
        unit: 'genesis-orchestrator.service',
        host: 'upkeep-host',
        housekeeping: { paths: [runs, '/var/lib/genesis/not-yet'], logrotate: '/etc/logrotate.d/genesis-orchestrator' },
      },
      linked: {
        kind: 'systemd',
        unit: 'linked.service',
        host: 'upkeep-host',
        housekeeping: { paths: ['/var/lib/genesis/linked'], logrotate: '/etc/logrotate.d/broken' },
      },
      bare: { kind: 'systemd', unit: 'bare.service', host: 'upkeep-host' },
      app: { kind: 'container', container: 'whatever' },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
  };
  return { ...engineConfig.parse(raw), runbookDefinitions: {} };
}

const ctx = (dryRun = false): ActionContext => ({ incidentId: 'incident:test', reason: 'weekly maintenance', actor: 'engine', dryRun });
const exec = (script: string) => docker('exec', host, '/bin/sh', '-c', script);
const exists = async (path: string) => (await exec(`if [ -e '${path}' ] || [ -L '${path}' ]; then echo yes; else echo no; fi`)) === 'yes';

let agent: TargetActivities;
let dryAgent: TargetActivities;

beforeAll(async () => {
  await docker('rm', '-f', host).catch(() => undefined);
  await docker('run', '-d', '--network', 'none', '--name', host, stack().systemdImage, '/bin/sleep', 'infinity');
  await exec(
    [
      `mkdir -p ${runs}/sub /srv/keep`,
      // Old (40 and 31 days), one just under the age (29 days), and fresh.
      `head -c 1000 /dev/zero > ${runs}/old-1.json && touch -d '40 days ago' ${runs}/old-1.json`,
      `head -c 24 /dev/zero > ${runs}/old-2.json && touch -d '31 days ago' ${runs}/old-2.json`,
      `head -c 1 /dev/zero > ${runs}/sub/old-3.json && touch -d '40 days ago' ${runs}/sub/old-3.json`,
      `printf x > "${runs}/line
break.json" && touch -d '40 days ago' "${runs}/line
break.json"`,
      `echo recent > ${runs}/almost.json && touch -d '29 days ago' ${runs}/almost.json`,
      `echo fresh > ${runs}/fresh.json`,
      // Not regular files: a FIFO, a link to a file outside, a link to a directory outside. All old.
      `mkfifo ${runs}/old.fifo && touch -d '40 days ago' ${runs}/old.fifo`,
      `echo keep > /srv/keep/precious.log && touch -d '40 days ago' /srv/keep/precious.log`,
      `echo keep > /srv/keep/inside-dir.log && touch -d '40 days ago' /srv/keep/inside-dir.log`,
      `ln -s /srv/keep/precious.log ${runs}/link.log && touch -h -d '40 days ago' ${runs}/link.log`,
      `ln -s /srv/keep ${runs}/escape && touch -h -d '40 days ago' ${runs}/escape`,
      // A configured directory that is itself a link.
      `ln -s /srv/keep /var/lib/genesis/linked`,
      // The logrotate file, and the log it rotates.
      `mkdir -p /var/log/genesis && printf 'INFO one\\nINFO two\\n' > /var/log/genesis/orchestrator.log`,
      `printf '/var/log/genesis/orchestrator.log {\\n  rotate 3\\n  missingok\\n}\\n' > /etc/logrotate.d/genesis-orchestrator`,
      `printf '/var/log/genesis/x.log {\\n  rotate three\\n}\\n' > /etc/logrotate.d/broken`,
    ].join(' && '),
  );
  agent = createHostActivities(config(), 'upkeep-host', { logger, run: dockerExecRunner(host) });
  dryAgent = createHostActivities(config(true), 'upkeep-host', { logger, run: dockerExecRunner(host) });
}, 60_000);

afterAll(async () => {
  await docker('rm', '-f', host).catch(() => undefined);
});

describe('housekeeping', () => {
  const old = [`${runs}/line?break.json`, `${runs}/old-1.json`, `${runs}/old-2.json`, `${runs}/sub/old-3.json`];

  it('in a dry run lists the regular files older than the age, with count and bytes, and deletes nothing', async () => {
    const r = await dryAgent.housekeepFiles('orchestrator', { ...ctx(), olderThanDays: 30 });
    expect(r).toMatchObject({ target: 'orchestrator', dryRun: true, files: 4, bytes: 1_026, complete: true });
    expect(r.listed).toEqual(old);
    expect(r.summary).toBe(
      `${runs}: would delete 4 file(s), 1.0 KiB older than 30 day(s)\n/var/lib/genesis/not-yet: does not exist; nothing to do`,
    );
    for (const f of ['old-1.json', 'old-2.json', 'sub/old-3.json']) expect(await exists(`${runs}/${f}`)).toBe(true);
  });

  it('deletes exactly those, and never a fresh file, another kind of file, a link, or what a link points to', async () => {
    const r = await agent.housekeepFiles('orchestrator', { ...ctx(), olderThanDays: 30 });
    expect(r).toMatchObject({ dryRun: false, files: 4, bytes: 1_026, complete: true });
    expect(r.listed).toEqual(old);
    expect(r.summary.split('\n')[0]).toBe(`${runs}: deleted 4 file(s), 1.0 KiB older than 30 day(s)`);
    const left = (await exec(`cd ${runs} && find . | sort`)).split('\n');
    expect(left).toEqual(['.', './almost.json', './escape', './fresh.json', './link.log', './old.fifo', './sub']);
    expect(await exec('ls /srv/keep')).toBe('inside-dir.log\nprecious.log');

    // Run again: nothing left to do, which is not an error.
    const again = await agent.housekeepFiles('orchestrator', { ...ctx(), olderThanDays: 30 });
    expect(again).toMatchObject({ files: 0, bytes: 0, listed: [] });
  });

  it('stops reading a long list at its limit and says the list is incomplete', async () => {
    await exec(
      `mkdir -p ${runs}/many && cd ${runs}/many && for i in $(seq 1 300); do echo $i > f-$i.json; done && touch -d '60 days ago' f-*.json`,
    );
    const limited = createHousekeeping({ config: config(true), logger, hostRunner: dockerExecRunner(host), listBytes: 4_096 });
    const r = await limited.housekeepFiles('orchestrator', { ...ctx(true), olderThanDays: 30 });
    expect(r.complete).toBe(false);
    expect(r.files).toBeGreaterThan(50);
    expect(r.files).toBeLessThan(300);
    expect(r.listed).toHaveLength(20);
    expect(r.summary).toMatch(/would delete at least \d+ file\(s\), .* \(list cut short: run it again\)/);
    // The real run deletes all 300 (one find; only what is read of its list is bounded).
    const all = await agent.housekeepFiles('orchestrator', { ...ctx(), olderThanDays: 30 });
    expect(all).toMatchObject({ files: 300, complete: true });
  });

  it('refuses a configured directory that is a link, a target without paths, another kind, and a bad age, by name', async () => {
    const link = await failureOf(agent.housekeepFiles('linked', { ...ctx(), olderThanDays: 30 }));
    expect(link.type).toBe(failureTypes.badInput);
    expect(link.message).toBe(
      `housekeeping of target 'linked' refused: /var/lib/genesis/linked is a symbolic link, not a directory (a link is never followed)`,
    );
    expect(await exec('ls /srv/keep')).toBe('inside-dir.log\nprecious.log');

    expect((await failureOf(agent.housekeepFiles('bare', { ...ctx(), olderThanDays: 30 }))).message).toBe(
      `housekeeping of target 'bare' refused: the target has no housekeeping.paths in the config`,
    );
    expect((await failureOf(agent.housekeepFiles('orchestrator', { ...ctx(), olderThanDays: 0 }))).message).toMatch(
      /olderThanDays must be a whole number from 1 to 3650, got 0$/,
    );
    expect((await failureOf(agent.housekeepFiles('app', { ...ctx(), olderThanDays: 30 }))).type).toBe(failureTypes.targetNotFound);
    const engine = createEngineActivities(config(), { client: undefined as never, logger });
    const notAgent = await failureOf(engine.housekeepFiles('orchestrator', { ...ctx(), olderThanDays: 30 }));
    expect(notAgent.message).toMatch(/by its host agent; this worker is not one$/);
    expect((await failureOf(engine.housekeepFiles('app', { ...ctx(), olderThanDays: 30 }))).message).toMatch(
      /housekeeping runs on a systemd unit's host, and 'app' is a container target$/,
    );
  });
});

describe('logrotate', () => {
  it('in a dry run reports what logrotate -d would do, and rotates nothing', async () => {
    const r = await dryAgent.rotateLogs('orchestrator', ctx());
    expect(r.dryRun).toBe(true);
    expect(r.output).toMatch(/rotating pattern: \/var\/log\/genesis\/orchestrator\.log\s+forced from command line \(3 rotations\)/);
    expect(r.summary).toBe('dry run: logrotate -d -f /etc/logrotate.d/genesis-orchestrator reported what it would rotate');
    expect(await exists('/var/log/genesis/orchestrator.log.1')).toBe(false);
  });

  it('forces a rotation of the configured file', async () => {
    const r = await agent.rotateLogs('orchestrator', ctx());
    expect(r).toMatchObject({ dryRun: false, summary: 'logrotate -f /etc/logrotate.d/genesis-orchestrator: rotated' });
    expect(await exec('cat /var/log/genesis/orchestrator.log.1')).toBe('INFO one\nINFO two');
    expect(await exists('/var/log/genesis/orchestrator.log')).toBe(false);
  });

  it('fails a rotation stopped at its output limit, which did not finish, instead of calling it rotated', async () => {
    // The host's runner kills a program whose output passes the limit (systemd.test.ts shows it does).
    const stopped = createHousekeeping({
      config: config(false),
      logger,
      hostRunner: async (cmd) =>
        cmd === 'stat'
          ? { code: 0, stdout: 'regular file\n', stderr: '' }
          : { code: 0, stdout: 'considering log …\n', stderr: '', truncated: true, stoppedAtLimit: true },
    });
    const f = await failureOf(stopped.rotateLogs('orchestrator', ctx()));
    expect(f.message).toBe(
      "logrotate of target 'orchestrator' failed: logrotate was stopped after 1 MiB of output and did not finish; some logs may be rotated and others not",
    );
  });

  it('refuses a configuration logrotate rejects, a missing file and a target without one, by name', async () => {
    const broken = await failureOf(agent.rotateLogs('linked', ctx()));
    expect(broken.type).toBe(failureTypes.badInput);
    expect(broken.message).toMatch(/^logrotate of target 'linked' refused: logrotate exited 1: error: .*broken:2/);

    await exec('rm /etc/logrotate.d/broken');
    const missing = await failureOf(agent.rotateLogs('linked', ctx()));
    expect(missing.type).toBe(failureTypes.targetNotFound);
    expect(missing.message).toBe(`logrotate of target 'linked' failed: /etc/logrotate.d/broken does not exist on the host`);

    expect((await failureOf(agent.rotateLogs('bare', ctx()))).message).toBe(
      `logrotate of target 'bare' refused: the target has no housekeeping.logrotate file in the config`,
    );
  });
});
