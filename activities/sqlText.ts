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
 */
export function maskDeadlockReport(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let dumps = 0;
  let statement: string[] | undefined;
  const flush = () => {
    if (statement && statement.length > 0) out.push(...maskSql(statement.join('\n'), 'mysql', 2_000).split('\n'));
    statement = undefined;
  };
  for (const line of lines) {
    if (/^\s*\d+: (len \d+; hex |SQL NULL;)/.test(line)) {
      dumps += 1;
      continue;
    }
    if (statement && /^(\*\*\*|RECORD LOCKS |TABLE LOCK |Record lock,|---|[A-Z][A-Z /]+$)/.test(line)) flush();
    if (statement) {
      statement.push(line);
      continue;
    }
    out.push(line);
    // The statement follows the session line ("MySQL thread id 10, OS thread handle …, query id 55 … updating").
    if (/^(MySQL|MariaDB) thread id \d+/.test(line)) statement = [];
  }
  flush();
  if (dumps > 0) out.push(`[${dumps} record dump line(s) left out: they hold the locked rows' values]`);
  return out.join('\n');
}
