// How a config problem is worded: the key, what is wrong, and the value, except where the schema
// holds a secret. Which positions are secret is read from the schema (secretRef's marker), not
// guessed from key names: a named secret, a webhook URL and a password are all hidden, whatever
// they are called, and so is anything that was meant to be one (a whole channel written as its URL).
import { z, type ZodIssue, type ZodTypeAny } from 'zod';
import { engineConfigShape, secretMarker } from './schema.js';
import { redactUrls } from './secret.js';

/**
 * "key: problem (got value)". The value is shown only where the schema holds no secret: a secret's
 * position (an inline password, a webhook URL, a named secret) is never echoed, nor is anything
 * inside a value that is shown (a whole channel written as a string, an object under a secret key);
 * URLs lose their user info and query.
 */
export function describeIssue(issue: ZodIssue, raw: unknown): string {
  const key = issue.path.join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys') return `${key}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const value = valueAt(raw, issue.path);
  const at = schemaAt(issue.path, raw);
  if (value === undefined || at.secret) return `${key}: ${issue.message}`;
  const shown = masked(value, at.schema);
  const text = typeof shown === 'string' && /^\[a \w+\]$/.test(shown) ? shown.slice(1, -1) : JSON.stringify(shown)?.slice(0, 80);
  return `${key}: ${issue.message} (got ${text})`;
}

/** The schema at a path of the raw config (discriminated unions chosen by the raw value), and whether it is or is inside a secret. */
function schemaAt(path: Array<string | number>, raw: unknown): { schema: ZodTypeAny | undefined; secret: boolean } {
  let schema: ZodTypeAny | undefined = engineConfigShape;
  let value: unknown = raw;
  let secret = false;
  for (const key of path) {
    const step = unwrap(schema);
    if (step.secret) secret = true;
    schema = childSchema(step.schema, key, value);
    value = value !== null && typeof value === 'object' ? (value as Record<string | number, unknown>)[key] : undefined;
  }
  const last = unwrap(schema);
  return { schema: last.schema, secret: secret || last.secret };
}

function unwrap(schema: ZodTypeAny | undefined): { schema: ZodTypeAny | undefined; secret: boolean } {
  let secret = false;
  let s = schema;
  for (;;) {
    if (!s) return { schema: s, secret };
    if (s.description === secretMarker) secret = true;
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodDefault) s = s.removeDefault();
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else return { schema: s, secret };
  }
}

function childSchema(schema: ZodTypeAny | undefined, key: string | number, container: unknown): ZodTypeAny | undefined {
  if (schema instanceof z.ZodObject) return (schema.shape as Record<string, ZodTypeAny>)[key];
  if (schema instanceof z.ZodRecord) return schema.valueSchema;
  if (schema instanceof z.ZodArray) return schema.element;
  if (schema instanceof z.ZodDiscriminatedUnion) {
    const tag =
      container !== null && typeof container === 'object' ? (container as Record<string, unknown>)[schema.discriminator] : undefined;
    const option = schema.optionsMap.get(tag as never);
    // An unknown kind: a key any of the kinds knows is as sensitive as it is there.
    const options: ZodTypeAny[] = option ? [option] : [...schema.optionsMap.values()];
    const children = options.map((o) => childSchema(o, key, container)).filter((c): c is ZodTypeAny => c !== undefined);
    return children.find((c) => unwrap(c).secret) ?? children[0];
  }
  if (schema instanceof z.ZodUnion) {
    const children = (schema.options as ZodTypeAny[])
      .map((o) => childSchema(unwrap(o).schema, key, container))
      .filter((c): c is ZodTypeAny => c !== undefined);
    return children.find((c) => unwrap(c).secret) ?? children[0];
  }
  return undefined;
}

const leaves = [z.ZodString, z.ZodNumber, z.ZodBoolean, z.ZodEnum, z.ZodLiteral, z.ZodNativeEnum];

/** A copy of a value fit to be shown: secrets replaced, and text where none is expected reduced to its type. */
function masked(value: unknown, schema: ZodTypeAny | undefined): unknown {
  const { schema: s, secret } = unwrap(schema);
  if (secret) return '[redacted]';
  if (value === null || typeof value !== 'object') {
    if (!s || !leaves.some((leaf) => s instanceof leaf)) return value === null ? null : `[a ${typeof value}]`;
    return typeof value === 'string' ? redactUrls(value) : value;
  }
  if (Array.isArray(value)) return value.map((v, i) => masked(v, childSchema(s, i, value)));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, masked(v, childSchema(s, k, value))]));
}

function valueAt(raw: unknown, path: Array<string | number>): unknown {
  let cur: unknown = raw;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}
