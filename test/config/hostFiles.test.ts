// What the config may name for log files and housekeeping, and what runbook files may ask of it:
// absolute, normalised paths only; no housekeeping of system or shared directories; group restarts of
// targets that can be restarted; a log file, housekeeping and logrotate only where the config says.
import { describe, expect, it } from 'vitest';
import { housekeepingDirProblem, pathProblem } from '../../config/hostFiles.js';
import { ConfigError, parseConfig } from '../../config/load.js';
import { definitionProblems } from '../../config/runbookReferences.js';
import { parseRunbook } from '../../config/runbookLoad.js';
import type { EngineConfigInput } from '../../config/schema.js';

function raw(targets: Record<string, unknown>): EngineConfigInput {
  return {
    webhook: { listen: '127.0.0.1:0', token: 'tok-host-files-0123' },
    hosts: { h1: {} },
    targets: targets as EngineConfigInput['targets'],
    channels: { log: { type: 'log' } },
    escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
  };
}

function problems(targets: Record<string, unknown>): string[] {
  try {
    parseConfig(raw(targets), 'host files test');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

const unit = (extra: Record<string, unknown>) => ({ kind: 'systemd', unit: 'genesis.service', host: 'h1', ...extra });

describe('paths in the config', () => {
  it('takes absolute, normalised paths and refuses anything else at its key', () => {
    expect(pathProblem('/var/log/genesis/orchestrator.log')).toBeUndefined();
    expect(pathProblem('var/log/x.log')).toBe('expected an absolute path');
    expect(pathProblem('/var/log/../../etc/shadow')).toBe('holds a "." or ".." segment');
    expect(pathProblem('/var/log//x')).toBe('holds "//"');
    expect(pathProblem('/var/log/x/')).toBe('ends in "/"');
    expect(pathProblem('/var/log/x\n.log')).toBe('holds a control character');
    expect(problems({ web: unit({ logFiles: { app: '/var/log/../etc/shadow' } }) })).toEqual([
      expect.stringMatching(/^targets\.web\.logFiles\.app: holds a "\." or "\.\." segment/),
    ]);
    expect(problems({ web: unit({ logFiles: { 'bad name!': '/var/log/x.log' } }) })).toEqual([
      expect.stringContaining('targets.web.logFiles'),
    ]);
    expect(
      problems({
        web: unit({
          logFiles: { app: '/var/log/genesis/app.log' },
          housekeeping: { paths: ['/var/lib/genesis/runs'], logrotate: '/etc/logrotate.d/genesis' },
        }),
      }),
    ).toEqual([]);
  });

  it('never lets housekeeping loose on a system or shared directory, or on one directory twice', () => {
    for (const dir of ['/', '/etc', '/etc/app', '/usr/local/app', '/var', '/var/log', '/var/lib', '/tmp', '/home', '/proc/1', '/boot/grub'])
      expect(housekeepingDirProblem(dir), dir).toBeDefined();
    for (const dir of ['/var/log/genesis', '/var/lib/genesis/orchestrator_runs', '/srv/app/tmp', '/opt/app/logs', '/home/app/runs'])
      expect(housekeepingDirProblem(dir), dir).toBeUndefined();
    expect(problems({ web: unit({ housekeeping: { paths: ['/var/log'] } }) })).toEqual([
      expect.stringMatching(/^targets\.web\.housekeeping\.paths\.0: \/var\/log holds more than one application's files/),
    ]);
    expect(problems({ web: unit({ housekeeping: { paths: ['/srv/app', '/srv/app/tmp'] } }) })).toEqual([
      expect.stringMatching(/paths\.1: \/srv\/app\/tmp is inside \/srv\/app, already listed/),
    ]);
    // Housekeeping is a host's: a container target has no such key.
    expect(problems({ app: { kind: 'container', container: 'app', housekeeping: { paths: ['/srv/app'] } } })).toEqual([
      expect.stringContaining('targets.app'),
    ]);
  });

  it("refuses a database's, a container runtime's or the system's directory, anything under it and any folder above it", () => {
    const refused: Array<[string, string]> = [
      ['/var/lib/postgresql', "PostgreSQL's data"],
      ['/var/lib/pgsql', "PostgreSQL's data"],
      ['/var/lib/mysql', "MySQL's or MariaDB's data"],
      ['/var/lib/redis', "Redis's data"],
      ['/var/lib/mongodb', "MongoDB's data"],
      ['/var/lib/etcd', "etcd's data"],
      ['/var/lib/docker', "Docker's images, containers and volumes"],
      ['/var/lib/containerd', "containerd's images and containers"],
      ['/var/lib/containers', "Podman's or CRI-O's images and containers"],
      ['/var/lib/kubelet', "the kubelet's pods and volumes"],
      ['/var/lib/dpkg', "the package manager's database"],
      ['/var/lib/systemd', "systemd's state"],
      ['/var/log/journal', "the systemd journal's files"],
      ['/etc', "the system's configuration"],
      ['/boot', 'the kernel and the boot loader'],
      ['/usr', 'the installed programs and libraries'],
      ['/run', "the running system's sockets, locks and pid files"],
    ];
    for (const [dir, what] of refused) {
      expect(housekeepingDirProblem(dir), dir).toBe(`${dir} holds ${what}: housekeeping never deletes there`);
      expect(housekeepingDirProblem(`${dir}/sub/dir`), `${dir}/sub/dir`).toBe(
        `${dir}/sub/dir is inside ${dir}, which holds ${what}: housekeeping never deletes there`,
      );
    }
    expect(housekeepingDirProblem('/var/lib/postgresql/16/main/base')).toBe(
      "/var/lib/postgresql/16/main/base is inside /var/lib/postgresql, which holds PostgreSQL's data: housekeeping never deletes there",
    );
    // A name that merely starts the same is another directory.
    for (const dir of ['/var/lib/postgresql-exporter', '/var/lib/mysql_backups_app', '/var/lib/dockerapp', '/etcetera/app', '/usrdata/app'])
      expect(housekeepingDirProblem(dir), dir).toBeUndefined();
    // Folders above them are refused as shared, whatever else they hold.
    for (const dir of ['/', '/var', '/var/lib', '/var/log']) expect(housekeepingDirProblem(dir), dir).toBeDefined();
    expect(housekeepingDirProblem('/var/lib/genesis/orchestrator_runs')).toBeUndefined();
    expect(
      problems({ web: unit({ housekeeping: { paths: ['/var/lib/genesis/orchestrator_runs', '/var/lib/postgresql/16/main'] } }) }),
    ).toEqual([
      'targets.web.housekeeping.paths.1: /var/lib/postgresql/16/main is inside /var/lib/postgresql, which holds PostgreSQL\'s data: housekeeping never deletes there (got "/var/lib/postgresql/16/main")',
    ]);
    expect(problems({ web: unit({ housekeeping: { paths: ['/var/lib/genesis/orchestrator_runs'] } }) })).toEqual([]);
  });
});

describe('what runbook files ask of it', () => {
  const config = parseConfig(
    raw({
      db: { kind: 'mysql', port: 13306, restartVia: 'db-box' },
      'db-box': { kind: 'container', container: 'mariadb' },
      cache: { kind: 'redis', port: 16379 },
      app: { kind: 'container', container: 'app', logFiles: { app: '/var/log/app/app.log' } },
      web: unit({ logFiles: { orchestrator: '/var/log/genesis/orchestrator.log' }, housekeeping: { paths: ['/var/lib/genesis/runs'] } }),
    }),
  );
  const check = (steps: string) =>
    definitionProblems(parseRunbook(`name: t\ndescription: t\nappliesTo: [container, systemd]\nsteps:\n${steps}`, 't.yaml'), config);

  it('a group restart names configured targets that can be restarted', () => {
    expect(check(`  - id: g\n    uses: groupRestart\n    with: { targets: [db, app, web] }\n`)).toEqual([]);
    expect(check(`  - id: g\n    uses: groupRestart\n    with: { targets: [db, cache, ghost] }\n`)).toEqual([
      't.yaml:5: step "g": with.targets[1]: target "cache" is a redis target with no restartVia: it cannot be restarted',
      expect.stringMatching(/^t\.yaml:5: step "g": with\.targets\[2\]: no target named "ghost" \(known: /),
    ]);
  });

  it('a log file is one the target lists; housekeeping and logrotate only on a systemd target that configures them', () => {
    expect(
      check(
        `  - id: l\n    uses: logs\n    with: { target: web, file: orchestrator }\n  - id: c\n    uses: housekeeping\n    with: { target: web, olderThanDays: 30 }\n`,
      ),
    ).toEqual([]);
    expect(check(`  - id: l\n    uses: logs\n    with: { target: app, file: orchestrator }\n`)).toEqual([
      't.yaml:5: step "l": with.file: target "app" has no log file "orchestrator" in its logFiles (known: app)',
    ]);
    expect(check(`  - id: l\n    uses: logs\n    with: { target: db, file: app }\n`)).toEqual([
      `t.yaml:5: step "l": with.file: log files are read in containers and on systemd units' hosts, and target "db" is a mysql`,
    ]);
    expect(
      check(
        `  - id: c\n    uses: housekeeping\n    with: { target: app, olderThanDays: 30 }\n  - id: r\n    uses: logrotate\n    with: { target: web }\n`,
      ),
    ).toEqual([
      `t.yaml:5: step "c": with: housekeeping runs on a systemd unit's host, and target "app" is a container`,
      't.yaml:8: step "r": with: target "web" has no housekeeping.logrotate file in the config',
    ]);
  });
});
