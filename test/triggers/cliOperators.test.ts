// `remediate operators` and the API mode's refusals, as a separate process: a token is made and shown
// once with the hash to configure, operators are listed without their hashes, and a command that
// cannot be done properly (no token, an open credentials file, --as through the API) stops before
// anything is sent, with the reason.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { newOperatorToken } from '../../triggers/operators/credentials.js';
import { closedPort } from '../support/ports.js';
import { runCli, runCliWithOnly } from '../support/operatorCli.js';
import { triggerConfig } from './support/config.js';

let dir: string;
let configPath: string;
const hashes = { alice: newOperatorToken().tokenHash, vera: newOperatorToken().tokenHash };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'remediate-operators-'));
  const fx = triggerConfig({ taskQueue: 'unused' });
  fx.raw.operators = [
    { name: 'alice', role: 'operator', tokenHash: hashes.alice, tokenExpires: '2099-01-01T00:00:00Z' },
    { name: 'vera', role: 'viewer', tokenHash: hashes.vera },
    { name: 'dba', role: 'operator', runbooks: ['databaseConnection'], targets: [fx.db], chatUserId: 'U024BE7LH' },
    { name: 'olga', role: 'admin', tokenHash: newOperatorToken().tokenHash, tokenExpires: '2020-01-01T00:00:00Z' },
  ];
  configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(fx.raw));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('remediate operators token', () => {
  it('prints a new token once, the warning, and the tokenHash line that matches it, with no config at all', async () => {
    const r = await runCliWithOnly(['operators', 'token', 'alice'], { HOME: dir }, dir);
    expect(r.code, r.stderr).toBe(0);
    const token = /^ {2}(rmd_[A-Za-z0-9_-]{43})$/m.exec(r.stdout)?.[1];
    expect(token).toBeDefined();
    expect(r.stdout).toContain("New API token for 'alice'. It is shown only now: the engine keeps only its hash.");
    expect(r.stdout).toContain(`    tokenHash: sha256:${createHash('sha256').update(token!).digest('hex')}\n`);
    expect(r.stdout).not.toContain('tokenExpires');
  });

  it('makes a different token every time, and prints an expiry on request', async () => {
    const [a, b] = await Promise.all([
      runCli(['operators', 'token', 'bob', '--json']),
      runCli(['operators', 'token', 'bob', '--expires', '90d', '--json']),
    ]);
    expect(a.json.token).not.toBe(b.json.token);
    expect(a.json.tokenHash).toBe(`sha256:${createHash('sha256').update(a.json.token).digest('hex')}`);
    const expires = Date.parse(b.json.tokenExpires);
    expect(Math.abs(expires - (Date.now() + 90 * 86_400_000))).toBeLessThan(120_000);
    expect(b.json.tokenExpires).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  });

  it('refuses a name the config could not hold, and an expiry out of range', async () => {
    const bad = await runCli(['operators', 'token', 'alice; rm -rf /']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"alice; rm -rf /" is not an operator name');
    expect(bad.stdout).not.toContain('rmd_');
    const forever = await runCli(['operators', 'token', 'alice', '--expires', '5000d']);
    expect(forever.code).toBe(1);
    expect(forever.stderr).toContain('--expires 5000d: expected from 1m to 3 years');
  });
});

describe('remediate operators list', () => {
  it('shows names, roles, scopes and whether a token is set, never a hash', async () => {
    const json = await runCli(['--config', configPath, 'operators', 'list', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(json.json).toEqual([
      { name: 'alice', role: 'operator', token: 'set', tokenExpires: '2099-01-01T00:00:00Z' },
      { name: 'vera', role: 'viewer', token: 'set' },
      {
        name: 'dba',
        role: 'operator',
        runbooks: ['databaseConnection'],
        targets: [expect.stringMatching(/^db-/)],
        token: 'none',
        chatUserId: 'U024BE7LH',
      },
      { name: 'olga', role: 'admin', token: 'expired', tokenExpires: '2020-01-01T00:00:00Z' },
    ]);
    const text = await runCli(['--config', configPath, 'operators', 'list']);
    expect(text.stdout).toMatch(/^NAME\s+ROLE\s+RUNBOOKS\s+TARGETS\s+TOKEN\s+CHAT USER$/m);
    expect(text.stdout).toMatch(/^alice\s+operator\s+all\s+all\s+set, until 2099-01-01 00:00:00Z\s+-$/m);
    expect(text.stdout).toMatch(/^olga\s+admin\s+all\s+all\s+expired, until 2020-01-01 00:00:00Z/m);
    for (const out of [json.stdout, text.stdout]) {
      expect(out).not.toContain('sha256');
      expect(out).not.toContain(hashes.alice.slice(7, 23));
    }
  });
});

describe('the API mode refuses before sending anything', () => {
  it('without a token: exit 4, and where to put one', async () => {
    const r = await runCliWithOnly(['incidents'], { HOME: dir }, dir);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      `remediate: no operator token: set REMEDIATE_TOKEN (and REMEDIATE_URL), or put url and token in ${join(dir, '.config', 'remediate', 'credentials')} (mode 0600); ` +
        'an administrator makes one with "remediate operators token NAME"\n',
    );
  });

  it('with a credentials file others can read: exit 4, naming the file and the fix', async () => {
    const home = join(dir, 'home-0644');
    mkdirSync(join(home, '.config', 'remediate'), { recursive: true });
    const file = join(home, '.config', 'remediate', 'credentials');
    const { token } = newOperatorToken();
    writeFileSync(file, `url = http://127.0.0.1:${await closedPort()}\ntoken = ${token}\n`);
    chmodSync(file, 0o644);
    const r = await runCliWithOnly(['incidents'], { HOME: home }, home);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`credentials file ${file} is accessible by group or others (mode 0644)`);
    expect(r.stderr).not.toContain(token);
    // Made private, the same file is used: the next stop is the engine that is not there.
    chmodSync(file, 0o600);
    const ok = await runCliWithOnly(['incidents'], { HOME: home }, home);
    expect(ok.code).toBe(3);
    expect(ok.stderr).toMatch(/cannot reach the operator API at http:\/\/127\.0\.0\.1:\d+ \(from .*credentials\): connection refused/);
  });

  it("with --as: the identity is the token's, and admin mode is where a name is given", async () => {
    const r = await runCli(['approve', 'incident:serviceDown:demo', '--as', 'alice', '--reason', 'x'], {
      REMEDIATE_TOKEN: newOperatorToken().token,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '--as is not accepted here: through the operator API you act as the operator your token names ("remediate whoami" says who)',
    );
    expect(r.stderr).toContain('"remediate admin approve … --as NAME"');
    const run = await runCli(['run', 'serviceDown', '--target', 'demo', '--as', 'alice'], { REMEDIATE_TOKEN: newOperatorToken().token });
    expect(run.stderr).toContain('"remediate admin run … --as NAME"');
    const cancel = await runCli(['cancel', 'incident:serviceDown:demo', '--as', 'alice', '--reason', 'x'], {
      REMEDIATE_TOKEN: newOperatorToken().token,
    });
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain('"remediate admin cancel … --as NAME"');
  });

  it('a schedule change through the API points to admin mode', async () => {
    const r = await runCli(['schedules', 'pause', 'weekly-db', '--reason', 'migration']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('schedules pause is an administrator command: remediate admin schedules pause NAME');
  });

  it('admin mode needs the config and --as', async () => {
    const noConfig = await runCli(['admin', 'incidents'], {}, dir);
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr).toContain('no configuration: pass --config <path> or set REMEDIATION_CONFIG');
    const noAs = await runCli(['--config', configPath, 'admin', 'approve', 'incident:serviceDown:demo', '--reason', 'x']);
    expect(noAs.code).toBe(1);
    expect(noAs.stderr).toContain("required option '--as <operator>' not specified");
    // A cancel names its operator as a decision does, and says why on the run's timeline.
    const cancelNoAs = await runCli(['--config', configPath, 'admin', 'cancel', 'incident:serviceDown:demo', '--reason', 'x']);
    expect(cancelNoAs.code).toBe(1);
    expect(cancelNoAs.stderr).toContain("required option '--as <operator>' not specified");
    const help = await runCli(['--config', configPath, 'admin', 'cancel', '--help']);
    expect(help.stdout).toContain('Usage: remediate admin cancel [options] <workflowId>');
    expect(help.stdout).toMatch(/--as <operator> +the configured operator this is done as/);
    expect(help.stdout).toMatch(/--reason <text> +why; recorded in the incident timeline/);
  });
});
