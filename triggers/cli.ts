// `remediate`: the operator's way in. Tables for people, --json for scripts, and exit codes a
// script can branch on: 1 usage or bad input, 2 not found, 3 Temporal unreachable.
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { EngineConfig } from '../config/schema.js';
import { incidentWorkflowId, type RunbookStatus } from '../workflows/messages.js';
import { matchBinding } from './binding.js';
import { planRunbook } from './plan.js';
import { buildReport, type IncidentReport } from './report.js';
import { listRunbooks, listText, loadConfigOffline, showRunbook, showText, type OfflineConfig } from './runbookCommands.js';
import { startedText, startRunbookByHand } from './runbookRun.js';
import { validateRunbooks, validateText } from './runbookValidate.js';
import { planRunbookSteps, planText } from './runbookPreview.js';
import { formatRate, formatSpan, formatTime, renderTable, terminalSafe } from './table.js';
import { CommandError, connectTemporal, type Temporal } from './operatorTemporal.js';
import {
  cancelIncident,
  changeSchedule,
  closedIncidentsSince,
  reportLimit,
  listIncidents,
  listSchedules,
  runMaintenanceNow,
  sendDecision,
  showIncident,
  type DecisionKind,
  type IncidentDetail,
  type IncidentRow,
} from './operatorCommands.js';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

/** Runs one command; resolves to the process exit code. */
export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const outcome = { exitCode: 0 };
  const program = buildProgram(io, outcome);
  try {
    await program.parseAsync(argv);
    return outcome.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (err instanceof CommandError) {
      io.err(`remediate: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      io.err(`remediate: ${err.message}\n`);
      return 1;
    }
    io.err(`remediate: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

interface GlobalOptions {
  config?: string;
  json?: boolean;
}

/** `outcome.exitCode`: a command whose answer is printed but means "no" (validate found problems). */
function buildProgram(io: CliIO, outcome: { exitCode: number }): Command {
  const program = new Command('remediate')
    .description('Operate the remediation engine: incidents, approvals, runbooks, maintenance schedules, previews and reports.')
    .option('-c, --config <path>', 'engine configuration file (default: $REMEDIATION_CONFIG)')
    .option('--json', 'print JSON instead of tables')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run "remediate --help" for usage)');

  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();
  const configPathOf = (cmd: Command): string | undefined => globals(cmd).config ?? io.env.REMEDIATION_CONFIG;
  const configOf = (cmd: Command): EngineConfig => {
    const path = configPathOf(cmd);
    if (!path) throw new CommandError(1, 'no configuration: pass --config <path> or set REMEDIATION_CONFIG');
    return loadConfigFile(path);
  };
  // For commands that only read runbooks: secrets they never use need not be resolvable.
  const offlineConfigOf = (cmd: Command): OfflineConfig => {
    const path = configPathOf(cmd);
    if (!path) throw new CommandError(1, 'no configuration: pass --config <path> or set REMEDIATION_CONFIG');
    return loadConfigOffline(path);
  };
  const print = (cmd: Command, json: unknown, text: () => string) => io.out(globals(cmd).json ? `${JSON.stringify(json, null, 2)}\n` : text());
  const withTemporal = async <T>(cmd: Command, fn: (t: Temporal, config: EngineConfig) => Promise<T>): Promise<T> => {
    const config = configOf(cmd);
    const t = await connectTemporal(config, io.env);
    try {
      return await fn(t, config);
    } finally {
      await t.close();
    }
  };

  program
    .command('incidents')
    .description('list incident workflows, newest first')
    .option('--open', 'only running incidents')
    .option('--closed', 'only finished incidents')
    .option('--target <name>', 'only this target')
    .option('--alert <name>', 'only this alert name')
    .option('--outcome <outcome>', 'only this outcome (recovered, escalated, ...)')
    .option('--runbook <runbook>', 'only this runbook')
    .addOption(new Option('--limit <n>', 'at most this many').default(50).argParser(positiveInt('--limit')))
    .action(async (opts, cmd: Command) => {
      const rows = await withTemporal(cmd, (t) => listIncidents(t, opts));
      print(cmd, rows, () => incidentsTable(rows));
    });

  program
    .command('show <workflowId>')
    .description("an incident's live status, or the result of a finished one")
    .action(async (workflowId: string, _opts, cmd: Command) => {
      const detail = await withTemporal(cmd, (t) => showIncident(t, workflowId));
      print(cmd, detail, () => detailText(detail));
    });

  const decision = (name: string, kind: DecisionKind, verb: string, reasonRequired: boolean) => {
    const c = program
      .command(`${name} <workflowId>`)
      .description(`${verb} an incident as a named operator`)
      .requiredOption('--as <operator>', 'your operator name, as listed in the config');
    if (reasonRequired) c.requiredOption('--reason <text>', 'why; recorded in the incident timeline');
    else c.option('--reason <text>', 'why; recorded in the incident timeline', 'acknowledged with remediate');
    c.action(async (workflowId: string, opts: { as: string; reason: string }, cmd: Command) => {
      await withTemporal(cmd, (t, config) => sendDecision(t, config, workflowId, kind, { operator: opts.as, reason: opts.reason }));
      print(cmd, { workflowId, signal: kind, operator: opts.as, sent: true }, () => `${kind} by ${opts.as} sent to ${workflowId}\n`);
    });
  };
  decision('approve', 'approve', 'approve the pending step of', true);
  decision('reject', 'reject', 'reject the pending step of', true);
  decision('ack', 'acknowledge', 'acknowledge (stop escalating)', false);

  program
    .command('cancel <workflowId>')
    .description('cancel a running incident or maintenance workflow (it runs its cleanup)')
    .action(async (workflowId: string, _opts, cmd: Command) => {
      await withTemporal(cmd, (t) => cancelIncident(t, workflowId));
      print(cmd, { workflowId, cancelRequested: true }, () => `cancellation requested for ${workflowId}\n`);
    });

  program
    .command('maintenance')
    .description('maintenance windows')
    .command('run <schedule>')
    .description('open the maintenance window of a configured schedule now')
    .action(async (name: string, _opts, cmd: Command) => {
      const started = await withTemporal(cmd, (t, config) => runMaintenanceNow(t, config, name));
      print(cmd, started, () => `maintenance '${name}' started: workflow ${started.workflowId} (run ${started.runId})\n`);
    });

  const schedules = program.command('schedules').description('the Temporal schedules of maintenance windows');
  schedules
    .command('list')
    .action(async (_opts, cmd: Command) => {
      const rows = await withTemporal(cmd, (t) => listSchedules(t));
      print(cmd, rows, () =>
        rows.length === 0
          ? 'no maintenance schedules\n'
          : renderTable(
              ['NAME', 'STATE', 'NEXT RUN', 'LAST RUN', 'NOTE'],
              rows.map((r) => [r.name, r.paused ? 'paused' : 'active', formatTime(r.nextRun), formatTime(r.lastRun), r.note ?? '']),
            ),
      );
    });
  for (const action of ['pause', 'unpause', 'trigger'] as const) {
    const c = schedules.command(`${action} <name>`).description(`${action} a maintenance schedule`);
    if (action !== 'trigger') c.option('--reason <text>', 'note recorded on the schedule');
    c.action(async (name: string, opts: { reason?: string }, cmd: Command) => {
      await withTemporal(cmd, (t) => changeSchedule(t, name, action, opts.reason));
      const done = { pause: 'paused', unpause: 'unpaused', trigger: 'triggered' }[action];
      print(cmd, { schedule: name, action: done }, () => `schedule '${name}' ${done}\n`);
    });
  }

  program
    .command('preview')
    .description('which runbook and target an alert with these labels would start (no Temporal needed)')
    .requiredOption('-l, --label <key=value>', 'an alert label; repeat for each (alertname=... is required)', collectLabel, {})
    .action(async (opts: { label: Record<string, string> }, cmd: Command) => {
      const config = configOf(cmd);
      const match = matchBinding(config, { labels: opts.label });
      if (!match.matched) {
        print(cmd, { matched: false, code: match.code, reason: match.reason }, () => `no runbook would start: ${match.reason}\n`);
        return;
      }
      const input = planRunbook(config, match, { labels: opts.label });
      const workflowId = incidentWorkflowId(match.runbook, match.target);
      print(cmd, { matched: true, runbook: match.runbook, target: match.target, workflowId, bindingIndex: match.bindingIndex, input }, () =>
        [
          `runbook:     ${match.runbook}`,
          `target:      ${match.target} (${input.targetKind}, activities on queue ${input.targetQueue})`,
          `workflow id: ${workflowId} (repeats of the alert fold into it)`,
          `binding:     #${match.bindingIndex} (alert ${match.binding.alert})`,
          `escalation:  ${input.escalation.policy}: ${input.escalation.levels.map((l) => `${l.name} after ${formatSpan(l.afterMs)} → ${l.channels.join(', ')}`).join('; ')}`,
          `operators:   ${input.operators.join(', ') || 'none (approvals impossible)'}`,
          `dry run:     ${input.dryRun ? 'yes' : 'no'}`,
          '',
        ].join('\n'),
      );
    });

  const runbooks = program.command('runbooks').description('the runbook files: list, show, validate, plan (no Temporal needed)');
  runbooks
    .command('list')
    .description('every runbook of the config, with the bindings and schedules that start it')
    .action(async (_opts, cmd: Command) => {
      const rows = listRunbooks(offlineConfigOf(cmd));
      print(cmd, rows, () => listText(rows));
    });
  runbooks
    .command('show <runbook>')
    .description("a runbook's steps in order: condition, failure policy, parameters, outputs")
    .action(async (name: string, _opts, cmd: Command) => {
      const view = showRunbook(offlineConfigOf(cmd), name);
      print(cmd, view, () => showText(view));
    });
  runbooks
    .command('validate [files...]')
    .description("check runbook files (default: the config's runbook folder) against the config; exit 1 on any problem")
    .action(async (files: string[], _opts, cmd: Command) => {
      const report = validateRunbooks(configPathOf(cmd), files);
      print(cmd, report, () => validateText(report));
      if (!report.ok) outcome.exitCode = 1;
    });
  runbooks
    .command('plan <runbook>')
    .description('which steps would run for an alert (or on a target), in order, with their parameters (starts nothing)')
    .option('-l, --label <key=value>', 'an alert label; repeat for each (alertname=... selects the binding)', collectLabel, {})
    .option('--target <name>', 'a configured target, instead of alert labels')
    .option('--schedule <name>', 'for a maintenance runbook: the schedule that runs it')
    .option('--dry-run', 'as a dry run would (mutating steps only report)')
    .action(async (name: string, opts: { label: Record<string, string>; target?: string; schedule?: string; dryRun?: boolean }, cmd: Command) => {
      const { config } = offlineConfigOf(cmd);
      const plan = planRunbookSteps(config, { runbook: name, labels: opts.label, target: opts.target, schedule: opts.schedule, dryRun: Boolean(opts.dryRun) });
      print(cmd, plan, () => planText(plan, name));
    });

  program
    .command('run <runbook>')
    .description('start an incident runbook on a target by hand, as a named operator')
    .requiredOption('--target <name>', 'a configured target of a kind the runbook applies to')
    .requiredOption('--as <operator>', 'your operator name, as listed in the config')
    .option('--reason <text>', 'why; the run shows it as the alert summary')
    .option('--severity <level>', "the run's severity (picks the escalation policy)", 'warning')
    .option('--dry-run', 'mutating steps only report what they would do')
    .action(async (name: string, opts: { target: string; as: string; reason?: string; severity: string; dryRun?: boolean }, cmd: Command) => {
      const started = await withTemporal(cmd, (t, config) =>
        startRunbookByHand(t, config, { runbook: name, target: opts.target, operator: opts.as, reason: opts.reason, severity: opts.severity, dryRun: Boolean(opts.dryRun) }),
      );
      print(cmd, started, () => startedText(started));
    });

  program
    .command('report')
    .description('incidents by outcome, automatic recovery rate and time to recover, per target')
    .addOption(new Option('--since <duration>', 'how far back, e.g. 24h, 7d').default('7d'))
    .option('--target <name>', 'only incidents on this target')
    .action(async (opts: { since: string; target?: string }, cmd: Command) => {
      let sinceMs: number;
      try {
        sinceMs = parseDuration(opts.since);
      } catch (err) {
        throw new CommandError(1, `--since: ${(err as Error).message}`);
      }
      const until = new Date();
      const since = new Date(until.getTime() - sinceMs);
      const report = await withTemporal(cmd, async (t, config) => {
        const { incidents, truncated } = await closedIncidentsSince(t, since, { target: opts.target });
        const built = buildReport(incidents, { since, until, operators: config.operators.map((o) => o.name) });
        return { ...built, truncated };
      });
      print(cmd, report, () => reportText(report));
    });

  return program;
}

function collectLabel(text: string, labels: Record<string, string>): Record<string, string> {
  const i = text.indexOf('=');
  if (i <= 0) throw new CommandError(1, `--label ${JSON.stringify(text)}: expected key=value`);
  return { ...labels, [text.slice(0, i)]: text.slice(i + 1) };
}

function positiveInt(flag: string) {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new CommandError(1, `${flag} ${JSON.stringify(text)}: expected a positive whole number`);
    return n;
  };
}

function incidentsTable(rows: IncidentRow[]): string {
  if (rows.length === 0) return 'no incidents\n';
  return renderTable(
    ['WORKFLOW ID', 'STATUS', 'ALERT', 'SEVERITY', 'OUTCOME', 'STARTED', 'DURATION'],
    rows.map((r) => [r.workflowId, r.status.toLowerCase(), r.alert, r.severity, r.outcome || '-', formatTime(r.startTime), formatSpan(r.durationMs)]),
  );
}

// What these print comes from alerts, logs and operators: every value goes through terminalSafe, so
// an escape sequence or a newline in a label or a log line can neither restyle the terminal nor forge
// a line. Text that is legitimately several lines (a diagnosis) keeps them, indented under its label.
const safe = (v: unknown) => terminalSafe(String(v ?? ''));
const block = (v: string) => v.split('\n').map(terminalSafe).join('\n    ');

function detailText(d: IncidentDetail): string {
  const lines = [
    `${safe(d.workflowId)}  (${safe(d.type)}, ${d.status.toLowerCase()})`,
    `target ${safe(d.target) || '-'}, alert ${safe(d.alert) || '-'} (${safe(d.severity) || '-'}), started ${formatTime(d.startTime)}` +
      (d.closeTime ? `, closed ${formatTime(d.closeTime)} after ${formatSpan(d.durationMs)}` : ''),
  ];
  if (d.live) lines.push(...liveText(d.live));
  if (d.liveError) lines.push(safe(d.liveError));
  if (d.result) {
    lines.push(`outcome: ${safe(d.result.outcome)}: ${safe(d.result.detail)}`);
    lines.push(...timelineText(d.result.timeline));
  }
  if (d.failure) lines.push(`failed: ${safe(d.failure)}`);
  return `${lines.join('\n')}\n`;
}

function liveText(s: RunbookStatus): string[] {
  const lines = [`step: ${safe(s.step)}; restarts: ${s.restartAttempts}; alerts folded: ${s.alertsFolded}`];
  if (s.pendingApproval)
    lines.push(`waiting for approval of ${safe(s.pendingApproval.step)} since ${formatTime(s.pendingApproval.since)} (times out ${formatTime(s.pendingApproval.timeoutAt)})`);
  if (s.escalationLevel) lines.push(`escalated to ${safe(s.escalationLevel)}${s.acknowledgedBy ? `, acknowledged by ${safe(s.acknowledgedBy)}` : ''}`);
  if (s.diagnosticsSummary) lines.push(`diagnostics: ${block(s.diagnosticsSummary)}`);
  if (s.outcome) lines.push(`outcome: ${safe(s.outcome)}${s.outcomeDetail ? `: ${safe(s.outcomeDetail)}` : ''}`);
  return [...lines, ...timelineText(s.timeline)];
}

function timelineText(timeline: RunbookStatus['timeline']): string[] {
  if (timeline.length === 0) return [];
  return ['timeline:', ...timeline.map((e) => `  ${formatTime(e.at)}  ${safe(e.step)}: ${safe(e.event)} (${safe(e.actor)})${e.detail ? ` — ${safe(e.detail)}` : ''}`)];
}

function reportText(r: IncidentReport & { truncated: boolean }): string {
  const ttr = r.timeToRecover;
  const head = [
    ...(r.truncated ? [`PARTIAL: only the newest ${reportLimit} incidents were read; narrow --since or --target`] : []),
    `incidents closed ${formatTime(r.since)} – ${formatTime(r.until)}: ${r.incidents}`,
    `by outcome: ${Object.entries(r.byOutcome).map(([o, n]) => `${o} ${n}`).join(', ') || '-'}`,
    `automatic recovery rate: ${formatRate(r.automaticRecoveryRate)} (${r.recoveredAutomatically} recovered without an operator; false alarms and suppressed alerts excluded)`,
    `time to recover: ${ttr ? `mean ${formatSpan(ttr.meanMs)}, p95 ${formatSpan(ttr.p95Ms)} over ${ttr.count}` : '-'}`,
    '',
  ].join('\n');
  if (r.perTarget.length === 0) return head;
  return `${head}\n${renderTable(
    ['TARGET', 'INCIDENTS', 'RECOVERED', 'AUTO RATE', 'MEAN TTR', 'P95 TTR', 'OUTCOMES'],
    r.perTarget.map((p) => [
      p.target || '-',
      String(p.incidents),
      String(p.recovered),
      formatRate(p.automaticRecoveryRate),
      formatSpan(p.timeToRecover?.meanMs),
      formatSpan(p.timeToRecover?.p95Ms),
      Object.entries(p.byOutcome).map(([o, n]) => `${o} ${n}`).join(', '),
    ]),
  )}`;
}
