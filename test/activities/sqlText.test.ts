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
  // InnoDB prints a statement as it was sent, line breaks and all: a keyword alone on a line (SET,
  // VALUES, WHERE, AND) is still the statement, and its literals after it are still data.
  it('masks a statement written over several lines, whatever line its literals are on', () => {
    const report = [
      '2026-12-05 10:20:13 0x7f2b81ccf6c0',
      '*** (1) TRANSACTION:',
      'TRANSACTION 7633, ACTIVE 1 sec starting index read',
      'mysql tables in use 1, locked 1',
      'LOCK WAIT 3 lock struct(s), heap size 1128, 2 row lock(s), undo log entries 1',
      'MariaDB thread id 8, OS thread handle 139824838014656, query id 18 127.0.0.1 app Updating',
      'UPDATE users',
      'SET',
      "  password_hash = 'hunter2-secret', card = '4111111111111111'",
      'WHERE id = 7',
      '*** WAITING FOR THIS LOCK TO BE GRANTED:',
      'RECORD LOCKS space id 658 page no 3 n bits 320 index PRIMARY of table `app`.`users` trx id 7633 lock_mode X locks rec but not gap waiting',
      'Record lock, heap no 2 PHYSICAL RECORD: n_fields 5; compact format; info bits 0',
      ' 0: len 4; hex 80000007; asc     ;;',
      ' 1: len 14; hex 726f772d6f6e652d736563726574; asc row-one-secret;;',
      '',
      '*** CONFLICTING WITH:',
      'RECORD LOCKS space id 658 page no 3 n bits 320 index PRIMARY of table `app`.`users` trx id 7632 lock_mode X locks rec but not gap',
      'Record lock, heap no 2 PHYSICAL RECORD: n_fields 5; compact format; info bits 0',
      ' 0: len 4; hex 80000007; asc     ;;',
      '',
      '*** (2) TRANSACTION:',
      'TRANSACTION 7632, ACTIVE 1 sec inserting',
      'mysql tables in use 1, locked 1',
      'MariaDB thread id 7, OS thread handle 139824838321856, query id 17 127.0.0.1 app Update',
      'INSERT INTO cards (owner, number, note, cvv)',
      'VALUES',
      `  ("dq-secret", 5500000000000004, 'it''s-secret', 'back\\'slash-secret'),`,
      '  (\'x-secret\', -12.50e3, "say \\"quoted-secret\\"", 0x5EC)',
      'ON DUPLICATE KEY UPDATE',
      '  note = "tail-secret"',
      '*** WAITING FOR THIS LOCK TO BE GRANTED:',
      'TABLE LOCK table `app`.`cards` trx id 7632 lock mode IX',
      '*** (3) TRANSACTION:',
      'TRANSACTION 7634, ACTIVE 2 sec fetching rows',
      'MySQL thread id 9, OS thread handle 140023, query id 19 localhost root updating',
      'DELETE FROM sessions',
      'WHERE',
      "  token = 'tok-secret'",
      'AND',
      '  expires < 1700000000',
      'AND',
      '  pin = 97531',
      '*** WE ROLL BACK TRANSACTION (2)',
    ].join('\n');
    const masked = maskDeadlockReport(report);
    for (const literal of ['hunter2', '4111111111111111', '= 7', 'secret', '5500000000000004', '12.50', '5EC', '1700000000', '97531']) {
      expect(masked).not.toContain(literal);
    }
    expect(masked).toContain('UPDATE users\nSET\n  password_hash = ?, card = ?\nWHERE id = ?\n*** WAITING FOR THIS LOCK TO BE GRANTED:');
    expect(masked).toContain(
      'INSERT INTO cards (owner, number, note, cvv)\nVALUES\n  (?, ?, ?, ?),\n  (?, -?, ?, ?)\nON DUPLICATE KEY UPDATE\n  note = ?\n',
    );
    expect(masked).toContain('DELETE FROM sessions\nWHERE\n  token = ?\nAND\n  expires < ?\nAND\n  pin = ?\n*** WE ROLL BACK');
    // The report's own lines stay as InnoDB wrote them.
    for (const line of report
      .split('\n')
      .filter((l) => /^(\*\*\*|TRANSACTION |RECORD LOCKS |TABLE LOCK |Record lock|mysql |LOCK WAIT|M\w+ thread id|2026)/.test(l))) {
      expect(masked).toContain(line);
    }
    expect(masked).toContain('[3 record dump line(s) left out');
    expect(masked).not.toContain('unrecognised');
  });

  it('leaks nothing when a literal holds a line that passes for the end of the statement', () => {
    // A note with line breaks, one of them starting "*** ", then a line shaped like a session line:
    // the statement's end is not sure, so what follows is kept only if it is shaped like InnoDB's own.
    const report = [
      '*** (1) TRANSACTION:',
      'TRANSACTION 41, ACTIVE 0 sec starting index read',
      'MariaDB thread id 5, OS thread handle 139, query id 20 localhost 127.0.0.1 app Updating',
      "UPDATE notes SET body = 'first line",
      '*** WAITING FOR THIS LOCK TO BE GRANTED:',
      'body-secret-1',
      "MariaDB thread id 9, OS thread handle 1, query id 2 x', owner_password = 'pw-secret-2', pin = 97531",
      '  WHERE id = 3',
      '*** WAITING FOR THIS LOCK TO BE GRANTED:',
      'RECORD LOCKS space id 6 page no 3 n bits 8 index PRIMARY of table `app`.`notes` trx id 41 lock_mode X locks rec but not gap waiting',
      '*** WE ROLL BACK TRANSACTION (1)',
    ].join('\n');
    const masked = maskDeadlockReport(report);
    expect(masked).not.toMatch(/secret|97531|id = 3/);
    expect(masked).toContain('UPDATE notes SET body = ?\n*** WAITING FOR THIS LOCK TO BE GRANTED:\n[3 unrecognised line(s) left out');
    expect(masked).toContain('index PRIMARY of table `app`.`notes` trx id 41 lock_mode X locks rec but not gap waiting');
    expect(masked).toContain('*** WE ROLL BACK TRANSACTION (1)');
  });

  it('keeps the report after a statement the server cut inside a literal', () => {
    const report = [
      '*** (1) TRANSACTION:',
      'TRANSACTION 41, ACTIVE 0 sec inserting',
      'MariaDB thread id 5, OS thread handle 139, query id 20 localhost 127.0.0.1 app Update',
      "INSERT INTO big VALUES (1, 'aaa-secret'),",
      "(2, 'bbb-sec",
      '*** WAITING FOR THIS LOCK TO BE GRANTED:',
      'RECORD LOCKS space id 6 page no 3 n bits 8 index PRIMARY of table `app`.`big` trx id 41 lock_mode X locks rec but not gap waiting',
      '*** WE ROLL BACK TRANSACTION (1)',
    ].join('\n');
    const masked = maskDeadlockReport(report);
    expect(masked).not.toMatch(/secret|bbb/);
    expect(masked).toContain('INSERT INTO big VALUES (?, ?),\n(?, ?\n*** WAITING FOR THIS LOCK TO BE GRANTED:\nRECORD LOCKS space id 6');
    expect(masked).toContain('*** WE ROLL BACK TRANSACTION (1)');
  });
});
