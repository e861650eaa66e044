// `remediate`: the operator's way in. Tables for people, --json for scripts, and exit codes a
// script can branch on: 1 usage, bad input or a conflict, 2 not found, 3 the engine or Temporal
// unreachable, 4 no credentials, credentials refused, or not allowed.
//
// Operators' commands go through the engine's operator API with their own token (REMEDIATE_URL +
// REMEDIATE_TOKEN, or a credentials file): no engine config, no Temporal access, no database secret.
// `remediate admin …` is the same commands straight to Temporal with the engine config, for
// administrators. preview, runbooks and operators read the config only. The config file is found
// as the engine finds it (--config, $REMEDIATION_CONFIG, config/example.yaml), and named on stderr.
import { existsSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { configFileText, defaultConfigFile, findConfigFile } from '../../config/configFile.js';
import { ConfigError, loadConfigFile } from '../../config/load.js';
import { parseDuration } from '../../config/duration.js';
import type { EngineConfig } from '../../config/schema.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { matchBinding } from '../alerts/binding.js';
import { directToTemporal, throughApi, type OperatorAccess } from './cliAccess.js';
import { incidentCommands, type CliContext, type Mode } from './cliIncidentCommands.js';
import { findApiCredentials } from './cliCredentials.js';
import { newTokenText, operatorRows, operatorsTable, whoamiText } from './cliText.js';
import { CliError, OperatorApiClient } from './operatorApiClient.js';
import { newOperatorToken } from '../operators/credentials.js';
import { CommandError } from '../operators/operatorTemporal.js';
import { planRunbook } from '../plan.js';
import { listRunbooks, listText, loadConfigOffline, printable, showRunbook, showText, type OfflineConfig } from './runbookCommands.js';
import { validateRunbooks, validateText } from './runbookValidate.js';
import { planRunbookSteps, planText } from './runbookPreview.js';
import { formatSpan } from './table.js';

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
    if (err instanceof CommandError || err instanceof CliError) {
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
    .description('Operate the remediation engine: incidents, approvals, runbooks, maintenance windows, reports.')
    .addHelpText(
      'after',
      [
        '',
        "Incident commands go through the engine's operator API as the operator your token names:",
        '  REMEDIATE_URL (default http://127.0.0.1:9798) and REMEDIATE_TOKEN, or url and token in',
        '  ~/.config/remediate/credentials (mode 0600; REMEDIATE_CREDENTIALS names another file).',
        'Administrators: "remediate admin <command> ... --as NAME" goes straight to Temporal.',
        'The engine config (admin, preview, runbooks, operators list) is found as the engine finds it:',
        `  --config, else $REMEDIATION_CONFIG, else ${defaultConfigFile} here; stderr names the file.`,
        'Exit codes: 1 bad input or conflict, 2 not found, 3 engine or Temporal unreachable,',
        '  4 no token, token refused, or not allowed.',
      ].join('\n'),
    )
    .option(
      '-c, --config <path>',
      `engine configuration file, for admin, preview, runbooks and operators (default: $REMEDIATION_CONFIG, else ${defaultConfigFile} as the engine)`,
    )
    .option('--json', 'print JSON instead of tables')
    .exitOverride()
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run "remediate --help" for usage)');

  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>();
  // The engine's rule; the default only where that file exists (validate then checks structure only).
  const configPathOf = (cmd: Command): string | undefined => {
    const found = findConfigFile(globals(cmd).config, io.env);
    if (found.from === 'default' && !existsSync(found.path)) return undefined;
    io.err(`remediate: ${configFileText(found)}\n`);
    return found.path;
  };
  const requiredConfigPathOf = (cmd: Command): string => {
    const path = configPathOf(cmd);
    if (!path)
      throw new CommandError(
        1,
        `no configuration: pass --config <path> or set REMEDIATION_CONFIG (no ${defaultConfigFile} here, where the engine would look)`,
      );
    return path;
  };
  // Administrators' commands use only the Temporal connection's secrets; a database password need not be set.
  const configOf = (cmd: Command): EngineConfig => loadConfigFile(requiredConfigPathOf(cmd), { secrets: 'temporal' });
  // For commands that only read the config: secrets they never use need not be resolvable.
  const offlineConfigOf = (cmd: Command): OfflineConfig => loadConfigOffline(requiredConfigPathOf(cmd));
  const print = (cmd: Command, json: unknown, text: () => string) =>
    io.out(globals(cmd).json ? `${JSON.stringify(json, null, 2)}\n` : text());
  const apiClientOf = (cmd: Command): OperatorApiClient => {
    const hint = globals(cmd).config ? '; --config is for "remediate admin", preview, runbooks and operators' : '';
    const found = findApiCredentials(io.env, hint);
    return new OperatorApiClient({ url: found.url, token: found.token, tokenFrom: found.tokenFrom, urlFrom: found.urlFrom });
  };
  const withAccess = async <T>(mode: Mode, cmd: Command, fn: (access: OperatorAccess) => Promise<T>): Promise<T> => {
    const access = mode === 'api' ? throughApi(apiClientOf(cmd)) : await directToTemporal(configOf(cmd), io.env);
    try {
      return await fn(access);
    } finally {
      await access.close();
    }
  };

  const ctx: CliContext = { env: io.env, print, withAccess, configOf };
  incidentCommands(program, 'api', ctx);
  program
    .command('whoami')
    .description('who the operator API takes your token for: operator, role, scopes')
    .action(async (_opts, cmd: Command) => {
      const client = apiClientOf(cmd);
      const who = await client.whoami();
      print(cmd, { ...who, url: client.url }, () => whoamiText(who, client.url, client.tokenFrom));
    });

  const admin = program
    .command('admin')
    .description(
      'administrators: the incident commands straight to Temporal with the engine config (--config); decisions, cancels and runs name an operator with --as',
    );
  incidentCommands(admin, 'admin', ctx);

  program
    .command('preview')
    .description('which runbook and target an alert with these labels would start (no Temporal needed)')
    .requiredOption('-l, --label <key=value>', 'an alert label; repeat for each (alertname=... is required)', collectLabel, {})
    .action(async (opts: { label: Record<string, string> }, cmd: Command) => {
      const { config } = offlineConfigOf(cmd);
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
          `escalation:  ${input.escalation.policy}: ${input.escalation.levels.map((l) => `${l.name} after ${formatSpan(l.afterMs)} → ${l.channels.join(', ')}`).join('; ')}${input.escalation.lastAnswerMs !== undefined ? `; the last has ${formatSpan(input.escalation.lastAnswerMs)} to answer` : ''}`,
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
    .action(
      async (name: string, opts: { label: Record<string, string>; target?: string; schedule?: string; dryRun?: boolean }, cmd: Command) => {
        const { config } = offlineConfigOf(cmd);
        const plan = planRunbookSteps(config, {
          runbook: name,
          labels: opts.label,
          target: opts.target,
          schedule: opts.schedule,
          dryRun: Boolean(opts.dryRun),
        });
        print(cmd, plan, () => planText(plan, name));
      },
    );

  const operators = program.command('operators').description('who may act: the configured operators, and new API tokens for them');
  operators
    .command('list')
    .description('configured operators with their roles and scopes (never their token hashes)')
    .action(async (_opts, cmd: Command) => {
      const rows = operatorRows(offlineConfigOf(cmd).config.operators);
      print(cmd, rows, () => operatorsTable(rows));
    });
  operators
    .command('token <name>')
    .description('a new API token for an operator, shown once, and the tokenHash line for the config (needs no config)')
    .option('--expires <duration>', 'also print a tokenExpires line this far from now, e.g. 90d')
    .action(async (name: string, opts: { expires?: string }, cmd: Command) => {
      // The same rule as an operator's name in the config: the hash is pasted under that name.
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
        throw new CliError(
          1,
          `${JSON.stringify(printable(name.slice(0, 80)))} is not an operator name (letters, digits, ".", "_" or "-", at most 63)`,
        );
      let tokenExpires: string | undefined;
      if (opts.expires !== undefined) {
        let ms: number;
        try {
          ms = parseDuration(opts.expires);
        } catch (err) {
          throw new CliError(1, `--expires: ${(err as Error).message}`);
        }
        if (ms < 60_000 || ms > 3 * 366 * 86_400_000)
          throw new CliError(1, `--expires ${opts.expires}: expected from 1m to 3 years (${formatSpan(ms)} given)`);
        tokenExpires = `${new Date(Date.now() + ms).toISOString().slice(0, 19)}Z`;
      }
      const { token, tokenHash } = newOperatorToken();
      const made = { operator: name, token, tokenHash, ...(tokenExpires ? { tokenExpires } : {}) };
      print(cmd, made, () => newTokenText(made));
    });

  return program;
}

function collectLabel(text: string, labels: Record<string, string>): Record<string, string> {
  const i = text.indexOf('=');
  if (i <= 0) throw new CommandError(1, `--label ${JSON.stringify(text)}: expected key=value`);
  return { ...labels, [text.slice(0, i)]: text.slice(i + 1) };
}
