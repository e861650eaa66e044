// Temporal's time-skipping test server (the Java SDK's `temporal-test-server`), for workflow tests of
// timings counted in minutes and hours (escalation levels, repeats, re-escalation after an
// acknowledgement): a timer of an hour fires as soon as nothing else is pending. The SDK would
// download a native build from outside the package registries; instead the jar and its dependencies
// come from Maven Central through mvn, once, into ~/.cache/remediation, and run on the JVM.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { quietRuntime } from './temporal.js';

const run = promisify(execFile);

/** The test server release; its jar's version and the Java SDK's are one. */
export const testServerVersion = '1.31.0';

const cacheDir = join(
  process.env.REMEDIATION_CACHE ?? join(homedir(), '.cache', 'remediation'),
  `temporal-test-server-${testServerVersion}`,
);

const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.remediation</groupId>
  <artifactId>temporal-test-server-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>${testServerVersion}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>2.0.16</version></dependency>
  </dependencies>
</project>
`;

async function has(command: string): Promise<boolean> {
  return run('sh', ['-c', 'command -v "$1"', 'sh', command]).then(
    () => true,
    () => false,
  );
}

/** java and mvn from Debian's packages when missing (as root, like the stack's own packages). */
async function ensureJava(): Promise<void> {
  const missing = [...((await has('java')) ? [] : ['default-jre-headless']), ...((await has('mvn')) ? [] : ['maven'])];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`the time-skipping test server needs ${missing.join(' and ')}: apt-get install ${missing.join(' ')}`);
  await run('apt-get', ['update', '-qq'], { timeout: 300_000 });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    timeout: 900_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** The jars in a folder of their own, built aside and renamed into place: two test processes installing at once never see half a folder. */
async function testServerJars(): Promise<string> {
  const lib = join(cacheDir, 'lib');
  if (existsSync(lib)) return lib;
  await ensureJava();
  const staging = `${cacheDir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, 'pom.xml'), pom);
  await run(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      join(staging, 'pom.xml'),
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${join(staging, 'lib')}`,
    ],
    {
      timeout: 600_000,
    },
  );
  if (!readdirSync(join(staging, 'lib')).some((f) => f.startsWith(`temporal-test-server-${testServerVersion}`)))
    throw new Error('mvn did not fetch temporal-test-server');
  try {
    renameSync(staging, cacheDir);
  } catch (err) {
    // Another process won the race: its copy is as good.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(lib)) throw err;
  }
  return lib;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface TimeSkipping {
  env: TestWorkflowEnvironment;
  /** Closes the connections and stops the server this call started (and only it). */
  close(): Promise<void>;
}

/**
 * A fresh time-skipping server (its own JVM and port) with a client and a connection for workers.
 * The JVM is started here rather than by the SDK, which gives a server 5 s to listen: a JVM on two
 * busy cores can take longer. It dies with this process (pdeathsig) if nothing stops it first.
 */
export async function timeSkippingEnvironment(): Promise<TimeSkipping> {
  quietRuntime();
  const lib = await testServerJars();
  const port = await freePort();
  const java = [
    'java',
    '-Xmx256m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-cp',
    `${lib}/*`,
    'io.temporal.testserver.TestServer',
    String(port),
  ];
  const [command, ...args] = (await has('setpriv')) ? ['setpriv', '--pdeathsig', 'KILL', ...java] : java;
  const server = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-2_000)));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const stop = async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    server.kill('SIGTERM');
    const killer = setTimeout(() => server.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + 60_000;
  while (!(await accepts(port))) {
    if (server.exitCode !== null)
      throw new Error(`the time-skipping test server exited with ${server.exitCode}: ${stderr.trim() || 'no output'}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the time-skipping test server did not listen on 127.0.0.1:${port} within 60 s: ${stderr.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // The SDK's own constructor for a server it did not start, with its time-skipping client: the
  // public createFromExistingServer assumes a server that cannot skip time.
  const create = (TestWorkflowEnvironment as unknown as { create(opts: unknown): Promise<TestWorkflowEnvironment> }).create.bind(
    TestWorkflowEnvironment,
  );
  let env: TestWorkflowEnvironment;
  try {
    env = await create({ server: { type: 'existing' }, address: `127.0.0.1:${port}`, namespace: 'default', supportsTimeSkipping: true });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    env,
    async close() {
      await env.teardown();
      await stop();
    },
  };
}
