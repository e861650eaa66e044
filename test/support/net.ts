// Network stand-ins for failure cases: a server that never answers, and the classified failure an
// activity threw.
import { createServer, type Socket } from 'node:net';
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
