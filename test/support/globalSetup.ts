// Bundles the workflow code once per test run; every test worker loads the same bundle.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundleOptions } from '../../worker/bundle.js';

export const bundlePath = join(dirname(fileURLToPath(import.meta.url)), '..', '.bundle', 'workflows.js');

/** The engine's workflow code bundled, with test interceptor modules when a test needs them. */
export async function bundleEngineWorkflows(workflowInterceptorModules: string[] = []): Promise<{ code: string }> {
  return bundleWorkflowCode({
    ...workflowBundleOptions,
    workflowInterceptorModules,
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never,
  });
}

export default async function setup(): Promise<void> {
  const { code } = await bundleEngineWorkflows();
  mkdirSync(dirname(bundlePath), { recursive: true });
  // Atomically: another vitest run (or an engine process a test started) may be loading it right now.
  const tmp = `${bundlePath}.${process.pid}.tmp`;
  writeFileSync(tmp, code);
  renameSync(tmp, bundlePath);
}
