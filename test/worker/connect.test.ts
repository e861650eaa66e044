// worker/temporal.ts connect(): the worker's native connection and the client's are opened one
// after the other. When the second cannot be opened, the first is closed: a host agent retries
// connect() for as long as Temporal is away, and each failed attempt must not leave a connection
// behind. Against the stack's Temporal, through a proxy that lets exactly one connection through.
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../worker/temporal.js';
import { reservedPort } from '../support/ports.js';
import { temporalConnectOptions } from '../support/temporal.js';
import { until } from '../support/wait.js';

const { address, tls } = temporalConnectOptions('engine');
const [upstreamHost, upstreamPort] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];

const open = new Set<Socket>();
let port = 0;
let accepted = 0;
const proxy = createServer((client) => {
  accepted += 1;
  // One connection through, then nothing more is accepted: Temporal went away meanwhile.
  if (accepted === 1) proxy.close();
  const upstream = tcpConnect(upstreamPort, upstreamHost);
  open.add(client);
  client.on('close', () => {
    open.delete(client);
    upstream.destroy();
  });
  upstream.on('close', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream).pipe(client);
});

beforeAll(async () => {
  // A leased port: once the proxy stops listening, no other test's server may take it.
  port = await reservedPort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
});

afterAll(() => {
  for (const s of open) s.destroy();
  proxy.close();
});

describe('connect()', () => {
  it('closes the native connection it opened when the client connection then fails, leaving nothing open', async () => {
    const endpoint = { address: `127.0.0.1:${port}`, namespace: 'default', options: tls ? { tls } : {}, stop: async () => {} };
    await expect(connect(endpoint)).rejects.toThrow();
    expect(accepted).toBe(1);
    // The one connection that got through was the native one, and it is closed again.
    await until('the native connection to be closed', 5_000, async () => (open.size === 0 ? true : undefined));
  }, 60_000);
});
