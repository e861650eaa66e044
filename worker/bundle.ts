// The workflow code bundled once: by `npm run build` into dist/ (the engine loads it from there),
// or at start when running from the sources. Both of the engine's workers load the same bundle.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Logger } from 'pino';

const self = fileURLToPath(import.meta.url);
const here = dirname(self);
/** .ts when running from the sources, .js from the build. */
const ext = extname(self);
/** The workflows' entry beside this module: index.ts from the sources, index.js from the build. */
export const workflowsPath = join(here, '..', 'workflows', `index${ext}`);
/**
 * Modules evaluated once per workflow thread instead of once per run: with Temporal's reusable V8
 * context every run imports the bundle's modules afresh, and the expression library's were the
 * most of that (~1.2 ms of a new run's first workflow task). Only pure modules belong here: the
 * SDK shares them between runs (and freezes their exports), so they must hold nothing a run could
 * see another run leave behind. config/expressions.ts keeps a parse cache keyed by the text, which
 * is the same for every run. workflows/errorStacks.ts is here because it must run before the freeze.
 */
export const sharedWorkflowModules = [
  join(here, '..', 'workflows', `errorStacks${ext}`),
  '@marcbachmann/cel-js',
  join(here, '..', 'config', `expressions${ext}`),
];

/** How the engine's workflow code is bundled, everywhere it is (the build, the tests, the benches). */
export const workflowBundleOptions = { workflowsPath, preloadModules: sharedWorkflowModules };

/** Where `npm run build` puts the bundle: dist/workflows.bundle.js. */
export const builtBundlePath = join(here, '..', 'workflows.bundle.js');

/** The bundle `npm run build` made, when this module runs from that build. */
export function prebuiltBundle(): string | undefined {
  return ext === '.js' && existsSync(builtBundlePath) ? builtBundlePath : undefined;
}

export async function bundleWorkflows(logger?: Logger): Promise<string> {
  // webpack's module listing is not news to an operator: only its warnings and errors are logged.
  const quiet = {
    trace() {},
    debug() {},
    info() {},
    log() {},
    warn: (m: string) => logger?.warn({ component: 'bundle' }, m),
    error: (m: string) => logger?.error({ component: 'bundle' }, m),
  };
  const { code } = await bundleWorkflowCode({ ...workflowBundleOptions, logger: quiet as never });
  return code;
}

// `node dist/worker/bundle.js`: the build step.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const code = await bundleWorkflows();
  mkdirSync(dirname(builtBundlePath), { recursive: true });
  const tmp = `${builtBundlePath}.${process.pid}.tmp`;
  writeFileSync(tmp, code);
  renameSync(tmp, builtBundlePath);
  process.stdout.write(`workflow bundle: ${builtBundlePath} (${Math.round(code.length / 1024)} KiB)\n`);
}
