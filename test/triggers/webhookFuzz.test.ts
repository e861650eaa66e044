// The webhook faces whatever can reach its port. Thousands of malformed, unauthorised and
// ill-shaped requests, written byte by byte onto raw sockets, must each get a 4xx (or, for bytes
// that are not HTTP at all, a closed connection) — never a 2xx, never a 5xx, never a hang — and
// none may start a runbook. Every case starts from a request that *would* start one, so a defect
// the server fails to notice shows up as a workflow on the queue.
//
// Cases come from a seeded generator: a failure prints the seed, and WEBHOOK_FUZZ_SEED=<seed>
// replays exactly the same requests.
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { createWebhookServer, type WebhookServer } from '../../triggers/alerts/alertmanager.js';
import { webhookPayload } from '../../triggers/alerts/alertmanagerPayload.js';
import { createMetrics, type EngineMetrics } from '../../triggers/metrics/metrics.js';
import { incidentWorkflowId } from '../../workflows/messages.js';
import { stack } from '../support/stack.js';
import { temporalClient, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { until } from '../support/wait.js';
import { triggerConfig, type TriggerFixture } from './support/config.js';

const seed = Number(process.env.WEBHOOK_FUZZ_SEED ?? randomInt(2 ** 31));

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function prng(s: number) {
  let a = s >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const text = (n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_.~') =>
    Array.from({ length: n }, () => pick([...alphabet])).join('');
  return { next, int, pick, bytes, text, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

// ---- the wire ---------------------------------------------------------------------------------

interface WireRequest {
  method?: string;
  target?: string;
  version?: string;
  /** In order, exactly as sent; Host and Connection: close are added unless `bareHeaders`. */
  headers?: Array<[string, string | Buffer]>;
  bareHeaders?: boolean;
  body?: Buffer;
  chunked?: boolean;
  /** The Content-Length header's value: the body's length when undefined, none when null. */
  contentLength?: string | null;
  /** Send only this many bytes of the body, whatever was declared. */
  sendBodyBytes?: number;
}

function wire(r: WireRequest): Buffer {
  const lines: Buffer[] = [Buffer.from(`${r.method ?? 'POST'} ${r.target ?? '/alertmanager'} ${r.version ?? 'HTTP/1.1'}\r\n`, 'latin1')];
  const headers: Array<[string, string | Buffer]> = [
    ...(r.bareHeaders
      ? []
      : ([
          ['Host', '127.0.0.1'],
          ['Connection', 'close'],
        ] as Array<[string, string]>)),
    ...(r.headers ?? []),
  ];
  const body = r.body ?? Buffer.alloc(0);
  if (r.chunked) headers.push(['Transfer-Encoding', 'chunked']);
  else if (r.contentLength !== null) headers.push(['Content-Length', r.contentLength ?? String(body.length)]);
  for (const [k, v] of headers)
    lines.push(Buffer.concat([Buffer.from(`${k}: `, 'latin1'), Buffer.isBuffer(v) ? v : Buffer.from(v, 'latin1'), Buffer.from('\r\n')]));
  lines.push(Buffer.from('\r\n'));
  let payload = body.subarray(0, r.sendBodyBytes ?? body.length);
  if (r.chunked) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < payload.length; i += 8_192) {
      const c = payload.subarray(i, i + 8_192);
      chunks.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
    }
    payload = Buffer.concat([...chunks, Buffer.from('0\r\n\r\n')]);
  }
  return Buffer.concat([...lines, payload]);
}

interface Exchange {
  statuses: number[];
  /** The server closed the connection (as opposed to us giving up). */
  closedByServer: boolean;
  ms: number;
}

/** One connection: write the bytes, read until the server closes or `waitMs` runs out. */
function exchange(port: number, bytes: Buffer, waitMs: number): Promise<Exchange> {
  const began = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(received).toString('latin1');
      const statuses = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
      resolve({ statuses, closedByServer, ms: Date.now() - began });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d) => received.push(d));
    // A server that answers early and drops the connection makes our write fail: what it said counts.
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => socket.write(bytes, () => {}));
  });
}

// ---- the cases ----------------------------------------------------------------------------------

interface Expectation {
  /** The final status must be one of these. */
  codes: readonly number[];
  /** Bytes that are not HTTP may be dropped without an answer. */
  silentCloseOk?: boolean;
  /** A request the server is right to keep waiting on (declared body not sent): we hang up. */
  waitsForMore?: boolean;
}

interface FuzzCase {
  kind: string;
  note: string;
  bytes: Buffer;
  expect: Expectation;
}

const any4xx = [400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 417, 431];

function caseGenerator(rng: Rng, fx: TriggerFixture, maxBody: number) {
  const auth = (): [string, string] => ['Authorization', `Bearer ${fx.token}`];
  const json = (): [string, string] => ['Content-Type', 'application/json'];
  /** A payload that starts a serviceDown run on fx.api if it ever gets through. */
  const payload = (): Record<string, any> => ({
    version: '4',
    groupKey: `{}:{alertname="ServiceDown"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'remediation',
    groupLabels: { alertname: 'ServiceDown' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:19093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'ServiceDown', service: fx.api, severity: 'critical' },
        annotations: { summary: 'api is down' },
        startsAt: '2025-01-05T02:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://127.0.0.1:19090/graph',
        fingerprint: `fp-${rng.text(12)}`,
      },
    ],
  });
  const valid = () => Buffer.from(JSON.stringify(payload()));
  /** Would the server's own parser accept this body? Such a body is made defective on purpose. */
  const acceptable = (body: Buffer) => {
    try {
      return webhookPayload.safeParse(JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body))).success;
    } catch {
      return false;
    }
  };
  const defective = (body: Buffer) => (acceptable(body) ? body.subarray(0, body.length - 1) : body);
  const post = (body: Buffer, extra: Partial<WireRequest> = {}) => wire({ headers: [auth(), json()], body, ...extra });
  const sized = (body: Buffer): Expectation => ({ codes: body.length > maxBody ? [413] : [400] });

  const wrongCredential = () =>
    rng.pick([
      () => `Bearer ${rng.text(1 + rng.int(60))}`,
      () => `Bearer ${fx.token}${rng.pick(['x', '0', ' x', ` ${fx.token}`])}`,
      () => `Bearer ${fx.token.slice(0, -1 - rng.int(5))}`,
      () => `Bearer ${fx.token.slice(1)}`,
      () => `Bearer ${fx.token.toUpperCase()}`,
      () => `Bearer ${Buffer.from(fx.token).toString('base64')}`,
      () => `${rng.pick(['Basic', 'Token', 'Digest', 'Bearer:', 'Bearerx', ''])} ${fx.token}`,
      () => `Basic ${Buffer.from(`alertmanager:${fx.token}`).toString('base64')}`,
      () => rng.pick(['', 'Bearer', 'Bearer ', 'bearer', 'null', 'undefined', '*']),
      () => `Bearer ${'x'.repeat(1 + rng.int(8_000))}`,
      () => `Bearer a, Bearer ${fx.token}`,
    ])();

  const kinds: Array<[weight: number, kind: string, make: () => FuzzCase]> = [
    [
      5,
      'auth-missing',
      () => {
        const header = rng.pick(['', 'Authorisation', 'X-Authorization', 'Proxy-Authorization', 'Auth', 'Token']);
        const headers: Array<[string, string]> = header ? [[header, `Bearer ${fx.token}`], json()] : [json()];
        return { kind: 'auth-missing', note: header || 'no header', bytes: wire({ headers, body: valid() }), expect: { codes: [401] } };
      },
    ],
    [
      10,
      'auth-wrong',
      () => {
        const value = wrongCredential();
        const name = rng.pick(['Authorization', 'authorization', 'AUTHORIZATION']);
        return {
          kind: 'auth-wrong',
          note: `${name}: ${value.slice(0, 60)}`,
          bytes: wire({ headers: [[name, value], json()], body: valid() }),
          expect: { codes: [401] },
        };
      },
    ],
    [
      2,
      'auth-latin1',
      () => {
        const value = Buffer.concat([Buffer.from('Bearer '), rng.bytes(1 + rng.int(40)).map((b) => (b < 0x80 ? b | 0x80 : b))]);
        return {
          kind: 'auth-latin1',
          note: value.toString('hex'),
          bytes: wire({ headers: [['Authorization', value], json()], body: valid() }),
          expect: { codes: [401] },
        };
      },
    ],
    [
      6,
      'auth-duplicated',
      () => {
        // The valid token may come first: a request with two credentials is ambiguous, whichever wins.
        const values = [auth()[1], ...Array.from({ length: 1 + rng.int(2) }, wrongCredential)];
        for (let i = values.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [values[i], values[j]] = [values[j]!, values[i]!];
        }
        const headers: Array<[string, string]> = [...values.map((v): [string, string] => ['Authorization', v]), json()];
        return {
          kind: 'auth-duplicated',
          note: values.map((v) => (v === auth()[1] ? 'VALID' : v.slice(0, 30))).join(' | '),
          bytes: wire({ headers, body: valid() }),
          expect: { codes: [400, 401] },
        };
      },
    ],
    [
      8,
      'content-type',
      () => {
        const ct = rng.pick([
          null,
          '',
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/jsonx',
          'application/json-seq',
          'application/problem+json',
          'text/json',
          'json',
          ';application/json',
          'application/xml',
          '*/*',
          'application/ json',
          'application/octet-stream',
          rng.text(1 + rng.int(30)),
        ]);
        const headers: Array<[string, string]> = ct === null ? [auth()] : [auth(), ['Content-Type', ct]];
        if (ct !== null && rng.chance(0.3)) headers.push(['Content-Type', 'application/json']);
        return { kind: 'content-type', note: String(ct), bytes: wire({ headers, body: valid() }), expect: { codes: [400] } };
      },
    ],
    [
      4,
      'random-bytes',
      () => {
        const body = defective(rng.bytes(rng.int(rng.chance(0.1) ? 3 * maxBody : 2_000)));
        return { kind: 'random-bytes', note: `${body.length} bytes`, bytes: post(body), expect: sized(body) };
      },
    ],
    [
      5,
      'truncated-json',
      () => {
        const full = valid();
        const body = full.subarray(0, rng.int(full.length));
        return { kind: 'truncated-json', note: body.toString().slice(-40), bytes: post(body), expect: { codes: [400] } };
      },
    ],
    [
      6,
      'garbled-json',
      () => {
        const body = Buffer.from(valid());
        for (let n = 1 + rng.int(8); n > 0; n--)
          body[rng.int(body.length)] = rng.pick([0x7b, 0x7d, 0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x00, 0x5c, rng.int(256)]);
        const sent = defective(body);
        return { kind: 'garbled-json', note: sent.toString('latin1').slice(0, 60), bytes: post(sent), expect: { codes: [400] } };
      },
    ],
    [
      5,
      'not-utf8',
      () => {
        // Invalid UTF-8 inside a string value: lenient decoding would turn it into U+FFFD and accept.
        const text = JSON.stringify(payload());
        const at = text.indexOf('api is down') + 4;
        const bad = rng.pick([[0xff], [0xc0, 0x80], [0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe9]]);
        const body = rng.chance(0.2)
          ? Buffer.from(`\ufeff${text}`, 'utf16le')
          : Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))]);
        return { kind: 'not-utf8', note: Buffer.from(bad).toString('hex'), bytes: post(body), expect: { codes: [400] } };
      },
    ],
    [
      4,
      'not-quite-json',
      () => {
        const text = JSON.stringify(payload());
        const body = Buffer.from(
          rng.pick([
            `\ufeff${text}`,
            `${text}x`,
            `${text}${text}`,
            text.replace(/"/g, "'"),
            text.replace('"version":"4"', '"version":"4",'.repeat(1) + '/* c */'),
            text.replace(/}$/, ',}'),
            text.replace('0,', 'NaN,'),
            `(${text})`,
            text.replace('"status":"firing"', 'status:"firing"'),
          ]),
        );
        return { kind: 'not-quite-json', note: body.toString().slice(0, 50), bytes: post(defective(body)), expect: { codes: [400] } };
      },
    ],
    [
      10,
      'wrong-shape',
      () => {
        const p = payload();
        const a = p.alerts[0];
        const [note, mutate] = rng.pick<[string, () => unknown]>([
          ['primitive', () => rng.pick([null, true, false, 0, -1, 1e308, '4', 'firing', [], [p], {}])],
          ['version', () => ((p.version = rng.pick(['3', '5', 4, '4 ', '', null, '04', 'four', ['4'], { v: '4' }])), p)],
          ['no version', () => (delete p.version, p)],
          [
            'missing key',
            () => (
              delete p[
                rng.pick(['groupKey', 'status', 'receiver', 'groupLabels', 'commonLabels', 'commonAnnotations', 'externalURL', 'alerts'])
              ],
              p
            ),
          ],
          [
            'wrong type',
            () => (
              (p[rng.pick(['groupKey', 'status', 'receiver', 'groupLabels', 'externalURL', 'alerts', 'truncatedAlerts'])] = rng.pick([
                1,
                -1,
                1.5,
                null,
                [],
                'x',
                { a: 1 },
                true,
              ])),
              p
            ),
          ],
          // The only alert (a junk one beside a good one is a partial batch: the good one is taken, webhookBounds.test.ts).
          ['alert', () => ((p.alerts[0] = rng.pick([null, [], 'alert', 1, {}])), p)],
          [
            'alert field',
            () => (
              (a[rng.pick(['status', 'labels', 'annotations', 'startsAt', 'endsAt', 'fingerprint', 'generatorURL'])] = rng.pick([
                1,
                null,
                [],
                'pending',
                { x: 1 },
                true,
                '',
              ])),
              p
            ),
          ],
          ['alert missing', () => (delete a[rng.pick(['status', 'labels', 'annotations', 'startsAt', 'endsAt', 'fingerprint'])], p)],
          [
            'label value',
            () => ((a.labels[rng.pick(['service', 'alertname', 'severity', 'x'])] = rng.pick([1, null, [], {}, true, ['api']])), p),
          ],
          [
            'proto keys',
            () => {
              const q: Record<string, unknown> = JSON.parse(
                `{"__proto__": ${JSON.stringify({ alerts: p.alerts, version: '4' })}, "constructor": {"prototype": {"x": 1}}}`,
              );
              return rng.chance(0.5)
                ? q
                : { ...p, alerts: [{ ...a, labels: JSON.parse(`{"__proto__": {"alertname": "ServiceDown", "service": "${fx.api}"}}`) }] };
            },
          ],
          ['random tree', () => randomJson(rng, 6)],
        ]);
        const body = defective(Buffer.from(JSON.stringify(mutate())));
        return { kind: 'wrong-shape', note, bytes: post(body), expect: { codes: [400] } };
      },
    ],
    [
      3,
      'huge-labels',
      () => {
        const p = payload();
        const n = rng.pick([100, 1_000, 2_000, 10_000]);
        for (let i = 0; i < n; i++) p.alerts[0].labels[`l${i}_${rng.text(4)}`] = rng.text(rng.int(20));
        const keys = Object.keys(p.alerts[0].labels);
        p.alerts[0].labels[rng.pick(keys)] = rng.pick([1, null, {}]); // the defect, somewhere in the middle
        const body = Buffer.from(JSON.stringify(p));
        return { kind: 'huge-labels', note: `${n} labels, ${body.length} bytes`, bytes: post(body), expect: sized(body) };
      },
    ],
    [
      3,
      'deep-nesting',
      () => {
        const depth = rng.pick([100, 1_000, 10_000, 30_000, 200_000]);
        const [open, close] = rng.pick([
          ['[', ']'],
          ['{"a":', '}'],
        ]);
        const nested = `${open.repeat(depth)}1${close.repeat(depth)}`;
        const text = rng.chance(0.5) ? nested : JSON.stringify(payload()).replace('"api is down"', nested);
        const body = Buffer.from(rng.chance(0.2) ? text.slice(0, -1) : text);
        return { kind: 'deep-nesting', note: `depth ${depth}, ${body.length} bytes`, bytes: post(body), expect: sized(body) };
      },
    ],
    [
      4,
      'oversized',
      () => {
        const p = payload();
        p.alerts[0].annotations.description = 'x'.repeat(maxBody + rng.int(2 * maxBody));
        const body = Buffer.from(JSON.stringify(p));
        const how = rng.pick(['declared', 'chunked', 'declared-short']);
        // A declared length over the limit is refused on the headers alone: most of the body need not follow.
        const bytes =
          how === 'chunked' ? post(body, { chunked: true }) : post(body, how === 'declared-short' ? { sendBodyBytes: rng.int(4_096) } : {});
        return { kind: 'oversized', note: `${how} ${body.length} bytes`, bytes, expect: { codes: [413] } };
      },
    ],
    [
      4,
      'content-length',
      () => {
        const body = valid();
        const [note, extra, expect] = rng.pick<[string, Partial<WireRequest>, Expectation]>([
          [
            'absurd',
            {
              contentLength: rng.pick([
                '-1',
                'abc',
                '1e3',
                '0x10',
                '',
                ' ',
                '5 5',
                '+5',
                '1.5',
                '99999999999999999999999',
                '18446744073709551616',
                `${body.length},${body.length}`,
              ]),
            },
            { codes: [400, 413] },
          ],
          [
            'huge',
            { contentLength: rng.pick(['1099511627776', '9007199254740993', String(maxBody + 1)]), sendBodyBytes: body.length },
            { codes: [413] },
          ],
          ['short', { contentLength: String(rng.int(body.length)) }, { codes: [400] }],
          ['missing', { contentLength: null }, { codes: [400, 411] }],
          ['duplicated', { headers: [auth(), json(), ['Content-Length', String(body.length + 1)]] }, { codes: [400] }],
          ['with chunked', { headers: [auth(), json(), ['Transfer-Encoding', 'chunked']] }, { codes: [400] }],
          [
            'more than sent',
            { contentLength: String(body.length + 1 + rng.int(maxBody - body.length - 1)) },
            { codes: [400], waitsForMore: true },
          ],
        ]);
        return { kind: 'content-length', note, bytes: post(body, extra), expect };
      },
    ],
    [
      3,
      'transfer-encoding',
      () => {
        const body = valid();
        const te = rng.pick(['gzip', 'chunked, gzip', 'identity', 'chunked;x', 'xchunked', 'CHUNKED ', 'chunked\t,chunked']);
        const bad = rng.chance(0.5);
        const bytes = bad
          ? wire({ headers: [auth(), json(), ['Transfer-Encoding', te]], body, contentLength: null })
          : Buffer.concat([
              wire({ headers: [auth(), json()], chunked: true }).subarray(0, -5),
              Buffer.from(
                rng.pick(['zz\r\n{}\r\n0\r\n\r\n', `${'f'.repeat(20)}\r\n`, '-1\r\n\r\n', '2\r\n{}0\r\n\r\n', '0x2\r\n{}\r\n0\r\n\r\n']),
              ),
            ]);
        return { kind: 'transfer-encoding', note: bad ? te : 'bad chunk', bytes, expect: { codes: [400, 413], waitsForMore: true } };
      },
    ],
    [
      8,
      'method',
      () => {
        const method = rng.pick([
          'GET',
          'PUT',
          'DELETE',
          'PATCH',
          'HEAD',
          'OPTIONS',
          'TRACE',
          'PROPFIND',
          'LINK',
          'PURGE',
          'SEARCH',
          'MKCOL',
          'post',
          'P0ST',
          'FOO',
          'GETT',
          '',
        ]);
        const target = rng.pick([
          '/',
          '/alertmanager',
          '/alertmanager?x=1',
          '/?a=b',
          'http://127.0.0.1/alertmanager',
          '//127.0.0.1/alertmanager',
        ]);
        return {
          kind: 'method',
          note: `${method} ${target}`,
          bytes: wire({ method, target, headers: [auth(), json()], body: valid() }),
          expect: { codes: [400, 405] },
        };
      },
    ],
    [
      10,
      'path',
      () => {
        const target = rng.pick([
          () => `/${rng.text(rng.int(40))}`,
          () =>
            rng.pick([
              '/alertmanager/',
              '/Alertmanager',
              '/ALERTMANAGER',
              '/alertmanager%00',
              '/alertmanager/..',
              '/..%2falertmanager',
              '/%',
              '/%zz',
              '/metrics/',
              '/healthz/x',
              '/readyz.json',
              '/api/v2/alerts',
            ]),
          () =>
            rng.pick([
              '*',
              '//',
              '///',
              '\\',
              '\\\\x',
              'http://[',
              'http://[::1/alertmanager',
              '//[::1',
              'http://',
              'alertmanager',
              '?',
              '#',
              '/#x',
              'http:alertmanager',
            ]),
          () => `/${'a'.repeat(rng.pick([1_000, 8_000, 20_000]))}`,
          () => `/${[...rng.bytes(1 + rng.int(20))].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`,
          () => `/${rng.bytes(1 + rng.int(10)).toString('latin1')}`,
        ])();
        const method = rng.pick(['POST', 'GET', 'PUT']);
        const resolved = (() => {
          try {
            return new URL(target, 'http://localhost').pathname;
          } catch {
            return undefined;
          }
        })();
        // The probes answer 200 to GET and the webhook takes POST: this case is about every other path.
        const live = resolved !== undefined && ['/healthz', '/readyz', '/metrics', '/', '/alertmanager'].includes(resolved);
        const m = live ? (method === 'GET' ? 'DELETE' : 'GET') : method;
        const wireable = /^[\x21-\x7e]*$/.test(target);
        const codes = live ? [400, 405] : [400, 404, 414, 431];
        return {
          kind: 'path',
          note: `${m} ${JSON.stringify(target.slice(0, 60))}`,
          bytes: wire({ method: m, target, headers: [auth(), json()], body: live && m === 'GET' ? Buffer.alloc(0) : valid() }),
          expect: { codes, silentCloseOk: !wireable },
        };
      },
    ],
    [
      2,
      'expect',
      () => {
        const value = rng.pick(['100-continue', 'foo', '200-ok', '']);
        const authorised = rng.chance(0.5);
        const body = authorised ? defective(rng.bytes(rng.int(100))) : valid();
        const headers: Array<[string, string]> = [authorised ? auth() : ['Authorization', 'Bearer nope'], json(), ['Expect', value]];
        const codes = value === '100-continue' ? [400, 401] : [400, 401, 417];
        return { kind: 'expect', note: value, bytes: wire({ headers, body }), expect: { codes } };
      },
    ],
    [
      10,
      'raw',
      () => {
        const good = (): FuzzCase['expect'] => ({ codes: any4xx, silentCloseOk: true });
        const [note, bytes, expect] = rng.pick<[string, Buffer, Expectation]>([
          ['random bytes', rng.bytes(1 + rng.int(3_000)), { ...good(), waitsForMore: true }],
          ['random text', Buffer.from(rng.text(1 + rng.int(500), 'GETPOSThttp/1. \r\n:abc')), { ...good(), waitsForMore: true }],
          ['http/0.9', Buffer.from('GET /alertmanager\r\n\r\n'), good()],
          ['http/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), good()],
          // Node's parser takes "HTTP/0.9" and "HTTP/2.0" request lines as HTTP/1: the token must still count.
          [
            'version',
            wire({
              version: rng.pick(['HTTP/9.9', 'HTTP/1.1 ', 'http/1.1', 'HTTP/1', 'HTTP/1.1x', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/3']),
              headers: [['Authorization', 'Bearer no'], json()],
              body: valid(),
            }),
            good(),
          ],
          [
            'header without colon',
            Buffer.concat([Buffer.from('POST /alertmanager HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization Bearer x\r\n\r\n')]),
            good(),
          ],
          [
            'space before colon',
            Buffer.from(`POST /alertmanager HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization : Bearer ${fx.token}\r\n\r\n`),
            good(),
          ],
          [
            'nul in header',
            wire({ headers: [['Authorization', Buffer.from(`Bearer ${fx.token}\u0000x`)], json()], body: valid() }),
            good(),
          ],
          ['bare cr', Buffer.from(`POST /alertmanager HTTP/1.1\rHost: x\r\nConnection: close\r\n\r\n`), good()],
          ['bare lf', Buffer.from(`POST /nowhere HTTP/1.1\nHost: x\nConnection: close\nContent-Length: 0\n\n`), good()],
          [
            'obs-fold',
            Buffer.from(
              `POST /alertmanager HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer\r\n ${fx.token}\r\nContent-Length: 0\r\n\r\n`,
            ),
            good(),
          ],
          ['header too large', wire({ headers: [auth(), json(), ['X-Pad', 'p'.repeat(20_000 + rng.int(50_000))]], body: valid() }), good()],
          [
            'many headers',
            wire({ headers: [...Array.from({ length: 3_000 }, (_, i): [string, string] => [`X-H${i}`, 'v']), json()], body: valid() }),
            good(),
          ],
          [
            'no host',
            wire({ bareHeaders: true, headers: [['Connection', 'close'], auth(), json()], body: valid() }),
            { codes: [400], silentCloseOk: false },
          ],
          ['connect', Buffer.from('CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n'), good()],
          [
            'upgrade',
            wire({
              method: 'GET',
              target: '/nowhere',
              headers: [
                ['Upgrade', rng.pick(['websocket', 'h2c'])],
                ['Connection', 'Upgrade'],
              ],
            }),
            good(),
          ],
          [
            'incomplete headers',
            Buffer.from(`POST /alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${fx.token}\r\n`),
            { ...good(), waitsForMore: true },
          ],
          [
            'pipelined',
            Buffer.concat([
              wire({ bareHeaders: true, headers: [['Host', 'x'], auth(), json()], body: defective(rng.bytes(50)) }),
              wire({ headers: [['Authorization', 'Bearer no'], json()], body: valid() }),
            ]),
            { codes: [400, 401] },
          ],
          ['control chars in target', Buffer.from(`POST /alert\u0001manager HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), good()],
          ['nothing', Buffer.alloc(0), { ...good(), waitsForMore: true }],
        ]);
        return { kind: 'raw', note, bytes, expect };
      },
    ],
    [
      5,
      'chaos',
      () => {
        // Several defects at once, in random order of what the server checks first.
        const headers: Array<[string, string]> = [];
        if (rng.chance(0.5)) headers.push(['Authorization', wrongCredential()]);
        if (rng.chance(0.5)) headers.push(rng.chance(0.5) ? json() : ['Content-Type', rng.text(8)]);
        if (rng.chance(0.3)) headers.push(auth(), auth());
        const body = defective(rng.chance(0.5) ? rng.bytes(rng.int(500)) : Buffer.from(JSON.stringify(randomJson(rng, 4))));
        const target = rng.pick(['/alertmanager', '/', '/nope', `/${rng.text(5)}`]);
        const method = rng.pick(['POST', 'POST', 'PUT', 'GET', 'DELETE']);
        const live = ['/alertmanager', '/'].includes(target);
        return {
          kind: 'chaos',
          note: `${method} ${target} ${headers.map((h) => h[0]).join(',')}`,
          bytes: wire({ method, target, headers, body }),
          expect: { codes: live ? any4xx : [404] },
        };
      },
    ],
  ];
  const total = kinds.reduce((n, k) => n + k[0], 0);
  return {
    next(): FuzzCase {
      let r = rng.int(total);
      for (const [w, , make] of kinds) {
        if (r < w) return make();
        r -= w;
      }
      throw new Error('unreachable');
    },
    /** The request every case is a defective copy of: authorised, well-formed, matching a binding. */
    control: () => post(valid()),
  };
}

function randomJson(rng: Rng, depth: number): unknown {
  const leaf = () =>
    rng.pick<() => unknown>([
      () => null,
      () => rng.chance(0.5),
      () => rng.int(1e6) - 5e5,
      () => rng.next() * 1e300,
      () => rng.text(rng.int(12)),
      () => '4',
    ])();
  if (depth <= 0 || rng.chance(0.3)) return leaf();
  if (rng.chance(0.5)) return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth - 1));
  const keys = ['version', 'alerts', 'labels', 'status', 'fingerprint', 'alertname', '__proto__', 'constructor', rng.text(6)];
  return Object.fromEntries(Array.from({ length: rng.int(6) }, () => [rng.pick(keys), randomJson(rng, depth - 1)]));
}

/** Is this exchange what the case allows? Returns why not, or undefined. */
function judge(c: FuzzCase, x: Exchange): string | undefined {
  const bad = x.statuses.filter((s) => s !== 100 && (s < 400 || s >= 500));
  if (bad.length) return `answered ${bad.join(', ')}`;
  const final = x.statuses.filter((s) => s !== 100).at(-1);
  if (final === undefined) {
    if (!x.closedByServer && !c.expect.waitsForMore) return `no answer within ${x.ms} ms (hung)`;
    if (x.closedByServer && !c.expect.silentCloseOk && !c.expect.waitsForMore) return 'closed without an answer';
    return undefined;
  }
  if (!c.expect.codes.includes(final)) return `answered ${final}, expected one of ${c.expect.codes.join('/')}`;
  return undefined;
}

async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

// ---- the test ------------------------------------------------------------------------------------

const caseCount = 3_600;
let fx: TriggerFixture;
let taskQueue: string;
let client: Client;
let connection: Connection;
let server: WebhookServer;
let metrics: EngineMetrics;
let port: number;
const logLines: string[] = [];

async function metricSamples(name: string): Promise<Array<{ labels: string; value: number }>> {
  const text = await metrics.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => ({ labels: l.slice(name.length, l.lastIndexOf(' ')), value: Number(l.split(' ').at(-1)) }));
}

async function workflowsOnQueue(): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) ids.push(wf.workflowId);
  return ids;
}

beforeAll(async () => {
  console.log(`webhook fuzz seed ${seed} (replay: WEBHOOK_FUZZ_SEED=${seed} npx vitest run test/triggers/webhookFuzz.test.ts)`);
  taskQueue = uniqueQueue('fuzz-webhook');
  fx = triggerConfig({ taskQueue, temporalAddress: stack().temporalAddress });
  ({ client, connection } = await temporalClient());
  metrics = createMetrics({ processMetrics: false });
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(line) });
  // No worker polls the queue: a run started by mistake stays visible there, never does anything.
  server = createWebhookServer({ config: fx.config, client, taskQueue, metrics, logger, ready: async () => true });
  ({ port } = await server.listen());
});

afterAll(async () => {
  await server?.close();
  await terminateRunning(client, taskQueue, 'webhook fuzz cleanup');
  await connection?.close();
});

describe(`webhook robustness (seed ${seed})`, () => {
  it(`answers ${caseCount} random and malformed requests with 4xx, stays up, and starts no runbook`, async () => {
    const gen = caseGenerator(prng(seed), fx, fx.config.webhook.maxBodyBytes);
    const cases = Array.from({ length: caseCount }, () => gen.next());
    const failures: string[] = [];
    const seenCodes = new Map<string, number>();
    const began = Date.now();
    await pool(cases, 16, async (c, i) => {
      const x = await exchange(port, c.bytes, c.expect.waitsForMore ? 400 : 15_000);
      const final = x.statuses.filter((s) => s !== 100).at(-1);
      const key = `${c.kind}:${final ?? (x.closedByServer ? 'closed' : 'waited')}`;
      seenCodes.set(key, (seenCodes.get(key) ?? 0) + 1);
      const why = judge(c, x);
      if (why) failures.push(`#${i} ${c.kind} (${c.note}): ${why}`);
    });
    console.log(
      `webhook fuzz: ${caseCount} cases in ${Date.now() - began} ms; ${[...seenCodes]
        .sort()
        .map(([k, n]) => `${k}=${n}`)
        .join(' ')}`,
    );
    expect(failures, `seed ${seed}: ${failures.length} bad answers; first ones:\n${failures.slice(0, 25).join('\n')}`).toEqual([]);

    // Still up, and nothing got as far as a decision about an alert.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    expect(await metricSamples('alerts_received_total')).toEqual([]);
    expect(await metricSamples('runbooks_started_total')).toEqual([]);
    const codes = (await metricSamples('webhook_request_duration_seconds_count')).map((s) => Number(/code="(\d+)"/.exec(s.labels)![1]));
    // The webhook's own histogram saw only refusals (405 and 404 are answered before it starts
    // timing), and 499s: the cases that hang up before their answer.
    expect(codes.filter((c) => c !== 499).sort()).toEqual([400, 401, 413]);
    const errors = logLines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50);
    expect(errors.slice(0, 5)).toEqual([]);
    expect(logLines.join('\n')).not.toContain(fx.token);

    // The control: the very request every case was a defective copy of does start the runbook, and
    // visibility shows it, and only it, on the queue (so the emptiness above was not blindness).
    const control = await exchange(port, gen.control(), 15_000);
    expect(control.statuses).toEqual([200]);
    const id = incidentWorkflowId('serviceDown', fx.api);
    const onQueue = await until('the control run visible on the queue', 30_000, async () => {
      const ids = await workflowsOnQueue();
      return ids.includes(id) ? ids : undefined;
    });
    expect(onQueue).toEqual([id]);
    expect(await metricSamples('runbooks_started_total')).toEqual([{ labels: '{runbook="serviceDown"}', value: 1 }]);
  }, 120_000);
});
