import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closedPort, reservedPort } from './ports.js';

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

describe('closedPort', () => {
  // Each process picks at random from 12,000 ports: 400 picks each, without the leases, would
  // collide about 13 times. A lease lasts as long as its process: each stays up, holding its
  // picks, until the other has picked too.
  const picks = 400;
  const script = join(mkdtempSync(join(tmpdir(), 'ports-')), 'pick.mts');
  writeFileSync(
    script,
    `import { closedPort } from ${JSON.stringify(join(process.cwd(), 'test/support/ports.ts'))};
    const ports = [];
    for (let i = 0; i < ${picks}; i++) ports.push(await closedPort());
    process.stdout.write(JSON.stringify(ports) + '\\n');
    process.stdin.resume();`,
  );

  function picker(): { ports: Promise<number[]>; end: () => void } {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    const ports = new Promise<number[]>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.endsWith('\n')) resolve(JSON.parse(out) as number[]);
      });
      child.on('exit', (code) => reject(new Error(`picker exited ${code} before printing its ports`)));
    });
    return { ports, end: () => child.stdin.end() };
  }

  it('gives two processes picking at once no port in common, none twice, all below the kernel ephemeral range', async () => {
    const first = picker();
    const second = picker();
    try {
      const [a, b] = await Promise.all([first.ports, second.ports]);
      const ephemeralLow = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)[0]!;
      expect(new Set(a).size).toBe(picks);
      expect(new Set(b).size).toBe(picks);
      expect(a.filter((p) => b.includes(p))).toEqual([]);
      expect(Math.max(...a, ...b)).toBeLessThan(ephemeralLow);
    } finally {
      first.end();
      second.end();
    }
  });
});
