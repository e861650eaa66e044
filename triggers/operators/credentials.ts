// Who is calling the operator API: a bearer token whose SHA-256 a configured operator carries, or a
// signed JWT from the configured identity provider naming a configured operator. The verified
// operator, never a name the caller supplies, is what every action is taken as.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose';
import { parseDuration } from '../../config/duration.js';
import { tokenHashPattern, type EngineConfig, type Operator, type OperatorApiConfig } from '../../config/schema.js';

/** How an operator reached the engine: recorded with every action they take. */
export type Door = 'api' | 'cli' | 'console' | 'chat';

export interface Identity {
  operator: Operator;
  via: Door;
  /** What proved it: a hashed token, a signed JWT, a signed chat request. */
  credential: 'token' | 'jwt' | 'chat';
}

export type Authentication = { ok: true; identity: Identity } | { ok: false; reason: string };

/** Engine-made tokens: a prefix people and secret scanners recognise, then 32 random bytes. */
export const tokenPrefix = 'rmd_';
const tokenPattern = /^rmd_[A-Za-z0-9_-]{43}$/;
/** Longer than any token or JWT we accept: refused before hashing or parsing. */
const maxCredentialChars = 8_192;

export function newOperatorToken(): { token: string; tokenHash: string } {
  const token = `${tokenPrefix}${randomBytes(32).toString('base64url')}`;
  return { token, tokenHash: hashToken(token) };
}

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

export class OperatorCredentials {
  private readonly hashed: Array<{ digest: Buffer; operator: Operator }>;
  private readonly byName: Map<string, Operator>;
  private readonly jwt?: { config: NonNullable<OperatorApiConfig['jwt']>; keys: ReturnType<typeof createLocalJWKSet> };

  constructor(
    config: Pick<EngineConfig, 'operators' | 'api'>,
    private readonly now: () => number = Date.now,
  ) {
    this.hashed = config.operators.flatMap((operator) => {
      const hash = operator.tokenHash?.reveal();
      if (hash === undefined) return [];
      if (!tokenHashPattern.test(hash))
        throw new Error(`operators '${operator.name}' tokenHash: expected "sha256:" and 64 lowercase hex digits`);
      return [{ digest: Buffer.from(hash.slice('sha256:'.length), 'hex'), operator }];
    });
    this.byName = new Map(config.operators.map((o) => [o.name, o]));
    const jwt = config.api?.jwt;
    if (jwt) this.jwt = { config: jwt, keys: createLocalJWKSet(readKeySet(jwt.jwksFile)) };
  }

  /** The operator configured under this name (chat maps its user id to one, then asks here). */
  named(name: string): Operator | undefined {
    return this.byName.get(name);
  }

  operatorForChatUser(userId: string): Operator | undefined {
    for (const o of this.byName.values()) if (o.chatUserId === userId) return o;
    return undefined;
  }

  /** Checks an Authorization header's bearer credential. Reasons are for the audit log, not the caller. */
  async authenticate(authorization: string | undefined, via: Door): Promise<Authentication> {
    if (!authorization) return { ok: false, reason: 'no credentials' };
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.slice(0, maxCredentialChars + 16));
    if (!match || match[1]!.length > maxCredentialChars) return { ok: false, reason: 'not a bearer credential' };
    const credential = match[1]!;
    if (tokenPattern.test(credential)) return this.byToken(credential, via);
    if (credential.split('.').length === 3) return this.byJwt(credential, via);
    return { ok: false, reason: 'unrecognised credential' };
  }

  private byToken(token: string, via: Door): Authentication {
    const digest = createHash('sha256').update(token, 'utf8').digest();
    // Every configured hash is compared, in constant time each: how long a refusal takes says
    // nothing about which operator's token was close.
    let found: Operator | undefined;
    for (const h of this.hashed) if (timingSafeEqual(h.digest, digest)) found = h.operator;
    if (!found) return { ok: false, reason: 'unknown token' };
    if (found.tokenExpires && Date.parse(found.tokenExpires) <= this.now())
      return { ok: false, reason: `token of '${found.name}' expired at ${found.tokenExpires}` };
    return { ok: true, identity: { operator: found, via, credential: 'token' } };
  }

  private async byJwt(token: string, via: Door): Promise<Authentication> {
    if (!this.jwt) return { ok: false, reason: 'a JWT, and no api.jwt is configured' };
    const { config, keys } = this.jwt;
    const maxLifetimeMs = parseDuration(config.maxLifetime);
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: Math.round(parseDuration(config.clockTolerance) / 1_000),
        currentDate: new Date(this.now()),
        requiredClaims: ['exp', 'iat', config.subjectClaim],
        // The lifetime below is exp - iat as the token states them: only with maxTokenAge does jose
        // also refuse an iat ahead of the clock (past clockTolerance), without which a token issued
        // a year ahead with exp an hour after it would pass as a one-hour token valid for a year.
        maxTokenAge: Math.round(maxLifetimeMs / 1_000),
      });
      const lifetimeS = (payload.exp ?? 0) - (payload.iat ?? 0);
      if (lifetimeS * 1_000 > maxLifetimeMs)
        return { ok: false, reason: `JWT lifetime ${lifetimeS}s is over api.jwt.maxLifetime (${config.maxLifetime})` };
      const subject = payload[config.subjectClaim];
      const operator = typeof subject === 'string' ? this.byName.get(subject) : undefined;
      if (!operator)
        return {
          ok: false,
          reason: `JWT ${config.subjectClaim} ${JSON.stringify(String(subject).slice(0, 64))} is not a configured operator`,
        };
      return { ok: true, identity: { operator, via, credential: 'jwt' } };
    } catch (err) {
      // Which claim failed (iss, aud, iat in the future) tells the audit log's reader what to fix.
      if (err instanceof joseErrors.JWTClaimValidationFailed) return { ok: false, reason: `JWT refused: ${err.code} (${err.claim})` };
      if (err instanceof joseErrors.JOSEError) return { ok: false, reason: `JWT refused: ${err.code}` };
      throw err;
    }
  }
}

function readKeySet(path: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`api.jwt.jwksFile ${path}: cannot read a JSON key set: ${(err as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw new Error(`api.jwt.jwksFile ${path}: expected {"keys": [...]} with at least one key`);
  // A key set is public keys only: a private key here means someone copied the wrong file.
  if (keys.some((k) => typeof k === 'object' && k !== null && 'd' in k))
    throw new Error(`api.jwt.jwksFile ${path}: holds a private key; give the public key set only`);
  return parsed as JSONWebKeySet;
}
