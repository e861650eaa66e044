// Reads runbook files: YAML → checked definitions, with every problem named by file, line, step id,
// key and value, so an SRE fixes a runbook from the message alone. Structure is checked here
// (catalog, ids, jumps, expressions); what the definition names in the engine's config (targets,
// channels, URLs, secrets) is checked by checkRunbookReferences once both are loaded.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { ZodIssue } from 'zod';
import { expressionReads } from './expressionReads.js';
import { expressionProblem, isTemplate, templateExpressions } from './expressions.js';
import { runPollingProblem, stepPollingProblem } from './runbookPolling.js';
import {
  groupOutputs,
  runbookFile,
  selectingTemplateParams,
  stepCatalog,
  stepOutputs,
  stepShape,
  stepStateFields,
  stepStatuses,
  stepTypes,
  templateParams,
  type ActionStep,
  type RunbookDefinition,
  type Step,
  type StepType,
} from './runbookSchema.js';

export class RunbookError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid runbook${problems.length > 1 ? 's' : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RunbookError';
  }
}

export type Path = Array<string | number>;

/** Finds the line of a path in the document, or of its nearest existing parent. */
type Locate = (path: Path) => number | undefined;

const maxFileBytes = 256 * 1024;

/** Every `*.yaml` / `*.yml` in the folder, by runbook name. Problems of all files are reported together. */
export function loadRunbookDir(dir: string): Record<string, RunbookDefinition> {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
  } catch (err) {
    throw new RunbookError([`${dir}: cannot read the runbooks folder: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const out: Record<string, RunbookDefinition> = {};
  const problems: string[] = [];
  for (const f of files) {
    const path = join(dir, f);
    try {
      const def = loadRunbookFile(path);
      const earlier = out[def.name];
      if (earlier) problems.push(`${path}: runbook name "${def.name}" is already used by ${earlier.source}`);
      else out[def.name] = def;
    } catch (err) {
      if (err instanceof RunbookError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new RunbookError(problems);
  return out;
}

export function loadRunbookFile(path: string): RunbookDefinition {
  let text: string;
  try {
    if (statSync(path).size > maxFileBytes) throw new RunbookError([`${path}: larger than ${maxFileBytes} bytes`]);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof RunbookError) throw err;
    throw new RunbookError([`${path}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parseRunbook(text, path);
}

/** Parses and checks one runbook's text; `source` names it in every problem. */
export function parseRunbook(text: string, source: string): RunbookDefinition {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new RunbookError(doc.errors.map((e) => `${source}:${e.linePos?.[0]?.line ?? '?'}: not valid YAML: ${e.message.split('\n')[0]}`));
  }
  const locate: Locate = (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const raw = doc.toJS({ maxAliasCount: 50 }) as unknown;
  const problems: string[] = [];
  const say = (path: Path, message: string, stepIdOf?: string, exact?: Path) => {
    const line = (exact && locate(exact)) ?? locate(path);
    const where = stepIdOf ? ` step "${stepIdOf}":` : '';
    problems.push(`${source}${line ? `:${line}` : ''}:${where} ${path.join('.') || '(top level)'}: ${message}`);
  };

  const top = runbookFile.safeParse(raw);
  if (!top.success) {
    for (const issue of top.error.issues) say(issue.path, issueText(issue, raw), undefined, keyPath(issue, issue.path));
    throw new RunbookError(problems);
  }
  const file = top.data;
  const ids = new Map<string, Path>();
  const read: Reader = { doc: raw, say, ids, locate };
  const steps = file.steps.map((s, i) => readStep(s, ['steps', i], read, false));
  const finallySteps = file.finally.map((s, i) => readStep(s, ['finally', i], read, true));
  if (problems.length === 0) checkFlow(steps, finallySteps, say);
  if (problems.length === 0) checkStepReferences([...steps, ...finallySteps] as Step[], ids, say);
  if (problems.length === 0) {
    const p = runPollingProblem([...steps, ...finallySteps] as Step[]);
    if (p) say([...ids.get(p.step.id.replaceAll('-', '_'))!, ...p.key.split('.')], p.message, p.step.id);
  }
  if (problems.length > 0) throw new RunbookError(problems);
  return {
    name: file.name,
    description: file.description,
    appliesTo: file.appliesTo,
    kind: file.kind,
    source: basename(source),
    sha256: createHash('sha256').update(text).digest('hex'),
    steps: steps as Step[],
    finally: finallySteps as Step[],
  };
}

type Say = (path: Path, message: string, stepId?: string, exact?: Path) => void;

/** An unknown key's own line, not its parent's. */
function keyPath(issue: ZodIssue, path: Path): Path | undefined {
  return issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...path, issue.keys[0]] : undefined;
}

interface Reader {
  doc: unknown;
  say: Say;
  ids: Map<string, Path>;
  locate: Locate;
}

/**
 * Steps that only the runbook's top-level `steps` may hold, and why. A run has one pending approval
 * and one escalation, and carries them across continue-as-new only from a top-level wait (a group's
 * or finally's would grow the history until Temporal ends the run); it holds one maintenance window.
 */
const topLevelOnly: Partial<Record<StepType, string>> = {
  approval: 'a run waits on one approval at a time, and only a top-level wait carries over when the run continues as new',
  escalate:
    'only a top-level escalation carries over when the run continues as new; in a group or in finally its history grows until Temporal ends the run',
  openWindow: 'a run holds one maintenance window, opened by its steps and closed in finally',
};

function readStep(raw: unknown, path: Path, read: Reader, inFinally: boolean): Step | undefined {
  const { doc, say, ids } = read;
  const line = read.locate(path);
  const parsed = (stepShape as import('zod').ZodType<Record<string, unknown>>).safeParse(raw);
  const rawId = typeof (raw as { id?: unknown })?.id === 'string' ? (raw as { id: string }).id : undefined;
  if (!parsed.success) {
    // The union's issues are hard to read; report the most specific branch that applies.
    const r = raw as Record<string, unknown> | null;
    const branch = r && typeof r === 'object' ? ('parallel' in r ? 0 : 'forEach' in r ? 1 : 2) : 2;
    const union = parsed.error.issues.find((i) => i.code === 'invalid_union') as
      (ZodIssue & { unionErrors?: Array<{ issues: ZodIssue[] }> }) | undefined;
    const issues = union?.unionErrors?.[branch]?.issues ?? parsed.error.issues;
    // A group's children are read one by one, each reported as its own step with its own key, not
    // as "Invalid input" under the group.
    const childKey = branch === 0 ? 'parallel' : branch === 1 ? 'steps' : undefined;
    const rawChildren = childKey ? (r as Record<string, unknown>)[childKey] : undefined;
    const ofChild = (issue: ZodIssue) => Array.isArray(rawChildren) && issue.path[0] === childKey && typeof issue.path[1] === 'number';
    for (const issue of issues.filter((i) => !ofChild(i)))
      say([...path, ...issue.path], issueText(issue, valueAtPath(doc, path)), rawId, keyPath(issue, [...path, ...issue.path]));
    const badChildren = new Set(issues.filter(ofChild).map((i) => i.path[1] as number));
    for (const i of badChildren) readStep((rawChildren as unknown[])[i], [...path, childKey!, i], read, inFinally);
    return undefined;
  }
  const s = parsed.data as Record<string, unknown> & { id: string };
  // `a-b` is also readable as `steps.a_b` in expressions, so the two spellings are one id.
  const key = s.id.replaceAll('-', '_');
  if (ids.has(key)) say([...path, 'id'], `step id "${s.id}" is used twice (first at ${ids.get(key)!.join('.')})`, s.id);
  ids.set(key, path);
  const base = {
    id: s.id,
    ...(s.when !== undefined ? { when: s.when as string } : {}),
    ...(s.timeout !== undefined ? { timeoutMs: s.timeout as number } : {}),
    onFailure: s.onFailure as ActionStep['onFailure'],
    ...(s.description !== undefined ? { description: s.description as string } : {}),
  };
  if (s.when !== undefined) {
    const problem = expressionProblem(s.when as string, 'condition');
    if (problem) say([...path, 'when'], `condition ${JSON.stringify(s.when)} cannot be used: ${problem}`, s.id);
  }
  if (inFinally && typeof s.onFailure === 'object') say([...path, 'onFailure'], 'a finally step cannot jump', s.id);

  if (Array.isArray(s.parallel) || Array.isArray(s.steps)) {
    const kind = Array.isArray(s.parallel) ? 'parallel' : 'forEach';
    const childKey = kind === 'parallel' ? 'parallel' : 'steps';
    // The children as written: the group's own parse has already turned their durations into numbers.
    const rawChildren = (raw as Record<string, unknown[]>)[childKey]!;
    const children = rawChildren.map((c, i) => readStep(c, [...path, childKey, i], read, inFinally));
    children.forEach((c, i) => {
      if (c && c.kind === 'action' && c.uses === 'end')
        say([...path, childKey, i, 'uses'], 'a run ends from its top-level steps, not from inside a group', c.id);
      if (c && typeof c.onFailure === 'object')
        say([...path, childKey, i, 'onFailure'], 'a step inside a group cannot jump; let the group jump', c.id);
      if (c && c.kind !== 'action') say([...path, childKey, i], 'groups do not nest', c.id);
      if (c && c.kind === 'action' && topLevelOnly[c.uses])
        say([...path, childKey, i, 'uses'], `${c.uses} is a top-level step, not one inside a group: ${topLevelOnly[c.uses]}`, c.id);
    });
    if (s.retry !== undefined) say([...path, 'retry'], 'retry applies to single steps, not groups', s.id);
    return { kind, ...base, steps: children as Step[], ...(line ? { line } : {}) };
  }

  const uses = s.uses as string;
  if (inFinally && topLevelOnly[uses as StepType])
    say([...path, 'uses'], `${uses} is a step of the runbook's steps, not of finally: ${topLevelOnly[uses as StepType]}`, s.id);
  if (!(stepTypes as string[]).includes(uses)) {
    say([...path, 'uses'], `unknown step type "${uses}" (known: ${stepTypes.join(', ')})`, s.id);
    return undefined;
  }
  const params = stepCatalog[uses as StepType].safeParse(s.with ?? {});
  if (!params.success) {
    for (const issue of params.error.issues)
      say(
        [...path, 'with', ...issue.path],
        issueText(issue, valueAtPath(doc, [...path, 'with'])),
        s.id,
        keyPath(issue, [...path, 'with', ...issue.path]),
      );
    return undefined;
  }
  const withParams = params.data as Record<string, unknown>;
  checkExpressions(uses as StepType, withParams, [...path, 'with'], say, s.id);
  const retry = s.retry as { attempts: number; backoff: number } | undefined;
  const step: ActionStep = {
    kind: 'action',
    ...base,
    uses: uses as StepType,
    with: withParams,
    ...(retry ? { retry: { attempts: retry.attempts, backoffMs: retry.backoff } } : {}),
    ...(line ? { line } : {}),
  };
  const polling = stepPollingProblem(step);
  if (polling) say([...path, ...polling.key.split('.')], polling.message, s.id);
  return step;
}

/** Templates in text parameters and the `until` condition must parse now, not at 3 a.m. */
function checkExpressions(uses: StepType, params: Record<string, unknown>, path: Path, say: Say, id: string): void {
  for (const [key, value] of Object.entries(params)) {
    if (typeof value === 'object' && value !== null) {
      // A map or a list (labels, headers, targets) is always used as written: none is a template.
      for (const [inner, v] of Object.entries(value))
        if (typeof v === 'string' && isTemplate(v))
          say([...path, key, inner], `is used as written: ${key} of ${uses} may hold no \${{ }} expressions`, id);
      continue;
    }
    if (typeof value !== 'string') continue;
    if ((uses === 'waitUntil' && key === 'until') || (uses === 'assert' && key === 'that')) {
      const problem = expressionProblem(value, 'condition');
      if (problem) say([...path, key], `condition ${JSON.stringify(value)} cannot be used: ${problem}`, id);
      continue;
    }
    if (isTemplate(value) && !templateParams[uses].includes(key)) {
      say(
        [...path, key],
        `is used as written: only ${templateParams[uses].join(', ') || 'no parameter'} of ${uses} may hold \${{ }} expressions`,
        id,
      );
      continue;
    }
    for (const expr of templateExpressions(value)) {
      const problem = expressionProblem(expr, 'value');
      if (problem) say([...path, key], `expression ${JSON.stringify(expr)} cannot be used: ${problem}`, id);
      else if (selectingTemplateParams[uses]?.includes(key) && !onlyMadeByTheRun(expr, key))
        say(
          [...path, key],
          `expression ${JSON.stringify(expr)} reads something other than steps.<step>.${key}: ${key} picks what ${uses} acts on, and only what this run made may pick it (alert labels, and text that may carry them, choose nothing)`,
          id,
        );
      else if (uses === 'http' && key === 'body' && expressionReads(expr)?.untrustedUnquoted)
        say(
          [...path, key],
          `expression ${JSON.stringify(expr)} puts text that may carry the alert's (the alert, a step's error, incident.outcomeDetail) into a request body as it is: a label could shape the request around it; write json(${expr}), which quotes and escapes it`,
          id,
        );
    }
  }
}

/**
 * The expression reads nothing but `steps.<step>.<field>` (what a step of this run gave) and steps'
 * statuses (a closed set of words): no alert, no incident, no other output, whose text may be the alert's.
 */
function onlyMadeByTheRun(expr: string, field: string): boolean {
  const reads = expressionReads(expr);
  return reads !== undefined && reads.variables.length === 0 && reads.steps.every((r) => r.field === field || r.field === 'status');
}

/**
 * Control flow: jumps go forward to a step of the same list (so a runbook always ends: no cycles),
 * and `approvedBy` names an earlier approval step.
 */
function checkFlow(steps: Array<Step | undefined>, finallySteps: Array<Step | undefined>, say: Say): void {
  const check = (list: Array<Step | undefined>, key: string) => {
    const position = new Map<string, number>();
    list.forEach((s, i) => s && position.set(s.id, i));
    list.forEach((s, i) => {
      if (!s || typeof s.onFailure !== 'object') return;
      const to = s.onFailure.goto;
      const at = position.get(to);
      if (at === undefined) say([key, i, 'onFailure', 'goto'], `jumps to step "${to}", which is not a step of ${key} at this level`, s.id);
      else if (at <= i)
        say([key, i, 'onFailure', 'goto'], `jumps back to step "${to}": jumps go forward only, so a runbook cannot loop`, s.id);
    });
  };
  check(steps, 'steps');
  check(finallySteps, 'finally');
  const approvals = new Set<string>();
  let window: string | undefined;
  const walk = (list: Array<Step | undefined>, key: string) =>
    list.forEach((s, i) => {
      if (!s) return;
      if (s.kind !== 'action') return walk(s.steps, `${key}.${i}.${s.kind === 'parallel' ? 'parallel' : 'steps'}`);
      if (s.uses === 'openWindow') {
        if (window !== undefined)
          say(
            [...key.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k)), i, 'uses'],
            `a second openWindow (the first is step "${window}"): a run holds one maintenance window, and a second would leave the first one's silence behind`,
            s.id,
          );
        window ??= s.id;
      }
      const by = s.with.approvedBy as string | undefined;
      if (by !== undefined && !approvals.has(by)) {
        say(
          [...key.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k)), i, 'with', 'approvedBy'],
          `names "${by}", which is not an earlier approval step`,
          s.id,
        );
      }
      if (s.uses === 'approval') approvals.add(s.id);
    });
  walk(steps, 'steps');
  walk(finallySteps, 'finally');
}

/**
 * What conditions and templates read of a step must exist: `steps.<id>` a step of this runbook,
 * `steps.<id>.<field>` a field that step's kind gives (its outputs, status and error; a group's
 * failed or done), and a status compared only with a status it can have. A typo would otherwise
 * surface only when the run reaches it, at 3 a.m., as "No such key" or as a test quietly false.
 */
function checkStepReferences(list: Step[], ids: Map<string, Path>, say: Say): void {
  const gives = new Map<string, { kind: string; fields: string[] }>();
  const collect = (steps: Step[]) =>
    steps.forEach((s) => {
      const key = s.id.replaceAll('-', '_');
      if (s.kind === 'action') return gives.set(key, { kind: s.uses, fields: [...stepStateFields, ...stepOutputs[s.uses]] });
      gives.set(key, { kind: s.kind, fields: [...stepStateFields, ...groupOutputs[s.kind]] });
      collect(s.steps);
    });
  collect(list);
  const walk = (steps: Step[]) =>
    steps.forEach((s) => {
      const at = ids.get(s.id.replaceAll('-', '_'))!;
      const said = new Set<string>();
      for (const [key, expression] of evaluatedTexts(s))
        for (const r of expressionReads(expression)?.steps ?? []) {
          const step = gives.get(r.step.replaceAll('-', '_'));
          const written = `steps.${r.step}`;
          const problems: string[] = [];
          if (!step) problems.push(`refers to ${written}, which is not a step of this runbook (known: ${[...ids.keys()].join(', ')})`);
          else if (r.field !== undefined && !step.fields.includes(r.field)) {
            const kind = step.kind === 'parallel' || step.kind === 'forEach' ? `a ${step.kind} group` : `a ${step.kind} step`;
            problems.push(`reads ${written}.${r.field}, which ${kind} does not give (it gives ${step.fields.join(', ')})`);
          } else if (r.field === 'status' && step.kind === 'http' && r.comparedWith.length === 0)
            problems.push(
              `reads ${written}.status outside a comparison: that is the step's status ('ok', 'failed', ...), not the HTTP status, which is ${written}.code`,
            );
          else if (r.field === 'status')
            for (const v of r.comparedWith)
              if (
                (typeof v === 'string' && !(stepStatuses as readonly string[]).includes(v)) ||
                typeof v === 'bigint' ||
                typeof v === 'number'
              )
                problems.push(
                  `compares ${written}.status with ${typeof v === 'string' ? `'${v}'` : String(v)}, which it never is: a step's status is ${stepStatuses.map((x) => `'${x}'`).join(', ')}${step.kind === 'http' ? ` (the HTTP status is ${written}.code)` : ''}`,
                );
          for (const p of problems) {
            if (said.has(`${key} ${p}`)) continue;
            said.add(`${key} ${p}`);
            say([...at, ...key.split('.')], p, s.id);
          }
        }
      if (s.kind !== 'action') walk(s.steps);
    });
  walk(list);
}

/** The expressions of a step that are evaluated when it runs, by the key they sit at. */
function evaluatedTexts(s: Step): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (s.when !== undefined) out.push(['when', s.when]);
  if (s.kind !== 'action') return out;
  for (const [k, v] of Object.entries(s.with)) {
    if (typeof v !== 'string') continue;
    if ((s.uses === 'waitUntil' && k === 'until') || (s.uses === 'assert' && k === 'that')) out.push([`with.${k}`, v]);
    else if (templateParams[s.uses].includes(k)) for (const e of templateExpressions(v)) out.push([`with.${k}`, e]);
  }
  return out;
}

function issueText(issue: ZodIssue, raw: unknown): string {
  if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const value = valueAtPath(raw, issue.path);
  const shown = value === undefined ? '' : ` (got ${JSON.stringify(value)?.slice(0, 80)})`;
  return `${issue.message}${shown}`;
}

function valueAtPath(raw: unknown, path: Path): unknown {
  let cur: unknown = raw;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** Every action step, groups flattened, with where it sits in the file. */
export function actionSteps(def: Pick<RunbookDefinition, 'steps' | 'finally'>): ActionStep[] {
  const out: ActionStep[] = [];
  const walk = (list: Step[]) => list.forEach((s) => (s.kind === 'action' ? out.push(s) : walk(s.steps)));
  walk(def.steps);
  walk(def.finally);
  return out;
}

/** Targets a definition names literally (`with.target`, a group restart's `with.targets`). */
export function namedTargets(def: Pick<RunbookDefinition, 'steps' | 'finally'>): string[] {
  return targetsNamedBy(actionSteps(def));
}

export function targetsNamedBy(steps: ActionStep[]): string[] {
  return steps.flatMap((s) => [
    ...(typeof s.with.target === 'string' ? [s.with.target] : []),
    ...(Array.isArray(s.with.targets) ? (s.with.targets as string[]) : []),
  ]);
}
