// Network stand-ins for failure cases: a port nobody listens on, a server that never answers,
// and the classified failure an activity threw.
import { connect, createServer, type Socket } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { expect } from 'vitest';

export async function failureOf(work: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await work;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected the call to fail');
}

/** A port nothing listens on: bound a moment ago, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
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

/** A server that accepts connections and never says a word: a hung process. */
export async function silentServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    /** Connections accepted so far. */
    connections: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
