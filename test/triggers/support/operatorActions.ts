// The operator actions as the API takes them, over a real Temporal connection, for tests that call
// them directly: every audit entry kept, and each configured operator as an API identity.
import { parseConfig } from '../../../config/load.js';
import type { EngineConfigInput } from '../../../config/schema.js';
import { OperatorActions } from '../../../triggers/operators/actions.js';
import type { AuditEntry } from '../../../triggers/operators/audit.js';
import type { Identity } from '../../../triggers/operators/credentials.js';
import { connectTemporal, type Temporal } from '../../../triggers/operators/operatorTemporal.js';

export interface ActionsUnderTest {
  temporal: Temporal;
  actions: OperatorActions;
  audit: AuditEntry[];
  who(name: string): Identity;
}

export async function operatorActionsFor(raw: EngineConfigInput, source: string): Promise<ActionsUnderTest> {
  const config = parseConfig(raw, source);
  const temporal = await connectTemporal(config);
  const audit: AuditEntry[] = [];
  const actions = new OperatorActions({ config, temporal, audit: (e) => void audit.push(e) });
  const who = (name: string): Identity => ({ operator: config.operators.find((o) => o.name === name)!, via: 'api', credential: 'token' });
  return { temporal, actions, audit, who };
}
