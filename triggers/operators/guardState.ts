// The guard's state (slots, windows) as the operator commands read it. The guard answers each query
// in a workflow task of its own, in line with the incidents' restart claims: a console left open on
// its windows-and-slots view asks every 5 s per tab, and twenty tabs in an alert storm would queue
// ahead of the claims that storm makes. So listings share one read per second in this process;
// closing a window or releasing a slot reads afresh.
import { WorkflowNotFoundError } from '@temporalio/client';
import { guardrailsWorkflowId, guardStateQuery, type GuardSnapshot } from '../../activities/guardMessages.js';
import type { EngineConfig } from '../../config/schema.js';
import type { Temporal } from './operatorTemporal.js';

export type GuardView = Pick<GuardSnapshot, 'leases' | 'windows' | 'now'>;

/** How long one read of the guard answers every listing. */
export const sharedReadMs = 1_000;

const shared = new WeakMap<Temporal, Map<string, { at: number; read: Promise<GuardView> }>>();

export function guardHandle(t: Temporal, config: EngineConfig) {
  return t.client.workflow.getHandle(guardrailsWorkflowId(config.temporal.taskQueue));
}

/** The guard's slots and windows; with `fresh`, read now, else at most sharedReadMs old. No guard yet: none. */
export function readGuardState(t: Temporal, config: EngineConfig, opts: { fresh?: boolean } = {}): Promise<GuardView> {
  const queue = config.temporal.taskQueue;
  const reads = shared.get(t) ?? new Map<string, { at: number; read: Promise<GuardView> }>();
  shared.set(t, reads);
  const cached = reads.get(queue);
  if (!opts.fresh && cached && Date.now() - cached.at <= sharedReadMs) return cached.read;
  const read = t
    .call(() => guardHandle(t, config).query(guardStateQuery))
    .then((s): GuardView => ({ leases: s.leases, windows: s.windows, now: s.now }))
    .catch((err: unknown): GuardView => {
      // No guard yet: nothing was ever held or opened.
      if (err instanceof WorkflowNotFoundError) return { leases: [], windows: [], now: Date.now() };
      throw err;
    });
  reads.set(queue, { at: Date.now(), read });
  // A failed read is not shared: the next listing asks again.
  read.catch(() => {
    if (reads.get(queue)?.read === read) reads.delete(queue);
  });
  return read;
}

/** After a close or release: the next listing reads the guard again instead of the state before it. */
export function guardStateChanged(t: Temporal, config: EngineConfig): void {
  shared.get(t)?.delete(config.temporal.taskQueue);
}
