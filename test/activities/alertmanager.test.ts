// Against the stack's real Alertmanager. Every silence and alert made here carries a unique
// instance label and createdBy, so parallel tests and the stack's own routes are not disturbed;
// silences are expired and alerts resolved afterwards.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertmanagerActivities } from '../../activities/alertmanager.js';
import { createEngineActivities } from '../../activities/index.js';
import { parseConfig } from '../../config/load.js';
import { pino } from 'pino';
import type { SilenceMatcher, SilenceRequest } from '../../activities/contract.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const run = randomUUID().slice(0, 8);
const author = `remediation-test-${run}`;
// Not an alertname any binding uses: Alertmanager forwards these alerts to the engine's webhook.
const alertname = 'RemediationTestProbe';
const made: string[] = [];
const posted: Array<Record<string, string>> = [];

let am: ReturnType<typeof createAlertmanagerActivities>;
let amUrl: string;

const eq = (name: string, value: string): SilenceMatcher => ({ name, value, isRegex: false, isEqual: true });

function silenceRequest(instance: string, extra: Partial<SilenceRequest> = {}): SilenceRequest {
  return {
    matchers: [eq('instance', instance), { name: 'alertname', value: 'RemediationTest.*', isRegex: true, isEqual: true }],
    durationMs: 10 * 60_000,
    createdBy: author,
    comment: `test silence for ${instance}`,
    dryRun: false,
    ...extra,
  };
}

async function amGet<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${amUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function ourSilences(): Promise<Array<{ id: string; status: { state: string } }>> {
  const { body } = await amGet<Array<{ id: string; createdBy: string; status: { state: string } }>>('/api/v2/silences');
  return body.filter((s) => s.createdBy === author);
}

async function postAlert(labels: Record<string, string>, endsAt: Date, annotations: Record<string, string> = {}): Promise<void> {
  const res = await fetch(`${amUrl}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ labels, annotations, startsAt: new Date().toISOString(), endsAt: endsAt.toISOString() }]),
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status).toBe(200);
}

beforeAll(() => {
  amUrl = stack().alertmanagerUrl;
  am = createAlertmanagerActivities({ url: amUrl, timeoutMs: 5_000 });
});

afterAll(async () => {
  for (const id of made) await am.expireSilence(id, false).catch(() => undefined);
  // Resolving the probe alerts now keeps them out of the stack's Alertmanager view.
  for (const labels of posted) await postAlert(labels, new Date()).catch(() => undefined);
});

describe('silences', () => {
  it('creates a silence Alertmanager reports active for the requested duration, and finds it by labels', async () => {
    const instance = `am-test-${run}-a`;
    const before = Date.now();
    const { silenceId, dryRun } = await am.createSilence(silenceRequest(instance));
    made.push(silenceId);
    expect(dryRun).toBe(false);

    const { status, body } = await amGet<{ status: { state: string }; endsAt: string; createdBy: string; matchers: SilenceMatcher[] }>(
      `/api/v2/silence/${silenceId}`,
    );
    expect(status).toBe(200);
    expect(body.status.state).toBe('active');
    expect(body.createdBy).toBe(author);
    expect(body.matchers).toEqual(expect.arrayContaining([expect.objectContaining(eq('instance', instance))]));
    const endsAt = Date.parse(body.endsAt);
    expect(endsAt).toBeGreaterThanOrEqual(before + 10 * 60_000 - 1_000);
    expect(endsAt).toBeLessThanOrEqual(Date.now() + 10 * 60_000 + 1_000);

    const covering = await am.findActiveSilences({ alertname: 'RemediationTestDown', instance });
    expect(covering.map((s) => s.id)).toContain(silenceId);
    const found = covering.find((s) => s.id === silenceId)!;
    expect(found.createdBy).toBe(author);
    expect(found.comment).toBe(`test silence for ${instance}`);

    // The regex matcher is anchored and the instance must be equal: near misses are not covered.
    expect((await am.findActiveSilences({ alertname: 'OtherRemediationTestDown', instance })).map((s) => s.id)).not.toContain(silenceId);
    expect((await am.findActiveSilences({ alertname: 'RemediationTestDown', instance: `${instance}-2` })).map((s) => s.id)).not.toContain(
      silenceId,
    );
    expect((await am.findActiveSilences({ instance })).map((s) => s.id)).not.toContain(silenceId);
  });

  it('finds a team\'s manual-override silence (alertname=~"Auto.*") whatever the labels, by its matchers as written', async () => {
    // A value of this run's own: other tests' engines with an override never see it as theirs.
    const auto = { name: 'alertname', value: `Auto-${run}.*`, isRegex: true, isEqual: true };
    const { silenceId } = await am.createSilence({
      matchers: [auto],
      durationMs: 10 * 60_000,
      createdBy: author,
      comment: 'hands off: maintenance by hand',
      dryRun: false,
    });
    made.push(silenceId);
    const labels = { service: `demo-web-${run}` };
    // By the labels alone it covers nothing: no alert is named Auto-….
    expect((await am.findActiveSilences(labels)).map((s) => s.id)).not.toContain(silenceId);
    const found = await am.findActiveSilences(labels, [auto]);
    expect(found[0]).toMatchObject({ id: silenceId, override: true, comment: 'hands off: maintenance by hand' });
    // The matcher as written, = or =~ alike (amtool's alertname="Auto.*" is =): another value is not it.
    expect((await am.findActiveSilences(labels, [{ ...auto, value: `Auto-${run}` }])).map((s) => s.id)).not.toContain(silenceId);
    expect((await am.findActiveSilences(labels, [{ ...auto, isRegex: false }])).map((s) => s.id)).toContain(silenceId);
    // A silence with more matchers than the override's is a silence of something, not the override.
    const narrower = await am.createSilence({
      matchers: [auto, eq('instance', `host-${run}`)],
      durationMs: 10 * 60_000,
      createdBy: author,
      comment: 'one host',
      dryRun: false,
    });
    made.push(narrower.silenceId);
    expect((await am.findActiveSilences(labels, [auto])).map((s) => s.id)).not.toContain(narrower.silenceId);
    await am.expireSilence(narrower.silenceId, false);
    await am.expireSilence(silenceId, false);
    expect((await am.findActiveSilences(labels, [auto])).map((s) => s.id)).not.toContain(silenceId);
  });

  it("matches silences against the alert's labels when the check is about the alert, as Alertmanager does", async () => {
    const service = `am-alert-${run}`;
    const config = parseConfig({
      webhook: { listen: '127.0.0.1:0', token: 'tok-am-suppression-0123' },
      alertmanager: { url: amUrl },
      targets: { web: { kind: 'container', container: service, labels: { service } } },
      channels: { log: { type: 'log' } },
      escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
    });
    const engine = createEngineActivities(config, { client: {} as never, logger: pino({ level: 'silent' }) });
    // An SRE silences the alert by its name, not by the labels the engine's config gives the target.
    const byName = await am.createSilence({
      matchers: [eq('alertname', `Probe${run}Down`)],
      durationMs: 10 * 60_000,
      createdBy: author,
      comment: 'by alert name',
      dryRun: false,
    });
    made.push(byName.silenceId);
    // "Mute the noise, not the pages": everything of the service but critical alerts.
    const notCritical = await am.createSilence({
      matchers: [eq('service', service), { name: 'severity', value: 'critical', isRegex: false, isEqual: false }],
      durationMs: 10 * 60_000,
      createdBy: author,
      comment: 'noise only',
      dryRun: false,
    });
    made.push(notCritical.silenceId);
    const critical = { alertname: `Probe${run}Down`, service, severity: 'critical' };
    expect(await engine.checkSuppression('web', critical)).toMatchObject({
      suppressed: true,
      reason: expect.stringContaining(byName.silenceId),
    });
    // A critical alert of another name: Alertmanager delivered it, the noise silence does not cover it.
    expect(await engine.checkSuppression('web', { ...critical, alertname: `Other${run}Down` })).toEqual({ suppressed: false });
    // By the target's labels alone (a run by hand): no severity label, so the noise silence covers it.
    expect(await engine.checkSuppression('web')).toMatchObject({
      suppressed: true,
      reason: expect.stringContaining(notCritical.silenceId),
    });
    // A silence of the target's own labels still covers an alert whose labels say otherwise (a
    // binding that picked the target by another label value).
    const own = await am.createSilence({
      matchers: [eq('service', service)],
      durationMs: 10 * 60_000,
      createdBy: author,
      comment: 'the target',
      dryRun: false,
    });
    made.push(own.silenceId);
    expect(await engine.checkSuppression('web', { ...critical, alertname: `Other${run}Down`, service: 'by-another-name' })).toMatchObject({
      suppressed: true,
    });
    await am.expireSilence(own.silenceId, false);
    await am.expireSilence(byName.silenceId, false);
    await am.expireSilence(notCritical.silenceId, false);
  });

  it('expires a silence so that Alertmanager reports it expired and it no longer covers the labels', async () => {
    const instance = `am-test-${run}-b`;
    const { silenceId } = await am.createSilence(silenceRequest(instance));
    made.push(silenceId);
    const labels = { alertname: 'RemediationTestDown', instance };
    expect((await am.findActiveSilences(labels)).map((s) => s.id)).toContain(silenceId);

    expect(await am.expireSilence(silenceId, false)).toEqual({ expired: true });
    const { body } = await amGet<{ status: { state: string } }>(`/api/v2/silence/${silenceId}`);
    expect(body.status.state).toBe('expired');
    expect((await am.findActiveSilences(labels)).map((s) => s.id)).not.toContain(silenceId);

    // A retried expiry finds it already expired: done, not an error.
    expect(await am.expireSilence(silenceId, false)).toEqual({ expired: true });
  });

  it('leaves the silence active when expiry is a dry run', async () => {
    const instance = `am-test-${run}-c`;
    const { silenceId } = await am.createSilence(silenceRequest(instance));
    made.push(silenceId);
    expect(await am.expireSilence(silenceId, true)).toEqual({ expired: false });
    const { body } = await amGet<{ status: { state: string } }>(`/api/v2/silence/${silenceId}`);
    expect(body.status.state).toBe('active');
  });

  it('creates nothing in a dry run', async () => {
    const before = (await ourSilences()).length;
    const result = await am.createSilence(silenceRequest(`am-test-${run}-dry`, { dryRun: true }));
    expect(result).toEqual({ silenceId: 'dry-run', dryRun: true });
    expect((await ourSilences()).length).toBe(before);
  });

  it('reuses the silence of an earlier attempt of the same request instead of adding a second one', async () => {
    const instance = `am-test-${run}-retry`;
    const first = await am.createSilence(silenceRequest(instance));
    made.push(first.silenceId);
    const second = await am.createSilence(silenceRequest(instance));
    expect(second.silenceId).toBe(first.silenceId);

    // A different comment is a different request.
    const third = await am.createSilence(silenceRequest(instance, { comment: `another reason for ${instance}` }));
    made.push(third.silenceId);
    expect(third.silenceId).not.toBe(first.silenceId);
  });

  it('applies != matchers with Alertmanager semantics: a missing label is the empty string', async () => {
    const instance = `am-test-${run}-neq`;
    const { silenceId } = await am.createSilence(
      silenceRequest(instance, {
        matchers: [eq('instance', instance), { name: 'severity', value: 'info', isRegex: false, isEqual: false }],
      }),
    );
    made.push(silenceId);
    const ids = async (labels: Record<string, string>) => (await am.findActiveSilences(labels)).map((s) => s.id);
    expect(await ids({ instance })).toContain(silenceId);
    expect(await ids({ instance, severity: 'critical' })).toContain(silenceId);
    expect(await ids({ instance, severity: 'info' })).not.toContain(silenceId);
  });

  it('refuses a silence without matchers, or one whose matchers all match an empty label set, creating nothing', async () => {
    const before = (await ourSilences()).length;
    const empty = await failureOf(am.createSilence(silenceRequest('x', { matchers: [] })));
    expect(empty.nonRetryable).toBe(true);
    expect(empty.type).toBe('BadInput');
    expect(empty.message).toMatch(/no matchers/);

    const everything = await failureOf(
      am.createSilence(silenceRequest('x', { matchers: [{ name: 'alertname', value: '.*', isRegex: true, isEqual: true }] })),
    );
    expect(everything.nonRetryable).toBe(true);
    expect(everything.message).toMatch(/would silence every alert/);

    const badRegex = await failureOf(
      am.createSilence(silenceRequest('x', { matchers: [{ name: 'instance', value: 'db-(', isRegex: true, isEqual: true }] })),
    );
    expect(badRegex.nonRetryable).toBe(true);
    expect(badRegex.message).toMatch(/instance=~"db-\("/);

    const noTime = await failureOf(am.createSilence(silenceRequest(`am-test-${run}-zero`, { durationMs: 0 })));
    expect(noTime.nonRetryable).toBe(true);
    expect((await ourSilences()).length).toBe(before);
  });

  it('reports an unknown silence id as a non-retryable missing target naming the id', async () => {
    const id = randomUUID();
    const f = await failureOf(am.expireSilence(id, false));
    expect(f.nonRetryable).toBe(true);
    expect(f.type).toBe('TargetNotFound');
    expect(f.message).toContain(`'${id}'`);
    const dry = await failureOf(am.expireSilence(id, true));
    expect(dry.type).toBe('TargetNotFound');
  });

  it("passes Alertmanager's own words on for a 4xx, non-retryable", async () => {
    const f = await failureOf(am.expireSilence('not-a-uuid', false));
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain("expiry of silence 'not-a-uuid'");
    expect(f.message).toMatch(/answered 422: silenceID in path must be of type uuid/);
  });
});

describe('one silence listing shared by the checks in flight', () => {
  // The real Alertmanager behind a proxy that counts the silence listings asked, and holds each
  // one back while `hold` is set: checks asked meanwhile find it still on its way.
  let proxy: Server;
  let listings = 0;
  let hold: Promise<void> | undefined;
  let shared: ReturnType<typeof createAlertmanagerActivities>;

  beforeAll(async () => {
    proxy = createServer((req, res) => {
      const listing = req.method === 'GET' && req.url === '/api/v2/silences';
      if (listing) listings++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          if (listing) await hold;
          const body = chunks.length ? Buffer.concat(chunks) : undefined;
          const upstream = await fetch(`${amUrl}${req.url}`, {
            method: req.method,
            headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
            body,
            signal: AbortSignal.timeout(5_000),
          });
          res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await upstream.arrayBuffer()));
        })().catch(() => res.destroy());
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    shared = createAlertmanagerActivities({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    proxy.closeAllConnections();
    await new Promise<void>((r) => proxy.close(() => r()));
  });

  it('answers checks asked together with one listing, each as it would alone', async () => {
    const instance = `am-test-${run}-shared`;
    const { silenceId } = await am.createSilence(silenceRequest(instance));
    made.push(silenceId);
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    const before = listings;
    const checks = [0, 1, 2, 3, 4].map((i) =>
      shared.findActiveSilences({ alertname: 'RemediationTestDown', instance: i === 4 ? `${instance}-other` : instance }),
    );
    await eventually(
      async () => listings - before,
      (n) => n === 1,
      5_000,
      5,
    );
    release();
    hold = undefined;
    const found = await Promise.all(checks);
    expect(listings - before).toBe(1);
    for (const f of found.slice(0, 4)) expect(f.map((s) => s.id)).toContain(silenceId);
    expect(found[4]!.map((s) => s.id)).not.toContain(silenceId);
  });

  it('does not share a listing asked before its own silence write ended: a check after a create sees it', async () => {
    const instance = `am-test-${run}-after-create`;
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    const before = listings;
    const early = shared.findActiveSilences({ alertname: 'RemediationTestDown', instance });
    await eventually(
      async () => listings - before,
      (n) => n === 1,
      5_000,
      5,
    );
    hold = undefined;
    // The create's own look for an earlier attempt is a listing of its own, not the one held back.
    const { silenceId } = await shared.createSilence(silenceRequest(instance));
    made.push(silenceId);
    const after = await shared.findActiveSilences({ alertname: 'RemediationTestDown', instance });
    expect(after.map((s) => s.id)).toContain(silenceId);
    expect(listings - before).toBe(3);
    release();
    await early;
  });
});

describe('alerts', () => {
  it('lists an alert posted to Alertmanager by its labels, and only alerts carrying all of them', async () => {
    const instance = `am-test-${run}-alert`;
    const labels = { alertname, instance, severity: 'warning' };
    posted.push(labels);
    await postAlert(labels, new Date(Date.now() + 5 * 60_000), { summary: 'probe from the alertmanager activity test' });

    const alerts = await eventually(
      () => am.listAlerts({ alertname, instance }),
      (a) => a.length > 0,
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.labels).toEqual(labels);
    expect(alerts[0]!.annotations.summary).toBe('probe from the alertmanager activity test');
    expect(alerts[0]!.state).toBe('active');
    expect(alerts[0]!.fingerprint).toMatch(/^[0-9a-f]+$/);

    expect(await am.listAlerts({ alertname, instance: `${instance}-other` })).toEqual([]);
    expect(await am.listAlerts({ alertname, instance, severity: 'critical' })).toEqual([]);
  });

  it('includes silenced alerts unless asked not to', async () => {
    const instance = `am-test-${run}-silenced`;
    const labels = { alertname, instance };
    posted.push(labels);
    await postAlert(labels, new Date(Date.now() + 5 * 60_000));
    await eventually(
      () => am.listAlerts(labels),
      (a) => a.length > 0,
    );
    const { silenceId } = await am.createSilence({
      matchers: [eq('instance', instance)],
      durationMs: 5 * 60_000,
      createdBy: author,
      comment: 'silencing the probe',
      dryRun: false,
    });
    made.push(silenceId);

    const silenced = await eventually(
      () => am.listAlerts(labels),
      (a) => a[0]?.state === 'suppressed',
    );
    expect(silenced).toHaveLength(1);
    expect(silenced[0]!.state).toBe('suppressed');
    expect(silenced[0]!.silencedBy).toEqual([silenceId]);
    expect(await am.listAlerts(labels, { silenced: false })).toEqual([]);
  });
});

describe('the alerts step (firingAlerts)', () => {
  it('counts, names and lists what fires: the most severe and newest first, up to the limit, held alerts only when asked', async () => {
    const team = `firing-${run}`;
    const at = (name: string, severity: string, extra: Record<string, string> = {}) => ({ alertname: name, severity, team, ...extra });
    const alerts = [
      at('RemediationTestLatency', 'warning', { instance: 'api:8080' }),
      at('RemediationTestDisk', 'critical', { instance: 'db:9100' }),
      at('RemediationTestInfo', 'info'),
      // A label value with a line break and one far too long: neither may forge or flood a line.
      at('RemediationTestHostile', 'warning', { note: 'x\nRemediationTestForged [critical] {} since now', long: 'y'.repeat(500) }),
    ];
    for (const labels of alerts) {
      posted.push(labels);
      await postAlert(labels, new Date(Date.now() + 5 * 60_000));
    }
    const all = await eventually(
      () => am.firingAlerts({ labels: { team }, silenced: false, limit: 3 }),
      (r) => r.count === 4,
    );
    expect(all.names).toEqual(['RemediationTestDisk', 'RemediationTestHostile', 'RemediationTestInfo', 'RemediationTestLatency']);
    const lines = all.summary.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^RemediationTestDisk \[critical\] \{instance=db:9100, team=firing-\w+\} since \d{4}-/);
    // Both warnings, the newer first; then the cut.
    expect(lines[1]).toMatch(
      /^RemediationTestHostile \[warning\] \{long=y{120}…, note=x\\u000aRemediationTestForged \[critical\] \{\} since now, team=/,
    );
    expect(lines[2]).toMatch(/^RemediationTestLatency \[warning\]/);
    expect(lines[3]).toBe('… and 1 more');
    expect(all.summary).not.toMatch(/^RemediationTestForged/m);

    // Silenced: not counted unless asked, then marked.
    const { silenceId } = await am.createSilence({
      matchers: [eq('team', team), eq('alertname', 'RemediationTestInfo')],
      durationMs: 5 * 60_000,
      createdBy: author,
      comment: 'silencing one of the firing probes',
      dryRun: false,
    });
    made.push(silenceId);
    const told = await eventually(
      () => am.firingAlerts({ labels: { team }, silenced: false, limit: 20 }),
      (r) => r.count === 3,
    );
    expect(told.names).not.toContain('RemediationTestInfo');
    const held = await am.firingAlerts({ labels: { team }, silenced: true, limit: 20 });
    expect(held.count).toBe(4);
    expect(held.summary).toMatch(/^RemediationTestInfo \[info\] \{team=firing-\w+\} since \S+ \(suppressed\)$/m);

    expect(await am.firingAlerts({ labels: { team: `${team}-none` }, silenced: true, limit: 5 })).toEqual({
      count: 0,
      names: [],
      summary: '',
    });
    const bad = await failureOf(am.firingAlerts({ labels: { team }, silenced: false, limit: 500 }));
    expect(bad).toMatchObject({ nonRetryable: true });
    expect(bad.message).toContain('limit must be 1 to 50');
  });
});

describe('an Alertmanager that does not answer', () => {
  let silent: Server;
  let closedPort: number;

  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    // Accepts connections and never answers.
    silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    silent.closeAllConnections();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('is a retryable failure when the connection is refused', async () => {
    const down = createAlertmanagerActivities({ url: `http://127.0.0.1:${closedPort}`, timeoutMs: 2_000 });
    const f = await failureOf(down.findActiveSilences({ instance: 'x' }));
    expect(f.nonRetryable).toBe(false);
    expect(f.type).toBe('Transient');
    expect(f.message).toMatch(/ECONNREFUSED/);
    const c = await failureOf(down.createSilence(silenceRequest(`am-test-${run}-down`)));
    expect(c.nonRetryable).toBe(false);
  });

  it('fails each check under its own name when the listing they share fails', async () => {
    const down = createAlertmanagerActivities({ url: `http://127.0.0.1:${closedPort}`, timeoutMs: 2_000 });
    const [a, b] = await Promise.all([
      failureOf(down.findActiveSilences({ instance: 'first' })),
      failureOf(down.findActiveSilences({ instance: 'second' })),
    ]);
    expect(a.message).toMatch(/^lookup of silences covering \{instance="first"\} failed: .*ECONNREFUSED/);
    expect(b.message).toMatch(/^lookup of silences covering \{instance="second"\} failed: .*ECONNREFUSED/);
    expect([a.type, b.type]).toEqual(['Transient', 'Transient']);
  });

  it('is a retryable failure after the timeout when nothing answers', async () => {
    const hung = createAlertmanagerActivities({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, timeoutMs: 300 });
    const started = Date.now();
    const f = await failureOf(hung.listAlerts({ instance: 'x' }));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/did not answer within 300 ms/);
  });

  it('never shows credentials from the URL in a failure', async () => {
    const down = createAlertmanagerActivities({ url: `http://admin:s3cret-pass@127.0.0.1:${closedPort}/am`, timeoutMs: 2_000 });
    const f = await failureOf(down.findActiveSilences({ instance: 'x' }));
    expect(f.message).not.toContain('s3cret-pass');
    expect(f.message).toContain(`Alertmanager at http://127.0.0.1:${closedPort}`);
  });
});
