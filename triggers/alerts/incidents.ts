// How a trigger tells incident workflows about alerts: SignalWithStart for firing alerts (one
// workflow per runbook and target, repeats fold into it), a plain signal for resolved ones.
// Every call carries a deadline, so a hung Temporal frontend turns into a fast 503, not a hung
// Alertmanager notification. Identical deliveries of one alert (an Alertmanager HA pair, retried
// batches) share one call while it runs and for a few seconds after Temporal accepted it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client, WorkflowClient, WorkflowNotFoundError } from '@temporalio/client';
import { NamespaceNotFoundError, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  alertFiringSignal,
  alertResolvedSignal,
  incidentWorkflowId,
  interpreterWorkflowType,
  type AlertEvent,
  type RunbookInput,
  type RunbookRunInput,
} from '../../workflows/messages.js';
import { TimeoutError, withTimeout } from '../../activities/failures.js';
import { incidentSearchAttributes } from '../plan.js';
import type { IncidentRunbook } from './binding.js';
import type { DoorStart, OpenDoorReads } from './doorReads.js';

export interface FireResult {
  workflowId: string;
  runId: string;
  /** True when this call started the workflow; false when the alert folded into a running one. */
  started: boolean;
  /** True when an identical delivery was already accepted (or in flight): no call of its own. */
  coalesced: boolean;
  /** True when the run's first workflow task came back in the start call's reply (eager start). */
  eager?: boolean;
}

/** How long an accepted alert answers identical deliveries without asking Temporal again. */
export const coalesceMs = 5_000;
/** At most this many accepted alerts remembered; the oldest are forgotten first. */
const coalesceEntries = 10_000;

export interface IncidentSignaller {
  fire(input: RunbookRunInput | RunbookInput, event: AlertEvent, taskQueue: string): Promise<FireResult>;
  /** False when no incident workflow for this runbook and target is running. */
  resolve(runbook: IncidentRunbook, target: string, event: AlertEvent): Promise<boolean>;
}

/** Incidents whose held alerts are remembered, and alerts remembered per incident; oldest forgotten first. */
const heldIncidents = 10_000;
const heldPerIncident = 256;
/** How long after a start found an incident running its next alerts take no door reads. */
const foundRunningMs = 30_000;

/** Forgets a map's oldest entries (insertion order) past `max`. */
function dropOldest(map: Map<string, unknown>, max: number): void {
  for (const k of map.keys()) {
    if (map.size <= max) break;
    map.delete(k);
  }
}

export interface SignallerOptions {
  timeoutMs: number;
  /**
   * A client on the engine worker's own connection: a new incident is started through it with
   * eager start, its first workflow task handed to this process's worker in the start call's
   * reply instead of through the server's matching (the runbook acts ~10-30 ms sooner). Unset (a
   * webhook without a worker beside it): signal-with-start only.
   */
  eagerClient?: Client;
  /** Reads a new run of a runbook file asks first, taken beside its eager start (doorReads.ts). */
  doorReads?: OpenDoorReads;
}

export function createIncidentSignaller(client: Client, options: SignallerOptions): IncidentSignaller {
  const workflows = startObservingClient(client);
  const eager = options.eagerClient;
  const withDeadline = <T>(fn: () => Promise<T>) => client.connection.withDeadline(Date.now() + options.timeoutMs, fn);
  // Key: workflow id, fingerprint and start time, so a new firing of the alert (a new startsAt)
  // or another alert for the same target is never mistaken for a copy. Only accepted calls are
  // remembered: a failed one is forgotten at once, and the next delivery asks Temporal itself.
  const recent = new Map<string, { call: Promise<FireResult>; acceptedAt?: number }>();

  function remembered(key: string, now: number): Promise<FireResult> | undefined {
    const hit = recent.get(key);
    if (hit && (hit.acceptedAt === undefined || now - hit.acceptedAt < coalesceMs)) return hit.call;
    if (hit) recent.delete(key);
    return undefined;
  }

  function remember(key: string, call: Promise<FireResult>): void {
    const entry: { call: Promise<FireResult>; acceptedAt?: number } = { call };
    recent.set(key, entry);
    call.then(
      () => (entry.acceptedAt = Date.now()),
      () => recent.get(key) === entry && recent.delete(key),
    );
    for (const [k, v] of recent) {
      if (recent.size <= coalesceEntries) break;
      if (v !== entry) recent.delete(k);
    }
  }

  // Alerts this engine delivered firing to an incident's run, so a repeat of one the run already
  // holds changes nothing and is folded here, without a signal: Alertmanager repeats a firing alert
  // every repeat interval, and each signal would grow the run's history (Temporal refuses signals
  // past 10,000 per run). A describe call (no history) confirms the run is still the one that holds
  // it; anything uncertain (no memory, another run, an error) sends the signal as before.
  const held = new Map<string, { runId: string; chain?: string; firing: Set<string> }>();

  async function heldByRunningRun(workflowId: string, fingerprint: string | undefined): Promise<FireResult | undefined> {
    const h = fingerprint ? held.get(workflowId) : undefined;
    if (!h || !h.firing.has(fingerprint!)) return undefined;
    try {
      const d = await withDeadline(() => client.workflow.getHandle(workflowId).describe());
      const chain = d.raw.workflowExecutionInfo?.firstRunId || undefined;
      const sameRun = d.runId === h.runId || (h.chain !== undefined && chain === h.chain);
      if (d.status.name !== 'RUNNING' || !sameRun) return undefined;
      h.runId = d.runId;
      if (chain) h.chain = chain;
      return { workflowId, runId: d.runId, started: false, coalesced: false };
    } catch {
      return undefined;
    }
  }

  // Incidents whose start found them running, and when: no door reads for them for a while.
  const runningFound = new Map<string, number>();
  const foundRunning = (workflowId: string) => Date.now() - (runningFound.get(workflowId) ?? -Infinity) < foundRunningMs;
  const found = (workflowId: string) => {
    runningFound.delete(workflowId);
    runningFound.set(workflowId, Date.now());
    dropOldest(runningFound, heldIncidents);
  };

  function hold(workflowId: string, r: FireResult, fingerprint: string | undefined): void {
    if (!fingerprint) return;
    let h = held.get(workflowId);
    if (!h || h.runId !== r.runId) {
      h = { runId: r.runId, ...(r.started ? { chain: r.runId } : {}), firing: new Set() };
      held.delete(workflowId);
    }
    held.set(workflowId, h);
    if (h.firing.size < heldPerIncident) h.firing.add(fingerprint);
    dropOldest(held, heldIncidents);
  }

  /**
   * A new incident started with its opening alert in its input (workflows/steps/incident.ts takes it
   * as the first alertFiring signal), eagerly. Undefined when a run with this id is running already
   * (or was a moment ago): then the alert goes by signal-with-start, which signals the run (or
   * starts one, if it ended meanwhile).
   */
  async function eagerStart(input: RunbookRunInput | RunbookInput, event: AlertEvent, taskQueue: string): Promise<FireResult | undefined> {
    const workflowId = incidentWorkflowId(input.runbook, input.target);
    // Not for an incident found running a moment ago: its start would fail again (one call more
    // for each alert of a flood on one running incident), and door reads would be for nothing.
    if (!eager || foundRunning(workflowId)) return undefined;
    // The start goes out first, and the door's reads are asked while it is on its way: their requests
    // took this thread ~3 ms that the start waited out when they went first.
    const starting = eager.workflow.start('definition' in input ? interpreterWorkflowType : input.runbook, {
      workflowId,
      taskQueue,
      args: [{ ...input, openingAlert: event }],
      workflowIdConflictPolicy: 'FAIL',
      requestEagerStart: true,
      typedSearchAttributes: incidentSearchAttributes(input),
    });
    // Awaited below; a refusal meanwhile is not an unhandled rejection.
    starting.catch(() => undefined);
    const door = 'definition' in input ? await onceSent(() => options.doorReads?.(input, workflowId)) : undefined;
    try {
      // The worker's native connection retries a refused connection on its own, past any deadline
      // given to it: the call is given up here instead (a start that lands later is found running
      // by the retry, which signals it).
      const handle = await withTimeout(`the start of ${workflowId}`, options.timeoutMs, starting);
      // Only a run whose first task this process's worker holds takes its door reads at once, on
      // this build: one the server queued (no eager slot) may run late or elsewhere, and a claim
      // asked for it could outlive its lease untaken.
      if (handle.eagerlyStarted) startedAtTheDoor(door, handle.firstExecutionRunId);
      else door?.dropped();
      runningFound.delete(workflowId);
      return { workflowId, runId: handle.firstExecutionRunId, started: true, coalesced: false, eager: handle.eagerlyStarted };
    } catch (err) {
      door?.dropped();
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        found(workflowId);
        return undefined;
      }
      throw err;
    }
  }

  async function signalWithStart(input: RunbookRunInput | RunbookInput, event: AlertEvent, taskQueue: string): Promise<FireResult> {
    const workflowId = incidentWorkflowId(input.runbook, input.target);
    const seen: { started?: boolean } = {};
    // The default conflict policy of SignalWithStart is "use the running workflow", so the same
    // alert delivered again later folds into the run as an alertFiring signal: idempotent.
    const handle = await startObservation.run(seen, () =>
      withDeadline(() =>
        // A binding pinned to a compiled runbook (`compiled: true`) starts that workflow instead.
        workflows.signalWithStart('definition' in input ? interpreterWorkflowType : input.runbook, {
          workflowId,
          taskQueue,
          args: [input],
          signal: alertFiringSignal,
          signalArgs: [event],
          typedSearchAttributes: incidentSearchAttributes(input),
        }),
      ),
    );
    return { workflowId, runId: handle.signaledRunId, started: seen.started ?? false, coalesced: false };
  }

  return {
    async fire(input, event, taskQueue) {
      const key = JSON.stringify([incidentWorkflowId(input.runbook, input.target), event.fingerprint ?? '', event.at]);
      const earlier = remembered(key, Date.now());
      if (earlier) return { ...(await earlier), started: false, coalesced: true };
      const workflowId = incidentWorkflowId(input.runbook, input.target);
      const call = (async () => {
        // A firing alert is one fingerprint and start time: Alertmanager repeats keep both, and an
        // alert that resolved and fires again has a new start, so it is never folded away.
        const alertKey = event.fingerprint ? `${event.fingerprint}@${event.at}` : undefined;
        const folded = await heldByRunningRun(workflowId, alertKey);
        if (folded) return folded;
        // A start that finds the incident running costs one short call more than signal-with-start alone.
        const r = (await eagerStart(input, event, taskQueue)) ?? (await signalWithStart(input, event, taskQueue));
        hold(workflowId, r, alertKey);
        return r;
      })();
      remember(key, call);
      return call;
    },

    async resolve(runbook, target, event) {
      const h = event.fingerprint ? held.get(incidentWorkflowId(runbook, target)) : undefined;
      if (h) for (const k of [...h.firing]) if (k.startsWith(`${event.fingerprint}@`)) h.firing.delete(k);
      try {
        await withDeadline(() => client.workflow.getHandle(incidentWorkflowId(runbook, target)).signal(alertResolvedSignal, event));
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
  };
}

/**
 * `open`, once what this turn of the event loop began (a call's request handed to the connection) has
 * gone out. A door that fails to open is none: the run reads for itself.
 */
function onceSent(open: () => DoorStart | undefined): Promise<DoorStart | undefined> {
  return new Promise((resolve) =>
    setImmediate(() => {
      try {
        resolve(open());
      } catch {
        resolve(undefined);
      }
    }),
  );
}

/** The run started: its door reads are its own. A fault in them never fails the start that worked. */
function startedAtTheDoor(door: DoorStart | undefined, runId: string): void {
  try {
    door?.started(runId);
  } catch {
    door?.dropped();
  }
}

// The SDK's signalWithStart returns only a handle, but the server's reply says whether it started
// a workflow (`started`). To count started vs folded alerts exactly, without an extra describe
// call per alert, the one RPC is observed and its flag handed back through async context.
const startObservation = new AsyncLocalStorage<{ started?: boolean }>();

class StartObservingWorkflowClient extends WorkflowClient {
  #service: WorkflowClient['workflowService'] | undefined;

  override get workflowService(): WorkflowClient['workflowService'] {
    if (!this.#service) {
      const base = this.connection.workflowService;
      this.#service = Object.create(base, {
        signalWithStartWorkflowExecution: {
          value: async (req: Parameters<typeof base.signalWithStartWorkflowExecution>[0]) => {
            const res = await base.signalWithStartWorkflowExecution(req);
            const box = startObservation.getStore();
            if (box) box.started = Boolean(res.started);
            return res;
          },
        },
      }) as WorkflowClient['workflowService'];
    }
    return this.#service;
  }
}

function startObservingClient(client: Client): WorkflowClient {
  return new StartObservingWorkflowClient({
    connection: client.connection,
    namespace: client.options.namespace,
    identity: client.options.identity,
    dataConverter: client.options.loadedDataConverter,
    interceptors: client.options.interceptors.workflow,
  });
}

/** gRPC codes that mean "Temporal could not be reached in time", not "Temporal said no". */
const unavailableCodes = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */]);

export function isTemporalUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    // What a cluster whose persistence is down answers: not "no", but "not now" (503, retried).
    if (e instanceof NamespaceNotFoundError) return true;
    // A call this engine gave up on itself (withTimeout): Temporal did not answer in time.
    if (e instanceof TimeoutError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && unavailableCodes.has(code)) return true;
    // The worker's native connection says only "transport error" (code UNKNOWN) when it cannot connect.
    if (e instanceof Error && /failed to connect|connection refused|ECONNREFUSED|deadline|transport error/i.test(e.message)) return true;
  }
  return false;
}
