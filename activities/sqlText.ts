// The statements other sessions are running are diagnostics worth having (which query holds the
// lock, which one runs for an hour), but their literals are other people's data: a password being
// set, a card number being inserted. Diagnostics, pages and Temporal's history get the statement's
// shape only: every string and number literal becomes "?", and the text is capped.

export type SqlDialect = 'postgres' | 'mysql';

/** Longest statement text kept, after masking. */
export const statementCap = 500;

/**
 * `UPDATE users SET password = 'hunter2' WHERE id = 42` → `UPDATE users SET password = ? WHERE id = ?`.
 * Identifiers (quoted ones too), keywords, parameters ($1, ?) and comments stay. A literal cut off by
 * the server's own truncation is masked to the end. When unsure, this masks more, never less.
 */
export function maskSql(sql: string, dialect: SqlDialect, cap = statementCap): string {
  const out: string[] = [];
  let i = 0;
  const n = sql.length;
  const literal = () => {
    if (out.at(-1) !== '?') out.push('?');
  };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    // Comments: copied as they are (they name the caller, which is what an operator looks for).
    if ((c === '-' && next === '-') || (c === '#' && dialect === 'mysql')) {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      out.push(sql.slice(i, stop));
      i = stop;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out.push(sql.slice(i, stop));
      i = stop;
      continue;
    }
    if (c === "'" || (c === '"' && dialect === 'mysql')) {
      // MySQL reads backslash escapes in every string; PostgreSQL only in E'…' strings.
      const backslashes = dialect === 'mysql' || (/[eE]$/.test(sql.slice(Math.max(0, i - 1), i)) && !isIdentChar(sql[i - 2]));
      i = skipQuoted(sql, i, c, backslashes);
      literal();
      continue;
    }
    if (c === '"' || c === '`') {
      // Quoted identifiers: names, not data.
      const stop = skipQuoted(sql, i, c, false);
      out.push(sql.slice(i, stop));
      i = stop;
      continue;
    }
    if (c === '$' && dialect === 'postgres') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? n : end + tag[0].length;
        literal();
        continue;
      }
      // $1: a parameter, not a value.
      const param = /^\$\d+/.exec(sql.slice(i));
      if (param) {
        out.push(param[0]);
        i += param[0].length;
        continue;
      }
    }
    if (isDigit(c) || (c === '.' && isDigit(next))) {
      if (!isIdentChar(sql[i - 1]) && sql[i - 1] !== '$') {
        const num = /^(0x[0-9a-fA-F]+|0b[01]+|\d*\.?\d+([eE][+-]?\d+)?)/.exec(sql.slice(i))!;
        i += num[0].length;
        // "1abc" is not a number but an odd identifier: keep the rest as it is.
        literal();
        continue;
      }
    }
    const start = i;
    i += 1;
    while (i < n && isIdentChar(sql[i]) && isIdentChar(sql[i - 1])) i += 1;
    out.push(sql.slice(start, i));
  }
  const masked = out.join('');
  return masked.length > cap ? masked.slice(0, cap) : masked;
}

/** Index just past a quoted run that starts at `start` (doubled quotes inside it; backslash escapes when asked). */
function skipQuoted(sql: string, start: number, quote: string, backslashes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashes && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i += 1;
  }
  return sql.length;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/**
 * InnoDB's LATEST DETECTED DEADLOCK section, fit for a page: each transaction's statement masked
 * with maskSql, and the record dumps ("0: len 4; hex 80000001; asc ;;", the locked rows' column
 * values) left out. Which transactions, which tables and indexes, which lock modes: all kept.
 *
 * The server prints a statement as it was sent, line breaks and all, right after its session line
 * ("MariaDB thread id 10, OS thread handle …, query id 55 … Updating") and before the next "*** "
 * header. Everything in between is that statement, masked as one (a line break inside it, a keyword
 * alone on a line, tells nothing). The server cuts a long statement, perhaps inside a literal, and a
 * literal may itself hold a line that starts with "*** ", so where a statement ends is not sure: outside
 * the statements, only lines shaped like InnoDB's own are kept, and any other line is left out, counted.
 */
export function maskDeadlockReport(text: string): string {
  const out: string[] = [];
  let dumps = 0;
  let unknown = 0;
  let statement: string[] | undefined;
  const flush = () => {
    if (statement && statement.length > 0) out.push(...maskSql(statement.join('\n'), 'mysql', 2_000).split('\n'));
    statement = undefined;
  };
  const leftOut = () => {
    if (unknown > 0) out.push(`[${unknown} unrecognised line(s) left out: they may be statement text]`);
    unknown = 0;
  };
  for (const line of text.split('\n')) {
    if (statement && !line.startsWith('***')) {
      statement.push(line);
      continue;
    }
    flush();
    if (recordDump.test(line)) {
      dumps += 1;
      continue;
    }
    if (!innodbLines.some((re) => re.test(line))) {
      unknown += 1;
      continue;
    }
    leftOut();
    out.push(line);
    if (sessionLine.test(line)) statement = [];
  }
  flush();
  leftOut();
  if (dumps > 0) out.push(`[${dumps} record dump line(s) left out: they hold the locked rows' values]`);
  return out.join('\n');
}

/** " 0: len 4; hex 80000001; asc     ;;", " 2: SQL NULL;": a locked row's column values. */
const recordDump = /^\s*\d+: (len \d+; hex |SQL NULL;)/;

/** "MariaDB thread id 10, OS thread handle 1398, query id 55 127.0.0.1 app Updating": the statement follows it. */
const sessionLine = /^(MySQL|MariaDB) thread id \d+, (OS thread handle (0x)?[0-9a-fA-F]+, )?query id \d+[^'"]*$/;

/**
 * The lines InnoDB writes around the statements (MariaDB 10.x/11.x, MySQL 5.6 to 8). None holds a quote,
 * so the tail of a string literal that held a line break can't pass for one of them.
 */
const innodbLines: RegExp[] = [
  /^\s*$/,
  /^-+$/,
  // 2024-05-01 10:20:13 0x7f2b81ccf6c0 (MariaDB), 2024-05-01T10:20:13.123456Z 1402 (MySQL 8), 240501 10:20:13 (old).
  /^\d{2,4}-?\d\d-?\d\d[ T]\s*\d{1,2}:\d\d:\d\d[0-9.:+Z-]*( (0x)?[0-9a-fA-F]+)?$/,
  /^\*\*\* (\(\d{1,3}\) )?TRANSACTION:$/,
  /^\*\*\* (\(\d{1,3}\) )?(HOLDS THE LOCK\(S\)|WAITING FOR THIS LOCK TO BE GRANTED):$/,
  /^\*\*\* CONFLICTING WITH:$/,
  /^\*\*\* WE ROLL BACK TRANSACTION \(\d{1,3}\)$/,
  /^TOO DEEP OR LONG SEARCH IN THE LOCK TABLE WAITS-FOR GRAPH[A-Z ,]*$/,
  /^TRANSACTION [0-9A-Fa-f ]+, [A-Za-z0-9 (),._-]*$/,
  /^mysql tables in use \d+, locked \d+$/,
  /^(LOCK WAIT )?\d+ lock struct\(s\), [a-z0-9 (),_-]+$/,
  sessionLine,
  /^RECORD LOCKS space id \d+ page no \d+ n bits \d+ index [^'"]+ of table [^'"]+ trx id [0-9A-Fa-f ]+ lock[_ ]mode [A-Za-z0-9 _-]+$/,
  /^TABLE LOCK table [^'"]+ trx id [0-9A-Fa-f ]+ lock mode [A-Za-z0-9 _-]+$/,
  /^Record lock, heap no \d+ PHYSICAL RECORD: [a-z0-9_ ;-]+$/,
];
