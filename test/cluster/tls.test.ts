// The locked control plane: the stack's cluster takes only clients with a certificate from its CA
// (stack/lib/cluster-tls.sh), its nodes only each other. The engine and a host agent, each with a
// certificate of its own, complete a runbook through it; everything else is refused at the handshake,
// and no private key ends up in a log or a workflow history. Only with TEMPORAL_MODE=cluster.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Connection, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostTaskQueue, parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { incidentWorkflowId, type RunbookResult } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { foreignClient, leakedKeyForms } from '../support/certificates.js';
import { clusterUp } from '../support/cluster.js';
import { dockerSync } from '../support/docker.js';
import { spawnEngine, writeConfig, type EngineProcess } from '../support/engineProcess.js';
import { historyEvents } from '../support/history.js';
import { closedPort } from '../support/ports.js';
import { stack, temporalMode, type TemporalTls } from '../support/stack.js';
import { temporalClient, temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { until, untilHttpOk } from '../support/wait.js';

const run = promisify(execFile);
const host = 'remediation-host';
const inHost = (...args: string[]) => dockerSync('exec', stack().systemdContainer, ...args);

describe.skipIf(temporalMode() !== 'cluster')('the Temporal cluster over mTLS', () => {
  let tls: TemporalTls;
  let client: Client;
  let connection: Connection;
  const engines: EngineProcess[] = [];
  const cleanups: Array<() => void | Promise<unknown>> = [];
  const read = (file: string) => readFileSync(file);

  beforeAll(async () => {
    const s = stack();
    if (!s.temporalTls) throw new Error('the stack\'s cluster has no TLS in stack.env: run "npm run stack -- up --temporal cluster" again');
    tls = s.temporalTls;
    // Whatever a fault test before this one left down comes back first.
    await clusterUp();
    ({ client, connection } = await temporalClient());
  }, 200_000);

  afterAll(async () => {
    await Promise.all(engines.map((e) => e.stop(10_000)));
    for (const clean of cleanups.reverse()) {
      try {
        await clean();
      } catch (err) {
        console.error(`cleanup after the TLS tests: ${String(err)}`);
      }
    }
    await connection?.close();
  }, 60_000);

  /** A worker's connection (the engine's kind), with the given TLS; resolves once the server answered. */
  async function nativeConnect(options: Parameters<typeof NativeConnection.connect>[0]): Promise<void> {
    const c = await NativeConnection.connect(options);
    await c.close();
  }

  it('refuses a client without a certificate, and one that does not speak TLS', async () => {
    const address = stack().temporalAddress;
    const serverOnly = { serverRootCACertificate: read(tls.ca), serverNameOverride: tls.serverName };
    // The same connection with the engine's certificate is served: what is refused below is the missing certificate.
    await expect(
      nativeConnect({ address, tls: { ...serverOnly, clientCertPair: { crt: read(tls.engine.cert), key: read(tls.engine.key) } } }),
    ).resolves.toBeUndefined();
    // The server closes the handshake (reported as a broken pipe or a cancelled call, by timing).
    await expect(nativeConnect({ address, tls: serverOnly })).rejects.toThrow(/Failed to call GetSystemInfo/);
    await expect(nativeConnect({ address })).rejects.toThrow(/Failed to call GetSystemInfo/);
    // The client library the CLI and the webhook use: refused too (it reports the refusal as a connect that never completed).
    await expect(Connection.connect({ address, tls: serverOnly, connectTimeout: '3s' })).rejects.toThrow(/Failed to connect/);
  });

  it("refuses a client certificate from another CA, even one with the engine's name and usage", async () => {
    const foreign = foreignClient('remediation-engine');
    cleanups.push(() => rmSync(dirname(foreign.ca), { recursive: true, force: true }));
    const address = stack().temporalAddress;
    await expect(
      nativeConnect({
        address,
        tls: {
          serverRootCACertificate: read(tls.ca),
          serverNameOverride: tls.serverName,
          clientCertPair: { crt: read(foreign.cert), key: read(foreign.key) },
        },
      }),
    ).rejects.toThrow(/Failed to call GetSystemInfo/);
    // And a client that trusts another CA refuses the cluster: the server is authenticated too.
    await expect(
      nativeConnect({
        address,
        tls: {
          serverRootCACertificate: read(foreign.ca),
          serverNameOverride: tls.serverName,
          clientCertPair: { crt: read(tls.engine.cert), key: read(tls.engine.key) },
        },
      }),
    ).rejects.toThrow(/UnknownIssuer|certificate/i);
  });

  it('keeps clients away from history and matching (the nodes have a CA of their own) and locks the HTTP API too', async () => {
    const probe = join(process.env.REMEDIATION_CACHE ?? join(homedir(), '.cache', 'remediation'), 'bin', 'grpc-health-probe-v0.4.63');
    const historyAddress = stack().temporalAddress.replace(/:(\d+)$/, (_, p: string) => `:${Number(p) + 1}`);
    const asClient = (cert: string, key: string, ca: string) =>
      run(
        probe,
        [
          '-addr',
          historyAddress,
          '-service',
          'temporal.api.workflowservice.v1.HistoryService',
          '-connect-timeout',
          '2s',
          '-rpc-timeout',
          '2s',
          '-tls',
          '-tls-ca-cert',
          ca,
          '-tls-client-cert',
          cert,
          '-tls-client-key',
          key,
          '-tls-server-name',
          tls.serverName,
        ],
        { timeout: 15_000 },
      );
    const internode = (f: string) => join(dirname(tls.ca), f);
    // A node's certificate is served (the stack's own health check does this)…
    await expect(
      asClient(internode('internode.pem'), internode('internode-key.pem'), internode('internode-ca.pem')),
    ).resolves.toBeDefined();
    // …the administrator's is not, though it is valid for the frontend.
    await expect(asClient(tls.admin.cert, tls.admin.key, internode('internode-ca.pem'))).rejects.toThrow(/certificate|handshake|failed/i);

    // The frontend's HTTP API (gRPC port + 10) takes the same client certificates.
    const httpPort = Number(/:(\d+)$/.exec(stack().temporalAddress)![1]) + 10;
    const get = (cert?: { cert: string; key: string }) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: httpPort,
            path: `/api/v1/namespaces/${stack().temporalNamespace}`,
            ca: read(tls.ca),
            servername: tls.serverName,
            ...(cert ? { cert: read(cert.cert), key: read(cert.key) } : {}),
            timeout: 5_000,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.end();
      });
    await expect(get(tls.admin)).resolves.toBe(200);
    await expect(get()).rejects.toThrow(/certificate|socket|ECONNRESET|EPIPE|closed/i);
  });

  it('an engine that does not trust the cluster stops at start naming the reason, and logs no key', async () => {
    const foreign = foreignClient();
    cleanups.push(() => rmSync(dirname(foreign.ca), { recursive: true, force: true }));
    const config = engineConfig(uniqueQueue('tls-wrong-ca'), 'http://127.0.0.1:1/health', 0);
    config.temporal = { ...config.temporal, tls: { ...config.temporal!.tls, ca: { file: foreign.ca } } };
    let failure = '';
    try {
      engines.push(await spawnEngine(config, { env: { LOG_LEVEL: 'debug' }, startTimeoutMs: 60_000 }));
    } catch (err) {
      failure = (err as Error).message;
    }
    expect(failure).toMatch(/engine exited/);
    expect(failure).toMatch(/UnknownIssuer|certificate/i);
    expect(leakedKeyForms(failure, [tls.engine.key])).toEqual([]);
  }, 90_000);

  /** The engine's config for one systemd unit on the stack's systemd host; the host agent's differs in its certificate. */
  function engineConfig(taskQueue: string, healthUrl: string, unitPort: number): EngineConfigInput {
    return {
      temporal: { ...temporalConfigInput('engine'), taskQueue },
      webhook: { listen: '127.0.0.1:0', token: stack().webhookToken },
      hosts: { [host]: {} },
      targets: {
        web: {
          kind: 'systemd',
          unit: `remediation-tls-web-${unitPort}.service`,
          host,
          labels: { service: 'web' },
          health: { url: healthUrl, timeout: '1s' },
        },
      },
      bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: ['web'], runbook: 'serviceDown' }],
      channels: { log: { type: 'log' } },
      escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['log'] }] } } },
      guardrails: { restarts: { max: 1000, window: '1h' }, restartBackoff: '500ms', verifyDeadline: '15s', verifyInterval: '500ms' },
    };
  }

  it('the engine and a host agent, each with its own certificate, restart a unit; no key in their logs or the history', async () => {
    // A unit of this test's own on the systemd host (runtime, so a restarted host forgets it): nobody else's alert loop.
    const port = await closedPort();
    const unit = `remediation-tls-web-${port}.service`;
    const healthUrl = `http://127.0.0.1:${port}/health`;
    const unitFile = `/run/systemd/system/${unit}`;
    execFileSync('docker', ['exec', '-i', stack().systemdContainer, 'tee', unitFile], {
      input: `[Unit]\nDescription=remediation TLS test\n[Service]\nExecStart=/bin/busybox httpd -f -p 127.0.0.1:${port} -h /www\nRestart=no\n`,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    cleanups.push(() => {
      inHost('systemctl', 'stop', unit);
      inHost('rm', '-f', unitFile);
      inHost('systemctl', 'daemon-reload');
    });
    inHost('systemctl', 'daemon-reload');
    inHost('systemctl', 'start', unit);
    await untilHttpOk(healthUrl, `${unit} serving`);

    const taskQueue = uniqueQueue('tls');
    const config = engineConfig(taskQueue, healthUrl, port);
    // The agent reads its config from the stack directory, which the systemd host mounts read-only, as it does the certificates.
    const agentDir = join(stack().dir, 'e2e-systemd', `tls-${randomBytes(4).toString('hex')}`);
    mkdirSync(agentDir, { recursive: true });
    cleanups.push(() => rmSync(agentDir, { recursive: true, force: true }));
    const agentFile = writeConfig({ ...config, temporal: { ...temporalConfigInput('hostAgent'), taskQueue } }, agentDir);
    const agentUnit = `remediation-agent-tls-${port}.service`;
    inHost(
      'systemd-run',
      `--unit=${agentUnit}`,
      '-p',
      'WorkingDirectory=/opt/engine',
      '--setenv=LOG_LEVEL=debug',
      '/usr/local/bin/node',
      '--import',
      'tsx',
      'worker/main.ts',
      '--config',
      agentFile,
      'agent',
      '--host',
      host,
    );
    // A transient unit: gone once stopped.
    cleanups.push(() => void inHost('systemctl', 'stop', agentUnit));
    const engine = await spawnEngine(config, { env: { LOG_LEVEL: 'debug' } });
    engines.push(engine);
    cleanups.push(() => terminateRunning(client, taskQueue, 'end of the TLS test'));

    const hostQueue = hostTaskQueue(parseConfig(config, 'tls test config'), host);
    const agentPoller = await until('the host agent polling its queue over mTLS', 90_000, async () => {
      const d = await client.workflowService.describeTaskQueue({
        namespace: stack().temporalNamespace,
        taskQueue: { name: hostQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      return d.pollers?.[0]?.identity ?? undefined;
    });

    const pidBefore = inHost('systemctl', 'show', '-p', 'MainPID', '--value', unit);
    inHost('systemctl', 'kill', '--signal=SIGKILL', unit);
    await until(`${unit} down`, 10_000, async () =>
      inHost('systemctl', 'show', '-p', 'ActiveState', '--value', unit) !== 'active' ? true : undefined,
    );
    const answer = await postAlerts(engine.webhookUrl, stack().webhookToken, [
      { labels: { alertname: 'ServiceDown', service: 'web', severity: 'critical' } },
    ]);
    expect(answer.status).toBe(200);

    const handle = client.workflow.getHandle(incidentWorkflowId('serviceDown', 'web'));
    const result = (await Promise.race([
      handle.result(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no result within 90 s; engine log:\n${engine.output().slice(-3_000)}`)), 90_000),
      ),
    ])) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(inHost('systemctl', 'show', '-p', 'ActiveState', '--value', unit)).toBe('active');
    expect(inHost('systemctl', 'show', '-p', 'MainPID', '--value', unit)).not.toBe(pidBefore);

    // The restart was the agent's, through its own connection: the history names its identity.
    const events = await historyEvents(handle);
    const restarts = new Set(
      events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget').map((e) => String(e.eventId)),
    );
    const startedBy = events
      .filter((e) => restarts.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.identity);
    expect(startedBy.length).toBeGreaterThan(0);
    expect(new Set(startedBy)).toEqual(new Set([agentPoller]));

    // No private key of any client in the engine's debug log, the agent's journal, or the history.
    const keys = [tls.engine.key, tls.hostAgent.key, tls.admin.key];
    expect(engine.output()).toContain('"engine running"'); // the log was read, not an empty one
    expect(leakedKeyForms(engine.output(), keys)).toEqual([]);
    expect(leakedKeyForms(inHost('journalctl', '-u', agentUnit, '--no-pager', '-o', 'cat'), keys)).toEqual([]);
    expect(leakedKeyForms(JSON.stringify(events), keys)).toEqual([]);
    // The check itself finds a key where there is one.
    expect(
      leakedKeyForms(`x ${readFileSync(tls.engine.key, 'utf8')} ${JSON.stringify(readFileSync(tls.engine.key))}`, [tls.engine.key]).length,
    ).toBeGreaterThan(3);
  }, 240_000);
});
