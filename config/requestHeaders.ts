// Request headers in the config (a health check's, an action's) and in runbook files (an `http`
// step's): a literal value, or `{ secret: NAME, prefix?: "Bearer " }` naming an entry of the config's
// `secrets`, resolved only in the activity that sends the request (activities/requestHeaders.ts).
import { z } from 'zod';

const secretName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected the name of an entry of secrets');

/**
 * What goes before the secret in the value ("Bearer "): the secret is then the token alone, and is
 * scrubbed wherever a service echoes it, with or without the scheme.
 */
const headerPrefix = z.string().regex(/^[\x20-\x7e]{1,40}$/, 'expected at most 40 printable characters, such as "Bearer "');

export const secretHeader = z.object({ secret: secretName, prefix: headerPrefix.optional() }).strict();

export const headerName = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'expected a header name');

/** A config's headers: literal values checked here, at load. */
export const requestHeaders = z
  .record(
    headerName,
    z.union([
      z
        .string()
        .max(1_000)
        .refine((v) => !/[\r\n\0]/.test(v), 'a header value holds no line break or NUL'),
      secretHeader,
    ]),
  )
  .refine((h) => Object.keys(h).length <= 20, 'at most 20 headers')
  .default({});
