import { describe, expect, it } from 'vitest';
import {
  compileMatcher,
  formatMatcher,
  formatMatchers,
  matches,
  matchesAll,
  matchesEverything,
  parseMatcher,
  parseMatchers,
  validateMatcher,
  type LabelMatcher,
} from '../../config/matchers.js';

const eq = (name: string, value: string): LabelMatcher => ({ name, value, isRegex: false, isEqual: true });
const ne = (name: string, value: string): LabelMatcher => ({ name, value, isRegex: false, isEqual: false });
const re = (name: string, value: string): LabelMatcher => ({ name, value, isRegex: true, isEqual: true });
const nre = (name: string, value: string): LabelMatcher => ({ name, value, isRegex: true, isEqual: false });

const alert = { alertname: 'ServiceDown', instance: 'db-1.example:9100', severity: 'critical', team: '' };

describe('equality matchers', () => {
  it('match a label with exactly that value', () => {
    expect(matches(eq('alertname', 'ServiceDown'), alert)).toBe(true);
    expect(matches(eq('alertname', 'servicedown'), alert)).toBe(false);
    expect(matches(eq('alertname', 'ServiceDow'), alert)).toBe(false);
  });

  it('treat a missing label as the empty string', () => {
    expect(matches(eq('region', ''), alert)).toBe(true);
    expect(matches(eq('region', 'eu'), alert)).toBe(false);
    expect(matches(ne('region', ''), alert)).toBe(false);
    expect(matches(ne('region', 'eu'), alert)).toBe(true);
  });

  it('treat a label present with an empty value like a missing one', () => {
    expect(matches(eq('team', ''), alert)).toBe(true);
    expect(matches(ne('team', ''), alert)).toBe(false);
  });

  it('negate with != (isEqual false)', () => {
    expect(matches(ne('severity', 'critical'), alert)).toBe(false);
    expect(matches(ne('severity', 'warning'), alert)).toBe(true);
  });

  it('do not see labels inherited from Object.prototype', () => {
    expect(matches(eq('constructor', ''), alert)).toBe(true);
    expect(matches(re('toString', '.+'), alert)).toBe(false);
  });
});

describe('regular expression matchers', () => {
  it('are anchored at both ends', () => {
    expect(matches(re('instance', 'db-1'), alert)).toBe(false);
    expect(matches(re('instance', 'example'), alert)).toBe(false);
    expect(matches(re('instance', 'db-1.*'), alert)).toBe(true);
    expect(matches(re('instance', '.*:9100'), alert)).toBe(true);
  });

  it('anchor every branch of an alternation, not just the first and last', () => {
    // Without the (?:…) group, "^a|b$" would match "bx" and "xa".
    expect(matches(re('severity', 'warning|critical'), alert)).toBe(true);
    expect(matches(re('severity', 'crit|critical'), alert)).toBe(true);
    expect(matches(re('severity', 'critical|x'), { severity: 'critical-ish' })).toBe(false);
    expect(matches(re('severity', 'x|critical'), { severity: 'not-critical' })).toBe(false);
  });

  it('match a missing label as the empty string', () => {
    expect(matches(re('region', '.*'), alert)).toBe(true);
    expect(matches(re('region', '.+'), alert)).toBe(false);
    expect(matches(re('region', 'eu|'), alert)).toBe(true);
  });

  it('negate with !~ (isEqual false)', () => {
    expect(matches(nre('severity', 'info|warning'), alert)).toBe(true);
    expect(matches(nre('severity', 'crit.*'), alert)).toBe(false);
    expect(matches(nre('region', '.+'), alert)).toBe(true);
  });

  it('accept a leading RE2 flag group such as (?i)', () => {
    expect(matches(re('alertname', '(?i)servicedown'), alert)).toBe(true);
    expect(matches(re('alertname', '(?i)service'), alert)).toBe(false);
    expect(matches(re('alertname', 'servicedown'), alert)).toBe(false);
  });

  it('match a whole non-BMP character with "."', () => {
    expect(matches(re('note', '.'), { note: '🔥' })).toBe(true);
  });

  it('accept escapes RE2 accepts but strict unicode mode does not', () => {
    expect(matches(re('instance', 'db\\-1\\.example:9100'), alert)).toBe(true);
  });

  it('throw an error naming the matcher when the expression does not compile', () => {
    expect(() => matches(re('instance', 'db-(1'), alert)).toThrow(/instance=~"db-\(1"/);
    expect(() => compileMatcher(nre('job', '[a-'))).toThrow(/invalid regular expression in matcher job!~"\[a-"/);
    expect(() => validateMatcher(re('job', '*'))).toThrow(/job=~"\*"/);
    expect(() => validateMatcher(re('job', '(?U)a+'))).toThrow(/ungreedy/);
  });

  it('read RE2-only syntax as Alertmanager reads it: POSIX classes, \\Q…\\E, \\pL, bare script names, \\A and \\z', () => {
    // Each of these loaded and then never matched: the lenient retry read "[[:alpha:]]+" as a class of
    // "[:alph" followed by "]+", "\Q" as "Q", "\pL" as "pL".
    const read: Array<[string, string, string]> = [
      ['[[:alpha:]]+', 'db', '42'],
      ['[[:digit:]]+', '42', 'db'],
      ['db-[^[:space:]]+', 'db-1', 'db- 1'],
      ['[[:alpha:][:digit:]_]+', 'db_1', 'db-1'],
      ['[[:^alpha:]]+', '42', 'db'],
      ['\\Qdb.1\\E', 'db.1', 'dbx1'],
      ['\\Qa+(b\\E-c', 'a+(b-c', 'aab-c'],
      ['\\pL+', 'été', '42'],
      ['\\PN+', 'db', '42'],
      ['\\p{Greek}+', 'αβ', 'ab'],
      ['\\Adb\\z', 'db', 'xdb'],
      ['(?m)\\Adb\\z', 'db', 'db\nx'],
    ];
    for (const [value, yes, no] of read) {
      expect(matches(re('instance', value), { instance: yes }), `${value} ~ ${yes}`).toBe(true);
      expect(matches(re('instance', value), { instance: no }), `${value} !~ ${no}`).toBe(false);
    }
  });

  it('refuse what RE2 syntax cannot be read as here, naming the construct', () => {
    const refused: Array<[string, string]> = [
      ['[a[:^alpha:]]', 'a negated POSIX class [[:^alpha:]] inside a class is not supported: use [^A-Za-z] on its own'],
      ['[[:alfa:]]', '[:alfa:] is not a POSIX class, and JavaScript has none'],
      ['(a)\\1', '\\1: backreferences are not supported (RE2 has none)'],
    ];
    for (const [value, message] of refused) {
      expect(() => validateMatcher(re('instance', value)), value).toThrow(
        `invalid regular expression in matcher instance=~${JSON.stringify(value)}: ${message}`,
      );
    }
  });

  it('read the RE2 syntax the lenient retry was for as RE2 does, in unicode mode', () => {
    // Escaped punctuation, literal braces and brackets, octal and \x{…}: valid RE2, read the same way.
    expect(matches(re('path', '/api/\\:id\\-\\_x'), { path: '/api/:id-_x' })).toBe(true);
    expect(matches(re('path', '/api/{id}'), { path: '/api/{id}' })).toBe(true);
    expect(matches(re('path', 'a{,2}'), { path: 'a{,2}' })).toBe(true);
    expect(matches(re('path', 'a{2}'), { path: 'aa' })).toBe(true);
    expect(matches(re('path', 'x]'), { path: 'x]' })).toBe(true);
    expect(matches(re('path', '[]a]+'), { path: ']a]' })).toBe(true);
    expect(matches(re('path', '[\\w-]+'), { path: 'db-1' })).toBe(true);
    expect(matches(re('path', '[\\d-z]+'), { path: '1-z' })).toBe(true);
    expect(matches(re('path', '[\\d-z]+'), { path: '5' })).toBe(true);
    expect(matches(re('path', '[a\\-c]+'), { path: 'a-c' })).toBe(true);
    expect(matches(re('path', '[a\\-c]+'), { path: 'b' })).toBe(false);
    expect(matches(re('path', '\\101\\x{42}\\x43'), { path: 'ABC' })).toBe(true);
    expect(matches(re('path', '\\x{42}'), { path: 'x'.repeat(42) })).toBe(false);
    // \p{…} works together with an escape that needed the lenient mode before (where \p{L} was "p{L}").
    expect(matches(re('path', '\\p{L}+\\-\\d'), { path: 'été-1' })).toBe(true);
    expect(matches(re('path', '\\p{L}+\\-\\d'), { path: 'p{L}-1' })).toBe(false);
    expect(matches(re('path', '\\p{Script=Greek}+'), { path: 'αβ' })).toBe(true);
  });

  it('do not compile anything for plain equality, so regex syntax in values is literal', () => {
    expect(matches(eq('instance', 'db-(1'), { instance: 'db-(1' })).toBe(true);
    expect(matches(eq('instance', '.*'), alert)).toBe(false);
  });
});

describe('matchesAll', () => {
  it('requires every matcher to match', () => {
    expect(matchesAll([eq('alertname', 'ServiceDown'), re('instance', 'db-.*')], alert)).toBe(true);
    expect(matchesAll([eq('alertname', 'ServiceDown'), re('instance', 'web-.*')], alert)).toBe(false);
    expect(matchesAll([ne('alertname', 'ServiceDown'), re('instance', 'db-.*')], alert)).toBe(false);
  });

  it('matches everything with an empty list, as Alertmanager does', () => {
    expect(matchesAll([], alert)).toBe(true);
    expect(matchesAll([], {})).toBe(true);
  });
});

describe('matchesEverything', () => {
  it('spots matcher sets that would silence any alert', () => {
    expect(matchesEverything([])).toBe(true);
    expect(matchesEverything([re('alertname', '.*')])).toBe(true);
    expect(matchesEverything([eq('team', ''), ne('severity', 'info')])).toBe(true);
  });

  it('accepts a set where one matcher needs a label', () => {
    expect(matchesEverything([re('alertname', '.*'), eq('instance', 'db-1')])).toBe(false);
    expect(matchesEverything([re('alertname', '.+')])).toBe(false);
    expect(matchesEverything([ne('team', '')])).toBe(false);
  });
});

describe('parseMatcher', () => {
  it.each([
    ['alertname="ServiceDown"', eq('alertname', 'ServiceDown')],
    ['severity!="info"', ne('severity', 'info')],
    ['instance=~"db-.*"', re('instance', 'db-.*')],
    ['job!~"(node|blackbox)"', nre('job', '(node|blackbox)')],
    ['severity=critical', eq('severity', 'critical')],
    ['severity!=info', ne('severity', 'info')],
    ['instance=~db-.*', re('instance', 'db-.*')],
    ['job!~node|blackbox', nre('job', 'node|blackbox')],
    ["job=~'node|blackbox'", re('job', 'node|blackbox')],
    ['  team = "sre"  ', eq('team', 'sre')],
    ['team=""', eq('team', '')],
    ['team=', eq('team', '')],
    ['expr="==1"', eq('expr', '==1')],
    ['__name__=~"up:.*"', re('__name__', 'up:.*')],
  ])('parses %s', (text, expected) => {
    expect(parseMatcher(text)).toEqual(expected);
  });

  it('keeps commas, braces and spaces in values', () => {
    expect(parseMatcher('summary="disk full, /var at 99%"')).toEqual(eq('summary', 'disk full, /var at 99%'));
    expect(parseMatcher('instance=~db-[0-9]{2}')).toEqual(re('instance', 'db-[0-9]{2}'));
  });

  it('unescapes \\" \\\\ and \\n inside double quotes and keeps other backslashes for regexes', () => {
    expect(parseMatcher('msg="say \\"hi\\""')).toEqual(eq('msg', 'say "hi"'));
    expect(parseMatcher('path="C:\\\\temp"')).toEqual(eq('path', 'C:\\temp'));
    expect(parseMatcher('msg="a\\nb"')).toEqual(eq('msg', 'a\nb'));
    const m = parseMatcher('instance=~"db\\.example\\d+"');
    expect(m.value).toBe('db\\.example\\d+');
    expect(matches(m, { instance: 'db.example12' })).toBe(true);
    expect(matches(m, { instance: 'dbxexample12' })).toBe(false);
  });

  it('accepts a quoted label name', () => {
    expect(parseMatcher('"service.name"="api"')).toEqual(eq('service.name', 'api'));
  });

  it.each([
    ['', /expected a label name/],
    ['alertname', /expected one of =, !=, =~, !~/],
    ['alertname=="x"', /an unquoted value cannot start with "="/],
    ['alertname=~~x', /an unquoted value cannot start with "~"/],
    ['alertname~"x"', /expected one of/],
    ['1abc="x"', /expected a label name/],
    ['alertname="x', /missing closing "/],
    ['alertname="x" extra', /unexpected text after the value/],
    ['instance=~"db-(1"', /invalid regular expression in matcher instance=~"db-\(1"/],
  ])('rejects %j', (text, message) => {
    expect(() => parseMatcher(text)).toThrow(message);
  });

  it('names the text and position of a syntax error', () => {
    expect(() => parseMatcher('alertname>"x"')).toThrow('cannot parse matcher "alertname>\\"x\\"" at position 10');
  });

  it('round-trips through formatMatcher', () => {
    for (const m of [eq('a', 'x"y'), ne('b', 'c\\d'), re('c', 'db\\..*'), nre('d', 'line\nbreak'), eq('e', '')]) {
      expect(parseMatcher(formatMatcher(m))).toEqual(m);
    }
  });
});

describe('parseMatchers', () => {
  it('parses a braced list as Alertmanager prints it', () => {
    expect(parseMatchers('{alertname="ServiceDown", instance=~"db-.*"}')).toEqual([
      eq('alertname', 'ServiceDown'),
      re('instance', 'db-.*'),
    ]);
  });

  it('parses a bare comma-separated list with unquoted values', () => {
    expect(parseMatchers('alertname=ServiceDown,severity!=info')).toEqual([eq('alertname', 'ServiceDown'), ne('severity', 'info')]);
  });

  it('keeps commas inside quoted values', () => {
    expect(parseMatchers('{a="x,y",b="}"}')).toEqual([eq('a', 'x,y'), eq('b', '}')]);
  });

  it('accepts empty braces and a trailing comma', () => {
    expect(parseMatchers('{}')).toEqual([]);
    expect(parseMatchers('{a="1",}')).toEqual([eq('a', '1')]);
  });

  it('rejects an unclosed brace and junk between matchers', () => {
    expect(() => parseMatchers('{a="1"')).toThrow(/expected "," or "}"/);
    expect(() => parseMatchers('a="1" b="2"')).toThrow(/expected ","/);
    expect(() => parseMatchers('{a="1"} x')).toThrow(/unexpected text after the matchers/);
  });

  it('formats back to the braced form', () => {
    const ms = [eq('alertname', 'X'), nre('job', 'a|b')];
    expect(formatMatchers(ms)).toBe('{alertname="X", job!~"a|b"}');
    expect(parseMatchers(formatMatchers(ms))).toEqual(ms);
  });
});
