// What the group-restart, log-file and housekeeping steps name in the config must be there, checked
// at load: a group's targets exist and can be restarted, a log file is one the target lists, and
// housekeeping acts only on a systemd target whose config says what it may clean.
import type { ActionStep } from './runbookSchema.js';
import type { EngineConfig } from './schema.js';

/**
 * Problems of one step, `acted` being the targets it acts on (its literal `target:`, else those
 * bindings and schedules start the runbook on).
 */
export function hostStepProblems(step: ActionStep, targets: EngineConfig['targets'], acted: () => string[]): string[] {
  const p = step.with;
  const problems: string[] = [];
  if (step.uses === 'groupRestart') {
    for (const [i, name] of (p.targets as string[]).entries()) {
      const t = Object.hasOwn(targets, name) ? targets[name] : undefined;
      if (!t) problems.push(`with.targets[${i}]: no target named "${name}" (known: ${Object.keys(targets).join(', ')})`);
      else if (t.kind !== 'container' && t.kind !== 'systemd' && !('restartVia' in t && t.restartVia))
        problems.push(`with.targets[${i}]: target "${name}" is a ${t.kind} target with no restartVia: it cannot be restarted`);
    }
  }
  if (step.uses === 'logs' && typeof p.file === 'string') {
    for (const name of acted()) {
      const t = targets[name]!;
      if (t.kind !== 'container' && t.kind !== 'systemd')
        problems.push(`with.file: log files are read in containers and on systemd units' hosts, and target "${name}" is a ${t.kind}`);
      else if (!Object.hasOwn(t.logFiles, p.file))
        problems.push(
          `with.file: target "${name}" has no log file "${p.file}" in its logFiles (known: ${Object.keys(t.logFiles).join(', ') || 'none'})`,
        );
    }
  }
  if (step.uses === 'housekeeping' || step.uses === 'logrotate') {
    for (const name of acted()) {
      const t = targets[name]!;
      if (t.kind !== 'systemd') problems.push(`with: ${step.uses} runs on a systemd unit's host, and target "${name}" is a ${t.kind}`);
      else if (step.uses === 'housekeeping' && !t.housekeeping?.paths.length)
        problems.push(`with: target "${name}" has no housekeeping.paths in the config`);
      else if (step.uses === 'logrotate' && !t.housekeeping?.logrotate)
        problems.push(`with: target "${name}" has no housekeeping.logrotate file in the config`);
    }
  }
  return problems;
}
