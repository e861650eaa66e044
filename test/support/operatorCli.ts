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
 * Runs the CLI with exactly these arguments. The test process's TEMPORAL_ADDRESS,
 * REMEDIATION_CONFIG and REMEDIATE_* are removed, and the user's own credentials file is out of
 * reach, so only the arguments (and `env`) tell it where to go and who it is. From the repository
 * by default, where it finds config/example.yaml as the engine would; `cwd` elsewhere.
 */
export function runCli(args: string[], env: Record<string, string> = {}, cwd = repoRoot): Promise<CliRun> {
  const base = { ...process.env };
  delete base.TEMPORAL_ADDRESS;
  delete base.REMEDIATION_CONFIG;
  for (const name of Object.keys(base)) if (name.startsWith('REMEDIATE_')) delete base[name];
  base.XDG_CONFIG_HOME = join(repoRoot, 'test', 'no-such-config-home');
  return spawnCli(args, { ...base, ...env }, cwd);
}

/**
 * Runs the CLI with nothing but `env` (and PATH) in its environment, from `cwd`: what an operator's
 * laptop has, with no engine config, no Temporal address and none of the stack's secrets.
 */
export function runCliWithOnly(args: string[], env: Record<string, string>, cwd: string): Promise<CliRun> {
  return spawnCli(args, { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, cwd);
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'remediate.js'), ...args], { cwd, env, timeout: 60_000 }, (err, stdout, stderr) => {
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

/**
 * `remediate --config <configFile> admin ...args`: the administrators' mode, straight to Temporal;
 * the config file alone says where Temporal is, and --as names the operator.
 */
export function remediate(configFile: string, ...args: string[]): Promise<CliRun> {
  return runCli(['--config', configFile, 'admin', ...args]);
}

/** `remediate ...args` through the operator API at `url` with `token`, as an operator runs it. */
export function remediateWithToken(url: string, token: string, ...args: string[]): Promise<CliRun> {
  return runCli(args, { REMEDIATE_URL: url, REMEDIATE_TOKEN: token });
}
