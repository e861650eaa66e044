// Ports for what tests start and for what must stay closed, picked so that no other test process,
// and no program choosing its own port, takes them in the meantime.
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A port nothing listens on, and that no one else's pick will take: leased to this test process
 * (see leasedPort), and free at the moment it is returned. Services a test starts in containers
 * bind ports from here too: a port from the kernel's own pick (bind to 0) was free only while
 * nobody wanted it, and once a killed container's port was handed to another test's server in
 * the meantime, whose answer the engine then took for the restarted service's.
 */
export async function closedPort(): Promise<number> {
  return leasedPort();
}

const leaseDir = join(tmpdir(), 'remediation-test-ports');
// Below the kernel's ephemeral range (32768 and up here), where bind(0) and outgoing connections
// take their ports, and above the stack's fixed ones (12xxx-19xxx).
const lowPort = 20_000;
const highPort = 32_000;

/**
 * A port this process alone may use for the rest of its life: a lease file named after it holds
 * this process's pid, created exclusively, so two test processes never pick the same one. A
 * lease whose process has ended is taken over.
 */
async function leasedPort(): Promise<number> {
  mkdirSync(leaseDir, { recursive: true });
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = lowPort + randomInt(highPort - lowPort);
    if (lease(port) && (await bindable(port))) return port;
  }
  throw new Error(`no free port to lease in ${lowPort}-${highPort} after 500 tries (leases in ${leaseDir})`);
}

function lease(port: number): boolean {
  const file = join(leaseDir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(readFileSync(file, 'utf8'));
    if (holder === process.pid || alive(holder)) return false;
    rmSync(file, { force: true });
  }
  return false;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise((resolve) => server.close(resolve));
  return bound;
}

/**
 * A port for a server a test starts later, held back from other programs' picks: a connection to
 * it is closed from the listening side first, which leaves the port in TIME_WAIT for a minute, and
 * the kernel hands no port in that state to anyone binding port 0 (the Temporal CLI picks its
 * internal ports that way). The server binding it on purpose still can.
 */
export async function reservedPort(): Promise<number> {
  return reserve(0);
}

/**
 * A port for the engine's embedded dev server, with the two it derives from it (metrics at +1,
 * HTTP at +10) held back as well: left to chance, the CLI's own pick for an internal service, or
 * any other program's, once took one of them and the server exited at start.
 */
export async function reservedDevServerPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await reservedPort();
    try {
      await reserve(port + 1);
      await reserve(port + 10);
      return port;
    } catch {
      // One of them is taken: try another.
    }
  }
  throw new Error('no port with +1 and +10 free after 50 tries');
}

async function reserve(wanted: number): Promise<number> {
  const server = createServer((s) => s.end());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(wanted, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve, reject) => {
    const client = connect(port, '127.0.0.1');
    client.on('error', reject);
    // The listening side ended first; closing ours now completes the handshake.
    client.on('end', () => client.end());
    client.on('close', () => resolve());
    client.resume();
  });
  await new Promise((resolve) => server.close(resolve));
  return port;
}
