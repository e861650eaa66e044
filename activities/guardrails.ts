// The way workflows reach the guard workflow. Each call is an update-with-start, so the guard
// comes into being on first use and nobody has to remember to start it before the first incident.
import { Client, WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { GuardrailActivities, Suppression } from './contract.js';
import { badInput, classify, operation } from './failures.js';
import {
  acquireSlotUpdate,
  closeWindowUpdate,
  guardrails,
  guardrailsWorkflowId,
  openWindowUpdate,
  releaseSlotUpdate,
  reserveRestartUpdate,
  windowForQuery,
} from '../workflows/guardrails.js';
import { formatDuration } from '../config/duration.js';

export interface GuardrailDeps {
  client: Client;
  /** The engine's task queue: the guard runs there when it has to be started. */
  taskQueue: string;
  /** Overrides the per-queue guard id (tests isolate a guard of their own). */
  workflowId?: string;
}

export function createGuardrailActivities(deps: GuardrailDeps): GuardrailActivities {
  const workflowId = deps.workflowId ?? guardrailsWorkflowId(deps.taskQueue);

  async function update<Ret, Args extends unknown[]>(
    def: UpdateDefinition<Ret, Args>,
    what: string,
    args: Args,
    updateId?: string,
  ): Promise<Ret> {
    // A start operation can be used once, so every call builds its own.
    const startWorkflowOperation = new WithStartWorkflowOperation(guardrails, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    try {
      // Update ids are unique across all of a workflow's updates, whatever their name.
      return await deps.client.workflow.executeUpdateWithStart(def, {
        args,
        updateId: updateId === undefined ? undefined : `${def.name}:${updateId}`,
        startWorkflowOperation,
      });
    } catch (err) {
      // The guard refused the request itself (validator): asking again cannot help.
      if (err instanceof WorkflowUpdateFailedError) throw badInput(what, err.cause?.message ?? err.message);
      throw classify(what, err);
    }
  }

  return {
    reserveRestart: (req) =>
      update(reserveRestartUpdate, operation('restart reservation', 'target', req.target), [req], req.requestId),

    acquireSlot: (req) =>
      update(acquireSlotUpdate, operation('destructive slot request', 'target', req.target), [req], req.requestId),

    releaseSlot: (leaseId) => update(releaseSlotUpdate, `release of destructive slot '${leaseId}'`, [leaseId]),

    openWindow: (req) => update(openWindowUpdate, `opening of maintenance window '${req.schedule}'`, [req]),

    closeWindow: (holder) => update(closeWindowUpdate, `closing of maintenance windows held by '${holder}'`, [holder]),

    async maintenanceWindowFor(target: string): Promise<Suppression> {
      try {
        const window = await deps.client.workflow.getHandle(workflowId).query(windowForQuery, target);
        if (!window) return { suppressed: false };
        return {
          suppressed: true,
          reason: `maintenance window '${window.schedule}' until ${new Date(window.until).toISOString()} (${formatDuration(
            Math.max(0, window.until - Date.now()),
          )} left)`,
        };
      } catch (err) {
        // No guard yet means nothing was ever opened.
        if (err instanceof WorkflowNotFoundError) return { suppressed: false };
        throw classify(operation('maintenance window lookup', 'target', target), err);
      }
    },
  };
}
