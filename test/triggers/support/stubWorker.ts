// A real worker on the stack's Temporal, running the stub runbooks on a task queue of its own.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { stack } from '../../support/stack.js';
import { quietRuntime, temporalConnectOptions } from '../../support/temporal.js';

const workflowsPath = join(dirname(fileURLToPath(import.meta.url)), 'stubWorkflows.ts');

let bundle: Promise<{ code: string }> | undefined;

/** The worker, and a client on its own connection (what an eager start needs to hand it the first task). */
export async function startStubWorker(taskQueue: string): Promise<{ stop: () => Promise<void>; eagerClient: Client }> {
  quietRuntime();
  const connection = await NativeConnection.connect(temporalConnectOptions('engine'));
  const worker = await Worker.create({
    connection,
    namespace: stack().temporalNamespace,
    taskQueue,
    workflowBundle: await (bundle ??= bundleWorkflowCode({
      workflowsPath,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
    })),
  });
  const running = worker.run();
  return {
    eagerClient: new Client({ connection, namespace: stack().temporalNamespace }),
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
