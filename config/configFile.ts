// Which configuration file a process uses: one rule for the engine, its host agents and the
// administrators' CLI, so `remediate admin …` run where the engine runs reads the engine's file.
import { resolve } from 'node:path';

/** The file `npm start` runs the engine with, relative to the working directory. */
export const defaultConfigFile = 'config/example.yaml';

export interface FoundConfigFile {
  /** Absolute path. */
  path: string;
  /** What chose it, for the line that says which file was used. */
  from: '--config' | 'REMEDIATION_CONFIG' | 'default';
}

/** --config, else $REMEDIATION_CONFIG, else config/example.yaml in the working directory. */
export function findConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): FoundConfigFile {
  if (flag) return { path: resolve(cwd, flag), from: '--config' };
  if (env.REMEDIATION_CONFIG) return { path: resolve(cwd, env.REMEDIATION_CONFIG), from: 'REMEDIATION_CONFIG' };
  return { path: resolve(cwd, defaultConfigFile), from: 'default' };
}

/** "config /abs/engine.yaml (from --config)": what a process prints before it uses the file. */
export function configFileText(found: FoundConfigFile): string {
  return `config ${found.path} (from ${found.from === 'default' ? `the default, ${defaultConfigFile} in the working directory` : found.from})`;
}
