// Other sessions' statements reach diagnostics, pages and Temporal's history as their shape only.
import { describe, expect, it } from 'vitest';
import { maskDeadlockReport, maskSql } from '../../activities/sqlText.js';

describe('statement text without its literals', () => {
  it('replaces string and number literals with ?, keeping identifiers, keywords, parameters and comments', () => {
    expect(maskSql("UPDATE users SET password = 'hunter2', tries = 42 WHERE id = 7 AND t1.score > 3.5e2", 'postgres')).toBe(
      'UPDATE users SET password = ?, tries = ? WHERE id = ? AND t1.score > ?',
    );
    expect(maskSql('SELECT "Col1", x FROM "T2" WHERE x IN (1,2,3) AND y = $1 -- from the api 42', 'postgres')).toBe(
      'SELECT "Col1", x FROM "T2" WHERE x IN (?,?,?) AND y = $1 -- from the api 42',
    );
    expect(maskSql("INSERT INTO cards VALUES ('4111 1111 1111 1111', -12.50, 0x1F) /* checkout */", 'mysql')).toBe(
      'INSERT INTO cards VALUES (?, -?, ?) /* checkout */',
    );
  });

  it("reads each dialect's quoting, so no literal escapes through an odd quote", () => {
    // PostgreSQL: '' inside, backslashes literal except in E'…', $$…$$ and $tag$…$tag$ strings, "…" names.
    expect(maskSql("select 'it''s', 'abc\\', 'secret-1'", 'postgres')).toBe('select ?, ?, ?');
    expect(maskSql("select E'x\\'secret-2', $$secret-3$$, $fn$secret-4$fn$", 'postgres')).toBe('select E?, ?, ?');
    // MySQL: backslash escapes, "…" strings, `…` names.
    expect(maskSql("select 'it\\'s secret-5', \"secret-6\", `col``x`", 'mysql')).toBe('select ?, ?, `col``x`');
  });

  it('masks a literal the server cut off, to the end, and caps the text', () => {
    expect(maskSql("SELECT * FROM t WHERE token = 'abcdef-sec", 'postgres')).toBe('SELECT * FROM t WHERE token = ?');
    expect(maskSql(`SELECT ${'x, '.repeat(400)}1`, 'postgres')).toHaveLength(500);
  });

  it("keeps a deadlock report readable without the statements' values or the locked rows", () => {
    const report = [
      '*** (1) TRANSACTION:',
      'TRANSACTION 41, ACTIVE 0 sec starting index read',
      'mysql tables in use 1, locked 1',
      'MariaDB thread id 5, OS thread handle 139, query id 20 localhost 127.0.0.1 app Updating',
      "UPDATE accounts SET note = 'line one",
      "secret-7' WHERE id = 2",
      '*** WAITING FOR THIS LOCK TO BE GRANTED:',
      'RECORD LOCKS space id 6 page no 3 n bits 8 index PRIMARY of table `app`.`accounts` trx id 41 lock_mode X locks rec but not gap waiting',
      'Record lock, heap no 3 PHYSICAL RECORD: n_fields 4; compact format; info bits 0',
      ' 0: len 4; hex 80000002; asc     ;;',
      ' 1: len 8; hex 7365637265742d38; asc secret-8;;',
      ' 2: SQL NULL;',
      '*** WE ROLL BACK TRANSACTION (1)',
    ].join('\n');
    const masked = maskDeadlockReport(report);
    expect(masked).not.toMatch(/secret-[78]/);
    expect(masked).toContain('UPDATE accounts SET note = ? WHERE id = ?');
    expect(masked).toContain('index PRIMARY of table `app`.`accounts` trx id 41 lock_mode X');
    expect(masked).toContain('TRANSACTION 41, ACTIVE 0 sec');
    expect(masked).toContain('*** WE ROLL BACK TRANSACTION (1)');
    expect(masked).toContain('[3 record dump line(s) left out');
  });
});
