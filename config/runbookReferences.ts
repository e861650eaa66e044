// What runbook files name in the engine's config must exist there: a runbook can only touch targets,
// notify channels and call URLs the config already names, and bindings and schedules can only start
// runbooks that fit them. Checked once both are loaded, at start-up and by `remediate runbooks validate`.
import { placeholderLabels } from './promql.js';
import { hostStepProblems } from './hostStepReferences.js';
import { actionSteps, namedTargets } from './runbookLoad.js';
import { runPollingProblem } from './runbookPolling.js';
import { parseDuration } from './duration.js';
import type { ActionStep, RunbookDefinition } from './runbookSchema.js';
import type { EngineConfig } from './schema.js';

type Loaded = Pick<EngineConfig, 'targets' | 'channels' | 'secrets' | 'bindings' | 'maintenance' | 'runbookDefinitions'> &
  Partial<Pick<EngineConfig, 'prometheus' | 'alertmanager' | 'docker' | 'temporal' | 'operators' | 'guardrails'>>;

/** The shortest verifyInterval any target polls at: the global one, or a target's own. */
function shortestVerifyInterval(config: Loaded & Pick<EngineConfig, 'guardrails'>): number {
  const own = Object.values(config.targets).flatMap((t) => {
    const g = (t as { guardrails?: { verifyInterval?: string } }).guardrails;
    return g?.verifyInterval ? [parseDuration(g.verifyInterval)] : [];
  });
  return Math.min(parseDuration(config.guardrails.verifyInterval), ...own);
}

export function runbookReferenceProblems(config: Loaded): string[] {
  const problems: string[] = [];
  const defs = config.runbookDefinitions;
  const known = Object.keys(defs).join(', ') || 'none';
  config.bindings.forEach((b, i) => {
    const def = defs[b.runbook];
    if (!def) return problems.push(`bindings[${i}].runbook: no runbook file named "${b.runbook}" (known: ${known})`);
    if (def.kind !== 'incident')
      return problems.push(`bindings[${i}].runbook: "${b.runbook}" is a ${def.kind} runbook; alerts start incident runbooks`);
    for (const t of b.target ? [b.target] : b.targets) {
      const kind = config.targets[t]?.kind;
      if (kind && !def.appliesTo.includes(kind))
        problems.push(`bindings[${i}]: runbook "${b.runbook}" applies to ${def.appliesTo.join(', ')}, and target "${t}" is a ${kind}`);
    }
  });
  config.maintenance.forEach((m, i) => {
    const def = defs[m.runbook];
    if (!def) return problems.push(`maintenance[${i}].runbook: no runbook file named "${m.runbook}" (known: ${known})`);
    if (def.kind !== 'maintenance')
      problems.push(`maintenance[${i}].runbook: "${m.runbook}" is an ${def.kind} runbook; schedules start maintenance runbooks`);
    for (const t of m.targets) {
      const kind = config.targets[t]?.kind;
      if (kind && !def.appliesTo.includes(kind))
        problems.push(`maintenance[${i}]: runbook "${m.runbook}" applies to ${def.appliesTo.join(', ')}, and target "${t}" is a ${kind}`);
    }
  });
  // The polling bound again, now that the config says how often a verify polls and how many targets
  // a run's forEach goes through: a run past it would be terminated by Temporal, finally and all.
  const verifyIntervalMs = config.guardrails ? shortestVerifyInterval(config as Loaded & Pick<EngineConfig, 'guardrails'>) : undefined;
  const pollingOf = (where: string, def: RunbookDefinition, runTargets: number) => {
    const p = runPollingProblem([...def.steps, ...def.finally], { verifyIntervalMs, forEachRuns: runTargets });
    if (p) problems.push(`${where}: runbook "${def.name}", step "${p.step.id}": ${p.message}`);
  };
  config.maintenance.forEach((m, i) => {
    const def = defs[m.runbook];
    if (def) pollingOf(`maintenance[${i}]`, def, new Set([...m.targets, ...namedTargets(def)]).size);
  });
  config.bindings.forEach((b, i) => {
    const def = defs[b.runbook];
    if (def) pollingOf(`bindings[${i}]`, def, new Set(['', ...namedTargets(def)]).size);
  });
  config.operators?.forEach((o, i) =>
    o.runbooks?.forEach((r, j) => {
      if (!defs[r]) problems.push(`operators[${i}].runbooks[${j}]: no runbook file named "${r}" (known: ${known})`);
    }),
  );
  for (const def of Object.values(defs)) problems.push(...definitionProblems(def, config));
  return problems;
}

/** A definition's own references into the config: targets, channels, URLs, secrets. */
export function definitionProblems(
  def: RunbookDefinition,
  config: Pick<Loaded, 'targets' | 'channels' | 'secrets'> & Partial<Omit<Loaded, 'targets' | 'channels' | 'secrets'>>,
): string[] {
  const problems: string[] = [];
  const origins = configuredOrigins(config);
  const hosts = configuredHosts(config);
  for (const step of actionSteps(def)) {
    const at = `${def.source}${step.line ? `:${step.line}` : ''}: step "${step.id}"`;
    const p = step.with;
    if (typeof p.target === 'string' && !Object.hasOwn(config.targets, p.target))
      problems.push(`${at}: with.target: no target named "${p.target}" (known: ${Object.keys(config.targets).join(', ')})`);
    if (Array.isArray(p.channels))
      for (const ch of p.channels as string[])
        if (!Object.hasOwn(config.channels, ch))
          problems.push(`${at}: with.channels: no channel named "${ch}" (known: ${Object.keys(config.channels).join(', ') || 'none'})`);
    if (step.uses === 'alerts' && !config.alertmanager)
      problems.push(`${at}: uses: alerts reads the alerts firing in Alertmanager, and the config has no alertmanager.url`);
    if (step.uses === 'http') {
      const origin = new URL(p.url as string).origin;
      if (!origins.has(origin))
        problems.push(
          `${at}: with.url: ${origin} is not the origin of any target's health or action URL in the config (known: ${[...origins].join(', ') || 'none'})`,
        );
      for (const [header, value] of Object.entries(p.headers as Record<string, unknown>)) {
        const secret = (value as { secret?: string })?.secret;
        if (secret !== undefined && !Object.hasOwn(config.secrets, secret))
          problems.push(
            `${at}: with.headers.${header}: no secret named "${secret}" in the config's secrets (known: ${Object.keys(config.secrets).join(', ') || 'none'})`,
          );
      }
    }
    problems.push(...targetStepProblems(step, def, config, hosts).map((p) => `${at}: ${p}`));
    problems.push(...hostStepProblems(step, config.targets, () => actedOn(step, def, config)).map((p) => `${at}: ${p}`));
  }
  return problems;
}

/**
 * What the new step types name on their target: a metric query needs a Prometheus and the labels
 * its placeholders read; a command must be one the target lists, on a kind that can run one; host
 * diagnostics need a container or systemd target and connect only to hosts the config names.
 * Checked on the step's literal target, else on every target a binding or schedule starts the
 * runbook on (a run by hand on another target is refused by the activity when the step runs).
 */
function targetStepProblems(
  step: ActionStep,
  def: RunbookDefinition,
  config: Parameters<typeof definitionProblems>[1],
  hosts: Set<string>,
): string[] {
  const p = step.with;
  const problems: string[] = [];
  const query = step.uses === 'metric' || (step.uses === 'waitUntil' && p.check === 'metric') ? (p.query as string) : undefined;
  if (step.uses !== 'command' && step.uses !== 'hostDiagnostics' && query === undefined) return problems;
  const acted = actedOn(step, def, config);
  if (query !== undefined) {
    if (!config.prometheus) problems.push(`with.query: a metric check needs prometheus.url in the config, which has none`);
    for (const name of acted)
      for (const label of placeholderLabels(query))
        if (!Object.hasOwn(config.targets[name]!.labels, label))
          problems.push(`with.query: {{target.labels.${label}}}: target "${name}" has no label "${label}" in the config`);
    return problems;
  }
  for (const name of acted) {
    const t = config.targets[name]!;
    if (t.kind !== 'container' && t.kind !== 'systemd') {
      problems.push(`with: ${step.uses} runs in a container or on a systemd unit's host, and target "${name}" is a ${t.kind}`);
      continue;
    }
    if (step.uses === 'command' && !Object.hasOwn(t.commands, p.command as string))
      problems.push(
        `with.command: target "${name}" has no command "${String(p.command)}" in the config (known: ${Object.keys(t.commands).join(', ') || 'none'})`,
      );
  }
  if (step.uses === 'hostDiagnostics')
    for (const hp of p.tcp as string[]) {
      const host = hp.slice(0, hp.lastIndexOf(':'));
      if (!hosts.has(host.toLowerCase()))
        problems.push(`with.tcp: ${hp}: "${host}" is not a host the config names (known: ${[...hosts].join(', ') || 'none'})`);
    }
  return problems;
}

/** What a step acts on: its literal `target:` (when configured), else what bindings and schedules start the runbook on. */
function actedOn(step: ActionStep, def: RunbookDefinition, config: Parameters<typeof definitionProblems>[1]): string[] {
  const t = step.with.target;
  return typeof t === 'string' ? (Object.hasOwn(config.targets, t) ? [t] : []) : targetsStarting(def, config);
}

/** The targets bindings and schedules start a runbook on: what its steps without `target:` act on. */
function targetsStarting(
  def: RunbookDefinition,
  config: Partial<Pick<Loaded, 'bindings' | 'maintenance'>> & Pick<Loaded, 'targets'>,
): string[] {
  const names = new Set<string>();
  for (const b of config.bindings ?? []) if (b.runbook === def.name) for (const t of b.target ? [b.target] : b.targets) names.add(t);
  for (const m of config.maintenance ?? []) if (m.runbook === def.name) for (const t of m.targets) names.add(t);
  return [...names].filter((n) => Object.hasOwn(config.targets, n));
}

/**
 * The hosts the config already names (targets' database and cache hosts, the hosts of health,
 * action, Alertmanager and Prometheus URLs, Docker and Temporal endpoints): the only hosts a
 * runbook's TCP connect check may reach.
 */
export function configuredHosts(
  config: Pick<Loaded, 'targets'> & Partial<Pick<Loaded, 'prometheus' | 'alertmanager' | 'docker' | 'temporal'>>,
): Set<string> {
  const out = new Set<string>();
  const url = (u: string | undefined) => {
    if (u && URL.canParse(u)) out.add(new URL(u).hostname.toLowerCase());
  };
  for (const t of Object.values(config.targets)) {
    if ('host' in t && t.kind !== 'systemd' && t.host) out.add(t.host.toLowerCase());
    url(t.health?.url);
    url(t.health?.detailedUrl);
    if (t.kind === 'http') url(t.action?.url);
  }
  url(config.alertmanager?.url);
  url(config.prometheus?.url);
  for (const d of Object.values(config.docker ?? {})) if (d.host) out.add(d.host.toLowerCase());
  const temporal = config.temporal?.address;
  if (temporal) out.add(temporal.slice(0, temporal.lastIndexOf(':') > 0 ? temporal.lastIndexOf(':') : undefined).toLowerCase());
  return out;
}

/** The HTTP origins the config already trusts: a runbook's http step may call only these. */
export function configuredOrigins(config: Pick<Loaded, 'targets'>): Set<string> {
  const out = new Set<string>();
  for (const t of Object.values(config.targets)) {
    for (const url of [t.health?.url, t.health?.detailedUrl, t.kind === 'http' ? t.action?.url : undefined])
      if (url) out.add(new URL(url).origin);
  }
  return out;
}
