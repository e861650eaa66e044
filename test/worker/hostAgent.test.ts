// A host agent needs only its host's secrets and serves only its host's units: started with a config
// whose database passwords and webhook token are not in its environment, it starts, verifies and
// diagnoses its unit (inside the stack's systemd host) when a runbook asks on its queue, and refuses
// containers, databases and another host's units.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerExecRunner } from '../../activities/systemd.js';
import { ConfigError, hostTaskQueue, loadConfigFile, parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { startHostAgent, type RunningAgent } from '../../worker/hostAgent.js';
import { serving } from '../../worker/temporal.js';
import { startDevServer } from '../support/devServer.js';
import { writeConfig } from '../support/engineProcess.js';
import { probeHostAgent } from '../support/hostAgentProbe.js';
import { stack } from '../support/stack.js';
import { quietRuntime, temporalClient, temporalConfigInput, temporalConnectOptions, uniqueQueue } from '../support/temporal.js';

const host = 'agent-test-host';
const unset = `T_AGENT_UNSET_${randomBytes(6).toString('hex').toUpperCase()}`;
const taskQueue = uniqueQueue('t-agent');

function configInput(): EngineConfigInput {
  const s = stack();
  return {
    temporal: { ...temporalConfigInput('hostAgent'), taskQueue },
    webhook: { listen: '127.0.0.1:0', token: { env: `${unset}_TOKEN` } },
    hosts: { [host]: {}, 'other-host': {} },
    targets: {
      web: { kind: 'systemd', unit: s.systemdUnit, host, health: { url: `${s.systemdDemoUrl}/health`, timeout: '2s' } },
      elsewhere: { kind: 'systemd', unit: s.systemdUnit, host: 'other-host' },
      'app-db': { kind: 'postgres', port: s.pg.port, user: s.pg.user, password: { env: `${unset}_PG` }, database: s.pg.database },
      'app-mysql': { kind: 'mysql', port: s.mysql.port, user: s.mysql.user, password: { env: `${unset}_MYSQL` } },
      cache: { kind: 'redis', port: s.redis.port, password: { env: `${unset}_REDIS` } },
      demo: { kind: 'container', container: s.demoContainer },
    },
    channels: { log: { type: 'log' } },
    escalation: { policies: { standard: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'standard' },
  };
}

describe('a host agent', () => {
  let file: string;
  let agent: RunningAgent | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let native: NativeConnection | undefined;
  let client: Client;
  let connection: Connection;

  beforeAll(async () => {
    quietRuntime();
    file = writeConfig(configInput());
    ({ client, connection } = await temporalClient());
  });

  afterAll(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    await native?.close();
    await agent?.stop();
    await connection?.close();
  });

  it('the engine still refuses to start without a secret it needs, naming the key', () => {
    let problems: string[] = [];
    try {
      loadConfigFile(file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toContain(`targets.app-db.password: environment variable ${unset}_PG is not set`);
    expect(problems).toContain(`webhook.token: environment variable ${unset}_TOKEN is not set`);
  });

  it('starts without the database passwords, serves its unit, and refuses every other target', async () => {
    const config = loadConfigFile(file, { secrets: { host } });
    agent = await startHostAgent(config, host, pino({ level: 'silent' }), { run: dockerExecRunner(stack().systemdContainer) });
    expect(agent.taskQueue).toBe(hostTaskQueue(config, host));

    const probeQueue = uniqueQueue('t-agent-probe');
    native = await NativeConnection.connect(temporalConnectOptions('engine'));
    worker = await Worker.create({
      connection: native,
      namespace: stack().temporalNamespace,
      taskQueue: probeQueue,
      workflowsPath: fileURLToPath(new URL('../support/hostAgentProbe.ts', import.meta.url)),
    });
    running = worker.run();
    const others = ['app-db', 'app-mysql', 'cache', 'demo', 'elsewhere', 'no-such-target'];
    const result = await client.workflow.execute(probeHostAgent, {
      taskQueue: probeQueue,
      workflowId: `t-agent-probe-${randomBytes(4).toString('hex')}`,
      args: [agent.taskQueue, 'web', others],
      workflowExecutionTimeout: '90s',
    });

    expect(result.verified).toMatchObject({ target: 'web', healthy: true });
    expect(result.verified.checks.map((c) => [c.check, c.ok])).toEqual([
      ['unit', true],
      ['http', true],
    ]);
    expect(result.diagnosed).toEqual([
      `unit ${stack().systemdUnit} status`,
      `unit ${stack().systemdUnit} journal (last 50 lines)`,
      `health ${stack().systemdDemoUrl}/health`,
    ]);
    for (const other of others) {
      expect(result.refusals[other], other).toBe(
        `TargetNotFound: restart of target '${other}' failed: not a target of the host agent of '${host}', which acts only on that host's systemd units`,
      );
    }
    // Nothing read a secret this host does not need.
    const db = config.targets['app-db'];
    expect(db?.kind === 'postgres' && db.password?.resolved).toBe(false);
    expect(config.webhook.token.resolved).toBe(false);
  });
});

describe('a host agent without temporal.address', () => {
  it('waits for the embedded dev server of the engine on its machine, never starts one of its own, and serves once it answers', async () => {
    quietRuntime();
    const server = await startDevServer();
    await server.stop();
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-embedded-'));
    const saved = { address: process.env.TEMPORAL_ADDRESS, namespace: process.env.TEMPORAL_NAMESPACE };
    delete process.env.TEMPORAL_ADDRESS;
    delete process.env.TEMPORAL_NAMESPACE;
    let agent: RunningAgent | undefined;
    try {
      const s = stack();
      const config = parseConfig(
        {
          temporal: { port: Number(server.address.split(':')[1]), taskQueue: uniqueQueue('t-agent-embedded') },
          dataDir,
          webhook: { listen: '127.0.0.1:0', token: 'unused-token-0123456789' },
          hosts: { [host]: {} },
          targets: { web: { kind: 'systemd', unit: s.systemdUnit, host } },
          channels: { log: { type: 'log' } },
          escalation: { policies: { standard: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'standard' },
        },
        'agent config',
      );
      const lines: string[] = [];
      const starting = startHostAgent(config, host, pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }), {
        run: dockerExecRunner(s.systemdContainer),
      });
      void starting.catch(() => {});
      await new Promise((r) => setTimeout(r, 3_000));
      // Before, it started a dev server of its own here: one no engine would ever send work to.
      expect(await serving(server.address)).toBe(false);
      expect(existsSync(join(dataDir, 'temporal'))).toBe(false);
      expect(lines.join('')).toContain('this agent serves the engine on this machine, through its embedded dev server');
      expect(lines.join('')).toContain('Temporal not reachable yet; retrying');

      await server.start();
      agent = await starting;
      expect(agent.taskQueue).toBe(hostTaskQueue(config, host));
      expect(lines.join('')).toContain('host agent running');
    } finally {
      await agent?.stop();
      Object.assign(
        process.env,
        Object.fromEntries(
          Object.entries({ TEMPORAL_ADDRESS: saved.address, TEMPORAL_NAMESPACE: saved.namespace }).filter(([, v]) => v !== undefined),
        ),
      );
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
