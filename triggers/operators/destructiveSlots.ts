// The destructive-action slots the guard holds (guardrails.maxConcurrentDestructive across all
// targets), and releasing those of a run that ended without releasing them. A run releases its
// slot however its action ends, cancelled included; one that was terminated mid-restart keeps it
// until its lease lapses (a restart's ~10 minutes), and every other incident waits for a slot
// meanwhile, or gives up waiting. This lists them with their runs' status, and releases a dead
// run's, only that run's, never a slot whose run still runs.
import { guardBatchUpdate, maxGuardBatch, type SlotLease } from '../../activities/guardMessages.js';
import type { EngineConfig } from '../../config/schema.js';
import { guardHandle, guardStateChanged, readGuardState } from './guardState.js';
import { CommandError, runStatus, type Temporal } from './operatorTemporal.js';

/** A slot as the guard holds it, with the status of the run that holds it. */
export interface HeldSlot {
  /** The workflow id of the run that took it. */
  holder: string;
  /** That run, when the lease names it (every lease this engine takes does). */
  runId?: string;
  target: string;
  action: string;
  since: string;
  /** When the guard drops it by itself. */
  lapses: string;
  /** The run's status now: running, completed, terminated, …; not-found once its history is gone. */
  status: string;
}

export interface ReleasedSlots {
  workflowId: string;
  dryRun: boolean;
  /** The slots released (or, in a dry run, that would be). */
  released: HeldSlot[];
}

/** Runs whose status is read for one listing: the guard holds maxConcurrentDestructive slots, rarely more. */
const maxListed = 50;

/** The leases held now: a lapsed one stays in the guard's state until its next update, holding nothing. */
async function leasesOf(t: Temporal, config: EngineConfig, fresh = false): Promise<SlotLease[]> {
  const state = await readGuardState(t, config, { fresh });
  return state.leases.filter((l) => l.expiresAt > state.now);
}

/** The run a lease names: its request id is "<workflow id>/<run id>/…". */
export function leaseRunId(lease: Pick<SlotLease, 'id' | 'holder'>): string | undefined {
  if (!lease.id.startsWith(`${lease.holder}/`)) return undefined;
  const runId = lease.id.slice(lease.holder.length + 1).split('/')[0];
  return runId && /^[0-9a-f-]{8,64}$/i.test(runId) ? runId : undefined;
}

async function described(t: Temporal, leases: SlotLease[]): Promise<HeldSlot[]> {
  const statuses = new Map<string, Promise<string>>();
  return Promise.all(
    leases.map(async (l) => {
      const runId = leaseRunId(l);
      const key = `${l.holder}\n${runId ?? ''}`;
      if (!statuses.has(key)) statuses.set(key, runStatus(t, l.holder, runId));
      return {
        holder: l.holder,
        ...(runId ? { runId } : {}),
        target: l.target,
        action: l.action,
        since: new Date(l.acquiredAt).toISOString(),
        lapses: new Date(l.expiresAt).toISOString(),
        status: await statuses.get(key)!,
      };
    }),
  );
}

/** Every destructive slot held now, oldest first, with whether the run holding it still runs. */
export async function heldSlots(t: Temporal, config: EngineConfig): Promise<HeldSlot[]> {
  const leases = (await leasesOf(t, config)).sort((a, b) => a.acquiredAt - b.acquiredAt).slice(0, maxListed);
  return described(t, leases);
}

/** The targets the slots of `workflowId` act on, for the operator policy's scope. */
export async function slotTargetsOf(t: Temporal, config: EngineConfig, workflowId: string): Promise<string[]> {
  return [...new Set((await leasesOf(t, config)).filter((l) => l.holder === workflowId).map((l) => l.target))];
}

/**
 * Releases the slots `workflowId`'s runs hold once those runs have ended. Refused, releasing
 * nothing, while one of them still runs (cancel it: it releases its slot as it stops), and when it
 * holds none.
 */
export async function releaseSlotsOf(
  t: Temporal,
  config: EngineConfig,
  workflowId: string,
  opts: { dryRun?: boolean } = {},
): Promise<ReleasedSlots> {
  const dryRun = opts.dryRun === true;
  const leases = (await leasesOf(t, config, true)).filter((l) => l.holder === workflowId).slice(0, maxGuardBatch);
  if (leases.length === 0) throw new CommandError(1, `workflow '${workflowId}' holds no destructive slot: there is nothing to release`);
  const slots = await described(t, leases);
  const running = slots.find((s) => s.status === 'running');
  if (running)
    throw new CommandError(
      1,
      `workflow '${workflowId}' is still running${running.runId ? ` (run ${running.runId})` : ''} and holds its slot for its ${running.action} of '${running.target}': cancel it instead ('remediate cancel ${workflowId}'), which releases it`,
    );
  if (!dryRun) {
    await t.call(() =>
      guardHandle(t, config).executeUpdate(guardBatchUpdate, {
        args: [leases.map((l) => ({ op: 'releaseSlot' as const, leaseId: l.id }))],
      }),
    );
    guardStateChanged(t, config);
  }
  return { workflowId, dryRun, released: slots };
}
