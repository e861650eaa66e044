// `remediate runbooks validate`: runbook files checked as the engine would load them (structure,
// catalog, expressions, jumps) and, when a config is found, against it (targets, channels, URLs,
// secrets, the bindings and schedules that start them). Every problem names its file, line and step.
import { readdirSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, parseConfig, runbooksDir, shippedRunbooksDir } from '../../config/load.js';
import { loadRunbookDir, loadRunbookFile, RunbookError } from '../../config/runbookLoad.js';
import { definitionProblems, runbookReferenceProblems } from '../../config/runbookReferences.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import { engineConfig } from '../../config/schema.js';
import { printable, readRawConfig } from './runbookCommands.js';

export interface ValidationReport {
  ok: boolean;
  /** Runbook files checked. */
  runbooks: number;
  files: string[];
  /** Each "file:line: step "id": key: message (got value)", or a config problem. */
  problems: string[];
  /** The config whose targets, channels, URLs, secrets, bindings and schedules were checked; unset: none was found. */
  config?: string;
  referencesChecked: boolean;
  unresolvedSecrets: string[];
}

/**
 * No files: the config's runbook folder against the config, every problem of every file at once
 * (the engine stops at the first file that does not load). Files: those files, against the config
 * when there is one, as they would be if they replaced the files of the same name.
 */
export function validateRunbooks(configPath: string | undefined, files: string[]): ValidationReport {
  if (!configPath) {
    const checked = files.length > 0 ? files : yamlFiles(shippedRunbooksDir);
    const problems: string[] = [];
    if (files.length === 0) {
      try {
        loadRunbookDir(shippedRunbooksDir);
      } catch (err) {
        if (!(err instanceof RunbookError)) throw err;
        problems.push(...err.problems);
      }
    } else {
      problems.push(...loadFiles(files).problems);
    }
    return report(checked, problems, { referencesChecked: false, unresolvedSecrets: [] });
  }

  const { raw, baseDir, unresolvedSecrets } = readRawConfig(configPath);
  const meta = { config: configPath, unresolvedSecrets };
  const base = engineConfig.safeParse(raw);
  if (!base.success) {
    // parseConfig words the config's own problems exactly as the engine would at start-up.
    const problems = configProblems(() => parseConfig(raw, configPath, baseDir));
    return report(files, [...problems, ...loadFiles(files).problems], { ...meta, referencesChecked: false });
  }
  const dir = runbooksDir(base.data.runbooks, baseDir);

  if (files.length === 0) {
    const problems = configProblems(() => parseConfig(raw, configPath, baseDir));
    if (problems.length > 0) {
      // The engine stops at the first kind of problem; finish the picture file by file.
      for (const file of yamlFiles(dir)) {
        try {
          problems.push(...definitionProblems(loadRunbookFile(file), base.data));
        } catch (err) {
          if (!(err instanceof RunbookError)) throw err;
          problems.push(...err.problems);
        }
      }
    }
    return report(yamlFiles(dir), [...new Set(problems)], { ...meta, referencesChecked: true });
  }

  const given = loadFiles(files);
  // Named as given on the command line, not by the file name alone as the engine's folder is.
  for (const [name, def] of Object.entries(given.definitions)) given.definitions[name] = { ...def, source: given.sources[name]! };
  // The folder's other runbooks, as the engine would load them next to the given files.
  const replaced = new Set(files.map(realPath));
  const folder: Record<string, RunbookDefinition> = {};
  for (const file of yamlFiles(dir)) {
    if (replaced.has(realPath(file))) continue;
    try {
      const def = loadRunbookFile(file);
      folder[def.name] ??= def;
    } catch (err) {
      if (!(err instanceof RunbookError)) throw err;
    }
  }
  // Problems the given files bring: what the config says with them, less what it says without them.
  const before = new Set(runbookReferenceProblems({ ...base.data, runbookDefinitions: folder }));
  const after = runbookReferenceProblems({ ...base.data, runbookDefinitions: { ...folder, ...given.definitions } });
  return report(files, [...given.problems, ...after.filter((p) => !before.has(p))], { ...meta, referencesChecked: true });
}

function loadFiles(files: string[]): {
  definitions: Record<string, RunbookDefinition>;
  sources: Record<string, string>;
  problems: string[];
} {
  const definitions: Record<string, RunbookDefinition> = {};
  const sources: Record<string, string> = {};
  const problems: string[] = [];
  for (const file of files) {
    try {
      const def = loadRunbookFile(file);
      if (sources[def.name]) problems.push(`${file}: runbook name "${def.name}" is already used by ${sources[def.name]}`);
      else {
        definitions[def.name] = def;
        sources[def.name] = file;
      }
    } catch (err) {
      if (!(err instanceof RunbookError)) throw err;
      problems.push(...err.problems);
    }
  }
  return { definitions, sources, problems };
}

function configProblems(load: () => unknown): string[] {
  try {
    load();
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

function yamlFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    // An unreadable folder is reported by the loader, with its reason.
    return [];
  }
}

function realPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return resolve(file);
  }
}

function report(
  files: string[],
  problems: string[],
  meta: { config?: string; referencesChecked: boolean; unresolvedSecrets: string[] },
): ValidationReport {
  return { ok: problems.length === 0, runbooks: files.length, files, problems, ...meta };
}

export function validateText(r: ValidationReport): string {
  const lines: string[] = [];
  if (!r.config)
    lines.push(
      'no configuration (--config or REMEDIATION_CONFIG): checked structure only, not the targets, channels, URLs and secrets the runbooks name',
    );
  else if (!r.referencesChecked) lines.push(`the configuration ${r.config} does not load, so references were not checked`);
  if (r.unresolvedSecrets.length > 0) lines.push(`(not needed here, left unresolved: ${r.unresolvedSecrets.join(', ')})`);
  if (r.ok) lines.push(`ok: ${r.runbooks} runbook${r.runbooks === 1 ? '' : 's'}`);
  else lines.push(...r.problems, `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`);
  return `${lines.map(printable).join('\n')}\n`;
}
