// The config file `remediate` uses is the one the engine would use (--config, $REMEDIATION_CONFIG,
// config/example.yaml in the working directory), named on stderr; and each command needs only the
// secrets it uses. As separate processes, with nothing of the stack in their environment.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { EngineConfigInput } from '../../config/schema.js';
import { repoRoot } from '../support/engineProcess.js';
import { closedPort } from '../support/ports.js';
import { runCliWithOnly } from '../support/operatorCli.js';

let dir: string;
let configPath: string;
const exampleConfig = join(repoRoot, 'config', 'example.yaml');

/** A config whose only targets' passwords are in variables no process here has set. */
function configWithUnsetSecrets(temporalPort: number): EngineConfigInput {
  return {
    temporal: { address: `127.0.0.1:${temporalPort}`, taskQueue: 'config-file-test' },
    webhook: { listen: '127.0.0.1:0', token: { env: 'CONFIG_FILE_TEST_UNSET_WEBHOOK_TOKEN' } },
    targets: {
      orders: { kind: 'container', container: 'orders', labels: { service: 'orders' } },
      'orders-db': { kind: 'postgres', port: 1, password: { env: 'CONFIG_FILE_TEST_UNSET_PG_PASSWORD' }, labels: { service: 'orders-db' } },
    },
    bindings: [{ alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: ['orders'] }],
    channels: { log: { type: 'log' } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['log'] }] } } },
    operators: [{ name: 'alice', role: 'operator' }],
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remediate-config-file-'));
  configPath = join(dir, 'engine.yaml');
  writeFileSync(configPath, stringify(configWithUnsetSecrets(await closedPort())));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('remediate finds the config as the engine does', () => {
  it('uses config/example.yaml in the working directory when nothing names one, says so, and needs none of its secrets for preview', async () => {
    const r = await runCliWithOnly(
      ['preview', '--label', 'alertname=ServiceDown', '--label', 'service=demo', '--json'],
      { HOME: dir },
      repoRoot,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`remediate: config ${exampleConfig} (from the default, config/example.yaml in the working directory)\n`);
    expect(r.json).toMatchObject({ matched: true, runbook: 'serviceDown', target: 'demo', workflowId: 'incident:serviceDown:demo' });
  });

  it('takes $REMEDIATION_CONFIG over the default and --config over both, naming the file it took', async () => {
    const fromEnv = await runCliWithOnly(['runbooks', 'list', '--json'], { HOME: dir, REMEDIATION_CONFIG: configPath }, repoRoot);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stderr).toBe(`remediate: config ${configPath} (from REMEDIATION_CONFIG)\n`);
    expect(fromEnv.json.find((r: { name: string }) => r.name === 'serviceDown').usedBy).toEqual(['alert ServiceDown (binding #0)']);

    // A relative --config is relative to the working directory, and printed absolute.
    const fromFlag = await runCliWithOnly(
      ['--config', 'engine.yaml', 'operators', 'list', '--json'],
      { HOME: dir, REMEDIATION_CONFIG: exampleConfig },
      dir,
    );
    expect(fromFlag.code, fromFlag.stderr).toBe(0);
    expect(fromFlag.stderr).toBe(`remediate: config ${configPath} (from --config)\n`);
    expect(fromFlag.json.map((o: { name: string }) => o.name)).toEqual(['alice']);
  });

  it('where the engine would find no config, says where it looked; validate checks structure only', async () => {
    const preview = await runCliWithOnly(['preview', '--label', 'alertname=ServiceDown'], { HOME: dir }, dir);
    expect(preview.code).toBe(1);
    expect(preview.stderr).toContain(
      'no configuration: pass --config <path> or set REMEDIATION_CONFIG (no config/example.yaml here, where the engine would look)',
    );
    const validate = await runCliWithOnly(['runbooks', 'validate'], { HOME: dir }, dir);
    expect(validate.code, validate.stderr).toBe(0);
    expect(validate.stdout).toContain('no configuration (--config or REMEDIATION_CONFIG): checked structure only');
  });

  it("admin mode resolves only the Temporal connection's secrets: an unset database password does not stop it, an unreachable Temporal does", async () => {
    const r = await runCliWithOnly(['--config', configPath, 'admin', 'incidents', '--json'], { HOME: dir }, dir);
    expect(r.stderr).toContain(`remediate: config ${configPath} (from --config)`);
    expect(r.stderr).not.toContain('CONFIG_FILE_TEST_UNSET');
    expect(r.code, r.stderr).toBe(3);
  });

  it('the engine names the file it was given, and the file it could not read', async () => {
    const missing = join(dir, 'missing.yaml');
    const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts', 'engine'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, REMEDIATION_CONFIG: missing, LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    const line = out.split('\n').find((l) => l.includes('"configuration file"'));
    expect(JSON.parse(line!)).toMatchObject({ config: missing, from: 'REMEDIATION_CONFIG' });
    expect(out).toContain(`invalid configuration in ${missing}:\n  - cannot read the file: ENOENT`);
  });
});
