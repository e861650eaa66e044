// Engine configs for trigger tests: parsed by the real loader, with names unique to the run so
// incident ids and schedules never collide with the stack's own engine or another test.
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../../config/load.js';
import type { EngineConfig, EngineConfigInput } from '../../../config/schema.js';
import { stack } from '../../support/stack.js';
import { temporalConfigInput } from '../../support/temporal.js';

export function suffix(): string {
  return randomBytes(4).toString('hex');
}

export interface TriggerFixture {
  config: EngineConfig;
  raw: EngineConfigInput;
  token: string;
  /** Target names allowed by the ServiceDown binding (selected with the `service` label). */
  api: string;
  web: string;
  /** The fixed target of the DatabaseDown binding. */
  db: string;
}

/** With an address, the namespace is the stack's unless given (a test's own dev server has only 'default'). */
export function triggerConfig(options: {
  taskQueue: string;
  temporalAddress?: string;
  temporalNamespace?: string;
  extra?: Partial<EngineConfigInput>;
}): TriggerFixture {
  const s = suffix();
  const [api, web, db] = [`api-${s}`, `web-${s}`, `db-${s}`];
  const token = `tok-${randomBytes(16).toString('hex')}`;
  const raw: EngineConfigInput = {
    temporal: {
      address: options.temporalAddress,
      namespace: options.temporalNamespace ?? (options.temporalAddress ? stack().temporalNamespace : undefined),
      // The stack's cluster takes only clients with a certificate; a test's own dev server has no TLS.
      // Asked only when an address is given: a config with none (the webhook alone) needs no stack.
      ...(options.temporalAddress !== undefined && options.temporalAddress === stack().temporalAddress
        ? { tls: temporalConfigInput().tls }
        : {}),
      taskQueue: options.taskQueue,
    },
    webhook: { listen: '127.0.0.1:0', token, maxBodyBytes: 64 * 1024 },
    targets: {
      [api]: { kind: 'container', container: api, labels: { service: api } },
      [web]: { kind: 'container', container: web, labels: { service: web } },
      [db]: { kind: 'postgres', port: 1, labels: { service: db } },
    },
    bindings: [
      { alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: [api, web] },
      { alert: 'DatabaseDown', runbook: 'databaseConnection', target: db },
    ],
    channels: { oncall: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } },
    escalation: { policies: { standard: { levels: [{ name: 'oncall', after: '0s', channels: ['oncall'] }] } }, default: 'standard' },
    operators: [
      { name: 'alice', role: 'operator' },
      { name: 'bob', role: 'admin' },
    ],
    ...options.extra,
  };
  return { config: parseConfig(raw, 'trigger test'), raw, token, api, web, db };
}
