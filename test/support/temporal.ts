// A real worker on the stack's Temporal server, loading the bundle made once in globalSetup.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, DefaultLogger, type WorkerOptions } from '@temporalio/worker';
import { bundlePath } from './globalSetup.js';
import { stack } from './stack.js';

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

export function uniqueQueue(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Terminates whatever still runs on the queue: a failed test must not leave runs waiting for a worker that is gone. */
export async function terminateRunning(client: Client, taskQueue: string, reason = 'test cleanup'): Promise<void> {
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` }))
    await client.workflow.getHandle(wf.workflowId).terminate(reason).catch(() => {});
}

export async function temporalClient(): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: stack().temporalAddress });
  return { client: new Client({ connection, namespace: 'default' }), connection };
}

export async function startWorker(
  options: Omit<WorkerOptions, 'connection' | 'workflowBundle' | 'workflowsPath'>,
): Promise<{ worker: Worker; running: Promise<void>; stop: () => Promise<void> }> {
  quietRuntime();
  const connection = await NativeConnection.connect({ address: stack().temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    workflowBundle: { codePath: bundlePath },
    // Runbooks report their outcome to the engine's metrics sink; a test worker without one would log an error per run.
    sinks: { metrics: { runbookOutcome: { fn: () => {}, callDuringReplay: false } } },
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
