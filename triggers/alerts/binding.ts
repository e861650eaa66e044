// Which runbook, on which target, an alert starts. Used by the webhook and by `remediate preview`,
// so a dry run and a real alert always get the same answer.
//
// Alert labels are untrusted input (anyone who can reach Alertmanager, or a mislabelled rule,
// controls them). They may only *select* among targets the configuration already allows for a
// binding; they never name a container, unit or database directly.
import type { Binding, EngineConfig } from '../../config/schema.js';
import { matchesAll, formatMatchers } from '../../config/matchers.js';

/** What the binding matcher needs from an alert: its labels (alertname included). */
export interface AlertLabels {
  labels: Record<string, string>;
}

/** The name of an incident runbook file (the compiled runbooks' names are the shipped files' names). */
export type IncidentRunbook = string;

/** Short, bounded codes: used as a metric label, where the free-text reason would explode cardinality. */
export type UnmatchedCode =
  'no-alertname' | 'no-binding' | 'matchers' | 'no-target-label' | 'target-not-allowed' | 'unknown-target' | 'not-an-incident-runbook';

export type BindingMatch =
  | { matched: true; binding: Binding; bindingIndex: number; runbook: IncidentRunbook; target: string }
  | { matched: false; code: UnmatchedCode; reason: string };

/**
 * The first binding whose alert name and matchers fit decides, as the first matching route does
 * in Alertmanager. If that binding cannot resolve a target from the labels, the alert is unmatched
 * rather than handed to a later binding: a label value an attacker chose should never change which
 * binding applies.
 */
export function matchBinding(config: EngineConfig, alert: AlertLabels): BindingMatch {
  const labels = alert.labels;
  const alertname = labels.alertname;
  if (!alertname) return unmatched('no-alertname', 'the alert has no alertname label');

  const candidates = config.bindings.map((binding, index) => ({ binding, index })).filter((c) => c.binding.alert === alertname);
  if (candidates.length === 0) return unmatched('no-binding', `no binding for alert ${show(alertname)}`);

  const hit = candidates.find((c) => matchesAll(c.binding.matchers, labels));
  if (!hit) {
    const tried = candidates.map((c) => formatMatchers(c.binding.matchers)).join(' or ');
    return unmatched('matchers', `alert ${show(alertname)} matches none of its bindings' matchers (${tried})`);
  }
  const { binding, index } = hit;

  // The loader refuses this; checked again because a config built in code skips the loader.
  const def = config.runbookDefinitions?.[binding.runbook];
  if (!def || def.kind !== 'incident')
    return unmatched(
      'not-an-incident-runbook',
      `binding ${index} for alert ${show(alertname)} names ${show(binding.runbook)}, which is not a loaded incident runbook`,
    );

  let target: string;
  if (binding.target) {
    target = binding.target;
  } else {
    const labelName = binding.targetLabel!;
    const value = Object.prototype.hasOwnProperty.call(labels, labelName) ? labels[labelName] : undefined;
    if (value === undefined || value === '')
      return unmatched(
        'no-target-label',
        `alert ${show(alertname)} has no label ${labelName} to select its target (allowed: ${binding.targets.join(', ')})`,
      );
    if (!binding.targets.includes(value))
      return unmatched(
        'target-not-allowed',
        `label ${labelName}=${show(value)} names no target this binding allows (allowed: ${binding.targets.join(', ')})`,
      );
    target = value;
  }
  // The loader checks these references; checked again because a config built in code skips the loader.
  if (!Object.prototype.hasOwnProperty.call(config.targets, target))
    return unmatched(
      'unknown-target',
      `binding ${index} for alert ${show(alertname)} names target ${show(target)}, which is not configured`,
    );

  return { matched: true, binding, bindingIndex: index, runbook: binding.runbook, target };
}

function unmatched(code: UnmatchedCode, reason: string): BindingMatch {
  return { matched: false, code, reason };
}

/** Label values are attacker-controlled: quote them and keep messages and logs short. */
function show(value: string): string {
  const cut = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return `'${cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Cf}]/gu, '?')}'`;
}
