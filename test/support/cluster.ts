// Faults in the stack's Temporal cluster (`npm run stack -- up --temporal cluster`): one of its four
// services SIGKILLed, or its PostgreSQL stopped the way a crash stops it; `stack.sh cluster-up`
// brings back whatever is missing and waits until it serves. Only for TEMPORAL_MODE=cluster runs.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './engineProcess.js';
import { stack } from './stack.js';
import { until } from './wait.js';

const run = promisify(execFile);

export type ClusterService = 'frontend' | 'history' | 'matching' | 'worker';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid the stack recorded when it started the service. */
export function clusterServicePid(service: ClusterService): number {
  return Number(readFileSync(join(stack().dir, 'pids', `temporal-${service}.pid`), 'utf8').trim());
}

/** kill -9 of one service; resolves once the process is gone. */
export async function killClusterService(service: ClusterService): Promise<void> {
  const pid = clusterServicePid(service);
  process.kill(pid, 'SIGKILL');
  await until(`temporal-${service} (pid ${pid}) gone after SIGKILL`, 10_000, async () => (alive(pid) ? undefined : true), 50);
}

/** PostgreSQL's immediate shutdown: no checkpoint, every connection cut, crash recovery at the next start. */
export async function crashClusterPostgres(): Promise<void> {
  const data = join(stack().dir, 'temporal-cluster', 'postgres', 'data');
  const bindir = (await run('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1'])).stdout.trim();
  await run('runuser', ['-u', 'postgres', '--', `${bindir}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']);
}

/** Starts whatever of the cluster is not running (PostgreSQL, services) and waits until each serves. */
export async function clusterUp(): Promise<void> {
  await run('bash', [join(repoRoot, 'stack', 'stack.sh'), 'cluster-up'], { cwd: repoRoot, timeout: 180_000 });
}
