// Health URLs may carry credentials ("http://user:password@host/health") and tokens in their query.
// What a check reports goes into the incident's timeline, its pages, the log and Temporal's history:
// there, a URL is its scheme, host and path only.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpActivities } from '../../activities/http.js';
import { createTargetActivities } from '../../activities/targets.js';
import { parseConfig } from '../../config/load.js';

const password = 'pw-S3CRET-health';
const token = 'tok-S3CRET-query';
let server: Server;
let base: string;
const seen: Array<{ url: string; authorization?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    if (req.url?.startsWith('/health/detailed')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ status: 'DOWN', checks: [{ name: 'db', status: 'DOWN', output: 'refused' }] }));
    }
    res.writeHead(503).end('unavailable');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

function activities() {
  const config = parseConfig({
    webhook: { listen: '127.0.0.1:0', token: 'tok-health-urls-0123' },
    targets: {
      shop: {
        kind: 'http',
        health: {
          url: `http://admin:${password}@${base}/health?token=${token}`,
          detailedUrl: `http://admin:${password}@${base}/health/detailed?token=${token}#${token}`,
          timeout: '2s',
        },
      },
    },
    channels: { log: { type: 'log' } },
    escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
  });
  const none = {} as never;
  return createTargetActivities({
    config,
    logger: pino({ level: 'silent' }),
    docker: none,
    http: createHttpActivities({ outputBytes: 4_096 }),
    postgres: none,
    mysql: none,
    redis: none,
  });
}

describe('health URLs in what checks report', () => {
  it('diagnostics name the health endpoints without their credentials or query', async () => {
    const d = await activities().diagnoseTarget('shop');
    const titles = d.sections.map((s) => s.title);
    expect(titles).toEqual([`health http://${base}/health`, `detailed health http://${base}/health/detailed`]);
    const everything = JSON.stringify(d);
    expect(everything).not.toContain('S3CRET');
    expect(everything).not.toContain('admin');
    expect(d.summary).toContain(`detailed health http://${base}/health/detailed: FAIL db: DOWN: refused`);
    // The checks did run with them: the credentials as a header, the query as sent.
    expect(
      seen.some(
        (r) => r.url === `/health?token=${token}` && r.authorization === `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`,
      ),
    ).toBe(true);
  });

  it('a failed verification says why without the URL', async () => {
    const v = await activities().verifyTarget('shop');
    expect(v.healthy).toBe(false);
    expect(JSON.stringify(v)).not.toContain('S3CRET');
  });
});
