// The dashboard and the self-alert rules as files (observability/), read the way Grafana and
// Prometheus read them, for the tests that check them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../support/engineProcess.js';

export const rulesFile = join(repoRoot, 'observability', 'prometheus', 'engine-alerts.yml');
export const dashboardFile = join(repoRoot, 'observability', 'grafana', 'remediation-engine.json');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
}

export function alertRules(): Rule[] {
  const doc = parse(readFileSync(rulesFile, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

export function ruleExpressions(): string[] {
  return alertRules().map((r) => r.expr);
}

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string; refId: string }>;
  panels?: Panel[];
}

export interface DashboardExpression {
  panel: string;
  refId: string;
  expr: string;
}

export function dashboard(): { panels: Panel[]; templating: { list: Array<{ name: string; type: string; query: unknown }> } } {
  return JSON.parse(readFileSync(dashboardFile, 'utf8'));
}

export function dashboardExpressions(): DashboardExpression[] {
  const all = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...all(p.panels ?? [])]);
  return all(dashboard().panels).flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })));
}

/**
 * An expression as Grafana sends it: its template variables replaced. `$__rate_interval` and
 * `$__range` are Grafana's; `$instance` is a regex (its "All" is `.*`).
 */
export function substitute(expr: string, vars: { job: string; instance: string; rateInterval: string; range: string }): string {
  return expr
    .replaceAll('$__rate_interval', vars.rateInterval)
    .replaceAll('$__range', vars.range)
    .replaceAll('$job', vars.job)
    .replaceAll('$instance', vars.instance);
}
