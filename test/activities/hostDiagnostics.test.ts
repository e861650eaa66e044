// Host diagnostics against the real stack: on the systemd host as its host agent gathers them (the
// agent's facade, its runner executing inside that host, which has neither procps nor iproute2),
// and inside a container of the demo service's busybox image through `docker exec` (where only
// /bin/busybox has most applets; the stack's own demo container is killed by other tests at any
// moment, so this file runs its own). Figures are checked against what the machine says otherwise.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostDiagnostics, TargetActivities } from '../../activities/contract.js';
import { failureTypes } from '../../activities/failures.js';
import { createEngineActivities, createHostActivities } from '../../activities/index.js';
import { dockerExecRunner } from '../../activities/systemd.js';
import { engineConfig, type EngineConfig, type EngineConfigInput } from '../../config/schema.js';
import { docker } from '../support/docker.js';
import { failureOf } from '../support/net.js';
import { closedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';

const suffix = randomUUID().slice(0, 6);
const stopped = `t-hostdiag-stopped-${suffix}`;
const demo = `t-hostdiag-demo-${suffix}`;
const dir = `/tmp/t-hostdiag-${suffix}`;
const logger = pino({ level: 'silent' });

function config(): EngineConfig {
  const raw: EngineConfigInput = {
    webhook: { token: 'unused-token' },
    docker: { local: { socketPath: stack().dockerSocket } },
    hosts: { 'diag-host': {} },
    targets: {
      demo: { kind: 'container', container: demo, diagnosticPaths: ['/www', '/no-such-dir'] },
      stopped: { kind: 'container', container: stopped },
      web: { kind: 'systemd', unit: stack().systemdUnit, host: 'diag-host', diagnosticPaths: [dir] },
      'app-db': { kind: 'postgres', port: stack().pg.port },
      cache: { kind: 'redis', port: stack().redis.port },
    },
    escalation: { policies: { p: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'p' },
    channels: { log: { type: 'log' } },
  };
  return { ...engineConfig.parse(raw), runbookDefinitions: {} };
}

let engine: TargetActivities;
let agent: TargetActivities;
let closed: number;
const inHost = (...args: string[]) => docker('exec', stack().systemdContainer, ...args);
const section = (d: HostDiagnostics, title: string) => d.sections.find((s) => s.title === title);

beforeAll(async () => {
  await docker('rm', '-f', stopped, demo).catch(() => undefined);
  // Its own network namespace: the sockets section sees its web server alone.
  await docker('run', '-d', '--network', 'none', '--name', demo, '-e', 'PORT=18080', stack().busyboxImage);
  await docker('create', '--network', 'none', '--name', stopped, stack().busyboxImage, '/bin/busybox', 'sleep', '3600');
  // 3 MiB in two files, for du.
  await inHost('mkdir', '-p', `${dir}/sub`);
  await inHost('dd', 'if=/dev/zero', `of=${dir}/a`, 'bs=1M', 'count=2', 'status=none');
  await inHost('dd', 'if=/dev/zero', `of=${dir}/sub/b`, 'bs=1M', 'count=1', 'status=none');
  engine = createEngineActivities(config(), { client: undefined as never, logger }) as unknown as TargetActivities;
  agent = createHostActivities(config(), 'diag-host', { logger, run: dockerExecRunner(stack().systemdContainer) });
  closed = await closedPort();
});

afterAll(async () => {
  await docker('rm', '-f', stopped, demo).catch(() => undefined);
  await inHost('rm', '-rf', dir).catch(() => undefined);
});

describe('host diagnostics on a systemd host, by its host agent', () => {
  let d: HostDiagnostics;
  beforeAll(async () => {
    d = await agent.hostDiagnostics('web', { tcp: ['127.0.0.1:' + stack().pg.port, `127.0.0.1:${closed}`], top: 5 });
  });

  it('gathers every section that applies, tcp and paths included', () => {
    expect(d.target).toBe('web');
    expect(d.sections.map((s) => s.title)).toEqual(['disk', 'memory', 'load', 'processes', 'sockets', 'tcp', 'paths']);
    expect(d.summary.split('\n')).toHaveLength(7);
  });

  it('reads disk use per filesystem as df -P reports it', async () => {
    const root = (await inHost('df', '-P', '-k', '/')).split('\n')[1]!.trim().split(/\s+/);
    const percent = Number(root[4]!.replace('%', ''));
    expect(section(d, 'disk')).toMatchObject({ ok: true });
    // The stack's disk is shared with everything else running: a point may come or go in between.
    const seen = Number(/^ *(\d+)% \/: /m.exec(section(d, 'disk')!.text)?.[1]);
    expect(Math.abs(seen - percent)).toBeLessThanOrEqual(1);
    expect(d.figures.diskMaxPercent).toBeGreaterThanOrEqual(seen);
  });

  it('reads memory and load from /proc', async () => {
    const meminfo = await inHost('cat', '/proc/meminfo');
    const total = Number(/MemTotal:\s+(\d+)/.exec(meminfo)![1]) * 1024;
    expect(section(d, 'memory')!.text).toContain(`of ${(total / 1024 ** 3).toFixed(1)} GiB`);
    expect(d.figures.memoryUsedPercent).toBeGreaterThan(0);
    expect(d.figures.memoryUsedPercent).toBeLessThan(100);
    expect(d.figures.cpus).toBe(Number(await inHost('nproc')));
    expect(d.figures.load1).toBeGreaterThanOrEqual(0);
    expect(section(d, 'load')!.text).toMatch(new RegExp(`^load \\d+\\.\\d+ \\d+\\.\\d+ \\d+\\.\\d+ on ${d.figures.cpus} CPUs`));
  });

  it('lists the top processes by CPU and by memory, without ps', () => {
    const text = section(d, 'processes')!.text;
    expect(text).toMatch(/^\d+ processes; CPU over \d+\.\d s\nby CPU:\n {4}PID {3}%CPU {3}%MEM {8}RSS COMMAND\n/);
    // systemd and its journal, logind: whichever of them other tests' processes leave in the top 5.
    expect(text).toMatch(/^ +\d+ +\d+\.\d +\d+\.\d +[\d.]+ \w+ systemd(-\w+)?$/m);
    // by memory: at most 5 rows under its header.
    expect(text.split('by memory:\n')[1]!.split('\n').length).toBeLessThanOrEqual(6);
  });

  it("lists the listening sockets, the demo unit's among them", () => {
    const port = new URL(stack().systemdDemoUrl).port;
    expect(section(d, 'sockets')!.text).toMatch(new RegExp(`^tcp6? +(127\\.0\\.0\\.1|0\\.0\\.0\\.0|\\[::\\]):${port}$`, 'm'));
  });

  it('connects to each host:port and names the ones that refused', () => {
    expect(section(d, 'tcp')).toMatchObject({ ok: false });
    expect(section(d, 'tcp')!.text).toMatch(
      new RegExp(
        `^ok +127\\.0\\.0\\.1:${stack().pg.port} \\(\\d+ ms\\)\\nFAILED 127\\.0\\.0\\.1:${closed}: connection refused \\(ECONNREFUSED\\)$`,
      ),
    );
    expect(d.figures.tcpFailed).toEqual([`127.0.0.1:${closed}`]);
  });

  it('sizes the configured paths with du -s', () => {
    expect(section(d, 'paths')).toMatchObject({ ok: true });
    expect(section(d, 'paths')!.text).toMatch(new RegExp(`^ +3\\.\\d MiB ${dir}$`));
  });

  it('gathers only the sections asked for', async () => {
    const only = await agent.hostDiagnostics('web', { sections: ['load', 'memory'], tcp: [], top: 3 });
    expect(only.sections.map((s) => s.title)).toEqual(['load', 'memory']);
    expect(only.figures.diskMaxPercent).toBe(-1);
  });
});

describe('host diagnostics inside a container (docker exec)', () => {
  it("gathers the same figures inside a container of the demo's busybox image, asking /bin/busybox for the applets it lacks", async () => {
    const d = await engine.hostDiagnostics('demo', { tcp: [`127.0.0.1:${stack().redis.port}`], top: 10 });
    expect(d.sections.map((s) => [s.title, s.ok])).toEqual([
      ['disk', true],
      ['memory', true],
      ['load', true],
      ['processes', true],
      ['sockets', true],
      ['tcp', true],
      ['paths', false],
    ]);
    expect(section(d, 'disk')!.text).toMatch(/^ *\d+% \/: .* \(overlay\)$/m);
    expect(section(d, 'memory')!.text).toMatch(/^cgroup: /m);
    // The container's own processes: its web server is PID 1's child, busybox httpd.
    expect(section(d, 'processes')!.text).toMatch(/^ +1 +\d+\.\d +\d+\.\d +[\d.]+ \w+ serve$/m);
    expect(section(d, 'sockets')!.text).toBe('1 listening\ntcp   127.0.0.1:18080');
    expect(section(d, 'paths')!.text).toMatch(/^ +[\d.]+ KiB \/www\n +missing \/no-such-dir: No such file or directory$/);
    expect(d.figures).toMatchObject({ tcpFailed: [], cpus: expect.any(Number) });
    expect(d.figures.cpus).toBeGreaterThan(0);
  });

  it('refuses a container that is not running, a database target and a host the config does not name', async () => {
    const down = await failureOf(engine.hostDiagnostics('stopped', { tcp: [], top: 5 }));
    expect(down.type).toBe(failureTypes.transient);
    expect(down.message).toMatch(/^host diagnostics of target 'stopped' failed: container 't-hostdiag-stopped-\w+' is not running/);
    const db = await failureOf(engine.hostDiagnostics('app-db', { tcp: [], top: 5 }));
    expect(db.message).toBe(
      "host diagnostics of target 'app-db' refused: host diagnostics are for containers and systemd units, and 'app-db' is a postgres target",
    );
    const elsewhere = await failureOf(engine.hostDiagnostics('demo', { tcp: ['10.1.2.3:22'], top: 5 }));
    expect(elsewhere.nonRetryable).toBe(true);
    expect(elsewhere.message).toBe(
      "host diagnostics of target 'demo' refused: tcp check of 10.1.2.3:22: '10.1.2.3' is not a host the config names (known: 127.0.0.1)",
    );
  });

  it('is refused by the engine for a systemd unit, which its host agent diagnoses', async () => {
    const f = await failureOf(engine.hostDiagnostics('web', { tcp: [], top: 5 }));
    expect(f.message).toBe(
      "host diagnostics of target 'web' refused: systemd target 'web' is diagnosed on its host, by its host agent; this worker is not one",
    );
  });
});
