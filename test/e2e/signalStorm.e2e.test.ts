// A storm of distinct alerts for one target: every one a signal into the same incident, flat out, for
// a minute. Thousands of signals then land in one workflow task, which used to run past the SDK's 5 s
// isolate limit; the SDK's termination of the workflow isolate corrupted Node's async-hooks stack
// and aborted the whole engine ("async hook stack has become corrupted"). The engine must live
// through it. Against a dev server of the test's own: the storm leaves an incident with ~10,000
// signals behind, which nobody else should have to see.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertmanagerPayload } from '../support/alertmanagerPayload.js';
import { startDevServer, type DevServer } from '../support/devServer.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { closedPort } from '../support/ports.js';
import { e2eConfigInput } from './engine.js';

const token = `tok-${randomBytes(12).toString('hex')}`;
const stormMs = 60_000;
let server: DevServer;
let engine: EngineProcess | undefined;

beforeAll(async () => {
  server = await startDevServer();
});

afterAll(async () => {
  await engine?.stop(5_000);
  await server?.close();
});

describe('an alert storm into one incident', () => {
  it(
    'leaves the engine running: thousands of distinct alerts for one target, flat out, for a minute',
    async () => {
      // Nothing listens on the health URL: the incident stays open (and signalled) the whole storm.
      // Dry-run: nothing is restarted.
      const health = `http://127.0.0.1:${await closedPort()}/health`;
      engine = await spawnEngine(
        e2eConfigInput({
          temporal: { address: server.address, taskQueue: 'signal-storm' },
          webhook: { listen: '127.0.0.1:0', token },
          dryRun: true,
          targets: {
            storm: {
              kind: 'container',
              container: 'remediation-e2e-storm-absent',
              labels: { service: 'storm' },
              health: { url: health, timeout: '1s' },
            },
          },
          bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: ['storm'], runbook: 'serviceDown' }],
        }),
      );
      const running = engine;
      let exited = false;
      void running.exited.then(() => (exited = true));

      // 32 senders, 20 alerts a batch, each alert its own fingerprint: nothing is coalesced or folded.
      let accepted = 0;
      const until = Date.now() + stormMs;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (!exited && Date.now() < until) {
            const alerts = Array.from({ length: 20 }, () => ({
              labels: { alertname: 'ServiceDown', service: 'storm', severity: 'critical' },
              fingerprint: randomBytes(8).toString('hex'),
            }));
            try {
              const res = await fetch(`${running.webhookUrl}/alertmanager`, {
                method: 'POST',
                headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
                body: JSON.stringify(alertmanagerPayload(alerts)),
              });
              await res.arrayBuffer();
              if (res.status === 200) accepted += alerts.length;
            } catch {
              await new Promise((r) => setTimeout(r, 100));
            }
          }
        }),
      );

      expect(running.output()).not.toContain('async hook stack has become corrupted');
      expect(exited).toBe(false);
      // It was a storm: thousands of signals reached the incident.
      expect(accepted).toBeGreaterThan(3_000);
      expect((await fetch(`${running.webhookUrl}/healthz`)).status).toBe(200);
    },
    stormMs + 60_000,
  );
});
