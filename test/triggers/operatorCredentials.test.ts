// Who the operator API believes a caller is, and what the policy lets them do: hashed tokens, signed
// JWTs from a configured key set, and roles narrowed by runbook and target. No stack needed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deciders, mayDo } from '../../config/operatorPolicy.js';
import type { Operator } from '../../config/schema.js';
import { Secret } from '../../config/secret.js';
import { hashToken, newOperatorToken, OperatorCredentials } from '../../triggers/operators/credentials.js';

const dir = mkdtempSync(join(tmpdir(), 'operator-credentials-'));
const jwksFile = join(dir, 'jwks.json');
const issuer = 'https://idp.example.test';
const audience = 'remediation';
let signingKey: CryptoKey;
let otherKey: CryptoKey;

const alice = newOperatorToken();
const victor = newOperatorToken();
const operators: Operator[] = [
  { name: 'alice', role: 'operator', tokenHash: Secret.of(alice.tokenHash) },
  { name: 'victor', role: 'viewer', tokenHash: Secret.of(victor.tokenHash), tokenExpires: '2026-01-01T00:00:00Z' },
  { name: 'carol', role: 'admin' },
];
const now = Date.parse('2026-12-04T03:00:00Z');

function credentials(jwt = true): OperatorCredentials {
  return new OperatorCredentials(
    {
      operators,
      api: {
        listen: '127.0.0.1:0',
        maxBodyBytes: 65_536,
        ...(jwt
          ? { jwt: { jwksFile, issuer, audience, subjectClaim: 'sub', algorithms: ['ES256'], maxLifetime: '12h', clockTolerance: '30s' } }
          : {}),
      },
    },
    () => now,
  );
}

function jwt(
  claims: Record<string, unknown>,
  opts: { key?: CryptoKey; iat?: number; exp?: number; iss?: string; aud?: string; alg?: string } = {},
): Promise<string> {
  const iat = opts.iat ?? now / 1_000 - 60;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: 'k1' })
    .setIssuer(opts.iss ?? issuer)
    .setAudience(opts.aud ?? audience)
    .setIssuedAt(Math.floor(iat))
    .setExpirationTime(Math.floor(opts.exp ?? iat + 3_600))
    .sign(opts.key ?? signingKey);
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  ({ privateKey: otherKey } = await generateKeyPair('ES256'));
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('operator tokens', () => {
  it('makes a random prefixed token whose hash the config carries', () => {
    expect(alice.token).toMatch(/^rmd_[A-Za-z0-9_-]{43}$/);
    expect(alice.tokenHash).toBe(hashToken(alice.token));
    expect(newOperatorToken().token).not.toBe(alice.token);
  });

  it('accepts a configured token as its operator, and nothing else', async () => {
    const c = credentials();
    const ok = await c.authenticate(`Bearer ${alice.token}`, 'api');
    expect(ok).toMatchObject({ ok: true, identity: { operator: { name: 'alice' }, via: 'api', credential: 'token' } });
    for (const header of [
      undefined,
      '',
      'Basic YWxpY2U6eA==',
      `Bearer ${alice.token}x`,
      `Bearer ${newOperatorToken().token}`,
      `Bearer ${alice.tokenHash}`,
      `Bearer ${'a'.repeat(100_000)}`,
    ]) {
      expect((await c.authenticate(header, 'api')).ok, String(header).slice(0, 40)).toBe(false);
    }
  });

  it('refuses a token past its tokenExpires', async () => {
    const r = await credentials().authenticate(`Bearer ${victor.token}`, 'cli');
    expect(r).toEqual({ ok: false, reason: "token of 'victor' expired at 2026-01-01T00:00:00Z" });
  });
});

describe('signed bearer tokens (JWT)', () => {
  it('accepts a token signed by the configured key set, for the configured operator it names', async () => {
    const r = await credentials().authenticate(`Bearer ${await jwt({ sub: 'carol' })}`, 'api');
    expect(r).toMatchObject({ ok: true, identity: { operator: { name: 'carol', role: 'admin' }, credential: 'jwt' } });
  });

  it('takes the role from the config, never from the token', async () => {
    const r = await credentials().authenticate(`Bearer ${await jwt({ sub: 'alice', role: 'admin', roles: ['admin'] })}`, 'api');
    expect(r.ok && r.identity.operator.role).toBe('operator');
  });

  it.each([
    ['expired', () => jwt({ sub: 'carol' }, { iat: now / 1_000 - 7_200, exp: now / 1_000 - 3_600 }), 'JWT refused: ERR_JWT_EXPIRED'],
    ['signed by another key', () => jwt({ sub: 'carol' }, { key: otherKey }), 'JWT refused: ERR_JWS_SIGNATURE_VERIFICATION_FAILED'],
    ['from another issuer', () => jwt({ sub: 'carol' }, { iss: 'https://evil.test' }), 'JWT refused: ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['for another audience', () => jwt({ sub: 'carol' }, { aud: 'grafana' }), 'JWT refused: ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['naming nobody configured', () => jwt({ sub: 'mallory' }), 'JWT sub "mallory" is not a configured operator'],
    ['valid for a week', () => jwt({ sub: 'carol' }, { exp: now / 1_000 + 7 * 86_400 }), 'JWT lifetime'],
    // An hour from iat to exp, but iat a year ahead: it would pass as a one-hour token for a year.
    [
      'issued in the future',
      () => jwt({ sub: 'carol' }, { iat: now / 1_000 + 364 * 86_400 }),
      'JWT refused: ERR_JWT_CLAIM_VALIDATION_FAILED (iat)',
    ],
  ])('refuses a JWT %s', async (_what, make, reason) => {
    const r = await credentials().authenticate(`Bearer ${await make()}`, 'api');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(reason);
  });

  it('accepts a JWT issued a few seconds ahead of this clock, within api.jwt.clockTolerance', async () => {
    const r = await credentials().authenticate(`Bearer ${await jwt({ sub: 'carol' }, { iat: now / 1_000 + 20 })}`, 'api');
    expect(r.ok).toBe(true);
  });

  it('refuses an unsigned ("alg": "none") token', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none' })}.${b64({ sub: 'carol', iss: issuer, aud: audience, iat: now / 1_000, exp: now / 1_000 + 60 })}.`;
    expect((await credentials().authenticate(`Bearer ${unsigned}`, 'api')).ok).toBe(false);
  });

  it('refuses every JWT when no key set is configured', async () => {
    expect(await credentials(false).authenticate(`Bearer ${await jwt({ sub: 'carol' })}`, 'api')).toEqual({
      ok: false,
      reason: 'a JWT, and no api.jwt is configured',
    });
  });

  it('refuses a key set that holds a private key', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const leaked = join(dir, 'leaked.json');
    writeFileSync(leaked, JSON.stringify({ keys: [await exportJWK(pair.privateKey)] }));
    expect(
      () =>
        new OperatorCredentials({
          operators,
          api: {
            listen: '127.0.0.1:0',
            maxBodyBytes: 1,
            jwt: {
              jwksFile: leaked,
              issuer,
              audience,
              subjectClaim: 'sub',
              algorithms: ['ES256'],
              maxLifetime: '1h',
              clockTolerance: '0s',
            },
          },
        }),
    ).toThrow(/holds a private key/);
  });
});

describe('the operator policy', () => {
  const o = (role: Operator['role'], scope: Partial<Operator> = {}): Operator => ({ name: 'x', role, ...scope });

  it('lets each role do what the roles before it can, and no more', () => {
    expect(mayDo(o('viewer'), 'read').allowed).toBe(true);
    expect(mayDo(o('viewer'), 'acknowledge')).toEqual({
      allowed: false,
      reason: "'x' is a viewer; acknowledging needs the responder role or above",
    });
    expect(mayDo(o('responder'), 'acknowledge').allowed).toBe(true);
    expect(mayDo(o('responder'), 'approve').allowed).toBe(false);
    expect(mayDo(o('operator'), 'approve').allowed).toBe(true);
    expect(mayDo(o('operator'), 'run').allowed).toBe(true);
    expect(mayDo(o('operator'), 'cancel').allowed).toBe(false);
    expect(mayDo(o('operator'), 'maintenance').allowed).toBe(false);
    expect(mayDo(o('admin'), 'maintenance').allowed).toBe(true);
  });

  it('narrows actions, never reading, to the runbooks and targets an operator lists', () => {
    const dba = o('operator', { runbooks: ['databaseConnection'], targets: ['orders-db'] });
    expect(mayDo(dba, 'approve', { runbook: 'databaseConnection', target: 'orders-db' }).allowed).toBe(true);
    expect(mayDo(dba, 'approve', { runbook: 'databaseConnection', target: 'web' })).toEqual({
      allowed: false,
      reason: "'x' may act on targets orders-db only, not 'web'",
    });
    expect(mayDo(dba, 'approve', { runbook: 'serviceDown', target: 'orders-db' }).allowed).toBe(false);
    expect(mayDo(dba, 'approve', {}).allowed).toBe(false);
    expect(mayDo(o('admin', { targets: ['a'] }), 'maintenance', { targets: ['a', 'b'] }).allowed).toBe(false);
    expect(mayDo(dba, 'read', { target: 'web' }).allowed).toBe(true);
  });

  it('hands a run the names that may decide on it, and those that may only acknowledge', () => {
    const list: Operator[] = [
      { name: 'ann', role: 'operator' },
      { name: 'dba', role: 'operator', targets: ['orders-db'] },
      { name: 'res', role: 'responder' },
      { name: 'vic', role: 'viewer' },
    ];
    expect(deciders(list, { runbook: 'serviceDown', target: 'web' })).toEqual({ approvers: ['ann'], responders: ['res'] });
    expect(deciders(list, { runbook: 'databaseConnection', target: 'orders-db' })).toEqual({
      approvers: ['ann', 'dba'],
      responders: ['res'],
    });
  });
});
