// The operator API against a running engine: a Redis-backed incident waits for approval, and only a
// caller with a valid credential and the right role changes anything. The workflow records the
// name the engine verified, not one the caller wrote, and every attempt lands in the audit log.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { newOperatorToken } from '../../triggers/operators/credentials.js';
import { startEngine, type RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { incidentWorkflowId, type RunbookResult, type RunbookStatus } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { bundlePath } from '../support/globalSetup.js';
import { startRedisContainer, type RedisContainer } from '../support/redisContainer.js';
import { pendingApproval, statusWhen } from '../support/runStatus.js';
import { quietRuntime, temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { e2eConfigInput } from './engine.js';

const suffix = randomUUID().slice(0, 8);
const cache = `cache-${suffix}`;
const cacheServer = `cache-server-${suffix}`;
const otherTarget = `elsewhere-${suffix}`;
const alertname = 'RedisConnectionFailed';
const webhookToken = randomUUID();
const workflowId = incidentWorkflowId('databaseConnection', cache);
const tokens = {
  alice: newOperatorToken(),
  rita: newOperatorToken(),
  vera: newOperatorToken(),
  dana: newOperatorToken(),
  old: newOperatorToken(),
};
const dir = mkdtempSync(join(tmpdir(), 'operator-api-'));
const issuer = 'https://idp.test';
let signingKey: CryptoKey;
let queue: string;

let redis: RedisContainer;
let engine: RunningEngine;
let api: string;
const logLines: string[] = [];

const handle = (): WorkflowHandle => engine.client.workflow.getHandle(workflowId);
const path = (verb?: string) => `/api/v1/incidents/${encodeURIComponent(workflowId)}${verb ? `/${verb}` : ''}`;

async function call(
  method: string,
  url: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${api}${url}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const audits = () =>
  logLines
    .map(
      (l) =>
        JSON.parse(l) as { audit?: { operator?: string; via: string; action: string; result: string; reason?: string; subject?: string } },
    )
    .flatMap((l) => (l.audit ? [l.audit] : []));

beforeAll(async () => {
  quietRuntime();
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256' }] }));
  queue = uniqueQueue('e2e-operator-api');
  redis = await startRedisContainer();
  const overrides: Partial<EngineConfigInput> = {
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token: webhookToken },
    targets: {
      [cacheServer]: { kind: 'container', container: redis.name, stopTimeout: '5s' },
      [cache]: { kind: 'redis', host: '127.0.0.1', port: redis.port, password: redis.password, timeout: '2s', restartVia: cacheServer },
      [otherTarget]: { kind: 'http', health: { url: 'http://127.0.0.1:9/health' } },
    },
    bindings: [{ alert: alertname, target: cache, runbook: 'databaseConnection' }],
    operators: [
      { name: 'alice', role: 'operator', tokenHash: tokens.alice.tokenHash },
      { name: 'rita', role: 'responder', tokenHash: tokens.rita.tokenHash },
      { name: 'vera', role: 'viewer', tokenHash: tokens.vera.tokenHash },
      { name: 'dana', role: 'operator', tokenHash: tokens.dana.tokenHash, targets: [otherTarget] },
      { name: 'olga', role: 'admin', tokenHash: tokens.old.tokenHash, tokenExpires: '2020-01-01T00:00:00Z' },
      { name: 'carol', role: 'admin' },
    ],
    api: { listen: '127.0.0.1:0', jwt: { jwksFile: join(dir, 'jwks.json'), issuer, audience: 'remediation' } },
  };
  const config = parseConfig(e2eConfigInput(overrides), 'operator API e2e');
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  engine = await startEngine({ config, logger, workflowBundlePath: bundlePath });
  api = engine.apiUrl!;
});

afterAll(async () => {
  if (engine) {
    await handle()
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.client.workflow
      .getHandle(guardrailsWorkflowId(queue))
      .terminate()
      .catch(() => undefined);
    await engine.stop();
  }
  await redis?.remove();
  rmSync(dir, { recursive: true, force: true });
});

describe('the operator API', () => {
  it('answers 401 to no credentials, a wrong or expired token and a bad JWT, and says nothing more', async () => {
    const jwt = (sub: string, key: CryptoKey, expInS: number) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256' })
        .setSubject(sub)
        .setIssuer(issuer)
        .setAudience('remediation')
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1_000) + expInS)
        .sign(key);
    const { privateKey: stranger } = await generateKeyPair('ES256');
    for (const token of [
      undefined,
      newOperatorToken().token,
      tokens.old.token,
      await jwt('carol', stranger, 600),
      await jwt('carol', signingKey, -120),
    ]) {
      const r = await call('GET', '/api/v1/incidents', token);
      expect(r.status).toBe(401);
      expect(r.json).toEqual({ error: 'authentication required: an operator token or a signed bearer token' });
    }
    expect((await call('GET', '/api/v1/whoami', await jwt('carol', signingKey, 600))).json).toMatchObject({
      operator: 'carol',
      role: 'admin',
      credential: 'jwt',
    });
    expect((await call('GET', '/api/v1/whoami', tokens.vera.token)).json).toMatchObject({
      operator: 'vera',
      role: 'viewer',
      credential: 'token',
    });
    // Why each was refused is in the audit log, and no credential is.
    const refusedReasons = audits()
      .filter((a) => a.result === 'unauthenticated')
      .map((a) => a.reason);
    expect(refusedReasons).toEqual([
      'no credentials',
      'unknown token',
      "token of 'olga' expired at 2020-01-01T00:00:00Z",
      'JWT refused: ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      'JWT refused: ERR_JWT_EXPIRED',
    ]);
    expect((await fetch(`${api}/healthz`)).status).toBe(200);
  });

  it('lets only an operator with the right role decide, and records the verified name with the door', async () => {
    await redis.stop();
    const stoppedAt = await redis.startedAt();
    const fired = await postAlerts(engine.webhookUrl, webhookToken, [{ labels: { alertname, severity: 'critical', service: cache } }]);
    expect(fired.status).toBe(200);
    await pendingApproval(handle());

    // Anyone with a token may read.
    const listed = await call('GET', `/api/v1/incidents?open=1&target=${cache}`, tokens.vera.token);
    expect(listed.status).toBe(200);
    expect((listed.json.incidents as Array<{ workflowId: string }>).map((i) => i.workflowId)).toEqual([workflowId]);
    const shown = await call('GET', path(), tokens.vera.token);
    expect((shown.json.live as RunbookStatus).pendingApproval?.step).toBe('approve-restart');

    // A viewer, a responder and an operator scoped to another target are refused: 403, nothing signalled.
    const viewer = await call('POST', path('approve'), tokens.vera.token, { reason: 'ship it' });
    expect(viewer).toEqual({ status: 403, json: { error: "'vera' is a viewer; approving needs the operator role or above" } });
    const responder = await call('POST', path('approve'), tokens.rita.token, {});
    expect(responder.status).toBe(403);
    const scoped = await call('POST', path('approve'), tokens.dana.token, {});
    expect(scoped).toEqual({ status: 403, json: { error: `'dana' may act on targets ${otherTarget} only, not '${cache}'` } });
    const operatorCancel = await call('POST', path('cancel'), tokens.alice.token, {});
    expect(operatorCancel.status).toBe(403);
    // Each refusal is on the incident's timeline, by the verified name.
    const refused = await statusWhen(
      handle(),
      'the refusals on the timeline',
      15_000,
      (s) => s.timeline.filter((e) => e.event.endsWith(' refused')).length >= 4,
    );
    expect(refused.timeline.filter((e) => e.event.endsWith(' refused')).map((e) => [e.actor, e.event])).toEqual([
      ['vera', 'approve refused'],
      ['rita', 'approve refused'],
      ['dana', 'approve refused'],
      ['alice', 'cancel refused'],
    ]);
    expect(refused.pendingApproval?.step).toBe('approve-restart');
    expect(refused.approvedBy).toBeUndefined();
    expect(await redis.startedAt()).toBe(stoppedAt);

    // The responder may acknowledge.
    const ack = await call('POST', path('acknowledge'), tokens.rita.token, { reason: 'looking' });
    expect(ack).toEqual({ status: 200, json: { workflowId, decision: 'acknowledge', operator: 'rita' } });

    // Alice approves, claiming to be someone else in the body: the engine signals her verified name.
    const approved = await call('POST', path('approve'), tokens.alice.token, { reason: 'cache is down', operator: 'carol' });
    expect(approved).toEqual({ status: 200, json: { workflowId, decision: 'approve', operator: 'alice' } });
    const result = (await handle().result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.timeline.find((e) => e.event === 'approved')).toMatchObject({
      actor: 'alice',
      detail: 'approve-restart: cache is down (via api)',
    });
    expect(result.timeline.find((e) => e.event === 'acknowledged')).toMatchObject({ actor: 'rita', detail: 'looking (via api)' });
    expect(await redis.ping()).toBe(true);

    // Approving what is no longer waiting is a conflict, not a silent no-op.
    const late = await call('POST', path('approve'), tokens.alice.token, {});
    expect(late.status).toBe(409);

    const trail = audits().filter((a) => a.subject === workflowId);
    expect(trail.map((a) => [a.operator, a.action, a.result])).toEqual([
      ['vera', 'approve', 'refused'],
      ['rita', 'approve', 'refused'],
      ['dana', 'approve', 'refused'],
      ['alice', 'cancel', 'refused'],
      ['rita', 'acknowledge', 'done'],
      ['alice', 'approve', 'done'],
      ['alice', 'approve', 'conflict'],
    ]);
    expect(trail.every((a) => a.via === 'api')).toBe(true);
    const everything = logLines.join('\n');
    for (const t of Object.values(tokens)) expect(everything).not.toContain(t.token);
    expect(everything).not.toContain(redis.password);
  }, 120_000);

  it('refuses bad input precisely: unknown routes, ids, oversized and malformed bodies', async () => {
    expect((await call('GET', '/api/v1/incidents/not-an-incident', tokens.vera.token)).status).toBe(400);
    expect((await call('GET', `/api/v1/incidents/${encodeURIComponent('incident:nope:nothing')}`, tokens.vera.token)).status).toBe(404);
    expect((await call('GET', '/api/v1/incidents?limit=100000', tokens.vera.token)).status).toBe(400);
    expect((await call('GET', '/api/v1/incidents?outcome=pwned', tokens.vera.token)).status).toBe(400);
    expect((await call('GET', "/api/v1/incidents?target=x'%20OR%20'1'='1", tokens.vera.token)).status).toBe(400);
    expect((await call('POST', path('approve'), tokens.alice.token, { reason: 'x'.repeat(501) })).status).toBe(400);
    expect((await call('DELETE', '/api/v1/incidents', tokens.alice.token)).status).toBe(404);
    const huge = await fetch(`${api}${path('approve')}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.alice.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'x'.repeat(200_000) }),
    });
    expect(huge.status).toBe(413);
    const notJson = await fetch(`${api}${path('acknowledge')}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.alice.token}` },
      body: '{"reason":',
    });
    expect(notJson.status).toBe(400);
    // A run by hand outside an operator's scope is refused; inside it, it starts.
    expect((await call('POST', '/api/v1/runbooks/databaseConnection/runs', tokens.dana.token, { target: cache })).status).toBe(403);
    expect((await call('POST', '/api/v1/maintenance/weekly/runs', tokens.alice.token, {})).status).toBe(403);
    // The destructive slots: read by a viewer; a release needs a run's id, a boolean dryRun and an admin.
    const slots = await call('GET', '/api/v1/slots', tokens.vera.token);
    expect(slots.status).toBe(200);
    expect(Array.isArray(slots.json.slots)).toBe(true);
    expect((await call('POST', '/api/v1/slots/not-a-run/release', tokens.alice.token, {})).status).toBe(400);
    expect(
      (await call('POST', `/api/v1/slots/${encodeURIComponent(workflowId)}/release`, tokens.alice.token, { dryRun: 'yes' })).status,
    ).toBe(400);
    const operatorRelease = await call('POST', `/api/v1/slots/${encodeURIComponent(workflowId)}/release`, tokens.alice.token, {});
    expect(operatorRelease.status).toBe(403);
    expect(operatorRelease.json.error).toContain('needs the admin role');
  });
});
