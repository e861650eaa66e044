// A webhook receiver for tests: records every request (path, headers, JSON body) and answers
// 200 unless told to fail. Stands in for Slack, PagerDuty and generic webhooks, which tests
// must never reach; it listens on 127.0.0.1 with a port the OS picks.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  /** Path including the query string, e.g. "/slack". */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: unknown;
  /** The status this receiver answered with. */
  status: number;
  at: number;
}

export interface Receiver {
  /** http://127.0.0.1:<port> (no trailing slash): append a path per channel. */
  url: string;
  requests: ReceivedRequest[];
  /** Answers the next n requests to path with status (and optional body) before answering 200 again. */
  failNext(path: string, n: number, status: number, body?: string): void;
  /** Answers every request to path with status from now on (until reset). */
  alwaysAnswer(path: string, status: number, body?: string): void;
  /** Requests to one path, in arrival order. */
  requestsTo(path: string): ReceivedRequest[];
  /** Resolves once path has received count requests; rejects after timeoutMs naming what arrived. */
  waitFor(path: string, count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  reset(): void;
  close(): Promise<void>;
}

interface Rule {
  status: number;
  body?: string;
  remaining: number;
}

export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const rules = new Map<string, Rule[]>();
  const waiters = new Set<() => void>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON: keep the text.
      }
      const path = req.url ?? '/';
      const rule = (rules.get(path) ?? []).find((r) => r.remaining > 0);
      if (rule) rule.remaining--;
      const status = rule?.status ?? 200;
      requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body, status, at: Date.now() });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(rule?.body ?? (status < 300 ? 'ok' : `failing on purpose with ${status}`));
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const requestsTo = (path: string) => requests.filter((r) => r.path === path);

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(path, n, status, body) {
      rules.set(path, [...(rules.get(path) ?? []), { status, body, remaining: n }]);
    },
    alwaysAnswer(path, status, body) {
      rules.set(path, [{ status, body, remaining: Number.POSITIVE_INFINITY }]);
    },
    requestsTo,
    waitFor(path, count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const got = requestsTo(path);
          if (got.length < count) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(got);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver: expected ${count} request(s) to ${path} within ${timeoutMs} ms, got ${requestsTo(path).length}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    reset() {
      requests.length = 0;
      rules.clear();
    },
    close() {
      return new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
