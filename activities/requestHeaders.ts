// Request headers written in the config or a runbook file: a literal value, or `{ secret: NAME,
// prefix?: "Bearer " }` naming an entry of the config's `secrets`, resolved here, in the activity that sends the request,
// and nowhere else (workflow history carries the name only).
import type { Secret } from '../config/secret.js';
import { badInput } from './failures.js';

export type HeaderValues = Record<string, string | { secret: string; prefix?: string }>;

/** Header names lower-cased, secrets revealed; refused (non-retryable) when a name or value is unusable. */
export function resolveHeaders(what: string, given: HeaderValues | undefined, secrets: Record<string, Secret>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(given ?? {})) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(name)) throw badInput(what, `'${name.slice(0, 64)}' is not a header name`);
    let text: string;
    if (typeof value === 'string') {
      text = value;
    } else if (typeof value?.secret === 'string') {
      const secret = Object.hasOwn(secrets, value.secret) ? secrets[value.secret] : undefined;
      if (!secret)
        throw badInput(
          what,
          `header ${name}: no secret named '${value.secret}' in the config's secrets (known: ${Object.keys(secrets).join(', ') || 'none'})`,
        );
      if (value.prefix !== undefined && (typeof value.prefix !== 'string' || !/^[\x20-\x7e]{1,40}$/.test(value.prefix)))
        throw badInput(what, `header ${name}: the prefix must be at most 40 printable characters`);
      text = `${value.prefix ?? ''}${secret.reveal()}`;
    } else {
      throw badInput(what, `header ${name}: a value is a string or { secret: NAME }`);
    }
    // Checked here rather than left to fetch, whose message would quote the value.
    if (/[\r\n\0]/.test(text)) throw badInput(what, `header ${name}: the value holds a line break or NUL`);
    out[name.toLowerCase()] = text;
  }
  return out;
}
