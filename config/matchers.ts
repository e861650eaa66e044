// Alertmanager-style label matching: one small unit reused by alert bindings, silence lookups and
// the CLI, so "does this matcher cover these labels" has exactly one answer everywhere.
//
// Pure on purpose (no Node built-ins, no state that changes): workflow code imports it too.
//
// Semantics follow Alertmanager's pkg/labels:
// - a label the alert does not carry is the empty string, so `team=""` matches an alert without
//   `team` and `team!=""` requires one;
// - regular expressions are fully anchored (`^(?:re)$`), so `instance=~"db"` does not match "db-2";
// - `!=` and `!~` are the negations (isEqual false).
//
// Alertmanager compiles RE2; this compiles JavaScript regular expressions. The common subset
// (classes, alternation, repetition, anchors) behaves the same. A leading RE2 flag group such as
// `(?i)` is translated to a JavaScript flag, because operators copy those from Alertmanager.

export interface LabelMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

export type Labels = Record<string, string>;

/** `name="value"`, `name!~"va.*"`: how Alertmanager prints a matcher, used in messages and timelines. */
export function formatMatcher(m: LabelMatcher): string {
  const op = m.isRegex ? (m.isEqual ? '=~' : '!~') : m.isEqual ? '=' : '!=';
  return `${m.name}${op}${quote(m.value)}`;
}

/** `{alertname="X", instance=~"db.*"}` */
export function formatMatchers(ms: readonly LabelMatcher[]): string {
  return `{${ms.map(formatMatcher).join(', ')}}`;
}

/**
 * Compiles a matcher once into a predicate over label values. An invalid regular expression
 * throws an Error that names the matcher, so a bad config or CLI flag says which one is wrong.
 */
export function compileMatcher(m: LabelMatcher): (value: string) => boolean {
  if (!m.isRegex) return m.isEqual ? (v) => v === m.value : (v) => v !== m.value;
  const re = compileAnchored(m);
  return m.isEqual ? (v) => re.test(v) : (v) => !re.test(v);
}

export function matches(m: LabelMatcher, labels: Labels): boolean {
  return compileMatcher(m)(labelValue(labels, m.name));
}

/** True when every matcher matches. An empty list matches everything, as in Alertmanager. */
export function matchesAll(ms: readonly LabelMatcher[], labels: Labels): boolean {
  return ms.every((m) => matches(m, labels));
}

/** Throws (naming the matcher) when a regular expression does not compile. */
export function validateMatcher(m: LabelMatcher): void {
  if (m.name === '') throw new Error(`matcher ${formatMatcher(m)} has an empty label name`);
  if (m.isRegex) compileAnchored(m);
}

/**
 * Whether a set of matchers would match an alert that has none of the labels. Alertmanager
 * refuses such silences (they silence everything), and so must anyone creating one.
 */
export function matchesEverything(ms: readonly LabelMatcher[]): boolean {
  return ms.every((m) => compileMatcher(m)(''));
}

/**
 * Parses one matcher as operators type it: `alertname="DiskFull"`, `instance=~"db-.*"`,
 * `severity!=info`, `job!~'(node|blackbox)'`. Quotes are optional; inside double quotes
 * `\"`, `\\` and `\n` are escapes and any other backslash is kept, as in Alertmanager (so
 * `"db\.example"` stays a regular expression escape). Single quotes take the text literally.
 */
export function parseMatcher(text: string): LabelMatcher {
  const p = new Scanner(text);
  const m = p.matcher(true);
  p.skipSpace();
  if (!p.done()) throw p.error('unexpected text after the value (quote values that contain spaces or commas)');
  return m;
}

/**
 * Parses a list of matchers separated by commas, with or without braces:
 * `{alertname="X", instance=~"db.*"}` or `alertname=X,instance=~db.*`.
 */
export function parseMatchers(text: string): LabelMatcher[] {
  const p = new Scanner(text);
  p.skipSpace();
  const braced = p.eat('{');
  const out: LabelMatcher[] = [];
  for (;;) {
    p.skipSpace();
    if (braced && p.eat('}')) break;
    if (!braced && p.done()) break;
    out.push(p.matcher(false));
    p.skipSpace();
    if (p.eat(',')) continue;
    if (braced) {
      if (p.eat('}')) break;
      throw p.error('expected "," or "}"');
    }
    if (!p.done()) throw p.error('expected ","');
  }
  p.skipSpace();
  if (!p.done()) throw p.error('unexpected text after the matchers');
  return out;
}

function labelValue(labels: Labels, name: string): string {
  return Object.prototype.hasOwnProperty.call(labels, name) ? (labels[name] ?? '') : '';
}

const reFlags = /^\(\?([imsU]+)\)/;

function compileAnchored(m: LabelMatcher): RegExp {
  let source = m.value;
  let flags = '';
  const f = reFlags.exec(source);
  if (f) {
    if (f[1]!.includes('U'))
      throw new Error(`invalid regular expression in matcher ${formatMatcher(m)}: the RE2 flag U (ungreedy) is not supported`);
    flags = [...new Set(f[1]!)].join('');
    source = source.slice(f[0].length);
  }
  // Unicode mode makes "." match a whole character as RE2 does; it is stricter about escapes, so
  // fall back to the lenient mode for patterns such as `\-` that RE2 accepts.
  try {
    return new RegExp(`^(?:${source})$`, `${flags}u`);
  } catch {
    try {
      return new RegExp(`^(?:${source})$`, flags);
    } catch (err) {
      throw new Error(`invalid regular expression in matcher ${formatMatcher(m)}: ${(err as Error).message}`);
    }
  }
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

const nameStart = /[A-Za-z_:]/;
const nameChar = /[A-Za-z0-9_:]/;

class Scanner {
  #pos = 0;
  constructor(readonly text: string) {}

  done(): boolean {
    return this.#pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.#pos] ?? '';
  }

  eat(s: string): boolean {
    if (this.text.startsWith(s, this.#pos)) {
      this.#pos += s.length;
      return true;
    }
    return false;
  }

  skipSpace(): void {
    while (/\s/.test(this.peek())) this.#pos++;
  }

  error(problem: string): Error {
    return new Error(`cannot parse matcher ${JSON.stringify(this.text)} at position ${this.#pos + 1}: ${problem}`);
  }

  /** `alone`: the matcher is the whole text, so an unquoted value may contain "," and "}". */
  matcher(alone: boolean): LabelMatcher {
    this.skipSpace();
    const name = this.name();
    this.skipSpace();
    let isRegex: boolean;
    let isEqual: boolean;
    if (this.eat('=~')) [isRegex, isEqual] = [true, true];
    else if (this.eat('!~')) [isRegex, isEqual] = [true, false];
    else if (this.eat('!=')) [isRegex, isEqual] = [false, false];
    else if (this.eat('=')) [isRegex, isEqual] = [false, true];
    else throw this.error('expected one of =, !=, =~, !~ after the label name');
    this.skipSpace();
    const value = this.value(alone);
    const m = { name, value, isRegex, isEqual };
    validateMatcher(m);
    return m;
  }

  name(): string {
    const c = this.peek();
    if (c === '"' || c === "'") return this.quoted();
    if (!nameStart.test(c)) throw this.error('expected a label name');
    const start = this.#pos;
    while (!this.done() && nameChar.test(this.peek())) this.#pos++;
    return this.text.slice(start, this.#pos);
  }

  value(alone: boolean): string {
    const c = this.peek();
    if (c === '"' || c === "'") return this.quoted();
    // "a==b" or "a=~~b" is a typo far more often than a value starting with "=": ask for quotes.
    if (c === '=' || c === '~') throw this.error(`an unquoted value cannot start with "${c}"; quote it if that is intended`);
    // Unquoted values run to the end (one matcher) or to the next comma or closing brace (a list).
    const start = this.#pos;
    while (!this.done() && (alone || (this.peek() !== ',' && this.peek() !== '}'))) this.#pos++;
    return this.text.slice(start, this.#pos).trimEnd();
  }

  quoted(): string {
    const q = this.peek();
    this.#pos++;
    let out = '';
    for (;;) {
      if (this.done()) throw this.error(`missing closing ${q}`);
      const c = this.text[this.#pos++]!;
      if (c === q) return out;
      if (c === '\\' && q === '"') {
        const e = this.text[this.#pos++];
        if (e === undefined) throw this.error('a backslash ends the value');
        if (e === 'n') out += '\n';
        else if (e === '"' || e === '\\') out += e;
        // Regular expressions carry their own escapes (`\d`, `\.`): keep the backslash.
        else out += `\\${e}`;
        continue;
      }
      out += c;
    }
  }
}
