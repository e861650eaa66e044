// Entry point: `engine` (default) runs the whole engine; `agent --host NAME` runs a host agent.
import { Command } from 'commander';
import { pino, destination } from 'pino';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { startEngine } from './engine.js';
import { startHostAgent } from './hostAgent.js';

const logger = pino(
  { name: 'remediation', level: process.env.LOG_LEVEL ?? 'info' },
  // A host agent started detached (docker exec -d, a unit without a journal) logs to a file instead.
  process.env.LOG_FILE ? destination({ dest: process.env.LOG_FILE, append: true, mkdir: true }) : undefined,
);

function load(path: string) {
  try {
    return loadConfigFile(path);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

function onSignals(stop: () => Promise<void>): void {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      logger.info({ signal: sig }, 'shutting down');
      stop().then(() => process.exit(0), () => process.exit(1));
    });
  }
}

const program = new Command('remediation-engine').option('-c, --config <path>', 'config file', process.env.REMEDIATION_CONFIG ?? 'config/example.yaml');

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
    onSignals(engine.stop);
    await engine.done;
  });

program
  .command('agent')
  .description("run a host agent: this host's systemd activities on its own task queue")
  .requiredOption('--host <name>', 'the host name from the config')
  .action(async (opts: { host: string }) => {
    const agent = await startHostAgent(load(program.opts().config), opts.host, logger);
    onSignals(agent.stop);
    await agent.done;
  });

program.parseAsync().catch((err) => {
  logger.error({ err: String(err) }, 'fatal');
  process.exit(1);
});
