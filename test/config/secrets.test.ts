// Secrets in the config: a config error never echoes one (wherever the schema holds a secret, not
// only under keys that look like one), and each process resolves the secrets it needs, at start-up.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig, type LoadOptions } from '../../config/load.js';
import { redactUrls, safeUrl, Secret } from '../../config/secret.js';

const unset = `T_UNSET_${randomBytes(6).toString('hex').toUpperCase()}`;
const secretText = 'hunter2-S3CRET-value';

function base(): Record<string, any> {
  return {
    temporal: { taskQueue: 'secrets' },
    webhook: { listen: '127.0.0.1:0', token: 'tok-secrets-0123456789' },
    hosts: { 'web-1': {}, 'web-2': {} },
    targets: {
      api: { kind: 'container', container: 'api' },
      web: { kind: 'systemd', unit: 'web.service', host: 'web-1', health: { url: 'http://127.0.0.1:18081/health' } },
      db: { kind: 'postgres', port: 15432 },
    },
    channels: { log: { type: 'log' } },
    escalation: { policies: { standard: { levels: [{ name: 'oncall', after: '0s', channels: ['log'] }] } }, default: 'standard' },
  };
}

function problemsOf(raw: unknown, options: LoadOptions = {}): string[] {
  try {
    parseConfig(raw, 'secrets test', process.cwd(), options);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe('config errors never echo a secret', () => {
  const cases: Array<[string, (c: ReturnType<typeof base>) => void, string]> = [
    // A named secret's key is whatever the operator called it: the position, not the name, makes it secret.
    [
      'a named secret with a typo in its reference',
      (c) => (c.secrets = { grafana: { env: 'GRAFANA', vaule: secretText } }),
      'secrets.grafana',
    ],
    ['a named secret of the wrong type', (c) => (c.secrets = { grafana: [secretText] }), 'secrets.grafana'],
    [
      'a whole channel written as its webhook URL',
      (c) => (c.channels.hook = `https://hooks.slack.com/services/T0/B0/${secretText}`),
      'channels.hook',
    ],
    [
      'a channel of an unknown type, with its URL',
      (c) => (c.channels.hook = { type: 'slak', url: `https://hooks.slack.com/services/T0/B0/${secretText}` }),
      'channels.hook.type',
    ],
    [
      'a channel with an unknown key next to its URL',
      (c) => (c.channels.hook = { type: 'webhook', url: `https://hooks.example/${secretText}`, retries: 'x' }),
      'channels.hook',
    ],
    ['a TLS key written as a list', (c) => (c.temporal.tls = { key: [`-----BEGIN KEY----- ${secretText}`] }), 'temporal.tls.key'],
    [
      'a password with an extra key',
      (c) => (c.targets.db.password = { file: '/run/secrets/db', value: secretText }),
      'targets.db.password',
    ],
    ['a webhook token that is a number', (c) => (c.webhook.token = 81_234_567_890), 'webhook.token'],
    [
      'a health URL with credentials and a token, of the wrong scheme',
      (c) => (c.targets.web.health = { url: `ftp://admin:${secretText}@127.0.0.1/health?token=${secretText}` }),
      'targets.web.health.url',
    ],
    [
      'a health check with a bad timeout next to a URL with credentials',
      (c) => (c.targets.web.health = { url: `http://admin:${secretText}@127.0.0.1/health?token=${secretText}`, timeout: 5 }),
      'targets.web.health.timeout',
    ],
  ];
  for (const [what, change, key] of cases) {
    it(what, () => {
      const raw = base();
      change(raw);
      const problems = problemsOf(raw);
      expect(
        problems.some((p) => p.startsWith(key)),
        problems.join('\n'),
      ).toBe(true);
      expect(problems.join('\n')).not.toContain('S3CRET');
    });
  }

  it('still shows the values that are not secrets, with URLs reduced to scheme, host and path', () => {
    const raw = base();
    raw.targets.web.health = { url: 'http://127.0.0.1:18081/health', timeout: 'soon' };
    raw.targets.api.stopTimeout = '1h';
    const problems = problemsOf(raw);
    expect(problems).toContain('targets.web.health.timeout: expected a duration such as "30s", "15m" or "1h" (got "soon")');
    expect(problems.some((p) => p.startsWith('targets.api.stopTimeout') && p.endsWith('(got "1h")'))).toBe(true);
    expect(safeUrl(`http://u:${secretText}@h:8080/p?token=${secretText}#${secretText}`)).toBe('http://h:8080/p');
    expect(redactUrls(`GET https://u:p@h/x?key=${secretText} then ftp://h/y?z`)).toBe('GET https://h/x then ftp://h/y');
  });
});

describe('secrets resolved per process, at start-up', () => {
  function withEnvSecrets(): ReturnType<typeof base> {
    const raw = base();
    raw.targets.db.password = { env: `${unset}_PG` };
    raw.webhook.token = { env: `${unset}_TOKEN` };
    raw.channels.page = { type: 'slack', url: { env: `${unset}_SLACK` } };
    raw.escalation.policies.standard.levels[0].channels.push('page');
    return raw;
  }

  it('the engine refuses to start without a secret it needs, naming its key and where it looked', () => {
    const problems = problemsOf(withEnvSecrets());
    expect(problems).toContain(`targets.db.password: environment variable ${unset}_PG is not set`);
    expect(problems).toContain(`webhook.token: environment variable ${unset}_TOKEN is not set`);
    expect(problems).toContain(`channels.page.url: environment variable ${unset}_SLACK is not set`);
  });

  it("a host agent's config needs only its host's secrets, and reads no other", () => {
    const raw = withEnvSecrets();
    raw.targets.other = { kind: 'systemd', unit: 'other.service', host: 'web-2' };
    const config = parseConfig(raw, 'secrets test', process.cwd(), { secrets: { host: 'web-1' } });
    const db = config.targets.db as { password?: Secret };
    expect(db.password instanceof Secret && !db.password.resolved).toBe(true);
    expect(config.webhook.token.resolved).toBe(false);
    // Read on first use, if ever, with the same message.
    expect(() => config.webhook.token.reveal()).toThrow(`environment variable ${unset}_TOKEN is not set`);
    // The Temporal connection's secrets are the agent's too.
    const withKey = withEnvSecrets();
    withKey.temporal.apiKey = { env: `${unset}_APIKEY` };
    expect(problemsOf(withKey, { secrets: { host: 'web-1' } })).toEqual([
      `temporal.apiKey: environment variable ${unset}_APIKEY is not set`,
    ]);
  });

  it('a webhook URL read from the environment must still be http or https, and is not shown', () => {
    const name = `${unset}_HOOK`;
    process.env[name] = `file:///tmp/${secretText}`;
    try {
      const raw = base();
      raw.channels.hook = { type: 'webhook', url: { env: name } };
      const problems = problemsOf(raw);
      expect(problems).toEqual(['channels.hook.url: expected an http or https URL']);
    } finally {
      delete process.env[name];
    }
  });
});

describe('a config file whose YAML is not valid', () => {
  // An unquoted secret starting with * or ! is YAML syntax: the library's own messages quote it.
  const cases: Array<[string, string, RegExp]> = [
    ['an alias', `webhook:\n  listen: 127.0.0.1:0\n  token: *${secretText}\n`, /^not valid YAML: an alias \(\*name\) that names no anchor/],
    [
      'a tag',
      `webhook:\n  listen: 127.0.0.1:0\n  token: !${secretText} x\n`,
      /^not valid YAML at line 3, column 10: an unknown tag \(!name\): a value that starts with ! must be quoted$/,
    ],
    ['a flow not closed', `webhook: { token: "${secretText}"\n`, /^not valid YAML at line \d+, column \d+: /],
  ];

  it.each(cases)('refuses %s by line and column, never quoting the text, and prints nothing', (_what, text, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'yaml-secret-'));
    const file = join(dir, 'engine.yaml');
    writeFileSync(file, text);
    const printed: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const warn = console.warn;
    process.stderr.write = ((chunk: unknown) => (printed.push(String(chunk)), true)) as typeof process.stderr.write;
    console.warn = (...args: unknown[]) => void printed.push(args.join(' '));
    let err: unknown;
    try {
      loadConfigFile(file);
    } catch (e) {
      err = e;
    } finally {
      process.stderr.write = write;
      console.warn = warn;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems[0]).toMatch(message);
    expect(JSON.stringify(problems)).not.toContain(secretText);
    expect(printed.join('')).not.toContain(secretText);
  });
});
