// PromQL written in runbook files: a literal query from the file, never from an alert. The only
// thing filled in when it runs is the target, through placeholders that may stand only inside a
// quoted label value and are replaced by the value escaped for that string literal, so a name can
// never end the string and add a selector, an operator or a second query.
//
// Pure (no Node built-ins): the loader checks queries with it and the Prometheus activity renders them.

/** `{{target}}` (the target's name) and `{{target.labels.NAME}}` (one of its configured labels). */
const known = /^target(\.labels\.[A-Za-z_][A-Za-z0-9_]*)?$/;

export const maxQueryLength = 2_000;

interface Found {
  name: string;
  start: number;
  end: number;
  /** The quote of the string literal it stands in, or undefined outside one. */
  quote?: '"' | "'" | '`';
}

/** Every placeholder of a query, with the string literal (if any) it stands in. */
function scan(query: string): { found: Found[]; unterminated?: '"' | "'" | '`' } {
  const found: Found[] = [];
  let quote: '"' | "'" | '`' | undefined;
  let comment = false;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (comment) {
      if (c === '\n') comment = false;
      continue;
    }
    if (c === '{' && query[i + 1] === '{') {
      const m = /^\{\{\s*([^{}]*?)\s*\}\}/.exec(query.slice(i));
      if (m) {
        found.push({ name: m[1]!, start: i, end: i + m[0].length, ...(quote ? { quote } : {}) });
        i += m[0].length - 1;
        continue;
      }
    }
    if (quote) {
      if (c === '\\' && quote !== '`') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'" || c === '`') {
      quote = c;
    } else if (c === '#') {
      comment = true;
    }
  }
  return { found, ...(quote ? { unterminated: quote } : {}) };
}

/** What is wrong with a runbook's query, one message per problem; empty when it may be used. */
export function queryProblems(query: string): string[] {
  const problems: string[] = [];
  const { found, unterminated } = scan(query);
  for (const p of found) {
    if (!known.test(p.name)) {
      problems.push(`unknown placeholder {{${p.name}}}: only {{target}} and {{target.labels.NAME}} are filled in`);
    } else if (!p.quote) {
      problems.push(
        `{{${p.name}}} must stand inside a quoted label value, e.g. up{service="{{target}}"}: outside a string it could change the query`,
      );
    } else if (p.quote === '`') {
      problems.push(`{{${p.name}}} cannot stand in a \`raw\` string, which has no escapes: use "double quotes"`);
    }
  }
  if (unterminated && found.length > 0) problems.push(`a ${unterminated} string is not closed`);
  return problems;
}

/** The labels a query's placeholders read (`{{target.labels.service}}` → service). */
export function placeholderLabels(query: string): string[] {
  return [
    ...new Set(scan(query).found.flatMap((p) => (p.name.startsWith('target.labels.') ? [p.name.slice('target.labels.'.length)] : []))),
  ];
}

/** The value escaped for a PromQL (Go-style) string literal in the given quotes. */
export function escapeForString(value: string, quote: '"' | "'"): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/**
 * The query with its placeholders filled in, each escaped for its string literal. Throws (with a
 * message fit for a runbook author) when the query may not be used or a label is not configured.
 */
export function renderQuery(query: string, target: { name: string; labels: Record<string, string> } | undefined): string {
  const problems = queryProblems(query);
  if (problems.length > 0) throw new Error(problems[0]);
  const { found } = scan(query);
  let out = '';
  let at = 0;
  for (const p of found) {
    if (!target) throw new Error(`{{${p.name}}} needs a target: run the step on one (inside the forEach, or with target:)`);
    let value: string;
    if (p.name === 'target') value = target.name;
    else {
      const label = p.name.slice('target.labels.'.length);
      if (!Object.hasOwn(target.labels, label))
        throw new Error(`{{${p.name}}}: target '${target.name}' has no label '${label}' in the config`);
      value = target.labels[label]!;
    }
    out += query.slice(at, p.start) + escapeForString(value, p.quote as '"' | "'");
    at = p.end;
  }
  return out + query.slice(at);
}
