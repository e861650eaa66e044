// What the PostgreSQL and MySQL clients are given of a database target: where, who, and how long
// an ordinary call may take. Shaped once from config, so both read timeouts the same way.
import { parseDuration } from '../config/duration.js';
import type { MysqlTarget, PostgresTarget } from '../config/schema.js';
import type { Secret } from '../config/secret.js';

export interface SqlConnection {
  host: string;
  port: number;
  user?: string;
  password?: Secret;
  database?: string;
  /** Connect timeout and statement timeout of ordinary calls. */
  timeoutMs: number;
}

export interface SqlPing {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

export function sqlConnection(target: PostgresTarget | MysqlTarget): SqlConnection {
  const { host, port, user, password, database } = target;
  return { host, port, user, password, database, timeoutMs: parseDuration(target.timeout) };
}
