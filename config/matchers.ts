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
  // Unicode mode makes "." match a whole character as RE2 does. It is stricter about syntax than
  // RE2 in a few places (escaped punctuation such as `\-`, a literal "{" or "]"): those are rewritten
  // to what unicode mode reads the same way, rather than compiled in the lenient mode, which reads
  // RE2-only syntax (`[[:alpha:]]`, `\Q…\E`, `\pL`) as something else that then never matches.
  let re2: string;
  try {
    re2 = fromRe2(source);
  } catch (err) {
    throw new Error(`invalid regular expression in matcher ${formatMatcher(m)}: ${(err as Error).message}`);
  }
  try {
    return new RegExp(`^(?:${re2})$`, `${flags}u`);
  } catch (err) {
    // "Invalid regular expression: /^(?:…)$/u: Unterminated group": the pattern shown would be the rewritten one.
    const why = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    throw new Error(`invalid regular expression in matcher ${formatMatcher(m)}: ${why}`);
  }
}

/** RE2's POSIX classes (ASCII only, as in RE2), as a JavaScript class body. */
const posixClasses: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/** Punctuation unicode mode accepts after a backslash (and "-" inside a class). */
const unicodeIdentityEscapes = new Set('^$\\.*+?()[]{}|/');
/** Class escapes: a "-" next to one cannot make a range, and RE2 reads it as a literal "-". */
const classEscapes = new Set('dDsSwWpP');
const hex = (code: number) => `\\u{${code.toString(16)}}`;

/**
 * RE2 syntax (Alertmanager's) as a JavaScript unicode-mode pattern that matches the same strings, or
 * an Error naming the RE2-only construct and how to write it in JavaScript. What unicode mode refuses
 * for its own reasons is left for it to refuse.
 */
function fromRe2(source: string): string {
  let out = '';
  let inClass = false;
  /** Inside a class: the last item was a class escape such as \d. */
  let afterClassEscape = false;
  for (let i = 0; i < source.length;) {
    const c = source[i]!;
    if (c === '\\') {
      const e = escape(source, i, inClass);
      afterClassEscape = inClass && e.classEscape;
      out += e.text;
      i += e.length;
      continue;
    }
    if (inClass) {
      if (c === ']') {
        inClass = false;
        out += c;
        i++;
        continue;
      }
      const posix = /^\[:(\^?)([^:\]]*):\]/.exec(source.slice(i));
      if (posix) {
        const [, not, name] = posix;
        const body = posixClasses[name!];
        if (body === undefined) throw new Error(`[:${name}:] is not a POSIX class, and JavaScript has none`);
        // Read as RE2 reads it (ASCII only): its characters, in place, inside the class.
        if (!not) {
          out += body;
          afterClassEscape = false;
          i += posix[0].length;
          continue;
        }
        throw new Error(`a negated POSIX class [${posix[0]}] inside a class is not supported: use [^${body}] on its own`);
      }
      // RE2 reads "-" as a literal where it cannot make a range (next to \d); unicode mode refuses it there.
      const next = source[i + 1] === '\\' && classEscapes.has(source[i + 2] ?? '');
      out += c === '-' && (afterClassEscape || next) ? '\\-' : c;
      afterClassEscape = false;
      i++;
      continue;
    }
    if (c === '[') {
      out += '[';
      i++;
      if (source[i] === '^') {
        out += '^';
        i++;
      } else {
        // [[:^alpha:]], a class of one negated POSIX class: [^A-Za-z].
        const lone = /^\[:\^([a-z]+):\]\]/.exec(source.slice(i));
        if (lone && posixClasses[lone[1]!] !== undefined) {
          out += `^${posixClasses[lone[1]!]}]`;
          i += lone[0].length;
          continue;
        }
      }
      // A "]" first in a class is a literal in RE2; "[]" is the empty class in JavaScript.
      if (source[i] === ']') {
        out += '\\]';
        i++;
      }
      inClass = true;
      afterClassEscape = false;
      continue;
    }
    if (c === '{') {
      // A "{" that does not start a repetition is a literal in RE2 and an error in unicode mode.
      const repeat = /^\{\d+(,\d*)?\}/.exec(source.slice(i));
      out += repeat ? repeat[0] : '\\{';
      i += repeat ? repeat[0].length : 1;
      continue;
    }
    out += c === '}' || c === ']' ? `\\${c}` : c;
    i++;
  }
  return out;
}

/** One backslash escape at i: its unicode-mode spelling and length, or an Error for RE2-only syntax. */
function escape(source: string, i: number, inClass: boolean): { text: string; length: number; classEscape: boolean } {
  const e = source[i + 1];
  const plain = (length: number) => ({ text: source.slice(i, i + length), length, classEscape: false });
  if (e === undefined) return plain(1);
  if (e === 'Q') {
    // Literal text up to \E (or the end), as RE2 reads it.
    const end = source.indexOf('\\E', i + 2);
    const literal = source.slice(i + 2, end < 0 ? undefined : end);
    const text = [...literal].map((ch) => (/[\\^$.*+?()[\]{}|/-]/.test(ch) ? `\\${ch}` : ch)).join('');
    return { text, length: (end < 0 ? source.length : end + 2) - i, classEscape: false };
  }
  if (e === 'E') return { text: '', length: 2, classEscape: false };
  if (e === 'p' || e === 'P') {
    const name = source[i + 2];
    if (name !== '{') {
      // \pL is RE2's one-letter form of \p{L}.
      if (name !== undefined && /[A-Za-z]/.test(name)) return { text: `\\${e}{${name}}`, length: 3, classEscape: true };
      return plain(2);
    }
    const close = source.indexOf('}', i + 3);
    if (close < 0) return plain(2);
    const property = source.slice(i + 3, close);
    const text = source.slice(i, close + 1);
    // RE2 names scripts bare (\p{Greek}); JavaScript wants Script= for them.
    if (!compiles(text) && compiles(`\\${e}{Script=${property}}`))
      return { text: `\\${e}{Script=${property}}`, length: text.length, classEscape: true };
    return { text, length: text.length, classEscape: true };
  }
  if (e === 'x' && source[i + 2] === '{') {
    const m = /^\\x\{([0-9A-Fa-f]{1,6})\}/.exec(source.slice(i));
    if (m) return { text: `\\u{${m[1]}}`, length: m[0].length, classEscape: false };
    return plain(2);
  }
  // The end and the start of the text, whatever the (?m) flag says.
  if (e === 'z' && !inClass) return { text: '(?![\\s\\S])', length: 2, classEscape: false };
  if (e === 'A' && !inClass) return { text: '(?<![\\s\\S])', length: 2, classEscape: false };
  if (e === 'C') throw new Error('\\C is not supported: write .');
  if (e === 'a') return { text: '\\x07', length: 2, classEscape: false };
  // Octal as RE2 reads it: \0 and up to two more digits, or \1-\7 followed by one or two.
  const octal = /^\\(0[0-7]{0,2}|[1-7][0-7]{1,2})/.exec(source.slice(i));
  if (octal) return { text: hex(parseInt(octal[1]!, 8)), length: octal[0].length, classEscape: false };
  // Anything else is a backreference in JavaScript, which RE2 (and so Alertmanager) refuses.
  if (/[1-9]/.test(e)) throw new Error(`\\${e}: backreferences are not supported (RE2 has none)`);
  // RE2 takes any escaped ASCII punctuation as that character; unicode mode only its own syntax characters.
  if (e.charCodeAt(0) < 0x80 && !/[0-9A-Za-z]/.test(e) && !unicodeIdentityEscapes.has(e) && !(inClass && e === '-'))
    return { text: hex(e.charCodeAt(0)), length: 2, classEscape: false };
  return { text: source.slice(i, i + 2), length: 2, classEscape: classEscapes.has(e) };
}

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern, 'u');
    return true;
  } catch {
    return false;
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
