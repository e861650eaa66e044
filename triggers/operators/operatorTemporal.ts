// The operator tools' connection to Temporal: the same address rules as the engine, a deadline
// on every call, and failures turned into exit codes (3: Temporal unreachable).
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { EngineConfig } from '../../config/schema.js';
import { isTemporalUnavailable } from '../alerts/incidents.js';

export class CommandError extends Error {
  constructor(
    readonly exitCode: 1 | 2 | 3,
    message: string,
  ) {
    super(message);
  }
}

export interface Temporal {
  client: Client;
  address: string;
  /** Runs fn with a deadline on every Temporal call inside it. */
  call<T>(fn: () => Promise<T>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/** TEMPORAL_ADDRESS overrides the config, as it does for the engine; no address means the embedded dev server. */
export async function connectTemporal(config: EngineConfig, env: NodeJS.ProcessEnv = process.env, identity?: string): Promise<Temporal> {
  const address = env.TEMPORAL_ADDRESS || config.temporal.address || `127.0.0.1:${config.temporal.port}`;
  const namespace = env.TEMPORAL_NAMESPACE || config.temporal.namespace;
  const { tls, apiKey } = config.temporal;
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address,
      connectTimeout: '5s',
      ...(apiKey ? { apiKey: apiKey.reveal() } : {}),
      ...(tls
        ? {
            tls: {
              serverNameOverride: tls.serverName,
              serverRootCACertificate: tls.ca ? Buffer.from(tls.ca.reveal()) : undefined,
              clientCertPair: tls.cert && tls.key ? { crt: Buffer.from(tls.cert.reveal()), key: Buffer.from(tls.key.reveal()) } : undefined,
            },
          }
        : apiKey
          ? { tls: true }
          : {}),
    });
  } catch (err) {
    throw new CommandError(3, `cannot reach Temporal at ${address}: ${(err as Error).message}`);
  }
  return temporalOf(new Client({ connection, namespace, ...(identity ? { identity } : {}) }), connection, address);
}

/** The operator commands over a connection someone else owns (the engine's, for its operator API). */
export function temporalOf(client: Client, connection: Connection, address: string): Temporal {
  return {
    client,
    address,
    async call(fn, timeoutMs = 10_000) {
      try {
        return await connection.withDeadline(Date.now() + timeoutMs, fn);
      } catch (err) {
        if (err instanceof CommandError) throw err;
        if (isTemporalUnavailable(err)) throw new CommandError(3, `Temporal at ${address} did not answer: ${(err as Error).message}`);
        throw err;
      }
    },
    close: () => connection.close(),
  };
}

/** A run's status in lower case (running, completed, terminated, …; not-found once its history is gone); the newest run without runId. */
export async function runStatus(t: Temporal, workflowId: string, runId?: string): Promise<string> {
  return t
    .call(() => t.client.workflow.getHandle(workflowId, runId).describe())
    .then((d) => d.status.name.toLowerCase())
    .catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return 'not-found';
      throw err;
    });
}
