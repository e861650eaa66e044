// stack.env holds the stack's passwords and the webhook token: only its owner may read it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/engineProcess.js';

describe("the stack's credentials file", () => {
  const dir = mkdtempSync(join(tmpdir(), 'remediation-stackenv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is written 0600, also over a file an earlier version left 0644', () => {
    const stackDir = join(dir, 'stack');
    const script = join(dir, 'write-env.sh');
    // stack.sh runs its command when sourced: "env" only prints the (existing) file; then the
    // function `up` uses to write it is called alone, in a stack directory of this test's own.
    writeFileSync(
      script,
      [
        'set -- env',
        'mkdir -p "$STACK_DIR"',
        'printf "OLD=1\\n" > "$STACK_DIR/stack.env"',
        'chmod 644 "$STACK_DIR/stack.env"',
        '. "$REPO/stack/stack.sh" >/dev/null',
        'write_env dev',
        '',
      ].join('\n'),
    );
    const r = spawnSync('bash', [script], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, STACK_DIR: stackDir, REPO: repoRoot },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const file = join(stackDir, 'stack.env');
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    expect(statSync(join(stackDir, 'secrets')).mode & 0o777).toBe(0o700);
  });
});
