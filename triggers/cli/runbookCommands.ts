// What an operator can ask of the runbook files, as plain data: which there are and what starts
// them, and what one says step by step. Like validate and plan (runbookValidate.ts,
// runbookPreview.ts) these read the config and the files only: no Temporal, and no secret they do not use.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { formatDuration } from '../../config/duration.js';
import { ConfigError, parseConfig, parseConfigYaml, runbooksDir } from '../../config/load.js';
import { actionSteps } from '../../config/runbookLoad.js';
import {
  configMutatingSteps,
  mutatingSteps,
  stepOutputs,
  type ActionStep,
  type RunbookDefinition,
  type Step,
} from '../../config/runbookSchema.js';
import { engineConfig, type EngineConfig } from '../../config/schema.js';
import { CommandError } from '../operators/operatorTemporal.js';
import { renderTable } from './table.js';

/**
 * Text from files and alerts is shown in a terminal: control characters (escape sequences that
 * could rewrite the screen) become "?", and a newline inside a value stays visible as "\n".
 */
export function printable(text: string): string {
  return text.replace(/\n/g, '\\n').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

// ---------------------------------------------------------------------------------------------
// The config, read for commands that never use its secrets

export interface OfflineConfig {
  config: EngineConfig;
  /** The folder the config's runbooks come from. */
  runbooksDir: string;
  /** Secret keys that could not be resolved (an unset variable, an unreadable file), left unresolved. */
  unresolvedSecrets: string[];
}

const unresolvableSecret = /^(environment variable \S+ is not set|secret file .* cannot be read)/;

export interface RawConfig {
  raw: unknown;
  baseDir: string;
  unresolvedSecrets: string[];
}

/**
 * Reads a config the way the engine does, except that a secret which cannot be resolved (the
 * database password of a production config on an SRE's laptop) is replaced by a placeholder:
 * listing, showing, validating and planning runbooks never reveal or use a secret, so they must
 * not need one. Everything else is checked exactly as at start-up.
 */
export function readRawConfig(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const raw = parseConfigYaml(text, path);
  const baseDir = dirname(resolve(path));
  const checked = engineConfig.safeParse(raw);
  const secrets = checked.success ? [] : checked.error.issues.filter((i) => i.code === 'custom' && unresolvableSecret.test(i.message));
  if (secrets.length === 0) return { raw, baseDir, unresolvedSecrets: [] };
  const patched = structuredClone(raw) as Record<string | number, unknown>;
  for (const issue of secrets) {
    let at = patched;
    for (const key of issue.path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
    at[issue.path.at(-1)!] = placeholderFor(issue.path);
  }
  return { raw: patched, baseDir, unresolvedSecrets: secrets.map((i) => i.path.join('.')) };
}

/**
 * A stand-in a secret's own checks accept, so an unset secret is not reported as a bad one: a
 * channel's URL must be a URL, an operator's token hash a hash (one per key, never shared).
 */
function placeholderFor(path: Array<string | number>): string {
  const key = path.at(-1);
  if (key === 'url') return 'http://unresolved-secret.invalid/';
  if (key === 'tokenHash') return `sha256:${createHash('sha256').update(path.join('.')).digest('hex')}`;
  return 'unresolved-secret';
}

export function loadConfigOffline(path: string): OfflineConfig {
  const { raw, baseDir, unresolvedSecrets } = readRawConfig(path);
  const config = parseConfig(raw, path, baseDir);
  return { config, runbooksDir: runbooksDir(config.runbooks, baseDir), unresolvedSecrets };
}

// ---------------------------------------------------------------------------------------------
// runbooks list

export interface RunbookRow {
  name: string;
  kind: RunbookDefinition['kind'];
  appliesTo: string[];
  file: string;
  /** Action steps, groups flattened, finally included. */
  steps: number;
  /** The bindings and schedules of the config that start it. */
  usedBy: string[];
}

export function listRunbooks(loaded: OfflineConfig): RunbookRow[] {
  return Object.values(loaded.config.runbookDefinitions)
    .map((def) => ({
      name: def.name,
      kind: def.kind,
      appliesTo: def.appliesTo,
      file: join(loaded.runbooksDir, def.source),
      steps: actionSteps(def).length,
      usedBy: usersOf(loaded.config, def.name),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function usersOf(config: EngineConfig, runbook: string): string[] {
  return [
    ...config.bindings.flatMap((b, i) => (b.runbook === runbook ? [`alert ${b.alert} (binding #${i})`] : [])),
    ...config.maintenance.flatMap((m) => (m.runbook === runbook ? [`schedule ${m.name}`] : [])),
  ];
}

export function listText(rows: RunbookRow[]): string {
  if (rows.length === 0) return 'no runbooks\n';
  return renderTable(
    ['NAME', 'KIND', 'APPLIES TO', 'FILE', 'STEPS', 'USED BY'],
    rows.map((r) =>
      [r.name, r.kind, r.appliesTo.join(', '), shortPath(r.file), String(r.steps), r.usedBy.join('; ') || '-'].map(printable),
    ),
  );
}

/** Paths under the working directory are shown relative to it. */
export function shortPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

// ---------------------------------------------------------------------------------------------
// runbooks show

export interface StepView {
  id: string;
  kind: Step['kind'];
  uses?: string;
  line?: number;
  description?: string;
  when?: string;
  onFailure: string;
  timeout?: string;
  retry?: string;
  /** Parameters as checked at load, catalog defaults included. */
  with?: Record<string, unknown>;
  /** What later steps read as `steps.<id>.<output>`. */
  outputs: string[];
  mutating: boolean;
  steps?: StepView[];
}

export interface RunbookView {
  name: string;
  kind: RunbookDefinition['kind'];
  description: string;
  appliesTo: string[];
  file: string;
  /** The first 12 characters, as a run's timeline records them. */
  sha256: string;
  usedBy: string[];
  steps: StepView[];
  finally: StepView[];
}

export function showRunbook(loaded: OfflineConfig, name: string): RunbookView {
  const def = definitionNamed(loaded.config, name);
  return {
    name: def.name,
    kind: def.kind,
    description: def.description,
    appliesTo: def.appliesTo,
    file: join(loaded.runbooksDir, def.source),
    sha256: def.sha256.slice(0, 12),
    usedBy: usersOf(loaded.config, def.name),
    steps: def.steps.map((s) => stepView(s, loaded.config)),
    finally: def.finally.map((s) => stepView(s, loaded.config)),
  };
}

export function definitionNamed(config: EngineConfig, name: string): RunbookDefinition {
  if (Object.hasOwn(config.runbookDefinitions, name)) return config.runbookDefinitions[name]!;
  const known = Object.keys(config.runbookDefinitions).sort().join(', ') || 'none';
  throw new CommandError(2, `no runbook ${JSON.stringify(printable(name.slice(0, 80)))} (known: ${known})`);
}

// Besides its own outputs every step leaves `status` and `error`; groups leave what runbook.ts gives them.
const groupOutputs = { parallel: ['failed'], forEach: ['done'] } as const;

function stepView(step: Step, config: EngineConfig): StepView {
  const common = {
    id: step.id,
    kind: step.kind,
    ...(step.line ? { line: step.line } : {}),
    ...(step.description ? { description: step.description } : {}),
    ...(step.when !== undefined ? { when: step.when } : {}),
    onFailure: onFailureText(step.onFailure),
    ...(step.timeoutMs !== undefined ? { timeout: formatDuration(step.timeoutMs) } : {}),
  };
  if (step.kind !== 'action') {
    const children = step.steps.map((s) => stepView(s, config));
    return {
      ...common,
      outputs: [...groupOutputs[step.kind], 'status', 'error'],
      mutating: children.some((c) => c.mutating),
      steps: children,
    };
  }
  return {
    ...common,
    uses: step.uses,
    ...(step.retry ? { retry: `${step.retry.attempts} attempts, ${formatDuration(step.retry.backoffMs)} apart` } : {}),
    with: step.with,
    outputs: [...stepOutputs[step.uses], 'status', 'error'],
    mutating: mutatingSteps.has(step.uses) || (configMutatingSteps.has(step.uses) && commandMayChange(step, config)),
  };
}

/** A command step changes something unless the command it names is readOnly on every target that has it. */
function commandMayChange(step: ActionStep, config: EngineConfig): boolean {
  const name = step.with.command as string;
  const targets = typeof step.with.target === 'string' ? [config.targets[step.with.target]] : Object.values(config.targets);
  const specs = targets.flatMap((t) => (t && 'commands' in t && Object.hasOwn(t.commands, name) ? [t.commands[name]!] : []));
  return specs.length === 0 || specs.some((c) => !c.readOnly);
}

export function onFailureText(policy: Step['onFailure']): string {
  return typeof policy === 'object' ? `goto ${policy.goto}` : policy;
}

export function showText(v: RunbookView): string {
  const lines = [
    `${v.name}: ${v.kind} runbook for ${v.appliesTo.join(', ')}`,
    `  ${v.description}`,
    `file:    ${shortPath(v.file)} (sha256 ${v.sha256})`,
    `used by: ${v.usedBy.join('; ') || 'nothing in this config'}`,
    '',
    'steps:',
    ...v.steps.flatMap((s) => stepLines(s, '  ')),
  ];
  if (v.finally.length > 0) lines.push('', 'finally (however the run ends):', ...v.finally.flatMap((s) => stepLines(s, '  ')));
  return `${lines.map(printable).join('\n')}\n`;
}

function stepLines(s: StepView, indent: string): string[] {
  const what = s.kind === 'action' ? s.uses! : s.kind === 'forEach' ? 'for each target' : 'in parallel';
  const detail = `${indent}    `;
  const lines = [`${indent}${s.id}: ${what}${s.mutating ? '  [mutating]' : ''}${s.line ? `  (line ${s.line})` : ''}`];
  if (s.description) lines.push(`${detail}${s.description}`);
  if (s.when !== undefined) lines.push(`${detail}when: ${s.when}`);
  lines.push(`${detail}on failure: ${s.onFailure}`);
  if (s.timeout) lines.push(`${detail}timeout: ${s.timeout}`);
  if (s.retry) lines.push(`${detail}retry: ${s.retry}`);
  for (const [key, value] of Object.entries(s.with ?? {})) lines.push(`${detail}with.${key}: ${paramText(value)}`);
  lines.push(`${detail}outputs: steps.${s.id.replaceAll('-', '_')}.{${s.outputs.join(', ')}}`);
  for (const child of s.steps ?? []) lines.push(...stepLines(child, `${indent}    `));
  return lines;
}

export function paramText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
