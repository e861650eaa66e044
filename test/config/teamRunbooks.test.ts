// The five teams' runbooks (runbooks/examples/<team>/): each team's config snippet loads with its
// runbook folder through the engine's own loader, every file passes `remediate runbooks validate`,
// every alert the team's document names starts the runbook meant for it, the matrices and severities
// are what the documents say, no two maintenance windows of a team overlap, and the plan of every
// runbook for a representative alert (or schedule, or run by hand) names the steps expected.
// No stack needed: nothing here connects to anything.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../config/load.js';
import { parseDuration } from '../../config/duration.js';
import type { EngineConfig } from '../../config/schema.js';
import { matchBinding } from '../../triggers/alerts/binding.js';
import { planRunbookRun } from '../../triggers/plan.js';
import { planRunbookSteps, type PlanRequest, type PlannedStep } from '../../triggers/cli/runbookPreview.js';
import { validateRunbooks } from '../../triggers/cli/runbookValidate.js';

const examples = join('runbooks', 'examples');
const teams = ['halcytone', 'claude-code-manager', 'codexos', 'codementor', 'genesis'] as const;
type Team = (typeof teams)[number];
const configPath = (team: Team) => join(examples, team, 'config.yaml');

// The snippets read their secrets from the environment, as production configs do. Stand-ins here
// (URL-shaped, since some are webhook URLs); nothing is ever sent.
const setEnv: string[] = [];
function envNames(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  if (!Array.isArray(value) && Object.keys(value).length === 1 && typeof (value as { env?: unknown }).env === 'string')
    return [(value as { env: string }).env];
  return Object.values(value).flatMap(envNames);
}
beforeAll(() => {
  for (const team of teams)
    for (const name of envNames(parseYaml(readFileSync(configPath(team), 'utf8'))))
      if (process.env[name] === undefined) {
        process.env[name] = `http://127.0.0.1:9/${name.toLowerCase()}`;
        setEnv.push(name);
      }
});
afterAll(() => {
  for (const name of setEnv) delete process.env[name];
});

const configs = new Map<Team, EngineConfig>();
const load = (team: Team): EngineConfig => {
  let c = configs.get(team);
  if (!c) configs.set(team, (c = loadConfigFile(configPath(team))));
  return c;
};

/** A plan as one line per top-level step that may run: `id` runs, `id?` depends on the run, groups list their children. */
function shape(steps: PlannedStep[]): string[] {
  const mark = (s: PlannedStep) => (s.decision === 'runs' ? s.id : s.decision === 'depends' ? `${s.id}?` : undefined);
  return steps.flatMap((s) => {
    const m = mark(s);
    if (!m) return [];
    if (!s.steps) return [m];
    const children = s.steps.map((c) => `${c.item ? `${c.item}:` : ''}${mark(c) ?? `-${c.id}`}`);
    return [`${m}[${children.join(' ')}]`];
  });
}

function plan(team: Team, req: Omit<PlanRequest, 'dryRun' | 'labels'> & { labels?: Record<string, string> }) {
  const p = planRunbookSteps(load(team), { labels: {}, dryRun: false, ...req });
  if (!p.matched) throw new Error(`${team} ${req.runbook}: ${p.reason}`);
  return p;
}

describe.each(teams)('the %s runbooks', (team) => {
  it('load through the engine loader with the config snippet, every file of the folder, and validate with no problem', () => {
    const config = load(team);
    const dir = join(examples, team, 'runbooks');
    const names = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => (parseYaml(readFileSync(join(dir, f), 'utf8')) as { name: string }).name);
    expect(Object.keys(config.runbookDefinitions).sort()).toEqual(names.sort());
    // Each file is named after its runbook, so an SRE finds one from the other.
    for (const def of Object.values(config.runbookDefinitions)) expect(def.source.endsWith(`${def.name}.yaml`), def.source).toBe(true);
    const report = validateRunbooks(configPath(team), []);
    expect(report.problems).toEqual([]);
    expect(report.ok && report.referencesChecked).toBe(true);
    expect(report.runbooks).toBe(names.length);
  });

  it('starts every runbook from a binding or a schedule, or documents how it is run by hand', () => {
    const config = load(team);
    for (const def of Object.values(config.runbookDefinitions)) {
      const started = config.bindings.some((b) => b.runbook === def.name) || config.maintenance.some((m) => m.runbook === def.name);
      if (started) continue;
      const text = readFileSync(join(examples, team, 'runbooks', `${def.name}.yaml`), 'utf8');
      expect(text, `${def.name} is started by nothing`).toContain(`remediate run ${def.name} --target`);
    }
  });

  it("never lets the local stack's ServiceDown alert pick a target by its labels", () => {
    const config = load(team);
    // The stack's alert for a service no binding of this team lists: refused, not re-routed.
    const m = matchBinding(config, { labels: { alertname: 'ServiceDown', service: 'app-db', severity: 'critical' } });
    expect(m.matched).toBe(false);
    const hostile = matchBinding(config, { labels: { alertname: 'ServiceDown', service: 'remediation-systemd', severity: 'critical' } });
    expect(hostile.matched).toBe(false);
  });
});

/** Every alert each document names, with the runbook it must start and the escalation policy it must get. */
const alertsOf: Record<Team, Array<[alert: string, severity: string, runbook: string, policy: string, labels?: Record<string, string>]>> = {
  halcytone: [
    ['HalcytoneServiceDown', 'critical', 'halcytoneServiceDown', 'critical'],
    ['CriticalResponseTime', 'critical', 'slowResponses', 'critical'],
    ['HighErrorRate', 'critical', 'highErrorRate', 'critical'],
    ['CriticalMemoryUsage', 'critical', 'resourcePressure', 'critical'],
    ['MockCRMServiceDown', 'warning', 'mockServiceDown', 'warning'],
    ['MockPlatformServiceDown', 'warning', 'mockServiceDown', 'warning'],
    ['HighResponseTime', 'warning', 'slowResponses', 'warning'],
    ['HighCPUUsage', 'warning', 'resourcePressure', 'warning'],
    ['HighMemoryUsage', 'warning', 'resourcePressure', 'warning'],
    ['DryRunModeDisabled', 'warning', 'dryRunModeDisabled', 'warning'],
    ['NoContentGenerationActivity', 'critical', 'contentGeneration', 'business'],
    ['ContentGenerationFailures', 'warning', 'contentGeneration', 'business'],
    ['MockServiceInteractionFailure', 'warning', 'mockServiceInteraction', 'business'],
  ],
  'claude-code-manager': [
    ['ApplicationDown', 'critical', 'applicationDown', 'p1'],
    ['HighErrorRate', 'warning', 'highErrorRate', 'p3'],
    ['HighResponseTime', 'warning', 'highResponseTime', 'p3'],
    ['DatabaseConnectionFailure', 'critical', 'databaseConnectionFailure', 'p1', { service: 'claude-manager-postgres' }],
    ['DatabaseConnectionFailure', 'critical', 'databaseConnectionFailure', 'p1', { service: 'claude-manager-redis' }],
    ['GitHubAPIRateLimitLow', 'warning', 'githubRateLimit', 'p3'],
    ['ApplicationDown', 'high', 'applicationDown', 'p2'],
    ['GitHubAPIRateLimitLow', 'info', 'githubRateLimit', 'p4'],
    ['FailedAuthenticationAttempts', 'critical', 'securityAlert', 'security-breach'],
    ['UnusualAPIUsage', 'warning', 'securityAlert', 'security'],
  ],
  codexos: [
    ['ServiceDown', 'critical', 'serviceDown', 'critical', { service: 'codexos-backend' }],
    ['ServiceDown', 'critical', 'serviceDown', 'critical', { service: 'codexos-frontend' }],
    ['DatabaseConnectionFailure', 'critical', 'databaseConnectionFailure', 'critical', { service: 'codexos-postgres' }],
    ['HighErrorRate', 'critical', 'highErrorRate', 'critical'],
    ['MemoryExhaustion', 'critical', 'memoryExhaustion', 'critical'],
    ['HighResponseTime', 'warning', 'performanceDegradation', 'warning'],
    ['HighCPUUsage', 'warning', 'resourceWarning', 'warning'],
    ['DiskSpace', 'warning', 'resourceWarning', 'warning'],
    ['ConnectionPool', 'warning', 'resourceWarning', 'warning'],
    ['BackupCompletion', 'info', 'infoNotice', 'info'],
    ['Deployment', 'info', 'infoNotice', 'info'],
    ['Maintenance', 'info', 'infoNotice', 'info'],
  ],
  codementor: [
    ['CodeMentorApiDown', 'critical', 'apiDown', 'high'],
    ['MonitoringServiceNotResponding', 'high', 'apiDown', 'high'],
    ['DatabaseHealthCheckFailing', 'critical', 'dataStoreHealth', 'high'],
    ['RedisHealthCheckFailing', 'critical', 'dataStoreHealth', 'high'],
    ['HighErrorRate', 'high', 'highErrorRate', 'high'],
    ['HighMemoryUsage', 'warning', 'resourceUsage', 'warning'],
    ['HighCPUUsage', 'warning', 'resourceUsage', 'warning'],
    ['AlertsNotBeingSent', 'high', 'alertDelivery', 'high'],
  ],
  genesis: [
    ['GenesisOrchestratorDown', 'critical', 'orchestratorDown', 'critical'],
    ['SLAAvailabilityBreach', 'critical', 'slaAvailabilityBreach', 'management'],
    ['CriticalFailureRate', 'critical', 'criticalPerformance', 'critical-p1'],
    ['CriticalOrchestrationLatency', 'critical', 'criticalPerformance', 'critical-p1'],
    ['HighOrchestrationLatency', 'warning', 'performanceWarning', 'warning'],
    ['HighFailureRate', 'warning', 'performanceWarning', 'warning'],
    ['StabilityScoreDropped', 'warning', 'stabilityScore', 'warning'],
    ['RouterEfficiencyLow', 'warning', 'stabilityScore', 'warning'],
  ],
};

describe('every alert of each document starts its runbook, with the policy of its severity', () => {
  it.each(teams)('%s', (team) => {
    const config = load(team);
    for (const [alert, severity, runbook, policy, labels] of alertsOf[team]) {
      const match = matchBinding(config, { labels: { alertname: alert, severity, ...labels } });
      expect(match.matched, `${alert} ${JSON.stringify(labels ?? {})}`).toBe(true);
      if (!match.matched) continue;
      expect(match.runbook, alert).toBe(runbook);
      const input = planRunbookRun(config, match, { labels: { alertname: alert, severity, ...labels } });
      expect(input.escalation.policy, `${alert} (${severity})`).toBe(policy);
    }
  });
});

/** A policy's levels as "name@after" with repeats, as the plan hands them to the run. */
function matrix(team: Team, alert: string, severity: string): string[] {
  const config = load(team);
  const match = matchBinding(config, { labels: { alertname: alert, severity } });
  if (!match.matched) throw new Error(match.reason);
  const e = planRunbookRun(config, match, { labels: { alertname: alert, severity } }).escalation;
  const levels = e.levels.map((l) => `${l.name}@${l.afterMs / 60_000}m${l.repeatMs ? ` every ${l.repeatMs / 60_000}m` : ''}`);
  return e.reescalateAfterAckMs ? [...levels, `again ${e.reescalateAfterAckMs / 60_000}m after an acknowledgement`] : levels;
}

describe('the escalation matrices, as the documents give them', () => {
  it('GENESIS: on-call at once, management e-mail at 5 min, senior at 30, manager at 1 h, C-level at 2 h; unresolved 30 min after an acknowledgement, the next level', () => {
    expect(matrix('genesis', 'GenesisOrchestratorDown', 'critical')).toEqual([
      'on-call-engineer@0m',
      'management-email@5m',
      'senior-engineer@30m',
      'engineering-manager@60m',
      'c-level@120m',
      'again 30m after an acknowledgement',
    ]);
    expect(matrix('genesis', 'HighOrchestrationLatency', 'warning')).toEqual([
      'on-call-engineer@0m every 15m',
      'senior-engineer@30m',
      'again 60m after an acknowledgement',
    ]);
    expect(matrix('genesis', 'SLAAvailabilityBreach', 'critical')).toEqual(['engineering-manager@0m', 'c-level@120m']);
    // The CTO is for P0 only: a P1 (severe degradation) stops at the engineering manager.
    expect(matrix('genesis', 'CriticalFailureRate', 'critical')).toEqual([
      'on-call-engineer@0m',
      'management-email@5m',
      'senior-engineer@30m',
      'engineering-manager@60m',
      'again 30m after an acknowledgement',
    ]);
  });

  it('CodexOS: on-call, senior at 15 min, manager at 30, CTO after an hour, paged hourly; warnings to Slack every 4 hours', () => {
    expect(matrix('codexos', 'HighErrorRate', 'critical')).toEqual([
      'on-call-engineer@0m',
      'senior-engineer@15m',
      'engineering-manager@30m',
      'cto@60m every 60m',
    ]);
    expect(matrix('codexos', 'HighCPUUsage', 'warning')).toEqual(['on-call-engineer@0m every 240m', 'senior-engineer@60m']);
  });

  it('Claude Code Manager: P1 PagerDuty and Slack at once, the engineering manager at the 15-minute response time; P3 by e-mail, 4 hours', () => {
    expect(matrix('claude-code-manager', 'ApplicationDown', 'critical')).toEqual(['primary-on-call@0m', 'engineering-manager@15m']);
    expect(load('claude-code-manager').escalation.policies.p1!.levels[0]!.channels).toEqual(['pagerduty', 'slack-oncall']);
    expect(matrix('claude-code-manager', 'HighErrorRate', 'warning')).toEqual(['on-call@0m', 'engineering-manager@240m']);
  });

  it('Halcytone: development team, operations team, on-call manager', () => {
    expect(matrix('halcytone', 'HalcytoneServiceDown', 'critical')).toEqual([
      'development-team@0m',
      'operations-team@15m',
      'on-call-manager@30m',
    ]);
    expect(load('halcytone').channels['manager-phone']!.type).toBe('pagerduty');
  });
});

/** The minutes (from 2027-01-01T00:00Z) a simple 5-field cron fires in a year, ANDing its day fields as Temporal does. */
function firings(cron: string): number[] {
  const field = (text: string, min: number, max: number): Set<number> => {
    const out = new Set<number>();
    for (const part of text.split(',')) {
      const [range, step] = part.split('/');
      const [a, b] = range === '*' ? [min, max] : range!.split('-').map(Number);
      for (let v = a!; v <= (b ?? (step ? max : a!)); v += Number(step ?? 1)) out.add(v === 7 && max === 7 ? 0 : v);
    }
    return out;
  };
  const [mi, h, dom, mon, dow] = cron.split(/\s+/);
  const minutes = field(mi!, 0, 59),
    hours = field(h!, 0, 23),
    days = field(dom!, 1, 31),
    months = field(mon!, 1, 12),
    weekdays = field(dow!, 0, 7);
  const out: number[] = [];
  const start = Date.UTC(2027, 0, 1);
  for (let d = 0; d < 365; d++) {
    const day = new Date(start + d * 86_400_000);
    if (!days.has(day.getUTCDate()) || !months.has(day.getUTCMonth() + 1) || !weekdays.has(day.getUTCDay())) continue;
    for (const hh of hours) for (const mm of minutes) out.push(d * 1_440 + hh * 60 + mm);
  }
  return out;
}

describe('maintenance schedules', () => {
  it.each(teams)(
    '%s: weekly on Sundays (the first too where the monthly run does not do its work), the monthly one on the first Sunday, and no two windows on a target overlap',
    (team) => {
      const config = load(team);
      const weekly = config.maintenance.find((m) => m.name.endsWith('-weekly'))!;
      const monthly = config.maintenance.find((m) => m.name.endsWith('-monthly'))!;
      // Where the monthly runbook does not back up, VACUUM or review the week, the weekly one runs
      // every Sunday and the monthly one follows its window.
      const everySunday = team === 'codementor' || team === 'halcytone';
      const sundays = (m: typeof weekly) => firings(m.cron).map((t) => new Date(Date.UTC(2027, 0, 1) + t * 60_000));
      expect(sundays(monthly)).toHaveLength(12);
      for (const at of sundays(monthly))
        expect([at.getUTCDay(), at.getUTCDate() <= 7, at.getUTCHours()]).toEqual([0, true, everySunday ? 3 : 2]);
      // 52 Sundays in 2027, 12 of them first Sundays.
      expect(sundays(weekly)).toHaveLength(everySunday ? 52 : 40);
      for (const at of sundays(weekly)) expect([at.getUTCDay(), everySunday || at.getUTCDate() > 7]).toEqual([0, true]);
      expect(parseDuration(monthly.window)).toBeGreaterThan(parseDuration(weekly.window));

      const windows = config.maintenance.flatMap((m) =>
        firings(m.cron).map((t) => ({ m, from: t, to: t + parseDuration(m.window) / 60_000 })),
      );
      for (const a of windows)
        for (const b of windows) {
          if (a.m === b.m || a.from > b.from || !a.m.targets.some((t) => b.m.targets.includes(t))) continue;
          expect(b.from >= a.to, `${a.m.name} and ${b.m.name} overlap at minute ${b.from}`).toBe(true);
        }
    },
  );

  it('GENESIS: the deep maintenance has its three-hour window, the weekly one hour, on the orchestrator, MySQL and Redis', () => {
    const m = load('genesis').maintenance;
    expect(m.find((s) => s.name === 'genesis-monthly')).toMatchObject({
      cron: '0 2 1-7 * 0',
      window: '3h',
      runbook: 'monthlyDeepMaintenance',
    });
    expect(m.find((s) => s.name === 'genesis-weekly')).toMatchObject({
      cron: '0 2 8-31 * 0',
      window: '1h',
      timezone: 'UTC',
      targets: ['genesis-orchestrator', 'genesis-mysql', 'genesis-redis'],
    });
  });
});

/** For each runbook of each team: the request, and the steps its plan must name, in order. */
const plans: Record<
  Team,
  Array<[string, Omit<PlanRequest, 'dryRun' | 'labels' | 'runbook'> & { labels?: Record<string, string> }, string[]]>
> = {
  halcytone: [
    [
      'halcytoneServiceDown',
      { labels: { alertname: 'ServiceDown', service: 'demo', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'error-lines',
        'restart',
        'recovered?',
        'diagnose',
        'escalate',
        'escalated',
      ],
    ],
    [
      'mockServiceDown',
      { labels: { alertname: 'MockCRMServiceDown', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'restart',
        'recovered?',
        'mock-log',
        'diagnose',
        'escalate',
        'escalated',
      ],
    ],
    // A critical latency is paged at once: no waiting for it to settle.
    [
      'slowResponses',
      { labels: { alertname: 'CriticalResponseTime', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[p95 resources state dependencies]',
        'recent-changes',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'slowResponses',
      { labels: { alertname: 'HighResponseTime', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[p95 resources state dependencies]',
        'recent-changes',
        'settles',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'highErrorRate',
      { labels: { alertname: 'HighErrorRate', severity: 'critical' } },
      ['suppression-check', 'stand-down?', 'gather[error-lines error-rate worst-endpoint dependencies]', 'escalate', 'escalated'],
    ],
    [
      'resourcePressure',
      { labels: { alertname: 'HighCPUUsage', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[processes container cpu memory]',
        'scaling',
        'cpu-settles',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'resourcePressure',
      { labels: { alertname: 'CriticalMemoryUsage', severity: 'critical' } },
      ['suppression-check', 'stand-down?', 'gather[processes container cpu memory]', 'scaling', 'recovered?', 'escalate', 'escalated'],
    ],
    [
      'dryRunModeDisabled',
      { labels: { alertname: 'DryRunModeDisabled', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'gather[setting mocks config-lines]', 'escalate', 'escalated'],
    ],
    [
      'contentGeneration',
      { labels: { alertname: 'ContentGenerationFailures', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'gather[health mocks completions failures]', 'escalate', 'escalated'],
    ],
    [
      'mockServiceInteraction',
      { labels: { alertname: 'MockServiceInteractionFailure', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'mocks',
        'network',
        'restart-crm?',
        'restart-platform?',
        'recheck?',
        'recovered?',
        'crm-log?',
        'platform-log?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'dailyChecks',
      { schedule: 'halcytone-daily' },
      ['checks[service mocks dry-run resources firing p95]', 'report', 'all-healthy', 'still-dry-run'],
    ],
    ['weeklyReview', { schedule: 'halcytone-weekly' }, ['figures[alerts p95 error-rate availability resources]', 'report']],
    ['monthlyReview', { schedule: 'halcytone-monthly' }, ['figures[availability p95 cpu memory capacity]', 'report']],
  ],
  'claude-code-manager': [
    [
      'applicationDown',
      { labels: { alertname: 'ApplicationDown', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'look[last-lines state dependencies]',
        'dependencies-up',
        'restart',
        'recovered?',
        'root-cause[recent-errors resources settings]',
        'escalate',
        'escalated',
      ],
    ],
    [
      'highErrorRate',
      { labels: { alertname: 'HighErrorRate', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[error-lines error-rate database github health]',
        'back-under',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'highResponseTime',
      { labels: { alertname: 'HighResponseTime', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'gather[p95 resources database]', 'traces', 'back-under', 'recovered?', 'escalate', 'escalated'],
    ],
    [
      'databaseConnectionFailure',
      { labels: { alertname: 'DatabaseConnectionFailure', service: 'claude-manager-redis', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'look[diagnose server-log]',
        'approve-restart',
        'rejected?',
        'escalate-unanswered?',
        'escalated-unanswered?',
        'restart',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'githubRateLimit',
      { labels: { alertname: 'GitHubAPIRateLimitLow', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'gather[rate-limit api-calls]', 'mitigate', 'escalated'],
    ],
    ['securityAlert', { labels: { alertname: 'UnusualAPIUsage', severity: 'warning' } }, ['auth-lines', 'escalate', 'told']],
    [
      'emergencyMaintenance',
      { target: 'claude-manager' },
      [
        'tell-stakeholders',
        'mute',
        'diagnose',
        'approve-fix',
        'not-approved?',
        'restart',
        'check',
        'follow-up',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'fullStackRestart',
      { target: 'claude-manager' },
      ['approve', 'not-approved?', 'mute', 'mute-db', 'mute-cache', 'restart-all', 'recovered?', 'escalate', 'escalated'],
    ],
    [
      'plannedMaintenance',
      { schedule: 'ccm-weekly' },
      [
        'open-window',
        'announce',
        'backup',
        'work',
        'close-window',
        'health[claude-manager:check claude-manager:healthy claude-manager-postgres:check claude-manager-postgres:healthy claude-manager-redis:check claude-manager-redis:healthy]',
        'completed',
      ],
    ],
    [
      'monthlyMaintenance',
      { schedule: 'ccm-monthly' },
      [
        'open-window',
        'announce',
        'backup',
        'vacuum',
        'health[claude-manager:check claude-manager:healthy claude-manager-postgres:check claude-manager-postgres:healthy claude-manager-redis:check claude-manager-redis:healthy]',
        'disk',
        'review',
        'completed',
      ],
    ],
    ['monitoringHealth', { schedule: 'ccm-monitoring' }, ['checks[prometheus alertmanager grafana otel-collector]', 'all-answer']],
  ],
  codexos: [
    [
      'serviceDown',
      { labels: { alertname: 'ServiceDown', service: 'codexos-frontend', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'last-lines',
        'restart',
        'recovered?',
        'diagnose',
        'escalate',
        'escalated',
      ],
    ],
    [
      'databaseConnectionFailure',
      { labels: { alertname: 'DatabaseConnectionFailure', service: 'codexos-redis', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'diagnose',
        'approve-restart',
        'rejected?',
        'escalate-unanswered?',
        'escalated-unanswered?',
        'restart',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'highErrorRate',
      { labels: { alertname: 'HighErrorRate', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[error-rate error-lines dependencies]',
        'dependencies-up',
        'approve-restart',
        'rejected?',
        'escalate-unanswered?',
        'escalated-unanswered?',
        'restart',
        'back-under',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'memoryExhaustion',
      { labels: { alertname: 'MemoryExhaustion', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[stats processes]',
        'approve-restart',
        'rejected?',
        'escalate-unanswered?',
        'escalated-unanswered?',
        'restart',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'performanceDegradation',
      { labels: { alertname: 'HighResponseTime', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[p95 queries backend redis]',
        'approve-analyze',
        'analyze?',
        'back-under',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    // Only the pool alert reads the database's connections, and waits on the pool metric.
    [
      'resourceWarning',
      { labels: { alertname: 'ConnectionPool', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'gather[host container connections]', 'pool-settles', 'recovered?', 'escalate', 'escalated'],
    ],
    [
      'resourceWarning',
      { labels: { alertname: 'DiskSpace', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'gather[host container -connections]', 'disk-settles', 'recovered?', 'escalate', 'escalated'],
    ],
    ['infoNotice', { labels: { alertname: 'Deployment', severity: 'info' } }, ['tell', 'told']],
    ['monitoringTroubleshooting', { target: 'codexos-backend' }, ['gather[prometheus-config metrics sockets grafana]', 'report', 'done']],
    ['dailyChecks', { schedule: 'codexos-daily' }, ['checks[backend postgres redis error-rate p95 resources]', 'report', 'all-answer']],
    [
      'weeklyMaintenance',
      { schedule: 'codexos-weekly' },
      [
        'open-window',
        'backup',
        'analyze',
        'health[codexos-backend:check codexos-backend:healthy codexos-postgres:check codexos-postgres:healthy codexos-redis:check codexos-redis:healthy]',
        'week',
        'review',
        'completed',
      ],
    ],
    [
      'monthlyMaintenance',
      { schedule: 'codexos-monthly' },
      [
        'open-window',
        'backup',
        'analyze',
        'health[codexos-backend:check codexos-backend:healthy codexos-postgres:check codexos-postgres:healthy codexos-redis:check codexos-redis:healthy]',
        'figures[availability error-rate disk]',
        'review',
        'completed',
      ],
    ],
  ],
  codementor: [
    [
      'apiDown',
      { labels: { alertname: 'CodeMentorApiDown', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'probes[live ready detailed dependencies error-stats]',
        'kubernetes',
        'escalate',
        'escalated',
      ],
    ],
    [
      'dataStoreHealth',
      { labels: { alertname: 'RedisHealthCheckFailing', severity: 'critical' } },
      ['suppression-check', 'stand-down?', 'verify', 'false-alarm?', 'diagnose', 'escalate', 'escalated'],
    ],
    [
      'highErrorRate',
      { labels: { alertname: 'HighErrorRate', severity: 'high' } },
      [
        'suppression-check',
        'stand-down?',
        'gather[error-stats error-rate dependencies database]',
        'back-under',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'resourceUsage',
      { labels: { alertname: 'HighCPUUsage', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'system-metrics', 'cpu-settles', 'recovered?', 'escalate', 'escalated'],
    ],
    [
      'alertDelivery',
      { labels: { alertname: 'AlertsNotBeingSent', severity: 'high' } },
      ['gather[alert-stats active-alerts]', 'escalate', 'escalated'],
    ],
    [
      'dailyChecks',
      { schedule: 'codementor-daily' },
      ['checks[api postgres redis availability active-alerts error-stats]', 'report', 'all-answer'],
    ],
    [
      'weeklyMaintenance',
      { schedule: 'codementor-weekly' },
      [
        'open-window',
        'backup',
        'vacuum',
        'health[codementor-api:check codementor-api:healthy codementor-postgres:check codementor-postgres:healthy codementor-redis:check codementor-redis:healthy]',
        'figures[error-stats availability error-rate]',
        'review',
        'completed',
      ],
    ],
    ['monthlyReview', { schedule: 'codementor-monthly' }, ['figures[api dependencies availability rules]', 'review']],
  ],
  genesis: [
    [
      'orchestratorDown',
      { labels: { alertname: 'GenesisOrchestratorDown', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'verify',
        'false-alarm?',
        'page-on-call',
        'restart',
        'recovered?',
        'investigate[status log-errors host dependencies environment router-config]',
        'p0-procedure',
        'escalate',
        'escalated',
      ],
    ],
    [
      'slaAvailabilityBreach',
      { labels: { alertname: 'SLAAvailabilityBreach', severity: 'critical' } },
      ['firing', 'health', 'escalate', 'told'],
    ],
    [
      'criticalPerformance',
      { labels: { alertname: 'CriticalOrchestrationLatency', severity: 'critical' } },
      [
        'suppression-check',
        'stand-down?',
        'root-cause[failure-rate latency app-metrics host mysql]',
        'recent-changes',
        'approve-cache-clear',
        'cache-clear?',
        'latency-back',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'performanceWarning',
      { labels: { alertname: 'HighFailureRate', severity: 'warning' } },
      [
        'suppression-check',
        'stand-down?',
        'failures-before',
        'look[host slow-queries]',
        'five-minutes',
        'failures-after',
        'improving',
        'failures-settle',
        'recovered?',
        'escalate',
        'escalated',
      ],
    ],
    [
      'stabilityScore',
      { labels: { alertname: 'RouterEfficiencyLow', severity: 'warning' } },
      ['suppression-check', 'stand-down?', 'analyse[router-report runs]', 'approve-cache-rebuild', 'cache-clear?', 'escalate', 'escalated'],
    ],
    [
      'diagnoseHost',
      { target: 'genesis-orchestrator' },
      ['gather[router-config environment host journal log-errors mysql redis history]', 'report', 'done'],
    ],
    [
      'weeklyMaintenance',
      { schedule: 'genesis-weekly' },
      [
        'open-window',
        'announce',
        'backup',
        'optimize',
        'rotate-logs',
        'old-artifacts',
        'verify[genesis-orchestrator:check genesis-orchestrator:healthy genesis-mysql:check genesis-mysql:healthy genesis-redis:check genesis-redis:healthy]',
        'completed',
      ],
    ],
    [
      'monthlyDeepMaintenance',
      { schedule: 'genesis-monthly' },
      [
        'open-window',
        'announce',
        'backup',
        'optimize',
        'optimize-all',
        'rotate-logs',
        'old-artifacts',
        'capacity',
        'sla-30d',
        'availability',
        'verify[genesis-orchestrator:check genesis-orchestrator:healthy genesis-mysql:check genesis-mysql:healthy genesis-mysql-all-tables:check genesis-mysql-all-tables:healthy genesis-redis:check genesis-redis:healthy]',
        'report',
        'completed',
      ],
    ],
    // One runbook, three schedules: each runs only its period's part.
    ['slaReport', { schedule: 'genesis-sla-daily' }, ['period', 'daily[availability-1d report-1d]', 'send']],
    ['slaReport', { schedule: 'genesis-sla-monthly' }, ['period', 'monthly[availability-30d report-30d]', 'send']],
  ],
};

describe('the plan of each runbook names the steps expected', () => {
  it.each(teams)('%s: every runbook is planned here', (team) => {
    expect(new Set(plans[team].map(([r]) => r))).toEqual(new Set(Object.keys(load(team).runbookDefinitions)));
  });

  for (const team of teams)
    it.each(
      plans[team].map(([runbook, req, steps]) => ({
        runbook,
        req,
        steps,
        label: `${team} ${runbook} ${JSON.stringify(req.labels ?? req.schedule ?? req.target)}`,
      })),
    )('$label', ({ runbook, req, steps }) => {
      const p = plan(team, { runbook, ...req });
      expect(shape(p.steps)).toEqual(steps);
    });

  it('maintenance runbooks close their windows whatever happens; runbooks that silence expire the silence in finally', () => {
    for (const team of teams)
      for (const def of Object.values(load(team).runbookDefinitions)) {
        const opens = JSON.stringify(def.steps).includes('"uses":"openWindow"');
        const silences = JSON.stringify(def.steps).includes('"uses":"silence"');
        if (opens)
          expect(
            def.finally.map((s) => s.kind === 'action' && s.uses),
            `${team} ${def.name}`,
          ).toContain('closeWindow');
        if (silences)
          expect(
            def.finally.map((s) => s.kind === 'action' && s.uses),
            `${team} ${def.name}`,
          ).toContain('expireSilence');
      }
  });

  it('CodeMentor restarts nothing (Kubernetes is out of reach) and says so where the document reaches for kubectl', () => {
    const config = load('codementor');
    for (const def of Object.values(config.runbookDefinitions)) {
      const uses = JSON.stringify([def.steps, def.finally]);
      for (const mutating of ['"uses":"restart"', '"uses":"groupRestart"', '"uses":"runAction"', '"uses":"command"'])
        expect(uses, `${def.name}`).not.toContain(mutating);
    }
    for (const name of ['apiDown', 'dataStoreHealth', 'highErrorRate', 'resourceUsage', 'alertDelivery'])
      expect(JSON.stringify(config.runbookDefinitions[name]!.steps), name).toMatch(/Not automated \(Kubernetes/);
  });

  it('a dry run plans the same steps with every mutating one marked as reporting only', () => {
    const p = planRunbookSteps(load('genesis'), { runbook: 'weeklyMaintenance', labels: {}, schedule: 'genesis-weekly', dryRun: true });
    if (!p.matched) throw new Error(p.reason);
    expect(p.dryRun).toBe(true);
    const mutating = p.steps.filter((s) => s.mutating).map((s) => s.id);
    expect(mutating).toEqual(['open-window', 'announce', 'backup', 'optimize', 'rotate-logs', 'old-artifacts']);
  });
});

describe("credentials sent as the documents' curl lines send them", () => {
  // A secret is the token alone (so it is scrubbed wherever an endpoint echoes it); the scheme the
  // API expects goes in `prefix`. Without it, every call carrying it is refused 401.
  const schemes: Record<string, string> = { 'monitoring-token': 'Bearer ', 'github-token': 'token ' };
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
    );

  it.each(Object.entries(schemes))("sends '%s' with its scheme in every Authorization header", (secret, scheme) => {
    const uses = files('runbooks/examples').flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${file}:${i + 1}`, line }))
        .filter(({ line }) => /Authorization:/.test(line) && line.includes(`secret: ${secret}`)),
    );
    expect(uses.length).toBeGreaterThan(0);
    for (const { where, line } of uses) expect(line, where).toContain(`prefix: ${JSON.stringify(scheme)}`);
  });
});
