// The runbook language's expressions: CEL (Common Expression Language), the non-Turing-complete
// language Kubernetes and Envoy use for policies. The same code checks an expression when a runbook
// file loads and evaluates it inside the workflow, so it must stay pure: no I/O, no clock, no
// randomness (the library has none), and no Node built-ins (it runs in Temporal's workflow sandbox).
import { Environment } from '@marcbachmann/cel-js';

/** What a condition or template may read. Every name is a map; see docs/runbooks.md. */
export const expressionVariables = ['alert', 'target', 'steps', 'incident', 'item', 'check'] as const;

export interface ExpressionContext {
  alert: Record<string, unknown>;
  target: Record<string, unknown>;
  steps: Record<string, unknown>;
  incident: Record<string, unknown>;
  item: Record<string, unknown>;
  /** waitUntil: the outputs of the latest check. */
  check: Record<string, unknown>;
}

// Bounds a hostile or careless expression at parse time: CEL has no loops, so size bounds cost.
const limits = { maxAstNodes: 400, maxDepth: 24, maxListElements: 100, maxMapEntries: 100, maxCallArguments: 8 };
export const maxExpressionLength = 1_000;

let environment: Environment | undefined;
function env(): Environment {
  if (!environment) {
    environment = new Environment({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false, limits });
    for (const name of expressionVariables) environment.registerVariable(name, 'map');
    // A value as a JSON literal, quoted and escaped: how alert text goes into a request body
    // (`"service": ${{ json(alert.labels.service) }}`) without a label shaping the JSON around it.
    environment.registerFunction('json(dyn): string', (value: unknown) => JSON.stringify(value, jsonValue) ?? 'null');
  }
  return environment;
}

/** CEL's ints are bigints and its maps may be Maps: as JSON, numbers and objects. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
}

type Compiled = ReturnType<Environment['parse']>;
// Parsing is pure, so a cache keyed by the text is safe to share between workflow runs.
const compiled = new Map<string, Compiled>();

function compile(text: string): Compiled {
  let c = compiled.get(text);
  if (!c) {
    if (text.length > maxExpressionLength) throw new Error(`expression longer than ${maxExpressionLength} characters`);
    c = env().parse(text);
    if (compiled.size > 2_000) compiled.clear();
    compiled.set(text, c);
  }
  return c;
}

/**
 * Why an expression cannot be used, or undefined when it can: it must parse, use only the known
 * variables, and (for a condition) be able to produce a bool.
 */
export function expressionProblem(text: string, as: 'condition' | 'value'): string | undefined {
  let c: Compiled;
  try {
    c = compile(text);
  } catch (err) {
    return firstLine(err);
  }
  let checked: { valid: boolean; type?: string; error?: unknown };
  try {
    checked = c.check() as typeof checked;
  } catch (err) {
    return firstLine(err);
  }
  if (!checked.valid) return checked.error ? firstLine(checked.error) : 'the expression does not type-check';
  if (as === 'condition' && checked.type !== 'bool' && checked.type !== 'dyn')
    return `a condition must be a bool, this is a ${checked.type}`;
  return undefined;
}

/** Evaluates a condition; a missing key or a type error is an error naming the expression. */
export function evaluateCondition(text: string, ctx: ExpressionContext): boolean {
  const value = evaluate(text, ctx);
  if (typeof value !== 'boolean') throw new Error(`condition ${JSON.stringify(text)} gave ${describe(value)}, not a bool`);
  return value;
}

export function evaluateValue(text: string, ctx: ExpressionContext): unknown {
  return plain(evaluate(text, ctx));
}

function evaluate(text: string, ctx: ExpressionContext): unknown {
  try {
    return compile(text)(celValues(ctx) as Record<string, unknown>);
  } catch (err) {
    throw new Error(`expression ${JSON.stringify(text)} failed: ${firstLine(err)}`);
  }
}

/** `${{ expr }}` segments of a template string. */
const templatePart = /\$\{\{([\s\S]*?)\}\}/g;

export function templateExpressions(text: string): string[] {
  return [...text.matchAll(templatePart)].map((m) => m[1]!.trim());
}

export function isTemplate(text: string): boolean {
  return text.includes('${{');
}

/** Replaces every `${{ expr }}` with the expression's value rendered as text. */
export function renderTemplate(text: string, ctx: ExpressionContext): string {
  if (!isTemplate(text)) return text;
  return text.replace(templatePart, (_, expr: string) => render(evaluateValue(expr.trim(), ctx)));
}

function render(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Integers become CEL ints (BigInt), so `steps.restart.attempts + 1` and `> 2` work as an SRE writes
 * them; every other value passes as it is. Only plain data reaches here (workflow state).
 */
function celValues(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(celValues);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = celValues(v);
    return out;
  }
  return value;
}

/** Back from CEL: BigInts become numbers, so results can travel in workflow history as JSON. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v)]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return `the int ${value}`;
  return `a ${typeof value}`;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.slice(0, 300);
}
