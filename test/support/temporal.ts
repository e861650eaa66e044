// A real worker on the stack's Temporal server, loading the bundle made once in globalSetup.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, DefaultLogger, type WorkerOptions } from '@temporalio/worker';
import { inFlightLimit } from '../../activities/limits.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { bundlePath } from './globalSetup.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { stack, type TemporalTls } from './stack.js';

/** Which of the stack's client certificates a caller presents to the cluster. */
export type TemporalIdentity = Exclude<keyof TemporalTls, 'ca' | 'serverName'>;

/**
 * How a test process connects to the run's Temporal: plain to the dev server; to the cluster over
 * mTLS as `identity` (tests act as the stack's administrator unless they say otherwise).
 */
export function temporalConnectOptions(identity: TemporalIdentity = 'admin'): { address: string; tls?: TLSConfig } {
  const { temporalAddress: address, temporalTls: tls } = stack();
  if (!tls) return { address };
  return {
    address,
    tls: {
      serverNameOverride: tls.serverName,
      serverRootCACertificate: readFileSync(tls.ca),
      clientCertPair: { crt: readFileSync(tls[identity].cert), key: readFileSync(tls[identity].key) },
    },
  };
}

/**
 * The `temporal` section of a config for the run's Temporal, as an operator writes it: on the
 * cluster, the CA and the client certificate as file secrets (the engine reads them, nothing copies them).
 */
export function temporalConfigInput(identity: TemporalIdentity = 'engine'): NonNullable<EngineConfigInput['temporal']> {
  const { temporalAddress: address, temporalNamespace: namespace, temporalTls: tls } = stack();
  if (!tls) return { address, namespace };
  return {
    address,
    namespace,
    tls: { ca: { file: tls.ca }, cert: { file: tls[identity].cert }, key: { file: tls[identity].key }, serverName: tls.serverName },
  };
}

let runtimeQuiet = false;
export function quietRuntime(): void {
  if (runtimeQuiet) return;
  runtimeQuiet = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed by an earlier test in this process.
  }
}

/** The engine's metrics sink as a test worker (or a replay) registers it: does nothing. */
export const noopSinks = {
  metrics: { runbookOutcome: { fn: () => {}, callDuringReplay: false }, localReadDropped: { fn: () => {}, callDuringReplay: false } },
};

export function uniqueQueue(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Terminates whatever still runs on the queue, and the queue's guard (on a queue of its own, and
 * it never ends by itself): a failed test must not leave runs waiting for a worker that is gone.
 */
export async function terminateRunning(client: Client, taskQueue: string, reason = 'test cleanup'): Promise<number> {
  const ids = new Set<string>();
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` }))
    ids.add(wf.workflowId);
  // Known by id: visibility may not list a guard started a moment ago.
  ids.add(guardrailsWorkflowId(taskQueue));
  const inTurn = inFlightLimit(20);
  const terminated = await Promise.all(
    [...ids].map((id) =>
      inTurn(() =>
        client.workflow
          .getHandle(id)
          .terminate(reason)
          .then(
            () => 1,
            // Already closed, or never started.
            () => 0,
          ),
      ),
    ),
  );
  return terminated.reduce((a: number, b) => a + b, 0);
}

export async function temporalClient(): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect(temporalConnectOptions());
  return { client: new Client({ connection, namespace: stack().temporalNamespace }), connection };
}

export async function startWorker(
  options: Omit<WorkerOptions, 'connection' | 'workflowsPath'>,
): Promise<{ worker: Worker; running: Promise<void>; stop: () => Promise<void> }> {
  quietRuntime();
  const connection = await NativeConnection.connect(temporalConnectOptions('engine'));
  const worker = await Worker.create({
    connection,
    namespace: stack().temporalNamespace,
    workflowBundle: { codePath: bundlePath },
    // Runbooks report their outcome to the engine's metrics sink; a test worker without one would log an error per run.
    sinks: noopSinks,
    ...options,
  });
  const running = worker.run();
  return {
    worker,
    running,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
