import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { closedPort, reservedPort } from './net.js';

/** Sockets on 127.0.0.1:port in TIME_WAIT (state 06 in /proc/net/tcp), the state bind(0) skips. */
function timeWaits(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1] === local && fields[3] === '06';
    }).length;
}

describe('reservedPort', () => {
  it('leaves the port in TIME_WAIT, which a merely closed port is not, and it can still be bound on purpose', async () => {
    const port = await reservedPort();
    expect(timeWaits(port)).toBeGreaterThan(0);
    expect(timeWaits(await closedPort())).toBe(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise((r) => server.close(r));
  });
});
