// `docker exec` through the Engine API: a program and its arguments as an array (Cmd), never a
// shell string, run inside a configured container. It is what the `command` and `hostDiagnostics`
// steps use for container targets, behind the same CommandRunner interface the host agent's local
// runner has, so both read a program's output the same way.
//
// The API has no way to stop an exec'd process, and the daemon does not stop one whose client went
// away: a hung command would run on after its activity reported a timeout, and each retry would add
// another copy. So every exec carries a marker of its own in its environment, and on timeout or
// cancellation a second exec, as root, kills each process whose environment holds that marker (the
// program and the children that inherited it). Only the container can say which of its processes
// it is: the exec's Pid is the host's, and the engine may not share the host of a remote endpoint.
// A container that cannot run that exec (a distroless or scratch image has no sh) is covered from
// the engine's side when the engine shares the daemon's host and can read its processes (root, not
// in a container of its own): the processes holding the marker are found in /proc and killed there.
// Left running, as before: such a container on a remote daemon, and a process that clears its
// environment.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import Docker from 'dockerode';
import type { ContainerRef } from './docker.js';
import { FrameDemuxer } from './dockerLogStream.js';
import { TimeoutError, withTimeout } from './failures.js';
import type { CommandResult, CommandRunner } from './systemd.js';

export interface DockerExecDeps {
  docker: (endpointName: string) => Docker;
  /** Bound of one Engine API call (creating and inspecting the exec), per endpoint. */
  apiTimeoutMs: (endpointName: string) => number;
}

export interface DockerExec {
  /** Runs programs inside the container; rejects with `code` ENOENT (no such program), ENOCONTAINER, ENOTRUNNING. */
  runner(ref: ContainerRef, options?: { env?: string[] }): CommandRunner;
}

const containerName = /^\/?[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export function createDockerExec(deps: DockerExecDeps): DockerExec {
  return {
    runner(ref, options = {}) {
      if (!containerName.test(ref.container))
        throw Object.assign(new Error(`'${ref.container}' is not a container name`), { code: 'EINVAL' });
      const name = ref.container.replace(/^\//, '');
      return async (cmd, args, opts) => {
        const docker = deps.docker(ref.endpoint);
        const apiMs = deps.apiTimeoutMs(ref.endpoint);
        const what = `${cmd} in container '${name}'`;
        const marker = randomUUID();
        let exec: Docker.Exec;
        try {
          exec = await withTimeout(
            what,
            apiMs,
            docker.getContainer(name).exec({
              Cmd: [cmd, ...args],
              AttachStdout: true,
              AttachStderr: true,
              AttachStdin: false,
              Tty: false,
              Env: [...(options.env ?? []), `${markerName}=${marker}`],
            }),
          );
        } catch (err) {
          throw execFailure(err, name);
        }
        const out = new CappedText(opts.maxBytes);
        const errOut = new CappedText(opts.maxBytes);
        let stream: NodeJS.ReadWriteStream | undefined;
        let givenUp = false;
        const starting = exec.start({ hijack: true, stdin: false }) as Promise<NodeJS.ReadWriteStream>;
        const read = (async () => {
          stream = await starting;
          // Given up on before the daemon answered: nobody will read this stream, and draining it
          // would hold a socket for as long as the program runs.
          if (givenUp) return destroy(stream);
          const demux = new FrameDemuxer((which, payload) => (which === 'stderr' ? errOut : out).push(payload));
          for await (const chunk of stream as AsyncIterable<Buffer>) demux.push(chunk);
        })();
        const stop = () => {
          givenUp = true;
          destroy(stream);
        };
        opts.signal?.addEventListener('abort', stop, { once: true });
        try {
          await withTimeout(what, opts.timeoutMs, read, stop);
        } catch (err) {
          const cancelled = opts.signal?.aborted;
          if (cancelled || err instanceof TimeoutError) {
            stop();
            await killMarked(docker, name, marker, starting, apiMs);
          }
          if (cancelled) throw new Error(`${what} was cancelled`);
          if (err instanceof TimeoutError) throw err;
          throw execFailure(err, name);
        } finally {
          opts.signal?.removeEventListener('abort', stop);
        }
        const code = await exitCode(exec, what, name, apiMs);
        const result: CommandResult = {
          code,
          stdout: out.text(),
          stderr: errOut.text(),
          ...(out.cut || errOut.cut ? { truncated: true } : {}),
        };
        // The runtime answers a program it cannot start with 126/127 and its own message on stdout.
        if (
          (code === 126 || code === 127) &&
          /OCI runtime exec failed|executable file not found|no such file or directory/i.test(result.stdout + result.stderr)
        ) {
          throw Object.assign(new Error(`${cmd} cannot run in container '${name}': not found`), { code: 'ENOENT' });
        }
        return result;
      };
    },
  };
}

const markerName = 'REMEDIATION_EXEC_ID';
// The marker comes in as $1, so this script's own command line is all that holds it, not its environment.
const killScript = `for p in /proc/[0-9]*; do tr '\\0' '\\n' < "$p/environ" 2>/dev/null | grep -qxF "${markerName}=$1" && kill -KILL "\${p#/proc/}" 2>/dev/null; done; true`;

/**
 * Kills the processes of one exec (see the header). Best effort: the caller reports the timeout or
 * cancellation either way, and a container that cannot run the script is one this cannot cover.
 */
async function killMarked(docker: Docker, container: string, marker: string, starting: Promise<unknown>, apiMs: number): Promise<void> {
  // A kill that ran before the program started would find nothing, and the program would then start.
  const started = await withTimeout('start', apiMs, starting).then(
    () => true,
    () => false,
  );
  if (!started) return;
  try {
    await withTimeout(
      `kill of a timed-out command in container '${container}'`,
      apiMs,
      (async () => {
        const killer = await docker.getContainer(container).exec({
          Cmd: ['sh', '-c', killScript, 'sh', marker],
          User: '0',
          AttachStdout: true,
          AttachStderr: true,
          AttachStdin: false,
          Tty: false,
        });
        const s = (await killer.start({ hijack: true, stdin: false })) as NodeJS.ReadWriteStream;
        for await (const _ of s as AsyncIterable<Buffer>);
      })(),
    );
  } catch {
    // The engine's side may still reach it (below).
  }
  killMarkedOnThisHost(marker);
}

/**
 * Kills, from this machine, every process whose environment holds the marker: the exec's program
 * and its children when the engine runs on the daemon's host with the right to read them. The marker
 * is a random id of this exec alone, so nothing else can match; where nothing can be read (another
 * host, another user, another pid namespace), this finds nothing and does nothing.
 */
function killMarkedOnThisHost(marker: string): void {
  const wanted = Buffer.from(`${markerName}=${marker}\0`);
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d));
  } catch {
    return;
  }
  for (const pid of pids) {
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (!environ.includes(wanted)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone already, or not ours to kill.
    }
  }
}

function destroy(stream: NodeJS.ReadWriteStream | undefined): void {
  (stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
}

/** The exit code once the daemon has it; a process whose output ended a moment before it exited is waited for. */
async function exitCode(exec: Docker.Exec, what: string, container: string, apiMs: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const info = await withTimeout(what, apiMs, exec.inspect()).catch((err: unknown) => {
      throw execFailure(err, container);
    });
    if (!info.Running && typeof info.ExitCode === 'number') return info.ExitCode;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw Object.assign(new Error(`${what} closed its output but did not exit within 5 s`), { code: 'ETIMEDOUT' });
}

function execFailure(err: unknown, container: string): Error {
  if (err instanceof TimeoutError) return Object.assign(new Error(err.message), { code: 'ETIMEDOUT' });
  const e = err as { statusCode?: number; json?: { message?: string }; message?: string; code?: string };
  const says = String(e?.json?.message ?? e?.message ?? err)
    .split('\n')[0]!
    .slice(0, 300);
  if (e?.statusCode === 404) return Object.assign(new Error(`no such container '${container}'`), { code: 'ENOCONTAINER' });
  if (e?.statusCode === 409) return Object.assign(new Error(`container '${container}' is not running: ${says}`), { code: 'ENOTRUNNING' });
  return Object.assign(new Error(says), { code: e?.code ?? (e?.statusCode ? `HTTP${e.statusCode}` : undefined) });
}

/** The first maxBytes of a stream; the rest is read and dropped, so the program is never blocked on a full pipe. */
class CappedText {
  #chunks: Buffer[] = [];
  #held = 0;
  cut = false;
  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    if (this.#held >= this.maxBytes) {
      this.cut = true;
      return;
    }
    const room = this.maxBytes - this.#held;
    if (chunk.length > room) this.cut = true;
    const kept = chunk.subarray(0, room);
    this.#chunks.push(kept);
    this.#held += kept.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks)
      .toString('utf8')
      .replace(/\uFFFD+$/, '');
  }
}
