// The engine as an operator runs it: a separate process (`worker/main.ts engine`) with a config file,
// so tests can kill -9 it, SIGTERM it, or run two side by side. It loads the bundle made in
// globalSetup instead of bundling again.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineConfigInput } from '../../config/schema.js';
import { bundlePath } from './globalSetup.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface EngineProcess {
  pid: number;
  /** http://127.0.0.1:<port> of this process's webhook server. */
  webhookUrl: string;
  /** Everything the process wrote so far (pino JSON lines and anything else). */
  output(): string;
  /** Resolves with how the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM and wait for the exit; SIGKILL if it has not exited after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

/** Writes the config where a process (or a container mounting the directory) can read it. */
export function writeConfig(config: EngineConfigInput, dir = mkdtempSync(join(tmpdir(), 'remediation-e2e-'))): string {
  const file = join(dir, 'config.json');
  // JSON is YAML: the engine's loader reads it as any operator's config file.
  // It holds the webhook token and database passwords.
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

export async function spawnEngine(
  config: EngineConfigInput,
  options: { env?: NodeJS.ProcessEnv; startTimeoutMs?: number; fromBuild?: boolean } = {},
): Promise<EngineProcess> {
  // Its data (the webhook spool) beside its config, never shared with another test's engine.
  const dir = mkdtempSync(join(tmpdir(), 'remediation-e2e-'));
  const file = writeConfig({ dataDir: join(dir, 'data'), ...config }, dir);
  // From the sources (tsx) by default; fromBuild runs dist/ as scripts/start.sh does (npm run build first).
  // ENGINE_EXEC_ARGV: node options for the engine alone, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
  // (a profile per thread: main, incidents' workflows, guard's workflows); NODE_OPTIONS refuses --cpu-prof.
  const nodeArgs = process.env.ENGINE_EXEC_ARGV?.split(' ').filter(Boolean) ?? [];
  const entry = options.fromBuild
    ? [...nodeArgs, '--max-semi-space-size=4', 'dist/worker/main.js']
    : [...nodeArgs, '--import', 'tsx', 'worker/main.ts'];
  const child: ChildProcess = spawn(process.execPath, [...entry, '--config', file, 'engine'], {
    cwd: repoRoot,
    env: { ...process.env, REMEDIATION_WORKFLOW_BUNDLE: bundlePath, LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  // ENGINE_OUTPUT_FILE: the engine's stdout and stderr copied there as well (e.g. with
  // ENGINE_EXEC_ARGV=--trace-gc, which V8 prints to stdout).
  if (process.env.ENGINE_OUTPUT_FILE) {
    const copy = createWriteStream(process.env.ENGINE_OUTPUT_FILE, { flags: 'a' });
    child.stdout!.pipe(copy, { end: false });
    child.stderr!.pipe(copy, { end: false });
    child.once('close', () => copy.end());
  }
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      rmSync(dirname(file), { recursive: true, force: true });
      resolve({ code, signal });
    }),
  );

  const webhookUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      child.kill('SIGKILL');
      reject(new Error(`engine did not start within ${options.startTimeoutMs ?? 60_000} ms:\n${text.slice(-4_000)}`));
    }, options.startTimeoutMs ?? 60_000);
    const poll = setInterval(() => {
      for (const line of text.split('\n')) {
        if (!line.includes('"engine running"')) continue;
        clearInterval(poll);
        clearTimeout(timer);
        resolve((JSON.parse(line) as { webhook: string }).webhook.replace(/\/alertmanager$/, ''));
        return;
      }
    }, 100);
    void exited.then(({ code, signal }) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`engine exited (code ${code}, signal ${signal}) before it was running:\n${text.slice(-4_000)}`));
    });
  });

  return {
    pid: child.pid!,
    webhookUrl,
    output: () => text,
    exited,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async stop(graceMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
