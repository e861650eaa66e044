// The incident commands of `remediate`, in its two modes. In API mode (the default) they go through
// the engine's operator API as the operator the token names; in admin mode (`remediate admin …`)
// straight to Temporal with the engine config, as the operator --as names. Same options, same
// output: the API serves the very objects the admin mode reads (see cliAccess.ts).
import { Command, Option } from 'commander';
import { parseDuration } from '../../config/duration.js';
import type { EngineConfig } from '../../config/schema.js';
import { adminIdentity, type OperatorAccess } from './cliAccess.js';
import {
  closedWindowsText,
  detailText,
  incidentsTable,
  releasedSlotsText,
  reportText,
  schedulesTable,
  slotsTable,
  windowsTable,
} from './cliText.js';
import { CliError } from './operatorApiClient.js';
import { changeSchedule, type DecisionKind, type IncidentFilter } from '../operators/operatorCommands.js';
import { CommandError, connectTemporal } from '../operators/operatorTemporal.js';
import { printable } from './runbookCommands.js';
import { reportHtml } from '../reports/reportHtml.js';
import { startedText } from './runbookRun.js';
import { terminalSafe } from './table.js';

export type Mode = 'api' | 'admin';

/** What the program gives its commands: output, the engine in either mode, the config for admin. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  print(cmd: Command, json: unknown, text: () => string): void;
  withAccess<T>(mode: Mode, cmd: Command, fn: (access: OperatorAccess) => Promise<T>): Promise<T>;
  configOf(cmd: Command): EngineConfig;
}

/** The incident commands on `parent` (the program, or `admin`), for that mode. */
export function incidentCommands(parent: Command, mode: Mode, ctx: CliContext): void {
  const { print, withAccess, configOf } = ctx;
  const refuseAs = (opts: { as?: string }, command: string) => {
    if (mode === 'api' && opts.as !== undefined)
      throw new CliError(
        1,
        `--as is not accepted here: through the operator API you act as the operator your token names ("remediate whoami" says who); ` +
          `administrators name one with "remediate admin ${command} … --as NAME"`,
      );
  };
  // Hidden in API mode: accepted only to be refused with the reason, instead of "unknown option".
  const asOption = (c: Command, what: string) =>
    mode === 'admin'
      ? c.requiredOption('--as <operator>', `the configured operator ${what} as`)
      : c.addOption(new Option('--as <operator>').hideHelp());

  parent
    .command('incidents')
    .description('list incident workflows, newest first')
    .option('--open', 'only running incidents')
    .option('--closed', 'only finished incidents')
    .option('--target <name>', 'only this target')
    .option('--alert <name>', 'only this alert name')
    .option('--outcome <outcome>', 'only this outcome (recovered, escalated, ...)')
    .option('--runbook <runbook>', 'only this runbook')
    .addOption(new Option('--limit <n>', 'at most this many').default(50).argParser(positiveInt('--limit')))
    .action(async (opts: IncidentFilter, cmd: Command) => {
      const rows = await withAccess(mode, cmd, (a) => a.incidents(opts));
      print(cmd, rows, () => incidentsTable(rows));
    });

  parent
    .command('show <workflowId>')
    .description("an incident's live status, or the result of a finished one")
    .action(async (workflowId: string, _opts, cmd: Command) => {
      const detail = await withAccess(mode, cmd, (a) => a.show(workflowId));
      print(cmd, detail, () => detailText(detail));
    });

  const decision = (name: string, kind: DecisionKind, verb: string, reasonRequired: boolean) => {
    const c = parent
      .command(`${name} <workflowId>`)
      .description(`${verb} an incident, as ${mode === 'api' ? 'the operator your token names' : 'the operator named by --as'}`);
    asOption(c, 'this is done');
    if (reasonRequired) c.requiredOption('--reason <text>', 'why; recorded in the incident timeline');
    else c.option('--reason <text>', 'why; recorded in the incident timeline', 'acknowledged with remediate');
    c.action(async (workflowId: string, opts: { as?: string; reason: string }, cmd: Command) => {
      refuseAs(opts, name);
      const done = await withAccess(mode, cmd, (a) => a.decide(workflowId, kind, opts.reason, opts.as));
      print(
        cmd,
        { workflowId: done.workflowId, signal: kind, operator: done.operator, sent: true },
        () => `${kind} by ${printable(done.operator)} sent to ${printable(done.workflowId)}\n`,
      );
    });
  };
  decision('approve', 'approve', 'approve the pending step of', true);
  decision('reject', 'reject', 'reject the pending step of', true);
  decision('ack', 'acknowledge', 'acknowledge (stop escalating)', false);

  const cancel = parent
    .command('cancel <workflowId>')
    .description(
      `cancel a running incident or maintenance workflow (it runs its cleanup), as ${mode === 'api' ? 'the operator your token names' : 'the operator named by --as'}`,
    );
  asOption(cancel, 'this is done');
  cancel.option('--reason <text>', `why; recorded in the incident timeline${mode === 'api' ? ' and the audit log' : ''}`);
  cancel.action(async (workflowId: string, opts: { as?: string; reason?: string }, cmd: Command) => {
    refuseAs(opts, 'cancel');
    await withAccess(mode, cmd, (a) => a.cancel(workflowId, opts.reason, opts.as));
    print(cmd, { workflowId, cancelRequested: true }, () => `cancellation requested for ${printable(workflowId)}\n`);
  });

  const maintenance = parent.command('maintenance').description('maintenance windows');
  const maintenanceRun = maintenance
    .command('run <schedule>')
    .description(
      `open the maintenance window of a configured schedule now, as ${mode === 'api' ? 'the operator your token names' : 'the operator named by --as'}`,
    );
  asOption(maintenanceRun, 'starting it');
  maintenanceRun.action(async (name: string, opts: { as?: string }, cmd: Command) => {
    refuseAs(opts, 'maintenance run');
    const started = await withAccess(mode, cmd, (a) => a.runMaintenance(name, opts.as));
    print(
      cmd,
      started,
      () => `maintenance '${printable(name)}' started: workflow ${printable(started.workflowId)} (run ${printable(started.runId)})\n`,
    );
  });

  maintenance
    .command('windows')
    .description('the open maintenance windows: schedule, the run that holds each and whether it still runs, targets, end')
    .action(async (_opts, cmd: Command) => {
      const rows = await withAccess(mode, cmd, (a) => a.maintenanceWindows());
      print(cmd, rows, () => windowsTable(rows));
    });
  const maintenanceClose = maintenance
    .command('close <schedule>')
    .description(
      `close the window a maintenance run left open when it ended without closing it (terminated): its guard entry and its Alertmanager silence; refused while the run still runs (cancel that instead), as ${mode === 'api' ? 'the operator your token names' : 'the operator named by --as'}`,
    )
    .option('--dry-run', 'only say what would be closed');
  asOption(maintenanceClose, 'this is done');
  maintenanceClose.action(async (name: string, opts: { as?: string; dryRun?: boolean }, cmd: Command) => {
    refuseAs(opts, 'maintenance close');
    const closed = await withAccess(mode, cmd, (a) => a.closeMaintenance(name, opts.dryRun === true, opts.as));
    print(cmd, closed, () => closedWindowsText(closed));
  });

  const slots = parent
    .command('slots')
    .description(
      'the destructive-action slots (guardrails.maxConcurrentDestructive): who holds each, and releasing those of a run that ended',
    );
  slots
    .command('list', { isDefault: true })
    .description('every slot held: the run holding it and whether it still runs, its action and target, since when, when it lapses')
    .action(async (_opts, cmd: Command) => {
      const rows = await withAccess(mode, cmd, (a) => a.slots());
      print(cmd, rows, () => slotsTable(rows));
    });
  const slotsRelease = slots
    .command('release <workflow-id>')
    .description(
      `release the slots a run kept when it ended without releasing them (terminated); refused while it still runs (cancel it instead), as ${mode === 'api' ? 'the operator your token names' : 'the operator named by --as'}`,
    )
    .option('--dry-run', 'only say what would be released');
  asOption(slotsRelease, 'this is done');
  slotsRelease.action(async (workflowId: string, opts: { as?: string; dryRun?: boolean }, cmd: Command) => {
    refuseAs(opts, 'slots release');
    const released = await withAccess(mode, cmd, (a) => a.releaseSlots(workflowId, opts.dryRun === true, opts.as));
    print(cmd, released, () => releasedSlotsText(released));
  });

  const schedules = parent.command('schedules').description('the Temporal schedules of maintenance windows');
  schedules
    .command('list')
    .description('the maintenance schedules: active or paused, next and last run')
    .action(async (_opts, cmd: Command) => {
      const rows = await withAccess(mode, cmd, (a) => a.schedules());
      print(cmd, rows, () => schedulesTable(rows));
    });
  for (const action of ['pause', 'unpause', 'trigger'] as const) {
    if (mode === 'api') {
      // The API does not change schedules (they follow the config); say where that is done.
      schedules
        .command(`${action} [name]`, { hidden: true })
        .allowUnknownOption()
        .allowExcessArguments()
        .action(() => {
          throw new CliError(
            1,
            `schedules ${action} is an administrator command: remediate admin schedules ${action} NAME (straight to Temporal, with the engine config)`,
          );
        });
      continue;
    }
    const c = schedules.command(`${action} <name>`).description(`${action} a maintenance schedule`);
    if (action !== 'trigger') c.option('--reason <text>', 'note recorded on the schedule');
    c.action(async (name: string, opts: { reason?: string }, cmd: Command) => {
      const t = await connectTemporal(configOf(cmd), ctx.env, adminIdentity(ctx.env));
      try {
        await changeSchedule(t, name, action, opts.reason);
      } finally {
        await t.close();
      }
      const done = { pause: 'paused', unpause: 'unpaused', trigger: 'triggered' }[action];
      print(cmd, { schedule: name, action: done }, () => `schedule '${printable(name)}' ${done}\n`);
    });
  }

  const run = parent
    .command('run <runbook>')
    .description(
      `start an incident runbook on a target by hand, as ${mode === 'api' ? 'the operator your token names' : 'the operator named by --as'}`,
    )
    .requiredOption('--target <name>', 'a configured target of a kind the runbook applies to');
  asOption(run, 'starting it');
  run
    .option('--reason <text>', 'why; the run shows it as the alert summary')
    .option('--severity <level>', "the run's severity (picks the escalation policy)", 'warning')
    .option('--dry-run', 'mutating steps only report what they would do')
    .action(
      async (name: string, opts: { target: string; as?: string; reason?: string; severity: string; dryRun?: boolean }, cmd: Command) => {
        refuseAs(opts, 'run');
        const started = await withAccess(mode, cmd, (a) =>
          a.run(
            { runbook: name, target: opts.target, reason: opts.reason, severity: opts.severity, dryRun: Boolean(opts.dryRun) },
            opts.as,
          ),
        );
        const shown = Object.fromEntries(
          Object.entries(started).map(([k, v]) => [k, typeof v === 'string' ? terminalSafe(v) : v]),
        ) as typeof started;
        print(cmd, started, () => startedText(shown));
      },
    );

  parent
    .command('report')
    .description('outcomes, time to recover from the alert, availability against the objective and budget left, per target')
    .addOption(new Option('--since <duration>', 'how far back, e.g. 36h, 7d, 30d').default('7d'))
    .option('--target <name>', 'only incidents on this target')
    .addOption(new Option('--objective <percent>', 'the availability objective, e.g. 99.9 (= 43.2 min a month)').default('99.9'))
    .addOption(
      new Option('--format <format>', 'table, json (as --json) or html (one self-contained file with charts, to stdout)')
        .choices(['table', 'json', 'html'])
        .default('table'),
    )
    .action(async (opts: { since: string; target?: string; objective: string; format: 'table' | 'json' | 'html' }, cmd: Command) => {
      let sinceMs: number;
      try {
        sinceMs = parseDuration(opts.since);
      } catch (err) {
        throw new CommandError(1, `--since: ${(err as Error).message}`);
      }
      if (sinceMs < 60_000 || sinceMs > 366 * 86_400_000)
        throw new CommandError(1, `--since ${printable(opts.since)}: expected a period from 1m to 366d`);
      if (!/^\d{1,2}(\.\d{1,4})?$/.test(opts.objective) || Number(opts.objective) <= 0)
        throw new CommandError(1, `--objective ${printable(opts.objective)}: expected a percentage such as 99.9`);
      const report = await withAccess(mode, cmd, (a) => a.report(sinceMs, opts.since, opts.target, Number(opts.objective)));
      if (opts.format === 'html') return void process.stdout.write(reportHtml(report));
      if (opts.format === 'json') return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      print(cmd, report, () => reportText(report));
    });
}

function positiveInt(flag: string) {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new CommandError(1, `${flag} ${JSON.stringify(text)}: expected a positive whole number`);
    return n;
  };
}
