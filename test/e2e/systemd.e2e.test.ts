// The real loop for a systemd unit: Prometheus scrapes demo-web.service inside the systemd host, the
// unit's main process is killed, ServiceDown fires, Alertmanager posts to the engine, and the runbook
// restarts the unit through the host agent that runs inside that host (as a transient systemd unit,
// the way an operator would run it) on the host's own task queue. The engine itself has no systemd.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostTaskQueue } from '../../config/load.js';
import type { RunningEngine } from '../../worker/engine.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { holdAlertLoop, runThatActed } from '../support/alertLoop.js';
import { dockerSync } from '../support/docker.js';
import { writeConfig } from '../support/engineProcess.js';
import { untilPromSeesUp } from '../support/prometheus.js';
import { stack } from '../support/stack.js';
import { httpOk, until, untilHttpOk } from '../support/wait.js';
import { e2eConfig, e2eConfigInput, e2eQueue, startTestEngine } from './engine.js';

const host = 'remediation-host';
const agentUnit = 'remediation-agent-e2e.service';
const inHost = (...args: string[]) => dockerSync('exec', stack().systemdContainer, ...args);
const unitProperty = (name: string) => inHost('systemctl', 'show', '-p', name, '--value', stack().systemdUnit);

function config() {
  return e2eConfigInput({
    targets: {
      'demo-web': {
        kind: 'systemd',
        unit: stack().systemdUnit,
        host,
        labels: { service: 'demo-web' },
        health: { url: `${stack().systemdDemoUrl}/health`, timeout: '1s' },
      },
    },
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: ['demo-web'], runbook: 'serviceDown' }],
  });
}

describe('service down on a systemd unit, the real loop through a host agent', () => {
  let engine: RunningEngine;
  let release: (() => void) | undefined;
  const id = incidentWorkflowId('serviceDown', 'demo-web');

  beforeAll(async () => {
    release = await holdAlertLoop();
    // The agent reads its config from the stack directory, which the systemd host mounts read-only.
    const dir = join(stack().dir, 'e2e-systemd');
    mkdirSync(dir, { recursive: true });
    const file = writeConfig(config(), dir);
    // An agent left by an interrupted run would serve the queue with an old config.
    try {
      inHost('systemctl', 'stop', agentUnit);
    } catch {
      // None running: the usual case.
    }
    inHost(
      'systemd-run',
      `--unit=${agentUnit}`,
      '--collect',
      '-p',
      'WorkingDirectory=/opt/engine',
      '--setenv=LOG_LEVEL=info',
      '/usr/local/bin/node',
      '--import',
      'tsx',
      'worker/main.ts',
      '--config',
      file,
      'agent',
      '--host',
      host,
    );
    engine = await startTestEngine({ targets: config().targets, bindings: config().bindings });
    // The agent is ready when it polls its host's activity queue.
    const queue = hostTaskQueue(e2eConfig(config()), host);
    expect(queue).toBe(`${e2eQueue}-host-${host}`);
    await until('the host agent polling its queue', 60_000, async () => {
      const d = await engine.client.workflowService.describeTaskQueue({
        namespace: stack().temporalNamespace,
        taskQueue: { name: queue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      return (d.pollers ?? []).length > 0 ? true : undefined;
    });
    inHost('systemctl', 'start', stack().systemdUnit);
    await untilHttpOk(`${stack().systemdDemoUrl}/health`, 'demo-web healthy');
    await untilPromSeesUp('demo-web');
    await engine.client.workflow
      .getHandle(id)
      .terminate('clean slate for the end-to-end test')
      .catch(() => {});
  }, 600_000);

  afterAll(async () => {
    try {
      inHost('systemctl', 'start', stack().systemdUnit);
      inHost('systemctl', 'stop', agentUnit);
    } catch {
      // Best effort: the stack's own health check restarts the unit if this failed.
    }
    await engine?.stop();
    release?.();
  });

  it('restarts a killed unit on its host and records the recovery; Prometheus sees it up again', async () => {
    const pidBefore = unitProperty('MainPID');
    const since = Date.now();
    inHost('systemctl', 'kill', '--signal=SIGKILL', stack().systemdUnit);
    await until('the unit to be down', 10_000, async () => (unitProperty('ActiveState') !== 'active' ? true : undefined));

    const result = await runThatActed(engine.client, id, since, 'a run that handles the outage');

    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.timeline.some((e) => e.step === 'restart' && /restart/i.test(e.event))).toBe(true);
    expect(unitProperty('ActiveState')).toBe('active');
    expect(unitProperty('MainPID')).not.toBe(pidBefore);
    // The restart was the agent's: its journal inside the host has the audit line, the engine has no systemd here.
    expect(inHost('journalctl', '-u', agentUnit, '--no-pager', '-o', 'cat')).toMatch(/restart/i);
    expect(await httpOk(`${stack().systemdDemoUrl}/health`)).toBe(true);
    await untilPromSeesUp('demo-web', 'prometheus sees demo-web up again');
  }, 150_000);
});
