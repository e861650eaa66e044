// Where the CLI finds the operator API and the operator's token: REMEDIATE_URL and REMEDIATE_TOKEN,
// else a credentials file (REMEDIATE_CREDENTIALS, or ~/.config/remediate/credentials). The file
// holds a token that approves restarts of production databases: like ssh with a private key, it is
// refused when anyone but its owner can read or write it. No value read here is ever printed.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './operatorApiClient.js';

/** The operator API's default listener (config `api.listen`), used when no URL is given. */
export const defaultApiUrl = 'http://127.0.0.1:9798';

export interface ApiCredentials {
  /** The API's base URL, without a trailing slash. */
  url: string;
  token: string;
  /** Where the URL and the token came from ("REMEDIATE_URL", a file path, "the default"): for messages. */
  urlFrom: string;
  tokenFrom: string;
}

/** A token file is a few lines; anything bigger is not one. */
const maxFileBytes = 64 * 1024;
const operatorTokenPattern = /^rmd_[A-Za-z0-9_-]{43}$/;
const jwtPattern = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const maxTokenChars = 8_192;
const fileKeys = ['url', 'token'] as const;
type FileKey = (typeof fileKeys)[number];

/** REMEDIATE_CREDENTIALS, else $XDG_CONFIG_HOME/remediate/credentials, else ~/.config/remediate/credentials. */
export function credentialsPath(env: NodeJS.ProcessEnv): string {
  if (env.REMEDIATE_CREDENTIALS) return env.REMEDIATE_CREDENTIALS;
  const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(configHome, 'remediate', 'credentials');
}

/**
 * The URL and token to call the API with. The environment wins over the file, key by key; the
 * file is read only when the environment lacks one of them (or REMEDIATE_CREDENTIALS names it).
 * Throws a CliError (exit 4) when there is no token, naming every place it looked.
 */
export function findApiCredentials(env: NodeJS.ProcessEnv, hint = ''): ApiCredentials {
  const envUrl = env.REMEDIATE_URL || undefined;
  const envToken = env.REMEDIATE_TOKEN || undefined;
  const path = credentialsPath(env);
  const explicit = Boolean(env.REMEDIATE_CREDENTIALS);
  const file = envUrl && envToken && !explicit ? undefined : readCredentialsFile(path, explicit);

  const token = envToken ?? file?.token;
  const tokenFrom = envToken ? 'REMEDIATE_TOKEN' : path;
  if (!token)
    throw new CliError(
      4,
      `no operator token: set REMEDIATE_TOKEN (and REMEDIATE_URL), or put url and token in ${path} (mode 0600); ` +
        `an administrator makes one with "remediate operators token NAME"${hint}`,
    );
  checkToken(token, tokenFrom);
  const url = envUrl ?? file?.url;
  const urlFrom = envUrl ? 'REMEDIATE_URL' : url ? path : 'the default';
  return { url: checkedUrl(url ?? defaultApiUrl, urlFrom), token, urlFrom, tokenFrom };
}

/** The file's url and token; undefined when the default file does not exist. */
export function readCredentialsFile(path: string, required: boolean): Partial<Record<FileKey, string>> | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at the path must not hang the CLI; it is refused below as not a file.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    if (code === 'ENOENT') throw new CliError(4, `credentials file ${path} (REMEDIATE_CREDENTIALS) does not exist`);
    throw new CliError(4, `cannot read the credentials file ${path}: ${code ?? (err as Error).message}`);
  }
  try {
    // Checked on the open descriptor, not the path: the file read is the file checked.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CliError(4, `credentials file ${path} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid && st.uid !== 0)
      throw new CliError(
        4,
        `credentials file ${path} belongs to uid ${st.uid}, not to you (uid ${uid}); refusing to use someone else's token`,
      );
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new CliError(
        4,
        `credentials file ${path} is accessible by group or others (mode ${mode}); it holds a token: run "chmod 600 ${path}" (or get a new token if others could read it)`,
      );
    }
    if (st.size > maxFileBytes)
      throw new CliError(4, `credentials file ${path} is ${st.size} bytes; a credentials file is a few lines (at most ${maxFileBytes})`);
    const buf = Buffer.alloc(maxFileBytes + 1);
    let length = 0;
    // The size was checked, but a file can grow between fstat and read.
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxFileBytes) throw new CliError(4, `credentials file ${path} is over ${maxFileBytes} bytes`);
    }
    return parseCredentials(buf.subarray(0, length).toString('utf8'), path);
  } finally {
    closeSync(fd);
  }
}

/**
 * JSON (`{"url": "...", "token": "..."}`) or lines of `key = value` (`#` comments, values optionally
 * quoted). Errors name the line and key, never a value: a value may be the token.
 */
export function parseCredentials(text: string, path: string): Partial<Record<FileKey, string>> {
  const out: Partial<Record<FileKey, string>> = {};
  const set = (key: string, value: unknown, where: string) => {
    if (!(fileKeys as readonly string[]).includes(key))
      throw new CliError(4, `credentials file ${path}${where}: unknown key ${JSON.stringify(key.slice(0, 40))} (expected url, token)`);
    if (typeof value !== 'string') throw new CliError(4, `credentials file ${path}${where}: ${key} must be a string`);
    if (out[key as FileKey] !== undefined) throw new CliError(4, `credentials file ${path}${where}: ${key} is given twice`);
    out[key as FileKey] = value.trim();
  };
  if (text.trimStart().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CliError(4, `credentials file ${path}: starts with "{" but is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new CliError(4, `credentials file ${path}: expected a JSON object with url and token`);
    for (const [k, v] of Object.entries(parsed)) set(k, v, '');
    return out;
  }
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new CliError(4, `credentials file ${path} line ${i + 1}: expected key = value`);
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    set(line.slice(0, eq).trim().toLowerCase(), value, ` line ${i + 1}`);
  });
  return out;
}

/** An operator token (rmd_…) or a signed JWT; said plainly when it is neither (a truncated paste, a stray space). */
function checkToken(token: string, from: string): void {
  if (token.length <= maxTokenChars && (operatorTokenPattern.test(token) || jwtPattern.test(token))) return;
  const shape = token.startsWith('rmd_')
    ? `an rmd_ token of ${token.length} characters (expected 47: truncated or padded?)`
    : 'neither an rmd_ token nor a JWT';
  throw new CliError(4, `the token from ${from} is ${shape}`);
}

/**
 * http(s) only, no user:password in it, and plain http only to this machine: a bearer token sent in
 * clear over a network is a token given away.
 */
export function checkedUrl(text: string, from: string): string {
  // api.listen is written host:port; the URL needs its scheme ("localhost:9798" would parse as one).
  if (/^[^\s/:]+:\d{1,5}$/.test(text))
    throw new CliError(1, `the operator API URL from ${from} has no scheme: write http://${text} (or https://)`);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new CliError(
      1,
      `the operator API URL from ${from} is not a URL (expected e.g. ${defaultApiUrl} or https://remediation.example.com)`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new CliError(1, `the operator API URL from ${from} must be http:// or https://, not ${u.protocol}`);
  if (u.username || u.password)
    throw new CliError(
      1,
      `the operator API URL from ${from} carries a user or password; the token goes in REMEDIATE_TOKEN or the credentials file`,
    );
  if (u.search || u.hash) throw new CliError(1, `the operator API URL from ${from} must not have a query or fragment`);
  if (u.protocol === 'http:' && !isLoopback(u.hostname))
    throw new CliError(
      1,
      `the operator API URL from ${from} is plain http to ${u.host}: the token would cross the network unencrypted; use https://`,
    );
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
