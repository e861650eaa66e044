// Entry point: `engine` (default) runs the whole engine; `agent --host NAME` runs a host agent.
import { Command } from 'commander';
import type { Logger } from 'pino';
import { findConfigFile } from '../config/configFile.js';
import { ConfigError, loadConfigFile, type SecretScope } from '../config/load.js';
import { startEngine } from './engine.js';
import { startHostAgent } from './hostAgent.js';
import { createLogger, installSdkLogging, sdkLogLevel, type SdkLogLevel } from './logging.js';
import { shutdownDeadlineMs } from './temporal.js';

let logger: Logger;
let sdkLevel: SdkLogLevel;
try {
  // A host agent started detached (docker exec -d, a unit without a journal) logs to a file instead.
  logger = createLogger({ level: process.env.LOG_LEVEL, format: process.env.LOG_FORMAT, file: process.env.LOG_FILE || undefined });
  sdkLevel = sdkLogLevel(process.env.TEMPORAL_LOG_LEVEL);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
// Before any worker or connection exists: the SDK keeps the first runtime it is given.
installSdkLogging(logger, sdkLevel);

function load(flag: string | undefined, secrets: SecretScope = 'all') {
  const found = findConfigFile(flag, process.env);
  logger.info({ config: found.path, from: found.from }, 'configuration file');
  try {
    return loadConfigFile(found.path, { secrets });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * SIGTERM and SIGINT from the first instant, start-up included (a start waiting on an unreachable
 * Temporal has nothing to drain): the engine or agent stops, and the process is gone within
 * shutdownDeadlineMs whatever Temporal does. A stop that overruns it, or a second signal, ends the
 * process at once, after saying so.
 */
function handleSignals(): { running(stop: () => Promise<void>): void } {
  let stop: (() => Promise<void>) | undefined;
  let signalled = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (signalled) {
        logger.warn({ signal: sig }, 'second signal: exiting without waiting for the shutdown');
        process.exit(1);
      }
      signalled = true;
      logger.info({ signal: sig }, 'shutting down');
      if (!stop) {
        logger.info('stopped during start-up');
        process.exit(0);
      }
      setTimeout(() => {
        logger.error({ deadlineMs: shutdownDeadlineMs }, 'shutdown overran its deadline; exiting anyway');
        process.exit(1);
      }, shutdownDeadlineMs);
      stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err: String(err) }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  return { running: (s) => (stop = s) };
}

const signals = handleSignals();

const program = new Command('remediation-engine').option(
  '-c, --config <path>',
  'config file (default: $REMEDIATION_CONFIG, else config/example.yaml)',
);

program
  .command('engine', { isDefault: true })
  .description('run the worker, the Alertmanager webhook and the maintenance schedules')
  .action(async () => {
    const engine = await startEngine({
      config: load(program.opts().config),
      logger,
      // A deployment may bundle the workflows once at build time instead of at every start.
      workflowBundlePath: process.env.REMEDIATION_WORKFLOW_BUNDLE || undefined,
    });
    signals.running(engine.stop);
    await engine.done;
  });

program
  .command('agent')
  .description("run a host agent: this host's systemd activities on its own task queue")
  .requiredOption('--host <name>', 'the host name from the config')
  .action(async (opts: { host: string }) => {
    // Only this host's secrets: the engine's database passwords and tokens need not be on this machine.
    const agent = await startHostAgent(load(program.opts().config, { host: opts.host }), opts.host, logger);
    signals.running(agent.stop);
    await agent.done;
  });

program.parseAsync().catch((err) => {
  logger.error({ err: String(err) }, 'fatal');
  process.exit(1);
});
