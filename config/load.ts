// Configuration is read and checked once, at start-up; afterwards only typed values travel.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { describeIssue } from './issueText.js';
import { engineConfigShape, secretsIn, tokenHashPattern, type EngineConfig } from './schema.js';
import { loadRunbookDir, RunbookError } from './runbookLoad.js';
import { runbookReferenceProblems } from './runbookReferences.js';

/** The runbooks shipped with the engine: used when the config names no folder of its own. */
// config/ from the sources, dist/config/ from the build: the folder sits at the package root.
export const shippedRunbooksDir =
  ['..', '../..'].map((up) => resolve(dirname(fileURLToPath(import.meta.url)), up, 'runbooks')).find((dir) => existsSync(dir)) ??
  resolve(dirname(fileURLToPath(import.meta.url)), '..', 'runbooks');

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Which secrets the loading process resolves (and so must have) at start-up. The engine uses all
 * of them; a host agent only the Temporal connection's and those of its host's units: the rest are
 * never read on that host, so a database password need not be there at all. The administrators'
 * CLI only the Temporal connection's.
 */
export type SecretScope = 'all' | 'temporal' | { host: string };

export interface LoadOptions {
  secrets?: SecretScope;
}

export function loadConfigFile(path: string, options: LoadOptions = {}): EngineConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parseConfig(parseConfigYaml(text, path), path, dirname(resolve(path)), options);
}

/**
 * A config file's YAML, or a ConfigError saying where it is not valid. The YAML library's own
 * messages quote the text they stumbled on, and an unquoted secret starting with `*` or `!` is
 * what they would quote ("Unresolved alias: Sup3rS3cret"): only the line, the column and what is
 * wrong are told. An unknown tag is refused, not dropped (`token: !abc x` would be the token "x").
 */
export function parseConfigYaml(text: string, path: string): unknown {
  // prettyErrors: line and column (linePos); the messages themselves are not used.
  const doc = parseDocument(text, { logLevel: 'silent', uniqueKeys: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings].map((e) => {
    const at = e.linePos?.[0];
    return `not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${yamlProblems[e.code] ?? e.code.toLowerCase().replace(/_/g, ' ')}`;
  });
  if (problems.length > 0) throw new ConfigError(path, problems);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const what = /alias/i.test((err as Error).message) ? yamlProblems.BAD_ALIAS! : 'it cannot be read as data';
    throw new ConfigError(path, [`not valid YAML: ${what}`]);
  }
}

/** What the YAML library's error codes mean, in words that quote nothing from the file. */
const yamlProblems: Record<string, string> = {
  BAD_ALIAS: 'an alias (*name) that names no anchor: a value that starts with * or & must be quoted',
  TAG_RESOLVE_FAILED: 'an unknown tag (!name): a value that starts with ! must be quoted',
  DUPLICATE_KEY: 'a key given twice in one mapping',
  BAD_INDENT: 'wrong indentation',
  BLOCK_AS_IMPLICIT_KEY: 'a nested mapping on one line (a value with ": " in it must be quoted)',
  MISSING_CHAR: 'a bracket, brace or quote is not closed',
  MULTILINE_IMPLICIT_KEY: 'a key that runs over more than one line',
  TAB_AS_INDENT: 'a tab used for indentation',
  UNEXPECTED_TOKEN: 'an unexpected character (a value that starts with @, ` or % must be quoted)',
};

/**
 * Checks a config and loads the runbook files it uses. `baseDir` is what a relative `runbooks:`
 * folder is relative to (the config file's folder; the working directory for configs built in code).
 */
export function parseConfig(raw: unknown, source = 'config', baseDir = process.cwd(), options: LoadOptions = {}): EngineConfig {
  const parsed = engineConfigShape.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      source,
      parsed.error.issues.map((i) => describeIssue(i, raw)),
    );
  const unusable = secretProblems(parsed.data, options.secrets ?? 'all');
  if (unusable.length > 0) throw new ConfigError(source, unusable);
  const problems = crossReferences(parsed.data);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const dir = runbooksDir(parsed.data.runbooks, baseDir);
  let runbookDefinitions;
  try {
    runbookDefinitions = loadRunbookDir(dir);
  } catch (err) {
    if (err instanceof RunbookError) throw new ConfigError(source, err.problems);
    throw err;
  }
  const config: EngineConfig = { ...parsed.data, runbookDefinitions };
  const refs = runbookReferenceProblems(config);
  if (refs.length > 0) throw new ConfigError(source, refs);
  return config;
}

export function runbooksDir(configured: string | undefined, baseDir: string): string {
  if (configured === undefined) return shippedRunbooksDir;
  return resolve(baseDir, configured);
}

/** Resolves the secrets in scope; each one that cannot be read is a problem at its key. */
function secretProblems(config: Omit<EngineConfig, 'runbookDefinitions'>, scope: SecretScope): string[] {
  const inScope = (path: Array<string | number>): boolean => {
    if (scope === 'all') return true;
    if (path[0] === 'temporal') return true;
    if (scope === 'temporal') return false;
    // A named secret in the health-check headers of one of this host's units: the agent sends that check.
    if (path[0] === 'secrets')
      return Object.values(config.targets).some(
        (t) =>
          t.kind === 'systemd' &&
          t.host === scope.host &&
          Object.values(t.health?.headers ?? {}).some((v) => typeof v === 'object' && v.secret === path[1]),
      );
    const t = path[0] === 'targets' ? config.targets[String(path[1])] : undefined;
    return t?.kind === 'systemd' && t.host === scope.host;
  };
  const problems: string[] = [];
  for (const { path, secret } of secretsIn(config)) {
    if (!inScope(path)) continue;
    const problem = secret.check();
    if (problem) problems.push(`${path.join('.')}: ${problem}`);
  }
  // A token hash read from the environment or a file is checked once read, like a literal one.
  config.operators.forEach((o, i) => {
    if (!o.tokenHash?.resolved) return;
    if (!tokenHashPattern.test(o.tokenHash.reveal()))
      problems.push(`operators[${i}].tokenHash: expected "sha256:" and 64 lowercase hex digits`);
  });
  // A webhook's URL is its secret, so it could not be checked as a URL while unread.
  for (const [name, ch] of Object.entries(config.channels)) {
    if ((ch.type !== 'webhook' && ch.type !== 'slack') || !inScope(['channels', name]) || !ch.url.resolved) continue;
    const url = ch.url.reveal();
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))
      problems.push(`channels.${name}.url: expected an http or https URL`);
  }
  return problems;
}

/** Names that must point at something declared elsewhere in the file. */
function crossReferences(c: Omit<EngineConfig, 'runbookDefinitions'>): string[] {
  const problems: string[] = [];
  const targets = new Set(Object.keys(c.targets));
  const missing = (key: string, kind: string, value: string, known: Iterable<string>) =>
    problems.push(`${key}: no ${kind} named "${value}" (known: ${[...known].join(', ') || 'none'})`);

  for (const [name, t] of Object.entries(c.targets)) {
    if (t.kind === 'container' && !(t.docker in c.docker))
      missing(`targets.${name}.docker`, 'docker endpoint', t.docker, Object.keys(c.docker));
    if (t.kind === 'systemd' && !(t.host in c.hosts)) missing(`targets.${name}.host`, 'host', t.host, Object.keys(c.hosts));
    if ('restartVia' in t && t.restartVia !== undefined) {
      const via = c.targets[t.restartVia];
      if (!via) missing(`targets.${name}.restartVia`, 'target', t.restartVia, targets);
      // A database's restart (and its logs) run on the engine, which acts on containers; a systemd
      // unit is acted on only by its host's agent, which serves its own units and nothing else.
      else if (via.kind !== 'container')
        problems.push(
          `targets.${name}.restartVia: "${t.restartVia}" is a ${via.kind} target; it must be a container target${via.kind === 'systemd' ? ' (a unit is restarted only by its host agent: bind the unit itself)' : ''}`,
        );
    }
    t.dependsOn.forEach((dep, j) => {
      if (dep === name) problems.push(`targets.${name}.dependsOn[${j}]: a target cannot depend on itself`);
      else if (!targets.has(dep)) missing(`targets.${name}.dependsOn[${j}]`, 'target', dep, targets);
    });
  }
  c.bindings.forEach((b, i) => {
    if (b.target && !targets.has(b.target)) missing(`bindings[${i}].target`, 'target', b.target, targets);
    b.targets.forEach((t, j) => {
      if (!targets.has(t)) missing(`bindings[${i}].targets[${j}]`, 'target', t, targets);
    });
    if (b.escalation && !Object.hasOwn(c.escalation.policies, b.escalation))
      missing(`bindings[${i}].escalation`, 'escalation policy', b.escalation, Object.keys(c.escalation.policies));
    for (const [sev, p] of Object.entries(b.escalationBySeverity))
      if (!Object.hasOwn(c.escalation.policies, p))
        missing(`bindings[${i}].escalationBySeverity.${sev}`, 'escalation policy', p, Object.keys(c.escalation.policies));
  });
  const policies = Object.keys(c.escalation.policies);
  if (!(c.escalation.default in c.escalation.policies)) missing('escalation.default', 'escalation policy', c.escalation.default, policies);
  for (const [sev, p] of Object.entries(c.escalation.bySeverity))
    if (!(p in c.escalation.policies)) missing(`escalation.bySeverity.${sev}`, 'escalation policy', p, policies);
  for (const [pname, policy] of Object.entries(c.escalation.policies))
    policy.levels.forEach((l, i) =>
      l.channels.forEach((ch, j) => {
        if (!(ch in c.channels))
          missing(`escalation.policies.${pname}.levels[${i}].channels[${j}]`, 'channel', ch, Object.keys(c.channels));
      }),
    );
  const scheduleNames = new Set<string>();
  c.maintenance.forEach((m, i) => {
    if (scheduleNames.has(m.name)) problems.push(`maintenance[${i}].name: "${m.name}" is used twice`);
    scheduleNames.add(m.name);
    m.targets.forEach((t, j) => {
      if (!targets.has(t)) missing(`maintenance[${i}].targets[${j}]`, 'target', t, targets);
    });
  });
  if (c.maintenance.length > 0 && !c.alertmanager)
    problems.push('alertmanager: maintenance windows silence alerts, so alertmanager.url is required');
  const operators = new Set<string>();
  const tokenHashes = new Set<string>();
  const chatUsers = new Set<string>();
  c.operators.forEach((o, i) => {
    if (operators.has(o.name)) problems.push(`operators[${i}].name: "${o.name}" is listed twice`);
    operators.add(o.name);
    // One credential, one person: a shared token would make every action it signs ambiguous.
    const hash = o.tokenHash?.resolved ? o.tokenHash.reveal() : undefined;
    if (hash && tokenHashes.has(hash)) problems.push(`operators[${i}].tokenHash: the same token hash is given to another operator`);
    if (hash) tokenHashes.add(hash);
    if (o.chatUserId && chatUsers.has(o.chatUserId))
      problems.push(`operators[${i}].chatUserId: "${o.chatUserId}" is given to another operator`);
    if (o.chatUserId) chatUsers.add(o.chatUserId);
    if (o.tokenExpires && !o.tokenHash) problems.push(`operators[${i}].tokenExpires: set without a tokenHash`);
    o.targets?.forEach((t, j) => {
      if (!targets.has(t)) missing(`operators[${i}].targets[${j}]`, 'target', t, targets);
    });
  });
  if (c.api) {
    const apiPort = Number(c.api.listen.split(':').at(-1));
    if (apiPort === Number(c.webhook.listen.split(':').at(-1)) && apiPort !== 0)
      problems.push(`api.listen: port ${apiPort} is the webhook's; the operator API needs a listener of its own`);
  }
  if (c.chat.slack && !c.api) problems.push('chat.slack: chat approvals arrive on the operator API, so api must be configured');
  return problems;
}

/** The task queue that runs a host's local activities (systemd). */
export function hostTaskQueue(config: EngineConfig, host: string): string {
  return config.hosts[host]?.taskQueue ?? `${config.temporal.taskQueue}-host-${host}`;
}
