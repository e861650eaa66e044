// The docker CLI, for setting the scene around the engine and checking what it did: tests go to
// the daemon the way an operator would, never through the engine's own Docker client.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { stack } from './stack.js';

const run = promisify(execFile);

/** `docker ...args`: its trimmed stdout; rejects when docker exits non-zero or takes over a minute. */
export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: 60_000 });
  return stdout.trim();
}

/** The same, blocking: for a step that must be over before the next line, such as killing the service under test. */
export function dockerSync(...args: string[]): string {
  // stderr is kept in the thrown error rather than printed: expected failures stay out of the test log.
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * The arguments of `docker run` for a busybox container of the tests' own: detached, on the host
 * network, labelled so that the stack's clean-up finds it. By default it runs the image's web
 * server on 127.0.0.1:`port` (/health); `command` (after the image) or `entrypoint` replace that,
 * and `mounts` are `-v` specs.
 */
export function busyboxRun(
  name: string,
  opts: { port?: number; command?: string[]; entrypoint?: string; mounts?: string[] } = {},
): string[] {
  return [
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--label',
    'remediation.stack=1',
    ...(opts.port !== undefined ? ['-e', `PORT=${opts.port}`] : []),
    ...(opts.mounts ?? []).flatMap((m) => ['-v', m]),
    ...(opts.entrypoint ? ['--entrypoint', opts.entrypoint] : []),
    stack().busyboxImage,
    ...(opts.command ?? []),
  ];
}

/**
 * Docker's own record of what was done to a container between `sinceMs` and now: the actions
 * (start, kill, restart, ...), one per line, optionally only those of the `events` named.
 */
export function containerActions(container: string, sinceMs: number, events: string[] = []): Promise<string> {
  return docker(
    'events',
    '--since',
    (sinceMs / 1_000).toFixed(3),
    '--until',
    (Date.now() / 1_000).toFixed(3),
    '--filter',
    `container=${container}`,
    ...events.flatMap((e) => ['--filter', `event=${e}`]),
    '--format',
    '{{.Action}}',
  );
}
