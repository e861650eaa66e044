// Who may do what: an operator's role from the config, narrowed by the runbooks and targets it
// lists. The operator API asks before it signals anything, and the planner hands each run the names
// allowed to decide on it, so a decision that slips past the API (straight to Temporal) by a name
// without the right is still recorded and ignored by the workflow.
import { operatorRoles, type Operator, type OperatorRole } from './schema.js';

export type OperatorAction = 'read' | 'acknowledge' | 'approve' | 'reject' | 'run' | 'cancel' | 'release' | 'maintenance';

/** The least role each action needs; every role can do what the roles before it can. */
const leastRole: Record<OperatorAction, OperatorRole> = {
  read: 'viewer',
  acknowledge: 'responder',
  approve: 'operator',
  reject: 'operator',
  run: 'operator',
  cancel: 'admin',
  // Freeing the destructive slot a run that ended kept: what cancelling that run would have done.
  release: 'admin',
  maintenance: 'admin',
};

export const operatorActions = Object.keys(leastRole) as OperatorAction[];

/** What an action is about: the incident's (or run's) runbook and target, when it has them. */
export interface ActionScope {
  runbook?: string;
  target?: string;
  /** A maintenance run's targets: each must be in scope. */
  targets?: string[];
}

export type Verdict = { allowed: true } | { allowed: false; reason: string };

export function mayDo(
  operator: Pick<Operator, 'name' | 'role' | 'runbooks' | 'targets'>,
  action: OperatorAction,
  scope: ActionScope = {},
): Verdict {
  const need = leastRole[action];
  if (operatorRoles.indexOf(operator.role) < operatorRoles.indexOf(need))
    return { allowed: false, reason: `'${operator.name}' is a ${operator.role}; ${verb(action)} needs the ${need} role or above` };
  // Reading is never narrowed: whoever is on call may see everything that is going on.
  if (action === 'read') return { allowed: true };
  if (operator.runbooks && scope.runbook !== undefined && !operator.runbooks.includes(scope.runbook))
    return {
      allowed: false,
      reason: `'${operator.name}' may act on runbooks ${operator.runbooks.join(', ')} only, not '${scope.runbook}'`,
    };
  if (operator.runbooks && scope.runbook === undefined)
    return { allowed: false, reason: `'${operator.name}' may act on runbooks ${operator.runbooks.join(', ')} only, and this names none` };
  const targets = [...(scope.target !== undefined ? [scope.target] : []), ...(scope.targets ?? [])];
  if (operator.targets) {
    if (targets.length === 0)
      return { allowed: false, reason: `'${operator.name}' may act on targets ${operator.targets.join(', ')} only, and this names none` };
    const outside = targets.find((t) => !operator.targets!.includes(t));
    if (outside !== undefined)
      return { allowed: false, reason: `'${operator.name}' may act on targets ${operator.targets.join(', ')} only, not '${outside}'` };
  }
  return { allowed: true };
}

/**
 * The names a run may take a decision from: those the policy lets approve (and reject) this runbook
 * on this target, and those it lets only acknowledge.
 */
export function deciders(operators: readonly Operator[], scope: ActionScope): { approvers: string[]; responders: string[] } {
  const approvers = operators.filter((o) => mayDo(o, 'approve', scope).allowed).map((o) => o.name);
  const responders = operators.filter((o) => !approvers.includes(o.name) && mayDo(o, 'acknowledge', scope).allowed).map((o) => o.name);
  return { approvers, responders };
}

function verb(action: OperatorAction): string {
  const gerund: Record<OperatorAction, string> = {
    read: 'reading incidents',
    acknowledge: 'acknowledging',
    approve: 'approving',
    reject: 'rejecting',
    run: 'starting a runbook',
    cancel: 'cancelling a run',
    release: 'releasing a destructive slot',
    maintenance: 'starting maintenance',
  };
  return gerund[action];
}
