// The operator CLI (`bin/remediate.js`) as a separate process, the way an operator runs it.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './engineProcess.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for `--json`), or undefined when it is not JSON. */
  json: any;
}

/**
 * Runs the CLI with exactly these arguments. The test process's TEMPORAL_ADDRESS and
 * REMEDIATION_CONFIG are removed, so only the arguments (and `env`) tell it where to go.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const base = { ...process.env };
  delete base.TEMPORAL_ADDRESS;
  delete base.REMEDIATION_CONFIG;
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'remediate.js'), ...args], { cwd: repoRoot, env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr, json });
    });
  });
}

/** `remediate --config <configFile> ...args`: the config file alone says where Temporal is. */
export function remediate(configFile: string, ...args: string[]): Promise<CliRun> {
  return runCli(['--config', configFile, ...args]);
}
