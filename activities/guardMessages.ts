// The guard's public surface: its id and queue, its state's shape, its updates and query. The
// guard workflow (workflows/guardrails.ts) handles them and the guardrail activities call them:
// both import this one module, so an update's name and payload type exist once, and no activity
// imports workflow code.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type {
  RestartClaim,
  RestartClaimed,
  RestartDecision,
  RestartReservation,
  SlotGrant,
  SlotRequest,
  WindowRequest,
} from './contract.js';

/** The guard workflow's type, as registered by the engine's workers. */
export const guardrailsWorkflowType = 'guardrails';

/**
 * One guard per task queue: engines sharing a queue share the guard (its caps are global to them),
 * and engines on another queue in the same namespace keep theirs.
 */
export function guardrailsWorkflowId(taskQueue: string): string {
  return `remediation-guardrails:${taskQueue}`;
}

/** The guard's own task queue, served by a worker of its own in every engine. */
export function guardrailsTaskQueue(taskQueue: string): string {
  return `${taskQueue}-guard`;
}

export interface SlotLease {
  id: string;
  holder: string;
  target: string;
  action: string;
  acquiredAt: number;
  expiresAt: number;
  /** Asked with `once`: its id is remembered as settled when it is released or withdrawn. */
  once?: true;
}

export interface WindowLease {
  holder: string;
  schedule: string;
  target: string;
  until: number;
}

export interface GuardState {
  /** Target → times (epoch ms) of restarts recorded, oldest first. */
  restarts: Record<string, number[]>;
  leases: SlotLease[];
  windows: WindowLease[];
  /** The longest anti-flap window asked about: older restarts can never matter again. */
  retainMs: number;
  /**
   * Request ids whose `once` lease was released or withdrawn, each with when, oldest first: asked
   * again, such an id is a late duplicate and is not granted. Kept for retainMs, the newest
   * maxSettledKept at most. Absent in state carried from a guard run before it.
   */
  settled?: Array<[requestId: string, settledAt: number]>;
  /** When old restarts were last dropped (prune): at most once a minute. */
  restartsPrunedAt?: number;
}

export interface GuardrailsInput {
  state?: GuardState;
  /** Continue-as-new past this many history events (tests lower it); the server's hint also counts. */
  historyLimit?: number;
}

export interface GuardSnapshot extends Omit<GuardState, 'settled'> {
  /**
   * Settled request ids the guard still refuses as late duplicates (GuardState.settled), counted.
   * Absent from a guard from before it.
   */
  settledKept?: number;
  now: number;
  runId: string;
}

export const reserveRestartUpdate = defineUpdate<RestartDecision, [RestartReservation]>('reserveRestart');
export const acquireSlotUpdate = defineUpdate<SlotGrant, [SlotRequest]>('acquireSlot');
export const claimRestartUpdate = defineUpdate<RestartClaimed, [RestartClaim]>('claimRestart');
export const releaseSlotUpdate = defineUpdate<boolean, [string]>('releaseSlot');
/**
 * Takes back a restart claim whose restart never happened (it was asked beside the checks that
 * decide whether to restart, and they said no): its lease is released and its restart uncounted.
 */
export const withdrawClaimUpdate = defineUpdate<boolean, [string]>('withdrawClaim');
/**
 * What many incidents ask the guard at once, sent as one update (a group commit): in an alert storm
 * a thousand incidents each claim a restart and release it, and one update per request kept them
 * queued behind the guard's workflow tasks (~36 updates/s here, at most 10 in flight per workflow on
 * the server). Each operation is decided as its own update would decide it, in the order given.
 */
export type GuardOp =
  { op: 'claimRestart'; req: RestartClaim } | { op: 'releaseSlot'; leaseId: string } | { op: 'withdrawClaim'; requestId: string };
/** One operation's answer: what its own update returns, or why the guard refused the request itself. */
export type GuardOpResult = { ok: RestartClaimed | boolean } | { refused: string };
/** Operations in one guardBatch update: its payload and the guard's one workflow task stay small. */
export const maxGuardBatch = 50;
/**
 * Asked beside a batch: the open maintenance windows of these targets (the targets its claims
 * restart). An incident reads its target's window beside its restart claim, and a query of its own
 * would be answered in a guard workflow task ahead of the batch's: the claim, on the path from alert
 * to restart, waited for it (~10 ms here). A guard from before this answers the bare list, which
 * the engine takes as "no windows answered" and queries as before.
 */
export interface GuardBatchAsk {
  windowsFor: string[];
}
/** A batch's answer when windows were asked: one result per operation, and those targets' open windows. */
export interface GuardBatchAnswer {
  answers: GuardOpResult[];
  windows: WindowLease[];
}
export const guardBatchUpdate = defineUpdate<GuardOpResult[] | GuardBatchAnswer, [GuardOp[], GuardBatchAsk?]>('guardBatch');
export const openWindowUpdate = defineUpdate<void, [WindowRequest]>('openWindow');
export const closeWindowUpdate = defineUpdate<number, [string]>('closeWindow');
export const guardStateQuery = defineQuery<GuardSnapshot>('guardState');
