// /readyz: whether this engine can start and signal incident workflows right now. Its workers must
// run, and Temporal must answer for the engine's namespace through the frontend, the history service
// and persistence, which a frontend health check alone does not show. The answer is bounded (a hung
// Temporal is "not ready" after two seconds, not a hung probe) and shared: however many probes
// arrive, Temporal is asked at most once a second.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';

export interface Readiness {
  ready: boolean;
  /** Why not, in a line: what a load balancer's log or an operator's curl shows. */
  reason?: string;
}

/** One check against Temporal; rejects (or resolves not ready) with the reason. */
export type ReadinessCheck = (deadline: number) => Promise<Readiness>;

/**
 * The engine's answer: its workers, then Temporal (bounded and shared, below). Probes come every few
 * seconds: the log says when the answer changes, and why, not at every probe.
 */
export function engineReadiness(opts: {
  workerRunning: () => boolean;
  temporal: ReadinessCheck;
  logger: Pick<Logger, 'info' | 'warn'>;
  timeoutMs?: number;
  cacheMs?: number;
}): () => Promise<Readiness> {
  const temporal = cachedReadiness(opts.temporal, opts);
  let last: Readiness = { ready: true };
  return async () => {
    const now = opts.workerRunning() ? await temporal() : { ready: false, reason: 'the worker is not running' };
    if (now.ready !== last.ready || now.reason !== last.reason) {
      if (now.ready) opts.logger.info('ready: the worker runs and Temporal answers for the namespace');
      else opts.logger.warn({ reason: now.reason }, 'not ready');
    }
    last = now;
    return now;
  };
}

export function cachedReadiness(
  check: ReadinessCheck,
  { timeoutMs = 2_000, cacheMs = 1_000 }: { timeoutMs?: number; cacheMs?: number } = {},
): () => Promise<Readiness> {
  let last: { at: number; result: Readiness } | undefined;
  let inFlight: Promise<Readiness> | undefined;
  return () => {
    if (last && Date.now() - last.at < cacheMs) return Promise.resolve(last.result);
    inFlight ??= bounded(check, timeoutMs).then((result) => {
      last = { at: Date.now(), result };
      inFlight = undefined;
      return result;
    });
    return inFlight;
  };
}

function bounded(check: ReadinessCheck, timeoutMs: number): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Readiness>((resolve) => {
    timer = setTimeout(() => resolve({ ready: false, reason: `Temporal did not answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const checked = (async () => check(Date.now() + timeoutMs))().catch((err: unknown) => ({
    ready: false,
    reason: describeTemporalError(err),
  }));
  return Promise.race([checked, late]).finally(() => clearTimeout(timer));
}

/**
 * Temporal can take this engine's alerts: the namespace is there (frontend and persistence) and the
 * history service answers for a workflow of this engine's task queue (the guard; one that does not
 * exist yet is an answer too). Each call carries the deadline.
 */
export function temporalReadiness(client: Client, opts: { namespace: string; workflowId: string }): ReadinessCheck {
  return async (deadline) => {
    const service = client.workflowService;
    await client.connection.withDeadline(deadline, () => service.describeNamespace({ namespace: opts.namespace }));
    try {
      await client.connection.withDeadline(deadline, () =>
        service.describeWorkflowExecution({ namespace: opts.namespace, execution: { workflowId: opts.workflowId } }),
      );
    } catch (err) {
      if (!isWorkflowNotFound(err)) throw err;
    }
    return { ready: true };
  };
}

const grpcCode = (err: unknown) => (err as { code?: unknown }).code;

export function isWorkflowNotFound(err: unknown): boolean {
  // NOT_FOUND names the workflow here; "Namespace … is not found" is persistence or setup failing.
  return grpcCode(err) === 5 && !/namespace/i.test(err instanceof Error ? err.message : String(err));
}

function describeTemporalError(err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
  switch (grpcCode(err)) {
    case 4:
      return `Temporal did not answer in time: ${message}`;
    case 5:
      return `Temporal does not find the namespace (missing, or its persistence is down): ${message}`;
    case 14:
      return `Temporal is unavailable: ${message}`;
    default:
      return `Temporal refused: ${message}`;
  }
}
