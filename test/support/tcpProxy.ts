// A TCP relay between a process and a server, which a test can cut: every connection through it
// is dropped and new ones are refused, as when a network path to the server goes away, without
// touching the server (the stack's Temporal is shared by every test running).
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** host:port to connect to instead of the server. */
  address: string;
  /** Drops every relayed connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstream: string): Promise<TcpProxy> {
  const split = upstream.lastIndexOf(':');
  const host = upstream.slice(0, split).replace(/^\[|\]$/g, '');
  const port = Number(upstream.slice(split + 1));
  const sockets = new Set<Socket>();
  let cut = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (cut) return client.destroy();
    const server = connect(port, host);
    track(server);
    client.pipe(server);
    server.pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dropAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    cut() {
      cut = true;
      dropAll();
    },
    restore() {
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}
