// An engine started in-process against the stack, with the real webhook on the port the stack's
// Alertmanager posts to, the real worker, and the real activities.
import { pino } from 'pino';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { startEngine, type RunningEngine } from '../../worker/engine.js';
import { bundlePath } from '../support/globalSetup.js';
import { closedPort } from '../support/ports.js';
import { stack } from '../support/stack.js';
import { quietRuntime, temporalConfigInput } from '../support/temporal.js';

/** One task queue for every end-to-end run, so the guard workflow they share always has a worker. */
export const e2eQueue = 'remediation-e2e';

/** The stack's demo container as a target, labelled as Prometheus's ServiceDown alert names it. */
export function demoTarget(): NonNullable<EngineConfigInput['targets']>[string] {
  const s = stack();
  return {
    kind: 'container',
    container: s.demoContainer,
    stopTimeout: '5s',
    labels: { service: 'demo' },
    health: { url: `${s.demoUrl}/health`, timeout: '1s' },
  };
}

/**
 * HTTP targets whose health URL nothing listens on and that nothing can restart: each run finds its
 * target down and pages (storm tests: many runs, nothing touched).
 */
export async function unreachableTargets(names: string[]): Promise<NonNullable<EngineConfigInput['targets']>> {
  const health = `http://127.0.0.1:${await closedPort()}/health`;
  return Object.fromEntries(names.map((name) => [name, { kind: 'http' as const, health: { url: health, timeout: '1s' } }]));
}

/** The config an end-to-end engine runs with, as an operator would write it. */
export function e2eConfigInput(overrides: Partial<EngineConfigInput> = {}): EngineConfigInput {
  const s = stack();
  return {
    temporal: { ...temporalConfigInput(), taskQueue: e2eQueue },
    webhook: { listen: `127.0.0.1:${s.webhookPort}`, token: s.webhookToken },
    alertmanager: { url: s.alertmanagerUrl },
    hosts: { 'remediation-host': {} },
    targets: { demo: demoTarget() },
    bindings: [{ alert: 'ServiceDown', targetLabel: 'service', targets: ['demo'], runbook: 'serviceDown' }],
    channels: { log: { type: 'log' } },
    escalation: { default: 'standard', policies: { standard: { levels: [{ name: 'on-call', after: '0s', channels: ['log'] }] } } },
    operators: [{ name: 'alice', role: 'operator' }],
    // Many runs of these tests fall inside one hour: the anti-flap limit is tested on its own.
    guardrails: { restarts: { max: 1000, window: '1h' }, restartBackoff: '1s', verifyDeadline: '20s', verifyInterval: '500ms' },
    ...overrides,
  };
}

export function e2eConfig(overrides: Partial<EngineConfigInput> = {}) {
  return parseConfig(e2eConfigInput(overrides), 'e2e config');
}

export async function startTestEngine(overrides: Partial<EngineConfigInput> = {}): Promise<RunningEngine> {
  quietRuntime();
  return startEngine({ config: e2eConfig(overrides), logger: pino({ level: 'warn' }), workflowBundlePath: bundlePath });
}
