// Config that used to load and then fail later (at the first alert, at schedule sync, at the first
// restart, in the dev server's exit code) is refused at start-up, naming the key and the value.
import { describe, expect, it } from 'vitest';
import { skippedByClockChange } from '../../config/cron.js';
import { ConfigError, parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';

function base(): EngineConfigInput {
  return {
    temporal: { taskQueue: 'refusals' },
    webhook: { listen: '127.0.0.1:0', token: 'tok-refusals-0123456789' },
    alertmanager: { url: 'http://127.0.0.1:19093' },
    targets: {
      api: { kind: 'container', container: 'api', labels: { service: 'api' }, health: { url: 'http://127.0.0.1:18080/health' } },
      db: { kind: 'postgres', port: 15432, labels: { service: 'db' } },
      shop: { kind: 'mysql', port: 13306 },
      cache: { kind: 'redis', port: 16379 },
    },
    bindings: [{ alert: 'ServiceDown', runbook: 'serviceDown', targetLabel: 'service', targets: ['api'] }],
    channels: { log: { type: 'log' } },
    escalation: { policies: { standard: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'standard' },
  };
}

/** The problems a config is refused with; [] when it loads. */
function problems(change: (c: EngineConfigInput & Record<string, any>) => void): string[] {
  const raw = base() as EngineConfigInput & Record<string, any>;
  change(raw);
  try {
    parseConfig(raw, 'refusals test');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

function refusedWith(change: (c: EngineConfigInput & Record<string, any>) => void, ...parts: string[]): void {
  const found = problems(change);
  expect(found.length, 'refused').toBeGreaterThan(0);
  expect(
    found.some((p) => parts.every((part) => p.includes(part))),
    `a problem with ${parts.join(' … ')} in:\n${found.join('\n')}`,
  ).toBe(true);
}

describe('refused at start-up, naming key and value', () => {
  it('the base config loads', () => {
    expect(problems(() => {})).toEqual([]);
  });

  it('a binding matcher whose regular expression does not compile (it would fail every batch holding that alert)', () => {
    refusedWith(
      (c) => (c.bindings![0]!.matchers = [{ name: 'env', value: 'prod(', isRegex: true }]),
      'bindings.0.matchers.0.value',
      'invalid regular expression',
      'env=~"prod("',
    );
    refusedWith(
      (c) => (c.bindings![0]!.matchers = [{ name: 'env', value: '(?U)a+', isRegex: true }]),
      'bindings.0.matchers.0.value',
      'ungreedy',
    );
    // The same text as a plain value is fine, and so is a valid expression.
    expect(problems((c) => (c.bindings![0]!.matchers = [{ name: 'env', value: 'prod(' }]))).toEqual([]);
    expect(problems((c) => (c.bindings![0]!.matchers = [{ name: 'env', value: '(?i)prod|stag.*', isRegex: true }]))).toEqual([]);
  });

  it('a maintenance silence matcher whose regular expression does not compile', () => {
    refusedWith(
      (c) => (c.maintenance = [{ name: 'weekly', targets: ['db'], silence: [{ name: 'instance', value: 'db-[', isRegex: true }] }]),
      'maintenance.0.silence.0.value',
      'instance=~"db-["',
    );
  });

  it('a cron string Temporal would reject at schedule sync', () => {
    const cron = (value: string) => (c: EngineConfigInput & Record<string, any>) =>
      (c.maintenance = [{ name: 'weekly', targets: ['db'], cron: value }]);
    refusedWith(cron('0 25 * * 0'), 'maintenance.0.cron', 'hour "25"', '"0 25 * * 0"');
    refusedWith(cron('61 2 * * 0'), 'maintenance.0.cron', 'minute "61"');
    refusedWith(cron('0 2 * * 0 0'), 'maintenance.0.cron', 'year');
    refusedWith(cron('0 2 * *'), 'maintenance.0.cron', 'expected 5 fields', 'got 4');
    refusedWith(cron('every sunday'), 'maintenance.0.cron');
    refusedWith(cron('0 2 * * FUNDAY'), 'maintenance.0.cron', 'day of week');
    refusedWith(cron('0 2 5-1 * *'), 'maintenance.0.cron', 'ends before it starts');
    refusedWith(cron('*/0 2 * * *'), 'maintenance.0.cron', 'step');
    refusedWith(cron('@fortnightly'), 'maintenance.0.cron', '@fortnightly');
    refusedWith(cron('@every soon'), 'maintenance.0.cron', 'interval');
    refusedWith(cron('CRON_TZ=Europe/Berlin 0 2 * * 0'), 'maintenance.0.cron', 'timezone');
    // Temporal's own limits on intervals (service/worker/scheduler/spec.go validateInterval).
    refusedWith(cron('@every 500ms'), 'maintenance.0.cron', 'the interval of "@every" must be at least 1s', '"@every 500ms"');
    refusedWith(cron('@every 0.5s'), 'maintenance.0.cron', 'at least 1s');
    refusedWith(cron('@every 1h/2h'), 'maintenance.0.cron', 'the phase 2h must be shorter than the interval 1h');
    refusedWith(cron('@every 24h/24h'), 'maintenance.0.cron', 'the phase 24h must be shorter than the interval 24h');
    refusedWith(cron('@every 1d/1440m'), 'maintenance.0.cron', 'the phase 1440m must be shorter than the interval 1d');
    refusedWith(cron('@every 3000000h'), 'maintenance.0.cron', 'longer than Temporal can hold');
    // Temporal splits "@every" from its interval at one space.
    refusedWith(cron('@every  12h'), 'maintenance.0.cron', 'one space');
    refusedWith(cron('@every\t12h'), 'maintenance.0.cron', 'one space');
    for (const ok of [
      '0 2 * * 0',
      '0 2 * * SUN',
      '30 2 * * 7',
      '*/15 0-6 1,15 JAN-mar mon-FRI',
      '0 2 * * 0 2030',
      '0 0 2 * * 0 *',
      '@weekly',
      '@every 12h',
      '@every 24h/2h',
      '@every 1s',
      '@every 24h/23h59m59s',
      '@every 1d/12h',
      '@every 90m/0s',
      '@every 1.5h # comment',
      '0 2 * * 0 # weekly',
    ]) {
      expect(problems(cron(ok)), ok).toEqual([]);
    }
  });

  it('a time zone that is not an IANA name', () => {
    const zone = (value: string) => (c: EngineConfigInput & Record<string, any>) =>
      (c.maintenance = [{ name: 'weekly', targets: ['db'], timezone: value }]);
    refusedWith(zone('Mars/Olympus_Mons'), 'maintenance.0.timezone', 'not an IANA time zone', '"Mars/Olympus_Mons"');
    refusedWith(zone('+02:00'), 'maintenance.0.timezone');
    refusedWith(zone(''), 'maintenance.0.timezone');
    // Temporal (Go's time.LoadLocation) reads names case-sensitively; Node's Intl does not.
    refusedWith(zone('utc'), 'maintenance.0.timezone', 'not spelled as in the IANA database', "did you mean 'UTC'?", '"utc"');
    refusedWith(zone('europe/berlin'), 'maintenance.0.timezone', "did you mean 'Europe/Berlin'?", '"europe/berlin"');
    refusedWith(zone('Europe/berlin'), 'maintenance.0.timezone', "did you mean 'Europe/Berlin'?");
    refusedWith(zone('EUROPE/BERLIN'), 'maintenance.0.timezone', "did you mean 'Europe/Berlin'?");
    // Names Intl resolves to another (canonical) name: a lower-case word is never IANA spelling.
    refusedWith(zone('etc/utc'), 'maintenance.0.timezone', 'not spelled as in the IANA database', '"etc/utc"');
    refusedWith(zone('us/pacific'), 'maintenance.0.timezone', 'not spelled as in the IANA database');
    for (const ok of [
      'UTC',
      'Etc/UTC',
      'GMT',
      'Europe/Berlin',
      'America/Argentina/Buenos_Aires',
      'Asia/Kolkata',
      'Asia/Calcutta',
      'US/Pacific',
      'Europe/Kyiv',
      'EST5EDT',
      'Etc/GMT+5',
      'Antarctica/DumontDUrville',
      'America/Port-au-Prince',
    ])
      expect(problems(zone(ok)), ok).toEqual([]);
  });

  it('restartVia naming a target that is not a container', () => {
    refusedWith(
      (c) => ((c.targets!.db as Record<string, unknown>).restartVia = 'cache'),
      'targets.db.restartVia',
      '"cache" is a redis target',
    );
    refusedWith(
      (c) => ((c.targets!.db as Record<string, unknown>).restartVia = 'nowhere'),
      'targets.db.restartVia',
      'no target named "nowhere"',
    );
    expect(problems((c) => ((c.targets!.db as Record<string, unknown>).restartVia = 'api'))).toEqual([]);
    // The engine runs a database's restart; it cannot act on a systemd unit (only that host's agent can).
    refusedWith(
      (c) => {
        c.hosts = { h: {} };
        (c.targets as Record<string, unknown>).unit = { kind: 'systemd', unit: 'pg.service', host: 'h' };
        (c.targets!.db as Record<string, unknown>).restartVia = 'unit';
      },
      'targets.db.restartVia',
      '"unit" is a systemd target; it must be a container target',
    );
  });

  it('SQL table names that are not plain identifiers', () => {
    const pg = (tables: string[]) => (c: EngineConfigInput & Record<string, any>) =>
      ((c.targets!.db as Record<string, unknown>).maintenanceTables = tables);
    const my = (tables: string[]) => (c: EngineConfigInput & Record<string, any>) =>
      ((c.targets!.shop as Record<string, unknown>).maintenanceTables = tables);
    refusedWith(pg(['orders; DROP TABLE users']), 'targets.db.maintenanceTables.0', 'plain table name', 'orders; DROP TABLE users');
    refusedWith(pg(['a.b.c']), 'targets.db.maintenanceTables.0');
    refusedWith(pg(['"Orders"']), 'targets.db.maintenanceTables.0');
    refusedWith(my(['orders`; DROP']), 'targets.shop.maintenanceTables.0', 'plain table name');
    refusedWith(my(['123']), 'targets.shop.maintenanceTables.0');
    expect(problems(pg(['orders', 'public.Orders_2', 'ledger$x']))).toEqual([]);
    expect(problems(my(['orders', 'app.orders', '2024_orders']))).toEqual([]);
  });

  it('zero and absurd timeouts', () => {
    const target = (patch: Record<string, unknown>) => (c: EngineConfigInput & Record<string, any>) =>
      Object.assign(c.targets!.api!, patch);
    refusedWith(
      target({ health: { url: 'http://127.0.0.1:18080/health', timeout: '0s' } }),
      'targets.api.health.timeout',
      'more than 0',
      '"0s"',
    );
    refusedWith(
      target({ health: { url: 'http://127.0.0.1:18080/health', timeout: '2d' } }),
      'targets.api.health.timeout',
      'at most 30s',
      '"2d"',
    );
    refusedWith(target({ stopTimeout: '1h' }), 'targets.api.stopTimeout', 'at most 2m');
    refusedWith(target({ verifyDeadline: '0ms' }), 'targets.api.verifyDeadline');
    refusedWith((c) => ((c.targets!.db as Record<string, unknown>).timeout = '0s'), 'targets.db.timeout');
    refusedWith((c) => ((c.targets!.cache as Record<string, unknown>).timeout = '99999999999d'), 'targets.cache.timeout');
    refusedWith((c) => (c.alertmanager!.timeout = '1h'), 'alertmanager.timeout');
    refusedWith((c) => (c.guardrails = { verifyDeadline: '0s' }), 'guardrails.verifyDeadline');
    refusedWith((c) => (c.guardrails = { approvalTimeout: '400d' }), 'guardrails.approvalTimeout', 'at most 30d');
    refusedWith((c) => (c.guardrails = { restarts: { window: '0s' } }), 'guardrails.restarts.window');
    refusedWith((c) => (c.guardrails = { verifyInterval: '5m', verifyDeadline: '1m' }), 'guardrails.verifyInterval', 'verifyDeadline');
    refusedWith((c) => (c.guardrails = { verifyInterval: '10ms' }), 'guardrails.verifyInterval', 'at least 100ms');
    // A wait for a host agent shorter than an agent's own restart would fail steps it is about to take.
    refusedWith((c) => (c.guardrails = { agentWait: '1s' }), 'guardrails.agentWait', 'at least 5s');
    refusedWith((c) => (c.guardrails = { agentWait: '2h' }), 'guardrails.agentWait', 'at most 1h');
    // Each poll of a restart's verification is written to history: bounded, globally and per target.
    refusedWith(
      (c) => (c.guardrails = { verifyInterval: '1s', verifyDeadline: '1h' }),
      'guardrails.verifyDeadline',
      '3600 polls',
      'at most 1000',
    );
    refusedWith(target({ verifyDeadline: '1h' }), 'targets.api.verifyDeadline', '1800 polls', 'at most 1000');
    expect(problems((c) => (c.guardrails = { verifyInterval: '4s', verifyDeadline: '1h' }))).toEqual([]);
    refusedWith((c) => (c.docker = { local: { socketPath: '/var/run/docker.sock', timeout: '0s' } }), 'docker.local.timeout');
    refusedWith((c) => (c.maintenance = [{ name: 'weekly', targets: ['db'], window: '0s' }]), 'maintenance.0.window');
    // Zero is a real value where it means "at once" or "no wait".
    expect(problems((c) => ((c.guardrails = { restartBackoff: '0s' }), Object.assign(c.targets!.api!, { stopTimeout: '0s' })))).toEqual([]);
  });

  it('URLs that are not http or https', () => {
    const health = (url: string, detailedUrl?: string) => (c: EngineConfigInput & Record<string, any>) =>
      Object.assign(c.targets!.api!, { health: { url, ...(detailedUrl ? { detailedUrl } : {}) } });
    refusedWith(health('file:///etc/passwd'), 'targets.api.health.url', 'http or https', 'file:///etc/passwd');
    refusedWith(health('http://127.0.0.1/health', 'gopher://127.0.0.1/x'), 'targets.api.health.detailedUrl');
    refusedWith((c) => (c.alertmanager = { url: 'ftp://127.0.0.1:19093' }), 'alertmanager.url', 'http or https');
    refusedWith(
      (c) => (c.targets!.purge = { kind: 'http', action: { url: 'javascript:alert(1)' } }),
      'targets.purge.action.url',
      'http or https',
    );
    refusedWith(
      (c) => (c.channels!.pager = { type: 'pagerduty', routingKey: 'R0UTINGKEY', url: 'file:///tmp/pd' }),
      'channels.pager.url',
      'http or https',
    );
    // A webhook's URL is a secret: refused, and not shown.
    const hook = problems((c) => (c.channels!.hook = { type: 'webhook', url: 'file:///var/lib/hook-s3cret' }));
    expect(hook).toContain('channels.hook.url: expected an http or https URL');
    expect(hook.join('\n')).not.toContain('s3cret');
  });

  it('ports of the embedded Temporal server that collide, or leave no room', () => {
    const temporal = (patch: Record<string, unknown>) => (c: EngineConfigInput & Record<string, any>) => Object.assign(c.temporal!, patch);
    refusedWith(temporal({ port: 7233, uiPort: 7234 }), 'temporal.uiPort', '7234', 'metrics');
    refusedWith(temporal({ port: 7233, uiPort: 7243 }), 'temporal.uiPort', '7243', 'HTTP');
    refusedWith(temporal({ port: 7233, uiPort: 7233 }), 'temporal.uiPort', 'gRPC');
    refusedWith(temporal({ port: 65_530 }), 'temporal.port', '65540');
    refusedWith(temporal({ port: 70_000 }), 'temporal.port');
    refusedWith((c) => (c.webhook!.listen = '127.0.0.1:8233'), 'webhook.listen', '8233', 'UI');
    refusedWith((c) => (c.webhook!.listen = '127.0.0.1:7234'), 'webhook.listen', 'metrics');
    // With a cluster nothing is started here: those ports mean nothing.
    expect(problems(temporal({ address: '127.0.0.1:7233', port: 7233, uiPort: 7234 }))).toEqual([]);
    expect(problems(temporal({ port: 17233, uiPort: 18233 }))).toEqual([]);
  });

  it('a worker cache too small to run incidents', () => {
    for (const n of [0, 5]) refusedWith((c) => (c.temporal!.maxCachedWorkflows = n), 'temporal.maxCachedWorkflows', 'at least 10');
    expect(problems((c) => (c.temporal!.maxCachedWorkflows = 10))).toEqual([]);
  });

  it('a webhook body limit over the longest batch line the spool reads back (the batch would be acknowledged, then skipped)', () => {
    const problem = problems((c) => (c.webhook!.maxBodyBytes = 64 * 1_048_576 + 1));
    expect(problem).toHaveLength(1);
    expect(problem[0]).toMatch(/^webhook\.maxBodyBytes: .*67108865.*/);
    expect(problem[0]).toContain('at most 67108864 bytes (64 MiB)');
    expect(problems((c) => (c.webhook!.maxBodyBytes = 64 * 1_048_576))).toEqual([]);
  });

  it('a webhook with both the intake and the spool (two ways to answer before the alerts are started)', () => {
    refusedWith((c) => Object.assign(c.webhook!, { intake: 'always', spool: true }), 'webhook.intake', 'choose one');
    expect(problems((c) => Object.assign(c.webhook!, { intake: 'always', spool: false }))).toEqual([]);
    expect(problems((c) => Object.assign(c.webhook!, { intake: 'always' }))).toEqual([]);
  });

  it("a webhook thread nice value outside Linux's -20 to 19", () => {
    refusedWith((c) => (c.webhook!.threadNice = -21), 'webhook.threadNice', '-20');
    refusedWith((c) => (c.webhook!.threadNice = 20), 'webhook.threadNice', '19');
    refusedWith((c) => (c.webhook!.threadNice = 1.5), 'webhook.threadNice', 'integer');
    for (const n of [-20, 0, 19]) expect(problems((c) => (c.webhook!.threadNice = n))).toEqual([]);
  });

  it('a listen address the webhook or the operator API could not open (it failed only when the listener opened)', () => {
    const webhook = (listen: string) => (c: EngineConfigInput & Record<string, any>) => (c.webhook!.listen = listen);
    const api = (listen: string) => (c: EngineConfigInput & Record<string, any>) => (c.api = { listen });
    refusedWith(webhook('localhost'), 'webhook.listen', 'expected host:port such as 127.0.0.1:9797', '"localhost"');
    refusedWith(webhook('127.0.0.1:99999'), 'webhook.listen', 'port 99999 is out of range 0–65535', '"127.0.0.1:99999"');
    refusedWith(webhook('127.0.0.1:'), 'webhook.listen', 'host:port');
    refusedWith(webhook('127.0.0.1:http'), 'webhook.listen', 'host:port');
    refusedWith(webhook('::1:9797'), 'webhook.listen', 'an IPv6 address goes in brackets: [::1]:9797');
    refusedWith(webhook('[::g]:9797'), 'webhook.listen', '"::g" is not an IPv6 address');
    refusedWith(webhook('256.0.0.1:9797'), 'webhook.listen', '"256.0.0.1" is not an IPv4 address');
    refusedWith(webhook('010.0.0.1:9797'), 'webhook.listen', 'not an IPv4 address');
    refusedWith(webhook('my host:9797'), 'webhook.listen', '"my host" is not a host name');
    refusedWith(webhook('-db:9797'), 'webhook.listen', 'not a host name');
    refusedWith(api('localhost'), 'api.listen', 'expected host:port such as 127.0.0.1:9798', '"localhost"');
    refusedWith(api('127.0.0.1:99999'), 'api.listen', 'port 99999 is out of range 0–65535');
    for (const ok of [
      '127.0.0.1:9797',
      '0.0.0.0:9797',
      'localhost:9797',
      'engine.internal:9797',
      'db_1:9797',
      '[::1]:9797',
      '[::]:9797',
      '[fe80::1%eth0]:9797',
      ':9797',
      '127.0.0.1:0',
      '127.0.0.1:65535',
    ]) {
      expect(problems(webhook(ok)), ok).toEqual([]);
    }
    for (const ok of ['127.0.0.1:9798', '[::1]:9798', 'localhost:0']) expect(problems(api(ok)), ok).toEqual([]);
  });

  it('an operator without a role, or with one that does not exist (a role left out was operator before: approving without anyone writing so)', () => {
    const operators =
      (...ops: unknown[]) =>
      (c: EngineConfigInput & Record<string, any>) =>
        (c.operators = ops as EngineConfigInput['operators']);
    refusedWith(
      operators({ name: 'alice', role: 'admin' }, { name: 'bob' }),
      'operators.1.role',
      'required: one of viewer, responder, operator, admin',
    );
    refusedWith(operators({ name: 'bob', role: 'superuser' }), 'operators.0.role', 'superuser');
    expect(problems(operators({ name: 'vera', role: 'viewer' }))).toEqual([]);
  });

  it("an operator's tokenExpires that is not a real RFC 3339 time with its zone (Feb 30 became Mar 2; no zone was the host's local time)", () => {
    const expires = (value: string) => (c: EngineConfigInput & Record<string, any>) =>
      (c.operators = [{ name: 'alice', role: 'operator', tokenHash: `sha256:${'0'.repeat(64)}`, tokenExpires: value }]);
    const expected = 'expected an RFC 3339 time with its zone, e.g. 2027-01-31T00:00:00Z';
    refusedWith(
      expires('2027-02-30T00:00:00Z'),
      'operators.0.tokenExpires',
      `${expected}; 2027-02-30 is not a date`,
      '"2027-02-30T00:00:00Z"',
    );
    refusedWith(expires('2027-02-29T00:00:00Z'), 'operators.0.tokenExpires', '2027-02-29 is not a date');
    refusedWith(expires('2027-13-01T00:00:00Z'), 'operators.0.tokenExpires', '2027-13-01 is not a date');
    refusedWith(expires('2027-04-31T12:00:00+02:00'), 'operators.0.tokenExpires', '2027-04-31 is not a date');
    refusedWith(expires('2027-01-00T00:00:00Z'), 'operators.0.tokenExpires', '2027-01-00 is not a date');
    refusedWith(expires('2027-01-31T24:00:00Z'), 'operators.0.tokenExpires', '24:00:00 is not a time');
    refusedWith(expires('2027-01-31T23:59:60Z'), 'operators.0.tokenExpires', '23:59:60 is not a time');
    refusedWith(expires('2027-01-31T12:60:00Z'), 'operators.0.tokenExpires', '12:60:00 is not a time');
    refusedWith(expires('2027-01-31T00:00:00+24:00'), 'operators.0.tokenExpires', '+24:00 is not a zone offset');
    refusedWith(expires('2027-01-31T00:00:00+05:60'), 'operators.0.tokenExpires', '+05:60 is not a zone offset');
    for (const local of ['2027-01-31T00:00', '2027-01-31T00:00:00', '2027-01-31T00:00:00.5'])
      refusedWith(expires(local), 'operators.0.tokenExpires', `${expected}; it has no zone (Z or ±hh:mm)`, JSON.stringify(local));
    for (const bad of [
      '2027-01-31',
      '2027-01-31 00:00:00Z',
      '2027-1-31T00:00:00Z',
      '2027-01-31T00:00:00 Z',
      '2027-01-31T00:00:00+0100',
      'tomorrow',
    ])
      refusedWith(expires(bad), 'operators.0.tokenExpires', expected, JSON.stringify(bad));
    for (const ok of [
      '2027-01-31T00:00:00Z',
      '2027-01-31T00:00:00.123Z',
      '2028-02-29T23:59:59Z',
      '2027-01-31T09:30:00+09:30',
      '2027-01-30T19:00:00-05:00',
      '2027-12-31T23:59:59-00:00',
    ])
      expect(problems(expires(ok)), ok).toEqual([]);
  });

  it('database and docker ports out of range', () => {
    refusedWith((c) => ((c.targets!.db as Record<string, unknown>).port = 65_536), 'targets.db.port');
    refusedWith((c) => ((c.targets!.cache as Record<string, unknown>).port = 0), 'targets.cache.port');
    refusedWith((c) => ((c.targets!.shop as Record<string, unknown>).port = 99_999), 'targets.shop.port', '65535');
    refusedWith((c) => ((c.targets!.db as Record<string, unknown>).port = 5432.5), 'targets.db.port', 'integer');
    refusedWith((c) => (c.docker = { remote: { host: 'docker.internal', port: 70_000 } }), 'docker.remote.port', '65535');
    refusedWith((c) => (c.temporal!.uiPort = 0), 'temporal.uiPort');
  });
});

describe('a maintenance time the clocks skip', () => {
  const from = Date.UTC(2027, 0, 1);
  it('is found for the year ahead in a zone with summer time, at the hour the clocks go forward, and nowhere else', () => {
    expect(skippedByClockChange('0 2 * * 0', 'Europe/Berlin', from)).toEqual(['2027-03-28 02:00']);
    expect(skippedByClockChange('30 2 * * 0', 'America/New_York', from)).toEqual(['2027-03-14 02:30']);
    expect(skippedByClockChange('*/30 * * * *', 'Europe/Berlin', from)).toEqual(['2027-03-28 02:00', '2027-03-28 02:30']);
    // The hour the clocks go back exists (twice): Temporal runs it once.
    expect(skippedByClockChange('30 2 * * 0', 'Europe/Berlin', Date.UTC(2027, 9, 1), 60)).toEqual([]);
    expect(skippedByClockChange('0 2 * * 0', 'UTC', from)).toEqual([]);
    expect(skippedByClockChange('0 3 * * 0', 'Europe/Berlin', from)).toEqual([]);
    // Only on the days the cron runs: the first Sunday of March 2027 is not the last.
    expect(skippedByClockChange('0 2 1-7 * 0', 'Europe/Berlin', from)).toEqual([]);
    expect(skippedByClockChange('@every 1h', 'Europe/Berlin', from)).toEqual([]);
    // Asked late in the evening, local time: the day the clocks change is still looked at.
    expect(skippedByClockChange('30 2 * * 0', 'Europe/Berlin', Date.UTC(2027, 2, 20, 22, 30), 30)).toEqual(['2027-03-28 02:30']);
  });
});
