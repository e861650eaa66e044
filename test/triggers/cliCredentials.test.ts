// Where the CLI finds the operator API and its token: the environment, else a credentials file that
// only its owner may read (as ssh insists for a private key), and nothing that would send a token
// somewhere it should not go.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkedUrl,
  credentialsPath,
  defaultApiUrl,
  findApiCredentials,
  parseCredentials,
  readCredentialsFile,
} from '../../triggers/cli/cliCredentials.js';
import { CliError } from '../../triggers/cli/operatorApiClient.js';
import { newOperatorToken } from '../../triggers/operators/credentials.js';

const { token } = newOperatorToken();
let dir: string;
let n = 0;

/** A credentials file with this text and mode, in a fresh folder. */
function file(text: string, mode = 0o600): string {
  const path = join(dir, `credentials-${n++}`);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

function failure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error('expected a CliError');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'remediate-credentials-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the credentials file', () => {
  it('reads url and token as key = value lines, with comments and quotes', () => {
    const path = file(`# my laptop\nurl = https://remediation.example.com/\n\ntoken = "${token}"\n`);
    expect(readCredentialsFile(path, true)).toEqual({ url: 'https://remediation.example.com/', token });
  });

  it('reads the same as JSON', () => {
    const path = file(JSON.stringify({ url: 'http://127.0.0.1:9798', token }));
    expect(readCredentialsFile(path, true)).toEqual({ url: 'http://127.0.0.1:9798', token });
  });

  it.each([0o644, 0o640, 0o604, 0o620, 0o660])('refuses a file with mode %s, naming the file and the fix, before reading it', (mode) => {
    const path = file(`token = ${token}\n`, mode);
    const err = failure(() => readCredentialsFile(path, true));
    expect(err.exitCode).toBe(4);
    expect(err.message).toContain(`credentials file ${path} is accessible by group or others (mode 0${mode.toString(8)})`);
    expect(err.message).toContain(`chmod 600 ${path}`);
    expect(err.message).not.toContain(token);
  });

  it('accepts 0400 and 0600', () => {
    expect(readCredentialsFile(file(`token=${token}`, 0o400), true)?.token).toBe(token);
    expect(readCredentialsFile(file(`token=${token}`, 0o600), true)?.token).toBe(token);
  });

  it('refuses a FIFO planted at the path at once instead of hanging on it', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const started = Date.now();
    expect(failure(() => readCredentialsFile(fifo, true)).message).toBe(`credentials file ${fifo} is not a regular file`);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('refuses a file far bigger than a credentials file', () => {
    const path = file(`# ${'x'.repeat(70_000)}\ntoken = ${token}\n`);
    expect(failure(() => readCredentialsFile(path, true)).message).toMatch(/is 70\d{3} bytes; a credentials file is a few lines/);
  });

  it('is optional at the default path and required where REMEDIATE_CREDENTIALS points', () => {
    expect(readCredentialsFile(join(dir, 'absent'), false)).toBeUndefined();
    expect(failure(() => readCredentialsFile(join(dir, 'absent'), true)).message).toContain('(REMEDIATE_CREDENTIALS) does not exist');
  });

  it('names the line of an unknown or repeated key and never echoes a value', () => {
    const typo = failure(() => parseCredentials(`url = http://127.0.0.1:1\ntokn = ${token}\n`, 'f'));
    expect(typo.message).toBe('credentials file f line 2: unknown key "tokn" (expected url, token)');
    expect(failure(() => parseCredentials(`token=${token}\ntoken=${token}`, 'f')).message).toBe(
      'credentials file f line 2: token is given twice',
    );
    expect(failure(() => parseCredentials(token, 'f')).message).toBe('credentials file f line 1: expected key = value');
    expect(failure(() => parseCredentials('{"token": 1}', 'f')).message).toBe('credentials file f: token must be a string');
    expect(failure(() => parseCredentials(`{"token": "${token}"`, 'f')).message).not.toContain(token);
  });

  it('lives in XDG_CONFIG_HOME, else ~/.config, unless REMEDIATE_CREDENTIALS says otherwise', () => {
    expect(credentialsPath({ HOME: '/home/op' })).toBe('/home/op/.config/remediate/credentials');
    expect(credentialsPath({ HOME: '/home/op', XDG_CONFIG_HOME: '/cfg' })).toBe('/cfg/remediate/credentials');
    expect(credentialsPath({ HOME: '/home/op', REMEDIATE_CREDENTIALS: '/run/op.creds' })).toBe('/run/op.creds');
  });
});

describe('finding the API and the token', () => {
  it('takes the environment over the file, key by key, and the default URL last', () => {
    const path = file(`url = http://127.0.0.1:7000\ntoken = ${token}\n`);
    const other = newOperatorToken().token;
    expect(findApiCredentials({ REMEDIATE_CREDENTIALS: path })).toEqual({
      url: 'http://127.0.0.1:7000',
      token,
      urlFrom: path,
      tokenFrom: path,
    });
    expect(findApiCredentials({ REMEDIATE_CREDENTIALS: path, REMEDIATE_TOKEN: other })).toMatchObject({
      url: 'http://127.0.0.1:7000',
      token: other,
      tokenFrom: 'REMEDIATE_TOKEN',
    });
    expect(findApiCredentials({ REMEDIATE_TOKEN: other, HOME: dir })).toEqual({
      url: defaultApiUrl,
      token: other,
      urlFrom: 'the default',
      tokenFrom: 'REMEDIATE_TOKEN',
    });
  });

  it('does not read the default file when the environment has both', () => {
    const home = join(dir, 'home-open');
    mkdirSync(join(home, '.config', 'remediate'), { recursive: true });
    writeFileSync(join(home, '.config', 'remediate', 'credentials'), `token = ${token}\n`, { mode: 0o644 });
    expect(failure(() => findApiCredentials({ HOME: home })).message).toContain('mode 0644');
    expect(findApiCredentials({ HOME: home, REMEDIATE_URL: 'http://[::1]:9798', REMEDIATE_TOKEN: token }).url).toBe('http://[::1]:9798');
  });

  it('says where it looked when there is no token (exit 4)', () => {
    const err = failure(() => findApiCredentials({ HOME: join(dir, 'nobody') }));
    expect(err.exitCode).toBe(4);
    expect(err.message).toBe(
      `no operator token: set REMEDIATE_TOKEN (and REMEDIATE_URL), or put url and token in ${join(dir, 'nobody', '.config', 'remediate', 'credentials')} (mode 0600); ` +
        'an administrator makes one with "remediate operators token NAME"',
    );
  });

  it('refuses a mangled token without printing it', () => {
    const truncated = failure(() => findApiCredentials({ REMEDIATE_TOKEN: token.slice(0, -3), HOME: dir }));
    expect(truncated.message).toBe('the token from REMEDIATE_TOKEN is an rmd_ token of 44 characters (expected 47: truncated or padded?)');
    const spaced = failure(() => findApiCredentials({ REMEDIATE_TOKEN: `${token}\r\nX-Evil: 1`, HOME: dir }));
    expect(spaced.message).not.toContain(token);
    expect(failure(() => findApiCredentials({ REMEDIATE_TOKEN: 'hunter2', HOME: dir })).message).toBe(
      'the token from REMEDIATE_TOKEN is neither an rmd_ token nor a JWT',
    );
  });

  it('accepts a signed JWT as the token', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    expect(findApiCredentials({ REMEDIATE_TOKEN: jwt, HOME: dir }).token).toBe(jwt);
  });
});

describe('the API URL', () => {
  it('sends a token in clear only to this machine', () => {
    for (const ok of ['http://127.0.0.1:9798', 'http://localhost:9798', 'http://[::1]:9798', 'https://remediation.example.com'])
      expect(() => checkedUrl(ok, 'REMEDIATE_URL')).not.toThrow();
    expect(() => checkedUrl('http://10.1.2.3:9798', 'REMEDIATE_URL')).toThrow(
      'the operator API URL from REMEDIATE_URL is plain http to 10.1.2.3:9798: the token would cross the network unencrypted; use https://',
    );
    expect(() => checkedUrl('http://127.0.0.1.evil.example:9798', 'x')).toThrow('plain http');
  });

  it('keeps a path prefix (behind a proxy), drops a trailing slash, and refuses what it cannot use', () => {
    expect(checkedUrl('https://ops.example.com/remediation/', 'x')).toBe('https://ops.example.com/remediation');
    expect(() => checkedUrl('https://alice:secret@ops.example.com', 'x')).toThrow('carries a user or password');
    expect(() => checkedUrl('https://ops.example.com/?a=1', 'x')).toThrow('must not have a query or fragment');
    expect(() => checkedUrl('ftp://ops.example.com', 'x')).toThrow('must be http:// or https://, not ftp:');
    expect(() => checkedUrl('127.0.0.1:9798', 'x')).toThrow(
      'the operator API URL from x has no scheme: write http://127.0.0.1:9798 (or https://)',
    );
    expect(() => checkedUrl('localhost:9798', 'x')).toThrow('has no scheme: write http://localhost:9798');
    expect(() => checkedUrl('not a url', 'x')).toThrow('is not a URL');
  });
});
