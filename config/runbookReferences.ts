// What runbook files name in the engine's config must exist there: a runbook can only touch targets,
// notify channels and call URLs the config already names, and bindings and schedules can only start
// runbooks that fit them. Checked once both are loaded, at start-up and by `remediate runbooks validate`.
import { actionSteps } from './runbookLoad.js';
import type { RunbookDefinition } from './runbookSchema.js';
import type { EngineConfig } from './schema.js';

type Loaded = Pick<EngineConfig, 'targets' | 'channels' | 'secrets' | 'bindings' | 'maintenance' | 'runbookDefinitions'>;

export function runbookReferenceProblems(config: Loaded): string[] {
  const problems: string[] = [];
  const defs = config.runbookDefinitions;
  const known = Object.keys(defs).join(', ') || 'none';
  config.bindings.forEach((b, i) => {
    const def = defs[b.runbook];
    if (!def) return problems.push(`bindings[${i}].runbook: no runbook file named "${b.runbook}" (known: ${known})`);
    if (def.kind !== 'incident') return problems.push(`bindings[${i}].runbook: "${b.runbook}" is a ${def.kind} runbook; alerts start incident runbooks`);
    for (const t of b.target ? [b.target] : b.targets) {
      const kind = config.targets[t]?.kind;
      if (kind && !def.appliesTo.includes(kind))
        problems.push(`bindings[${i}]: runbook "${b.runbook}" applies to ${def.appliesTo.join(', ')}, and target "${t}" is a ${kind}`);
    }
  });
  config.maintenance.forEach((m, i) => {
    const def = defs[m.runbook];
    if (!def) return problems.push(`maintenance[${i}].runbook: no runbook file named "${m.runbook}" (known: ${known})`);
    if (def.kind !== 'maintenance') problems.push(`maintenance[${i}].runbook: "${m.runbook}" is an ${def.kind} runbook; schedules start maintenance runbooks`);
    for (const t of m.targets) {
      const kind = config.targets[t]?.kind;
      if (kind && !def.appliesTo.includes(kind))
        problems.push(`maintenance[${i}]: runbook "${m.runbook}" applies to ${def.appliesTo.join(', ')}, and target "${t}" is a ${kind}`);
    }
  });
  for (const def of Object.values(defs)) problems.push(...definitionProblems(def, config));
  return problems;
}

/** A definition's own references into the config: targets, channels, URLs, secrets. */
export function definitionProblems(def: RunbookDefinition, config: Pick<Loaded, 'targets' | 'channels' | 'secrets'>): string[] {
  const problems: string[] = [];
  const origins = configuredOrigins(config);
  for (const step of actionSteps(def)) {
    const at = `${def.source}${step.line ? `:${step.line}` : ''}: step "${step.id}"`;
    const p = step.with;
    if (typeof p.target === 'string' && !Object.hasOwn(config.targets, p.target))
      problems.push(`${at}: with.target: no target named "${p.target}" (known: ${Object.keys(config.targets).join(', ')})`);
    if (Array.isArray(p.channels))
      for (const ch of p.channels as string[])
        if (!Object.hasOwn(config.channels, ch)) problems.push(`${at}: with.channels: no channel named "${ch}" (known: ${Object.keys(config.channels).join(', ') || 'none'})`);
    if (step.uses === 'http') {
      const origin = new URL(p.url as string).origin;
      if (!origins.has(origin))
        problems.push(`${at}: with.url: ${origin} is not the origin of any target's health or action URL in the config (known: ${[...origins].join(', ') || 'none'})`);
      for (const [header, value] of Object.entries(p.headers as Record<string, unknown>)) {
        const secret = (value as { secret?: string })?.secret;
        if (secret !== undefined && !Object.hasOwn(config.secrets, secret))
          problems.push(`${at}: with.headers.${header}: no secret named "${secret}" in the config's secrets (known: ${Object.keys(config.secrets).join(', ') || 'none'})`);
      }
    }
  }
  return problems;
}

/** The HTTP origins the config already trusts: a runbook's http step may call only these. */
export function configuredOrigins(config: Pick<Loaded, 'targets'>): Set<string> {
  const out = new Set<string>();
  for (const t of Object.values(config.targets)) {
    for (const url of [t.health?.url, t.health?.detailedUrl, t.kind === 'http' ? t.action?.url : undefined]) if (url) out.add(new URL(url).origin);
  }
  return out;
}
