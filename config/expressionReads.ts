// What a runbook's expressions read, found in their syntax tree rather than their text: the steps
// and step outputs they name (`steps.verify.healthy`), the literals a step's status is compared
// with, and whether they read the alert. The loader checks these against the file's steps, so a
// typo is refused at load instead of failing the run at 3 a.m. Only what is written out is
// reported: an index (`steps.x['a']`, `steps.x[k]`) or `'a' in steps.x` reads nothing checkable,
// and a comprehension or cel.bind variable named `steps` or `alert` is not the run's.
import { parse } from '@marcbachmann/cel-js';

export interface StepRead {
  /** The step id as written: `a_b`, or `a-b` inside `steps['a-b']`. */
  step: string;
  /** `steps.<step>.<field>`; unset when the step is read whole. */
  field?: string;
  /** Literals the field is tested for being equal to: `== 200`, `!= 'ok'`, `in ['ok', 'skipped']`. */
  comparedWith: unknown[];
}

export interface ExpressionReads {
  steps: StepRead[];
  /** `alert` itself is read, anywhere in the expression. */
  alert: boolean;
  /** `alert` is read somewhere other than inside a json(…) call, which quotes and escapes it. */
  alertUnquoted: boolean;
  /**
   * Text that may carry the alert's, read outside json(…): the alert, a step's `error` (an assert's
   * message may be alert text), the run's `incident.outcomeDetail` (an end's detail may be).
   */
  untrustedUnquoted: boolean;
  /** The run's variables read (alert, incident, target, …), `steps` read through a step aside. */
  variables: string[];
}

interface Node {
  op: string;
  args: unknown;
}

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && 'op' in x && 'args' in x;

/** Macros whose first argument names a variable bound in the rest (list.exists(x, …), cel.bind(x, …)). */
const binding = new Set(['all', 'exists', 'exists_one', 'map', 'filter', 'bind']);
/** Equality only: what a field is compared with for being, not for order. */
const comparisons = new Set(['==', '!=']);

/** The reads of one expression; undefined when it does not parse (its own problem is reported elsewhere). */
export function expressionReads(text: string): ExpressionReads | undefined {
  let root: unknown;
  try {
    root = parse(text).ast;
  } catch {
    return undefined;
  }
  const out: ExpressionReads = { steps: [], alert: false, alertUnquoted: false, untrustedUnquoted: false, variables: [] };
  const variables = new Set<string>();
  let inJson = 0;

  /** `steps.x` or `steps['x']`: the step x, when `steps` is the run's. */
  const stepOf = (n: unknown, bound: ReadonlySet<string>): string | undefined => {
    if (!isNode(n) || !['.', '.?', '[]', '[?]'].includes(n.op) || bound.has('steps')) return undefined;
    const [obj, key] = n.args as [unknown, unknown];
    if (!isNode(obj) || obj.op !== 'id' || obj.args !== 'steps') return undefined;
    if (n.op === '.' || n.op === '.?') return key as string;
    if ((n.op === '[]' || n.op === '[?]') && isNode(key) && key.op === 'value' && typeof key.args === 'string') return key.args;
    return undefined;
  };
  /** `steps.x.field`: the read it is, recorded once. */
  const fieldRead = (n: unknown, bound: ReadonlySet<string>): StepRead | undefined => {
    if (!isNode(n) || (n.op !== '.' && n.op !== '.?')) return undefined;
    const [obj, field] = n.args as [unknown, string];
    const step = stepOf(obj, bound);
    return step === undefined ? undefined : { step, field, comparedWith: [] };
  };
  const literal = (n: unknown): n is Node => isNode(n) && n.op === 'value';

  const walk = (n: unknown, bound: ReadonlySet<string>): void => {
    if (Array.isArray(n)) return n.forEach((c) => walk(c, bound));
    if (!isNode(n)) return;
    const read = fieldRead(n, bound);
    if (read) {
      if (read.field === 'error' && inJson === 0) out.untrustedUnquoted = true;
      return void out.steps.push(read);
    }
    if (n.op === '.' && inJson === 0 && !bound.has('incident')) {
      const [obj, field] = n.args as [unknown, unknown];
      if (isNode(obj) && obj.op === 'id' && obj.args === 'incident' && field === 'outcomeDetail') out.untrustedUnquoted = true;
    }
    const step = stepOf(n, bound);
    if (step !== undefined) return void out.steps.push({ step, comparedWith: [] });
    if (n.op === 'id') {
      if (typeof n.args === 'string' && !bound.has(n.args)) variables.add(n.args);
      if (n.args === 'alert' && !bound.has('alert')) {
        out.alert = true;
        if (inJson === 0) out.alertUnquoted = out.untrustedUnquoted = true;
      }
      return;
    }
    if (n.op === 'call' && (n.args as [string, unknown])[0] === 'json') {
      inJson += 1;
      walk((n.args as [string, unknown])[1], bound);
      inJson -= 1;
      return;
    }
    if (comparisons.has(n.op) || n.op === 'in') {
      const [left, right] = n.args as [unknown, unknown];
      const l = fieldRead(left, bound);
      const r = fieldRead(right, bound);
      if (l) {
        out.steps.push(l);
        if (literal(right)) l.comparedWith.push(right.args);
        else if (n.op === 'in' && isNode(right) && right.op === 'list')
          for (const e of right.args as unknown[]) if (literal(e)) l.comparedWith.push(e.args);
      } else walk(left, bound);
      if (r) {
        out.steps.push(r);
        // `'logs' in steps.d.sections` is membership, not a comparison.
        if (n.op !== 'in' && literal(left)) r.comparedWith.push(left.args);
      } else walk(right, bound);
      return;
    }
    if (n.op === 'rcall') {
      const [name, receiver, args] = n.args as [string, unknown, unknown[]];
      const variable = args[0];
      if (binding.has(name) && isNode(variable) && variable.op === 'id' && typeof variable.args === 'string') {
        // `cel` in cel.bind(…) is the namespace, not a variable of the run.
        if (!(name === 'bind' && isNode(receiver) && receiver.op === 'id' && receiver.args === 'cel')) walk(receiver, bound);
        // cel.bind(x, init, body): init is read outside x; a comprehension's body inside it.
        const inside = new Set(bound).add(variable.args);
        if (name === 'bind') {
          walk(args[1], bound);
          walk(args.slice(2), inside);
        } else walk(args.slice(1), inside);
        return;
      }
    }
    walk(n.args, bound);
  };
  walk(root, new Set());
  out.variables = [...variables];
  return out;
}
