// The CLI's tables print alert labels, which anyone who can fire an alert controls: one row must
// stay one line, and nothing in a cell may reach the terminal as a control sequence.
import { describe, expect, it } from 'vitest';
import { renderTable, terminalSafe } from '../../triggers/cli/table.js';

describe('terminal output of untrusted text', () => {
  it('a label with a newline cannot print a forged row, nor an escape sequence recolour or move anything', () => {
    const forged = 'ServiceDown\nincident:serviceDown:db      Completed  ServiceDown  critical  recovered';
    const ansi = '\u001b[2J\u001b[1;1Hcritical\u001b]0;owned\u0007';
    const out = renderTable(['WORKFLOW ID', 'ALERT', 'SEVERITY'], [['incident:serviceDown:api', forged, ansi]]);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(lines[1]).toContain('ServiceDown\\nincident:serviceDown:db');
    expect(lines[1]).toContain('\\x1b[2J\\x1b[1;1Hcritical\\x1b]0;owned\\x07');
  });

  it('carriage returns, tabs and bidirectional overrides are shown, not obeyed', () => {
    expect(terminalSafe('ok\rFAKE')).toBe('ok\\rFAKE');
    expect(terminalSafe('a\tb')).toBe('a\\tb');
    expect(terminalSafe('db-\u202egnp.exe')).toBe('db-\\u202egnp.exe');
    expect(terminalSafe('\u009b31m')).toBe('\\x9b31m');
    expect(terminalSafe('plain label-1 ÄÖ 漢字')).toBe('plain label-1 ÄÖ 漢字');
  });

  it('columns line up on what is printed', () => {
    const out = renderTable(
      ['A', 'B'],
      [
        ['x\ny', '1'],
        ['long value', '2'],
      ],
    );
    const [head, first, second] = out.trimEnd().split('\n');
    expect(head!.indexOf('B')).toBe(first!.indexOf('1'));
    expect(first!.indexOf('1')).toBe(second!.indexOf('2'));
  });
});
