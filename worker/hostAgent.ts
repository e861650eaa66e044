// The host agent: runs on a machine that owns systemd units and serves only that host's task queue,
// so `systemctl restart` runs where the unit lives. It registers the target activities for this
// host's units only (any other target is refused), and needs only their secrets (worker/main.ts
// loads the config with that scope).
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { hostTaskQueue } from '../config/load.js';
import type { EngineConfig } from '../config/schema.js';
import { createHostActivities } from '../activities/index.js';
import type { CommandRunner } from '../activities/systemd.js';
import { agentEndpoint, connect, workerHeartbeats, workerShutdown } from './temporal.js';

export interface RunningAgent {
  taskQueue: string;
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startHostAgent(
  config: EngineConfig,
  host: string,
  logger: Logger,
  /** How systemctl and journalctl run; locally unless a test runs them inside a container. */
  options: { run?: CommandRunner } = {},
): Promise<RunningAgent> {
  if (!(host in config.hosts)) {
    throw new Error(`host "${host}" is not in the config's hosts (known: ${Object.keys(config.hosts).join(', ') || 'none'})`);
  }
  const endpoint = agentEndpoint(config);
  if (endpoint.embedded)
    logger.info(
      { temporal: endpoint.address },
      'temporal.address is not set: this agent serves the engine on this machine, through its embedded dev server (it never starts one of its own)',
    );
  // An agent outlives restarts of Temporal and may start before it: keep trying rather than exit.
  let native: NativeConnection | undefined;
  for (let attempt = 1; !native; attempt++) {
    try {
      const conns = await connect(endpoint);
      await conns.client.close();
      native = conns.native;
    } catch (err) {
      logger.warn({ attempt, temporal: endpoint.address, err: String(err) }, 'Temporal not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(30_000, 1_000 * attempt)));
    }
  }
  const taskQueue = hostTaskQueue(config, host);
  const worker = await Worker.create({
    connection: native,
    namespace: endpoint.namespace,
    taskQueue,
    activities: createHostActivities(config, host, { logger, run: options.run }),
    ...workerShutdown,
    ...workerHeartbeats,
  });
  const done = worker.run();
  const units = Object.entries(config.targets)
    .filter(([, t]) => t.kind === 'systemd' && t.host === host)
    .map(([n]) => n);
  logger.info({ host, taskQueue, temporal: endpoint.address, targets: units }, 'host agent running');
  return {
    taskQueue,
    done,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done.catch(() => {});
      await native!.close();
    },
  };
}
