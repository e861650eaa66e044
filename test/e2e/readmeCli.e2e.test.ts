// The README's CLI examples, run as printed: every line of the block marked `cli-examples` runs in
// bash as a separate process, in order, against an engine started the way `npm start` starts it:
// the real entry point (worker/main.ts engine), config/example.yaml with its own embedded Temporal
// dev server, the operator API, and alice's token in .data/remediate-credentials. Only what would
// touch the shared stack differs: dry run, ports of its own, and a demo container and database the
// engine finds down (so there is an incident to show, acknowledge and approve). Each line must exit
// 0 and print what it is for; each read command must also answer with JSON under --json.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { EngineConfigInput } from '../../config/schema.js';
import { newOperatorToken } from '../../triggers/operators/credentials.js';
import { holdAlertLoop } from '../support/alertLoop.js';
import { alertmanagerPayload, type AlertInit } from '../support/alertmanagerPayload.js';
import { repoRoot, spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { closedPort, reservedDevServerPort, reservedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { until } from '../support/wait.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The fenced sh block after the `cli-examples` marker: its command lines, as printed. */
export function readmeExamples(readme: string): string[] {
  const at = readme.indexOf('<!-- cli-examples:');
  if (at < 0) throw new Error('README.md has no <!-- cli-examples: ... --> marker');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error('no ```sh block after the cli-examples marker');
  return block[1]!.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

const lines = readmeExamples(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
const home = mkdtempSync(join(tmpdir(), 'remediate-readme-'));
const alice = newOperatorToken();
const webhookToken = randomBytes(16).toString('hex');
let engine: EngineProcess;
let apiUrl: string;
let configFile: string;

/**
 * One line in bash, from `home` (laid out as the repository is after `npm start`), with only PATH
 * and HOME in the environment and the `export`s of the lines before it. `npx remediate` is the
 * package's bin, as npx finds it in the repository; no other npx command is allowed to run.
 */
function bash(line: string, exports: string[]): Promise<Run> {
  const script = [
    `npx() { if [ "$1" = remediate ]; then shift; ${JSON.stringify(process.execPath)} ${JSON.stringify(join(repoRoot, 'bin', 'remediate.js'))} "$@"; else echo "npx $1: not a README example" >&2; return 127; fi; }`,
    ...exports,
    line,
  ].join('\n');
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], {
      cwd: home,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const cli = (args: string) => bash(`npx remediate ${args}`, ['export REMEDIATE_CREDENTIALS=.data/remediate-credentials']);

async function showJson(workflowId: string): Promise<any> {
  const r = await cli(`show ${workflowId} --json`);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

/** config/example.yaml, changed only where running it here would touch what other tests share. */
async function exampleConfig(): Promise<EngineConfigInput> {
  const s = stack();
  const config = parseYaml(readFileSync(join(repoRoot, 'config', 'example.yaml'), 'utf8')) as EngineConfigInput & Record<string, any>;
  const down = `http://127.0.0.1:${await closedPort()}/health`;
  config.dataDir = join(home, '.data');
  config.backupDir = join(home, '.data', 'backups');
  // Nothing is restarted, silenced or written: the demo container and databases are every test's.
  config.dryRun = true;
  // Its own embedded dev server, as npm start runs, on ports of its own.
  config.temporal = {
    ...config.temporal,
    taskQueue: 'remediation-readme',
    port: await reservedDevServerPort(),
    uiPort: await reservedPort(),
  };
  config.webhook = { listen: '127.0.0.1:0', token: webhookToken };
  config.api = { ...config.api, listen: `127.0.0.1:${await reservedPort()}` };
  config.alertmanager = { url: s.alertmanagerUrl };
  config.prometheus = { url: s.prometheusUrl };
  // Down to the engine: the demo's health check and app-db's port answer nothing.
  config.targets!.demo = { ...config.targets!.demo, health: { url: down, timeout: '1s' }, dependsOn: [] } as never;
  config.targets!['app-db'] = { ...config.targets!['app-db'], port: await closedPort() } as never;
  config.operators = [
    { name: 'alice', role: 'admin', tokenHash: alice.tokenHash },
    { name: 'bob', role: 'operator' },
  ];
  config.guardrails = {
    ...config.guardrails,
    restartBackoff: '1s',
    verifyDeadline: '3s',
    verifyInterval: '500ms',
    restarts: { max: 1000, window: '1h' },
  };
  return config;
}

const demoDown = {
  labels: { alertname: 'ServiceDown', service: 'demo', severity: 'warning' },
  fingerprint: randomBytes(8).toString('hex'),
};

async function postAlert(alert: AlertInit): Promise<void> {
  const res = await fetch(`${engine.webhookUrl}/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${webhookToken}` },
    body: JSON.stringify(alertmanagerPayload([alert])),
  });
  expect(res.status, await res.text()).toBe(200);
}

let release: (() => void) | undefined;

beforeAll(async () => {
  // The demo incident's silence check reads the stack's Alertmanager, where other files' maintenance
  // windows (maintenance.e2e; the claude-code-manager team's weekly run) silence service=demo: while
  // one is open the incident ends suppressed, never escalated. Those files hold this lock.
  release = await holdAlertLoop();
  const config = await exampleConfig();
  // Where npm start leaves them: the config the CLI finds as the engine does, and alice's credentials.
  mkdirSync(join(home, 'config'));
  configFile = join(home, 'config', 'example.yaml');
  writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  const s = stack();
  engine = await spawnEngine(config, {
    env: { TEMPORAL_ADDRESS: '', PG_PASSWORD: s.pg.password, MYSQL_PASSWORD: s.mysql.password, REDIS_PASSWORD: s.redis.password },
    startTimeoutMs: 90_000,
  });
  const running = engine
    .output()
    .split('\n')
    .find((l) => l.includes('"engine running"'));
  apiUrl = (JSON.parse(running!) as { operatorApi: string }).operatorApi;
  mkdirSync(join(home, '.data'), { recursive: true });
  writeFileSync(join(home, '.data', 'remediate-credentials'), `url = ${apiUrl}\ntoken = ${alice.token}\n`, { mode: 0o600 });
  chmodSync(join(home, '.data', 'remediate-credentials'), 0o600);

  // The incidents the examples act on: the demo service down (paging until acknowledged) and
  // app-db unreachable (waiting for approval to restart), from alerts as Alertmanager posts them.
  await postAlert(demoDown);
  await postAlert({ labels: { alertname: 'DatabaseConnectionFailure', service: 'app-db', severity: 'warning' } });
  await until('app-db to wait for approval', 90_000, async () =>
    (await showJson('incident:databaseConnection:app-db'))?.live?.pendingApproval ? true : undefined,
  );
  await until('demo to be escalated', 90_000, async () =>
    (await showJson('incident:serviceDown:demo'))?.live?.escalationLevel ? true : undefined,
  );
}, 900_000);

afterAll(async () => {
  await engine?.stop();
  release?.();
  rmSync(home, { recursive: true, force: true });
});

/** What each example must print (stdout unless it says stderr), by its words after `npx remediate`. */
const expected: Array<[RegExp, (r: Run) => void]> = [
  [/^whoami/, (r) => expect(r.stdout).toMatch(/alice/)],
  [/^incidents --open/, (r) => expect(r.stdout).toContain('incident:databaseConnection:app-db')],
  [/^show incident:serviceDown:demo/, (r) => expect(r.stdout).toMatch(/serviceDown[\s\S]*demo/)],
  [/^approve /, (r) => expect(r.stdout).toBe('approve by alice sent to incident:databaseConnection:app-db\n')],
  [/^ack /, (r) => expect(r.stdout).toBe('acknowledge by alice sent to incident:serviceDown:demo\n')],
  [/^preview /, (r) => expect(r.stdout).toMatch(/runbook: +serviceDown\n/)],
  [/^runbooks list/, (r) => expect(r.stdout).toMatch(/databaseConnection[\s\S]*serviceDown/)],
  [/^runbooks show serviceDown/, (r) => expect(r.stdout).toContain('escalate')],
  [/^runbooks validate/, (r) => expect(r.stdout).toMatch(/^ok: \d+ runbooks?/m)],
  [/^runbooks plan serviceDown/, (r) => expect(r.stdout).toContain('restart')],
  [/^run serviceDown --target demo/, (r) => expect(r.stdout).toContain('incident:serviceDown:demo')],
  [/^schedules list/, (r) => expect(r.stdout).toContain('weekly-db')],
  [/^report --since 7d/, (r) => expect(r.stdout).toMatch(/demo|app-db/)],
  [/--format html > report\.html/, () => expect(readFileSync(join(home, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/i)],
  [
    /^admin schedules trigger weekly-db/,
    (r) => {
      expect(r.stdout).toBe("schedule 'weekly-db' triggered\n");
      expect(r.stderr).toContain(`remediate: config ${configFile} (from the default, config/example.yaml in the working directory)`);
    },
  ],
];

/** Before a line: what the engine must have finished by then, as an operator would wait for it. */
async function before(args: string): Promise<void> {
  // A run by hand of a runbook on a target takes the incident's id: the acknowledged one follows
  // its alert, and ends once Alertmanager reports it resolved.
  if (args.startsWith('run serviceDown --target demo')) {
    await postAlert({ ...demoDown, status: 'resolved' });
    await until('the acknowledged incident on demo to end', 60_000, async () =>
      (await showJson('incident:serviceDown:demo'))?.status !== 'RUNNING' ? true : undefined,
    );
  }
}

describe("the README's CLI examples", () => {
  it('are found, and each one is checked below', () => {
    expect(lines.length).toBeGreaterThanOrEqual(15);
    for (const line of lines.filter((l) => l.startsWith('npx remediate ')))
      expect(
        expected.some(([m]) => m.test(line.slice('npx remediate '.length))),
        `no expectation for: ${line}`,
      ).toBe(true);
  });

  it('run as printed against the engine npm start starts: exit 0 and the answer each is for', async () => {
    const exports: string[] = [];
    for (const line of lines) {
      if (line.startsWith('export ')) {
        exports.push(line);
        continue;
      }
      const args = line.slice('npx remediate '.length);
      await before(args);
      const r = await bash(line, exports);
      expect(r.code, `${line}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
      const check = expected.find(([m]) => m.test(args))![1];
      try {
        check(r);
      } catch (err) {
        throw new Error(`${line}\n${(err as Error).message}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      }
    }
  }, 600_000);

  it('every read command answers with JSON under --json', async () => {
    const reads = [
      'whoami',
      'incidents',
      'show incident:databaseConnection:app-db',
      'schedules list',
      'report --since 7d',
      'preview --label alertname=ServiceDown --label service=demo',
      'runbooks list',
      'runbooks show serviceDown',
      'runbooks validate',
      'runbooks plan serviceDown --label alertname=ServiceDown --label service=demo',
      'operators list',
      'admin incidents',
      'admin show incident:databaseConnection:app-db',
      'admin schedules list',
      'admin report --since 7d',
    ];
    for (const args of reads) {
      const r = await cli(`${args} --json`);
      expect(r.code, `${args} --json\n${r.stderr}`).toBe(0);
      let parsed: unknown;
      expect(() => (parsed = JSON.parse(r.stdout)), `${args} --json printed: ${r.stdout.slice(0, 200)}`).not.toThrow();
      expect(parsed, args).toBeTypeOf('object');
    }
  }, 300_000);
});
