// Text that leaves an activity from somewhere else (a service's log, an HTTP answer) may echo a
// password or token the engine also holds: every secret in the config is scrubbed from it.
import { Secret } from '../config/secret.js';

/**
 * Every Secret anywhere in the config (targets' passwords, named secrets, channel URLs, TLS keys)
 * that this process has read. The loader reads all of them in the engine; a host agent reads only
 * its own, and is not made to read the others just to look for them.
 */
export function configSecrets(config: object): Secret[] {
  const found: Secret[] = [];
  const seen = new WeakSet<object>();
  const walk = (v: unknown): void => {
    if (v instanceof Secret) return void (v.resolved && found.push(v));
    if (typeof v === 'string') return void found.push(...urlCredentials(v));
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    for (const child of Array.isArray(v) ? v : Object.values(v)) walk(child);
  };
  walk(config);
  return longestFirst(found);
}

/** A query parameter whose name says it carries a credential (the whole name, any case, - or _). */
const credentialParam =
  /^(access[-_]?token|auth[-_]?token|id[-_]?token|refresh[-_]?token|token|api[-_]?key|apikey|key|secret|client[-_]?secret|password|passwd|pass|pwd|auth|authorization|sig|signature|x-amz-signature|session[-_]?id|sessionid|credential|credentials)$/i;

/**
 * Credentials written into a configured URL (a health URL with user:password@, or ?token=…): plain
 * config text, not secrets, yet an endpoint that echoes its request ("Cannot GET /health?token=…")
 * would carry them into a diagnosis, the history and a page. Scrubbed like secrets.
 */
function urlCredentials(text: string): Secret[] {
  if (!/^https?:\/\//i.test(text)) return [];
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return [];
  }
  const values = new Set<string>();
  const decoded = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  };
  if (url.password) values.add(url.password).add(decoded(url.password));
  // A credential by its parameter's name (6 characters or more), or any value long enough to be one.
  const secretLike = (name: string, value: string) => value.length >= 6 && (credentialParam.test(name) || value.length >= 32);
  for (const [name, value] of url.searchParams) if (secretLike(name, value)) values.add(value);
  for (const raw of url.search.slice(1).split('&')) {
    const at = raw.indexOf('=');
    if (at > 0 && secretLike(decoded(raw.slice(0, at)), raw.slice(at + 1))) values.add(raw.slice(at + 1));
  }
  return [...values].map((v) => Secret.of(v));
}

/**
 * The secrets already read (redact skips the others, and reading one here could fail), longest
 * first: a secret that contains another is removed whole, not around the shorter one.
 */
export function longestFirst(secrets: Secret[]): Secret[] {
  return secrets.filter((s) => s.resolved).sort((a, b) => b.reveal().length - a.reveal().length);
}
