// A real worker on the stack's Temporal, running the stub runbooks on a task queue of its own.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { stack } from '../../support/stack.js';

const workflowsPath = join(dirname(fileURLToPath(import.meta.url)), 'stubWorkflows.ts');

let runtimeInstalled = false;
let bundle: Promise<{ code: string }> | undefined;

export async function startStubWorker(taskQueue: string): Promise<{ stop: () => Promise<void> }> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      // Installed already by another suite in this process.
    }
  }
  const connection = await NativeConnection.connect({ address: stack().temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue,
    workflowBundle: await (bundle ??= bundleWorkflowCode({
      workflowsPath,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
    })),
  });
  const running = worker.run();
  return {
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

export async function temporalClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: stack().temporalAddress });
  return { client: new Client({ connection, namespace: 'default' }), close: () => connection.close() };
}

/** Visibility is eventually consistent: poll until the condition holds or the time is up. */
export async function eventually<T>(fn: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (ok(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
}
