// The one schema for the engine's configuration. Every type the rest of the code uses
// for configuration is inferred from here, so a key exists in exactly one place.
import { z } from 'zod';
import { cronProblem, timeZoneProblem } from './cron.js';
import { formatDuration, parseDuration } from './duration.js';
import { validateMatcher } from './matchers.js';
import { Secret } from './secret.js';
import { durationPattern } from './duration.js';
import { unitNameProblem } from './systemdUnits.js';
import { commandTargetKeys } from './targetCommands.js';
import { housekeeping, logFiles } from './hostFiles.js';
import { requestHeaders } from './requestHeaders.js';
import { emailChannelSchema } from './mailChannel.js';
import type { RunbookDefinition } from './runbookSchema.js';

/** A duration written the way operators write them: "90s", "15m", "1h30m", "500ms". */
const duration = z.string().regex(durationPattern, 'expected a duration such as "30s", "15m" or "1h"');

/**
 * A duration with bounds: a zero timeout fails every call, and an absurd one (a health check of a
 * day) outlasts the activity that runs it, so both are refused at start-up rather than at 3 a.m.
 */
function durationWithin(minMs: number, maxMs: number) {
  return duration.superRefine((text, ctx) => {
    if (!durationPattern.test(text)) return;
    const ms = parseDuration(text);
    if (ms >= minMs && ms <= maxMs) return;
    const low = minMs === 0 ? 'at least 0s' : minMs === 1 ? 'more than 0' : `at least ${formatDuration(minMs)}`;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected ${low} and at most ${formatDuration(maxMs)}` });
  });
}
const second = 1_000;
const minute = 60 * second;
const hour = 60 * minute;
const day = 24 * hour;
/** A timeout: more than zero, at most max. */
const timeout = (maxMs: number) => durationWithin(1, maxMs);

const port = z.number().int().min(1).max(65_535);

/**
 * What is wrong with a listener's host:port, or undefined. The webhook and the operator API read it
 * with parseListen (triggers/alerts/webhookHttp.ts): an IPv4 address, an [IPv6] address or a host
 * name (none: 127.0.0.1), then a port 0–65535 (0: any free one). Node refuses anything else only when
 * the listener opens, after the workers have started and the schedules synced.
 */
function listenProblem(text: string): string | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (!m) {
    const v6 = /^(.*:.*):(\d+)$/.exec(text);
    if (v6 && !text.startsWith('[') && isIpv6(v6[1]!)) return `an IPv6 address goes in brackets: [${v6[1]}]:${v6[2]}`;
    return text.includes(':') ? 'not host:port' : 'no port';
  }
  const [, v6, host, portText] = m;
  if (Number(portText) > 65_535) return `port ${portText} is out of range 0–65535`;
  if (v6 !== undefined) return isIpv6(v6) ? undefined : `"${v6}" is not an IPv6 address`;
  if (host === '') return undefined;
  // Node would look up "256.0.0.1" or "010.0.0.1" as a host name, and the resolver read the latter as octal.
  if (/^[\d.]+$/.test(host!))
    return /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(host!)
      ? undefined
      : `"${host}" is not an IPv4 address`;
  const label = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
  return host!.length <= 253 && new RegExp(`^${label}(?:\\.${label})*$`).test(host!)
    ? undefined
    : `"${host}" is not a host name (letters, digits, "-", "_" and dots)`;
}

/** An IPv6 address, with or without a zone ("fe80::1%eth0"), as the WHATWG URL parser reads it. */
function isIpv6(text: string): boolean {
  const [address, zone, ...more] = text.split('%');
  return more.length === 0 && (zone === undefined || /^[A-Za-z0-9_.-]+$/.test(zone)) && URL.canParse(`http://[${address}]/`);
}

/** A listener's address: see listenProblem. */
function listenAddress(example: string) {
  return z.string().superRefine((text, ctx) => {
    const problem = listenProblem(text);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${problem} (expected host:port such as ${example})` });
  });
}

/**
 * Why a text is not an RFC 3339 time with its zone whose fields are real, or undefined. Date.parse
 * alone is lenient: "2027-02-30T00:00:00Z" becomes 2 March, and a time without a zone is read in
 * the host's local time. The instant Date.parse gives (what the engine later reads) must, shown
 * again in the text's own offset, give back the very date and time written.
 */
function zonedTimeProblem(text: string): string | undefined {
  const expected = 'expected an RFC 3339 time with its zone, e.g. 2027-01-31T00:00:00Z';
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) {
    if (/^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/.test(text))
      return `${expected}; it has no zone (Z or ±hh:mm), and would be read in the engine host's local time`;
    return expected;
  }
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const [zone, sign, oh, om] = [m[7]!, m[8], Number(m[9]), Number(m[10])];
  if (sign && (oh > 23 || om > 59)) return `${expected}; ${zone} is not a zone offset`;
  const offsetMs = sign ? (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000 : 0;
  const back = new Date(Date.parse(text) + offsetMs);
  const same =
    Number.isFinite(back.getTime()) &&
    back.getUTCFullYear() === y &&
    back.getUTCMonth() + 1 === mo &&
    back.getUTCDate() === d &&
    back.getUTCHours() === h &&
    back.getUTCMinutes() === mi &&
    back.getUTCSeconds() === s;
  if (same) return undefined;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (days === undefined || d < 1 || d > days) return `${expected}; ${text.slice(0, 10)} is not a date`;
  if (h > 23 || mi > 59 || s > 59) return `${expected}; ${text.slice(11, 19)} is not a time`;
  return `${expected}; it does not read back as the same time`;
}

/** An instant an operator writes: see zonedTimeProblem. */
const zonedTime = z.string().superRefine((text, ctx) => {
  const problem = zonedTimeProblem(text);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

/** Only http and https: a file:, gopher: or javascript: URL has no business in a health check or a page. */
const httpUrl = z
  .string()
  .url()
  .refine((u) => !URL.canParse(u) || /^https?:$/.test(new URL(u).protocol), { message: 'expected an http or https URL' });

/** Table names go into VACUUM and OPTIMIZE statements: plain identifiers only, optionally schema-qualified. */
const pgTable = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/,
    'expected a plain table name (letters, digits, "_" and "$"), optionally "schema.table"',
  );
const mysqlTable = z
  .string()
  .regex(
    /^(?!\d+(\.|$))[A-Za-z0-9_$]{1,64}(\.(?!\d+$)[A-Za-z0-9_$]{1,64})?$/,
    'expected a plain table name (letters, digits, "_" and "$", not only digits), optionally "db.table"',
  );

/** Names that end up in workflow ids, task queues and search attributes. */
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a name of letters, digits, ".", "_" or "-" (at most 63)');

/** Marks the schema positions that hold a secret: a config error never echoes what is there. */
export const secretMarker = 'secret';

/**
 * A secret is never written inline in production configs; it is read from the environment
 * or a file. Inline values are accepted for local stacks and tests.
 */
export const secretRef = z
  .union([z.string().min(1), z.object({ env: z.string().min(1) }).strict(), z.object({ file: z.string().min(1) }).strict()])
  // Read on first use: which process needs which secret is the loader's to decide (config/load.ts).
  .transform((ref) => Secret.lazy(ref))
  .describe(secretMarker);

/** Every secret in a parsed config, with its key ("targets.app-db.password"). */
export function secretsIn(config: unknown): Array<{ path: Array<string | number>; secret: Secret }> {
  const found: Array<{ path: Array<string | number>; secret: Secret }> = [];
  const walk = (v: unknown, path: Array<string | number>): void => {
    if (v instanceof Secret) return void found.push({ path, secret: v });
    if (typeof v !== 'object' || v === null) return;
    if (Array.isArray(v)) v.forEach((child, i) => walk(child, [...path, i]));
    else for (const [k, child] of Object.entries(v)) walk(child, [...path, k]);
  };
  walk(config, []);
  return found;
}

const healthCheck = z
  .object({
    url: httpUrl,
    expectStatus: z.number().int().min(100).max(599).default(200),
    // The verification activity that runs it has one minute.
    timeout: timeout(30 * second).default('3s'),
    /** A JSON endpoint such as /health/detailed that reports per-dependency checks. */
    detailedUrl: httpUrl.optional(),
    /** Sent with both health requests; `{ secret: NAME, prefix?: "Bearer " }` names an entry of `secrets` (config/requestHeaders.ts). */
    headers: requestHeaders,
  })
  .strict();

const dockerEndpoint = z
  .object({
    socketPath: z.string().optional(),
    host: z.string().optional(),
    port: port.optional(),
    protocol: z.enum(['http', 'https', 'ssh']).optional(),
    username: z.string().optional(),
    ca: secretRef.optional(),
    cert: secretRef.optional(),
    key: secretRef.optional(),
    timeout: timeout(2 * minute).default('15s'),
  })
  .strict()
  .refine((e) => Boolean(e.socketPath) !== Boolean(e.host), {
    message: 'set exactly one of socketPath or host',
  });

const targetBase = {
  /** Labels that identify this target's alerts; used to find silences that cover it. */
  labels: z.record(z.string()).default({}),
  health: healthCheck.optional(),
  /** Overrides of the global restart verification deadline for slow starters. */
  verifyDeadline: timeout(hour).optional(),
  /** Other configured targets this one needs (its database, cache, queue): what a `dependencies` step checks. */
  dependsOn: z.array(name).max(20).default([]),
};

const containerTarget = z
  .object({
    kind: z.literal('container'),
    container: z.string().min(1),
    docker: name.default('local'),
    // The restart activity has three minutes for the stop and the start.
    stopTimeout: durationWithin(0, 2 * minute).default('10s'),
    ...commandTargetKeys,
    /** Application log files a `logs` step reads by name, from inside the container. */
    logFiles,
    ...targetBase,
  })
  .strict();

const systemdTarget = z
  .object({
    kind: z.literal('systemd'),
    unit: z.string().superRefine((unit, ctx) => {
      const problem = unitNameProblem(unit);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    }),
    /** The host whose agent owns the unit; its activities run on that host's task queue. */
    host: name,
    ...commandTargetKeys,
    /** Application log files a `logs` step reads by name, through the host agent. */
    logFiles,
    housekeeping: housekeeping.optional(),
    ...targetBase,
  })
  .strict();

const connection = {
  host: z.string().default('127.0.0.1'),
  port,
  user: z.string().optional(),
  password: secretRef.optional(),
  database: z.string().optional(),
  timeout: timeout(30 * second).default('5s'),
};

const postgresTarget = z
  .object({
    kind: z.literal('postgres'),
    ...connection,
    /** Tables VACUUM (ANALYZE) touches during maintenance; empty means the whole database. */
    maintenanceTables: z.array(pgTable).default([]),
    /** The container or unit that runs the server, for an approved restart. */
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

const mysqlTarget = z
  .object({
    kind: z.literal('mysql'),
    ...connection,
    maintenanceTables: z.array(mysqlTable).default([]),
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

const redisTarget = z
  .object({
    kind: z.literal('redis'),
    host: z.string().default('127.0.0.1'),
    port,
    password: secretRef.optional(),
    timeout: timeout(30 * second).default('3s'),
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

const httpTarget = z
  .object({
    kind: z.literal('http'),
    /** A configured action such as a cache clear, run only after approval. */
    action: z
      .object({ method: z.enum(['POST', 'PUT', 'DELETE']).default('POST'), url: httpUrl, headers: requestHeaders })
      .strict()
      .optional(),
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

export const target = z.discriminatedUnion('kind', [containerTarget, systemdTarget, postgresTarget, mysqlTarget, redisTarget, httpTarget]);

/** The compiled runbooks of earlier releases: still registered so their running histories replay. */
export const runbookNames = ['serviceDown', 'databaseConnection', 'highErrorRate', 'resourcePressure', 'maintenance'] as const;
export const runbookName = z.enum(runbookNames);

/** A runbook file's `name:` (runbooks/<file>.yaml); checked against the loaded files at start-up. */
const runbookRef = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,62}$/, 'expected the name of a runbook file');

export const matcher = z
  .object({
    name: z.string().min(1),
    value: z.string(),
    isRegex: z.boolean().default(false),
    isEqual: z.boolean().default(true),
  })
  .strict()
  // A regular expression that does not compile would fail every alert it is asked about, for ever.
  .superRefine((m, ctx) => {
    if (!m.isRegex) return;
    try {
      validateMatcher(m);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['value'], message: (err as Error).message });
    }
  });

const binding = z
  .object({
    alert: z.string().min(1),
    /** Extra label matchers, Alertmanager style. */
    matchers: z.array(matcher).default([]),
    runbook: runbookRef,
    /** Either one fixed target... */
    target: name.optional(),
    /** ...or a label whose value must name one of `targets`. Labels never name anything else. */
    targetLabel: z.string().optional(),
    targets: z.array(name).default([]),
    /** The binding's escalation policy; with escalationBySeverity, the one for severities the map does not name. */
    escalation: name.optional(),
    /** Severity label value → policy name, for this binding's alerts (e.g. P1 → page-now, P4 → email). */
    escalationBySeverity: z.record(z.string().min(1).max(64), name).default({}),
    /**
     * Rollback lever while runbook files are new: run the compiled runbook of the same name (as
     * releases before runbook files did) instead of the file. Only for the four compiled incident runbooks.
     */
    compiled: z.boolean().default(false),
  })
  .strict()
  .refine((b) => !b.compiled || ((runbookNames as readonly string[]).includes(b.runbook) && b.runbook !== 'maintenance'), {
    message: `compiled: true is only for the compiled runbooks ${runbookNames.filter((r) => r !== 'maintenance').join(', ')}`,
  })
  .refine((b) => Boolean(b.target) !== Boolean(b.targetLabel), {
    message: 'set exactly one of target or targetLabel',
  })
  .refine((b) => !b.targetLabel || b.targets.length > 0, {
    message: 'targetLabel needs the list of targets it may select',
  });

const channel = z.discriminatedUnion('type', [
  /** Writes the notification to the engine's log: for local runs and as a last-resort channel. */
  z.object({ type: z.literal('log') }).strict(),
  z.object({ type: z.literal('webhook'), url: secretRef }).strict(),
  z.object({ type: z.literal('slack'), url: secretRef }).strict(),
  z
    .object({
      type: z.literal('pagerduty'),
      routingKey: secretRef,
      url: httpUrl.default('https://events.pagerduty.com/v2/enqueue'),
    })
    .strict(),
  /** SMTP (config/mailChannel.ts); the notify activity has 30 s, so one delivery has at most 25. */
  emailChannelSchema(secretRef, timeout(25 * second).default('10s')),
]);

const escalationLevel = z
  .object({
    // Part of every page's idempotency key; later pages of a level are keyed "<name>#<n>".
    name: z
      .string()
      .min(1)
      .max(60)
      .regex(/^(?!.*#\d+$)/, 'expected a name not ending in "#<digits>" (later pages of a level are keyed so)'),
    after: durationWithin(0, 30 * day),
    channels: z.array(name).min(1),
    /** Page this level again this often until someone acknowledges, the alerts clear or the next level is due. */
    repeat: durationWithin(minute, day).optional(),
    /** At most this many repeats (unset: until the next level is due; on the last level, until answered). */
    repeatTimes: z.number().int().min(1).max(1_000).optional(),
  })
  .strict()
  .refine((l) => l.repeatTimes === undefined || l.repeat !== undefined, { message: 'repeatTimes needs repeat', path: ['repeatTimes'] });

const escalationPolicy = z
  .object({
    levels: z.array(escalationLevel).min(1).max(20),
    /** An acknowledged incident still unresolved this long after the acknowledgement escalates again (runbook files). */
    reescalateAfterAck: durationWithin(minute, 7 * day).optional(),
    /** How long an acknowledged or fully paged incident whose alerts still fire stays open, to resolve its pages when they clear. */
    keepOpen: durationWithin(minute, 30 * day).optional(),
    /**
     * How long the last level has to acknowledge after its last page before the runbook gives up
     * (triggers/plan.ts lastAnswerMs: by default its repeat interval, else its gap from the level
     * before, else 15 min).
     */
    answerWithin: durationWithin(minute, 7 * day).optional(),
  })
  .strict()
  .refine(
    (p) =>
      p.levels.every(
        (l, i) =>
          i === 0 ||
          !p.levels.slice(i - 1, i + 1).every((x) => durationPattern.test(x.after)) ||
          parseDuration(l.after) >= parseDuration(p.levels[i - 1]!.after),
      ),
    {
      message: 'levels must be in order of their "after" delay',
    },
  )
  .refine((p) => new Set(p.levels.map((l) => l.name)).size === p.levels.length, {
    message: 'level names must differ: each names its pages',
    path: ['levels'],
  });

/**
 * What an operator may do, each role including the one before: a viewer reads; a responder also
 * acknowledges; an operator also approves, rejects and starts runbooks by hand; an admin also
 * cancels runs and starts maintenance. See config/operatorPolicy.ts.
 */
export const operatorRoles = ['viewer', 'responder', 'operator', 'admin'] as const;
export const tokenHashPattern = /^sha256:[0-9a-f]{64}$/;

const operator = z
  .object({
    name: name,
    // Given, never assumed: a role left out was 'operator' before, which could approve and start
    // runbooks without anyone having written so.
    role: z.enum(operatorRoles, { required_error: `required: one of ${operatorRoles.join(', ')} (what this operator may do)` }),
    /**
     * The operator API token's SHA-256, as "sha256:<64 hex>" (`remediate operators token NAME` makes
     * a token and prints both). The hash is not a secret; the token never enters the config.
     */
    tokenHash: z
      .union([
        z.string().regex(tokenHashPattern, 'expected "sha256:" and 64 lowercase hex digits (remediate operators token NAME prints one)'),
        // Where hashes differ per environment: read like a secret (checked once read).
        z.object({ env: z.string().min(1) }).strict(),
        z.object({ file: z.string().min(1) }).strict(),
      ])
      .transform((ref) => Secret.lazy(ref))
      .optional(),
    /** The token stops being accepted at this instant (RFC 3339 with its zone, e.g. 2027-01-31T00:00:00Z). */
    tokenExpires: zonedTime.optional(),
    /** The operator's user id in chat (Slack's "U…"): whose button press in a page is this operator's. */
    chatUserId: z
      .string()
      .regex(/^[A-Z0-9]{2,32}$/, 'expected a chat user id such as U024BE7LH')
      .optional(),
    /** Only these runbooks (by name) may this operator act on; absent: all. Reading is never narrowed. */
    runbooks: z.array(name).min(1).optional(),
    /** Only incidents on these targets may this operator act on; absent: all. */
    targets: z.array(name).min(1).optional(),
  })
  .strict();

/**
 * The operator API: its own listener, apart from the Alertmanager webhook, so each door can be
 * exposed (or not) on its own. Every call but /healthz needs an operator's credentials.
 */
const operatorApi = z
  .object({
    listen: listenAddress('127.0.0.1:9798').default('127.0.0.1:9798'),
    maxBodyBytes: z.number().int().positive().max(1_048_576).default(65_536),
    /**
     * Signed bearer tokens (JWT) from an identity provider, verified against a key set file (JWKS):
     * the claim named by `subjectClaim` must be a configured operator's name; the role comes from
     * the config, never from the token.
     */
    jwt: z
      .object({
        jwksFile: z.string().min(1),
        issuer: z.string().min(1),
        audience: z.string().min(1),
        subjectClaim: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/)
          .default('sub'),
        algorithms: z
          .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']))
          .min(1)
          .default(['RS256', 'ES256', 'EdDSA']),
        /** Longest lifetime accepted (exp - iat): a token valid for a year is a leaked password. */
        maxLifetime: timeout(7 * day).default('12h'),
        clockTolerance: durationWithin(0, 5 * minute).default('30s'),
      })
      .strict()
      .optional(),
  })
  .strict();

/** An origin ("https://hooks.slack.com"): scheme, host and port only; plain http on loopback only. */
const chatResponseOrigin = z
  .string()
  .max(200)
  .refine((o) => URL.canParse(o) && new URL(o).origin === o, {
    message: 'expected an origin such as https://hooks.slack.com (no path, no trailing slash)',
  })
  .refine(
    (o) =>
      !URL.canParse(o) ||
      new URL(o).protocol === 'https:' ||
      (new URL(o).protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(o).hostname)),
    {
      message: 'expected https (plain http only on 127.0.0.1, localhost or [::1])',
    },
  );

/** Approvals from chat: Slack-compatible interactive requests, signed with the app's signing secret. */
const chat = z
  .object({
    slack: z
      .object({
        signingSecret: secretRef,
        /** How old a signed request may be (Slack: 5 minutes); older ones are replays. */
        maxAge: durationWithin(1_000, 15 * minute).default('5m'),
        /**
         * Where a request's response_url may point: the engine posts "approved by alice" there, and
         * the URL comes in the request, so it goes nowhere else. https, or http on loopback (a stand-in).
         */
        responseOrigins: z.array(chatResponseOrigin).min(1).max(20).default(['https://hooks.slack.com']),
      })
      .strict()
      .optional(),
  })
  .strict();

const maintenanceSchedule = z
  .object({
    name: name,
    /** Cron in UTC unless timezone says otherwise. The seeds' default: Sunday 02:00 UTC. */
    cron: z
      .string()
      .default('0 2 * * 0')
      .superRefine((cron, ctx) => {
        const problem = cronProblem(cron);
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      }),
    timezone: z
      .string()
      .default('UTC')
      .superRefine((zone, ctx) => {
        const problem = timeZoneProblem(zone);
        if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      }),
    window: timeout(7 * day).default('1h'),
    targets: z.array(name).min(1),
    /** The maintenance runbook file the schedule runs. */
    runbook: runbookRef.default('maintenance'),
    /** Alerts silenced for the window; defaults to each target's labels. */
    silence: z.array(matcher).default([]),
    paused: z.boolean().default(false),
  })
  .strict();

/**
 * The largest webhook.maxBodyBytes. A spooled batch is one line of the spool file, never longer
 * than the body it came in (the same alerts, re-serialised, in a smaller envelope), and the spool
 * reads back lines up to this length only (triggers/alerts/spoolIndex.ts): a longer batch would be
 * acknowledged, then skipped at the next start.
 */
/**
 * The webhook's default body limit: a 1,000-alert notification (max_alerts) of alerts as
 * Kubernetes labels them is over 1 MB; a 413 is never retried, and the group's alerts are lost.
 */
export const defaultWebhookBodyBytes = 16 * 1_048_576;
export const maxWebhookBodyBytes = 64 * 1_048_576;

/** The config's shape, secrets unresolved: parseConfig resolves those the process needs. */
export const engineConfigShape = z
  .object({
    temporal: z
      .object({
        /** Unset: an embedded dev server is started under dataDir. */
        address: z.string().optional(),
        namespace: z.string().default('default'),
        taskQueue: name.default('remediation'),
        apiKey: secretRef.optional(),
        tls: z
          .object({
            ca: secretRef.optional(),
            cert: secretRef.optional(),
            key: secretRef.optional(),
            serverName: z.string().optional(),
          })
          .strict()
          .optional(),
        uiPort: port.default(8233),
        port: port.default(7233),
        /**
         * Runs kept in the worker's memory between tasks. Most incidents sit for minutes on an
         * escalation or approval timer; one that was evicted is replayed (milliseconds) when its
         * timer fires. 100 rather than 200: with 500 incidents open, ~260 instead of ~400 MiB.
         * Not below 10: 0 (no cache) has the worker drop every run's local reads at the end of each
         * task, and with a handful of slots a run waiting on a slow read can keep the worker from
         * taking new incidents at all (its task slots are capped at the cache size).
         */
        maxCachedWorkflows: z
          .number()
          .int()
          .min(
            10,
            'must be at least 10: 0 drops every local read at the end of its task, and a few slots can keep new incidents from being taken',
          )
          .default(100),
      })
      .strict()
      .default({}),
    dataDir: z.string().default('.data'),
    dryRun: z.boolean().default(false),
    /** The folder of runbook files (relative to the config file). Unset: the runbooks shipped with the engine. */
    runbooks: z.string().optional(),
    /** Named secrets runbook steps may use by name (an http step's header), resolved only in activities. */
    secrets: z.record(name, secretRef).default({}),
    webhook: z
      .object({
        listen: listenAddress('127.0.0.1:9797').default('127.0.0.1:9797'),
        token: secretRef,
        maxBodyBytes: z
          .number()
          .int()
          .positive()
          .max(
            maxWebhookBodyBytes,
            `must be at most ${maxWebhookBodyBytes} bytes (64 MiB), the longest batch the spool reads back: a larger one would be acknowledged, then lost at the next start`,
          )
          .default(defaultWebhookBodyBytes),
        /**
         * Answer Alertmanager once a batch is fsynced to a spool under dataDir, and forward it to
         * Temporal after. Unset: on with the embedded dev server (its state is on the same disk),
         * off with a cluster (200 only once the cluster took the alerts).
         */
        spool: z.boolean().optional(),
        /**
         * Answer Alertmanager once a batch's alerts are in Temporal, in an intake workflow that starts
         * their incidents after (workflows/intake.ts): the batches arriving together go in one signal,
         * so a storm is answered at the pace of Temporal's writes, not of one start per alert, and
         * nothing is kept on this engine's disk. `always`; `storms`: only while batches outrun the
         * synchronous answer (more than 4 alerts answered at once, or a batch of more), back to it once
         * the intake has handed everything on and ended; `off`. Not with spool.
         */
        intake: z.enum(['off', 'always', 'storms']).default('off'),
        /**
         * The nice value of the spooled webhook's thread (Linux: -20 runs first, 19 last; the engine's
         * other threads keep theirs). Below 0, a storm's answers come before its workflow work; it needs
         * CAP_SYS_NICE, without which the thread keeps the engine's priority and logs why.
         */
        threadNice: z.number().int().min(-20).max(19).default(-10),
        /** Bytes of alerts the spool may hold not yet forwarded to Temporal; past it, batches get 503 and Alertmanager keeps them. */
        spoolMaxBytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1_048_576),
        /** Free space to keep on the spool's filesystem (the embedded Temporal server may share it); below it, batches get 503. */
        spoolMinFreeBytes: z
          .number()
          .int()
          .min(0)
          .default(256 * 1_048_576),
      })
      .strict()
      .refine((w) => !(w.intake !== 'off' && w.spool), {
        message: 'intake and spool are two ways to answer Alertmanager before its alerts are started: choose one',
        path: ['intake'],
      }),
    alertmanager: z
      // Its activities have 30 seconds.
      .object({
        url: httpUrl,
        timeout: timeout(25 * second).default('5s'),
        /**
         * A team's manual override: while any active silence carries every one of these matchers
         * as written (e.g. alertname=~"Auto.*", a silence no real alert falls under), every
         * incident's suppression check stands down, whatever target it is about.
         */
        override: z.array(matcher).max(8).default([]),
      })
      .strict()
      .optional(),
    /** The Prometheus a runbook's `metric` step and `waitUntil` with `check: metric` query (instant queries). */
    prometheus: z
      // Its activity has one minute.
      .object({ url: httpUrl, timeout: timeout(50 * second).default('10s') })
      .strict()
      .optional(),
    docker: z.record(name, dockerEndpoint).default({ local: { socketPath: '/var/run/docker.sock', timeout: '15s' } }),
    hosts: z.record(name, z.object({ taskQueue: name.optional() }).strict()).default({}),
    targets: z.record(name, target),
    bindings: z.array(binding).default([]),
    channels: z.record(name, channel).default({}),
    escalation: z
      .object({
        policies: z.record(name, escalationPolicy),
        /** Severity label value → policy name; `default` when the severity is not listed. */
        bySeverity: z.record(z.string(), name).default({}),
        default: name,
      })
      .strict(),
    operators: z.array(operator).default([]),
    /** The operator API (approve, reject, acknowledge, cancel, run, read); absent: not served. */
    api: operatorApi.optional(),
    chat: chat.default({}),
    guardrails: z
      .object({
        restarts: z
          .object({ max: z.number().int().min(0).default(3), window: timeout(30 * day).default('1h') })
          .strict()
          .default({}),
        restartAttempts: z.number().int().min(1).max(10).default(3),
        restartBackoff: durationWithin(0, hour).default('10s'),
        verifyDeadline: timeout(hour).default('60s'),
        // Faster only loads the target; each poll of a restart's verification is written to history.
        verifyInterval: durationWithin(100, 10 * minute).default('2s'),
        maxConcurrentDestructive: z.number().int().min(1).default(2),
        approvalTimeout: timeout(30 * day).default('30m'),
        /**
         * How long a step on a host agent's queue (a systemd unit's check, restart, logs, backup)
         * waits for the agent to take it: past this, no agent is polling that host's queue, and the
         * step fails saying so, instead of the run waiting for ever without paging anyone.
         */
        agentWait: durationWithin(5 * second, hour).default('1m'),
      })
      .strict()
      .refine(
        (g) =>
          !durationPattern.test(g.verifyInterval) ||
          !durationPattern.test(g.verifyDeadline) ||
          parseDuration(g.verifyInterval) <= parseDuration(g.verifyDeadline),
        {
          message: 'verifyInterval must not be longer than verifyDeadline',
          path: ['verifyInterval'],
        },
      )
      .default({}),
    maintenance: z.array(maintenanceSchedule).default([]),
    backupDir: z.string().default('.data/backups'),
    limits: z
      .object({
        logLines: z.number().int().positive().max(10_000).default(50),
        outputBytes: z.number().int().positive().max(1_048_576).default(16_384),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const p of verificationPollProblems(c)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
    for (const p of embeddedPortProblems(c)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
    for (const p of headerSecretProblems(c)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
  });

/** Polls of one restart's verification at most: each is written to the run's history (Temporal cuts a run off at 51,200 events). */
export const maxVerificationPolls = 1_000;

/** A restart's verification polls every verifyInterval until verifyDeadline (the global one, or a target's own). */
function verificationPollProblems(c: z.output<typeof engineConfigShape>): Array<{ path: Array<string | number>; message: string }> {
  const g = c.guardrails;
  if (!durationPattern.test(g.verifyInterval)) return [];
  const interval = parseDuration(g.verifyInterval);
  const deadlines: Array<{ path: Array<string | number>; text: string }> = [
    { path: ['guardrails', 'verifyDeadline'], text: g.verifyDeadline },
    ...Object.entries(c.targets).flatMap(([name, t]) =>
      t.verifyDeadline ? [{ path: ['targets', name, 'verifyDeadline'], text: t.verifyDeadline }] : [],
    ),
  ];
  return deadlines
    .filter((d) => durationPattern.test(d.text) && Math.ceil(parseDuration(d.text) / interval) > maxVerificationPolls)
    .map((d) => ({
      path: d.path,
      message: `${d.text} / guardrails.verifyInterval ${g.verifyInterval} is ${Math.ceil(parseDuration(d.text) / interval)} polls of a restart's verification; at most ${maxVerificationPolls} (each is written to the run's history): a longer verifyInterval or a shorter deadline`,
    }));
}

/** Every `{ secret: NAME }` of a health check's or an action's headers names an entry of `secrets`. */
function headerSecretProblems(c: z.output<typeof engineConfigShape>): Array<{ path: Array<string | number>; message: string }> {
  const problems: Array<{ path: Array<string | number>; message: string }> = [];
  for (const [target, t] of Object.entries(c.targets)) {
    const sets: Array<[string, Record<string, string | { secret: string }> | undefined]> = [
      ['health', t.health?.headers],
      ['action', t.kind === 'http' ? t.action?.headers : undefined],
    ];
    for (const [key, headers] of sets)
      for (const [header, value] of Object.entries(headers ?? {}))
        if (typeof value === 'object' && !Object.hasOwn(c.secrets, value.secret))
          problems.push({
            path: ['targets', target, key, 'headers', header, 'secret'],
            message: `no secret named "${value.secret}" in secrets (known: ${Object.keys(c.secrets).join(', ') || 'none'})`,
          });
  }
  return problems;
}

/** The config as the engine needs it: every secret resolvable (an unset variable is an issue at its key). */
export const engineConfig = engineConfigShape.superRefine((c, ctx) => {
  for (const { path, secret } of secretsIn(c)) {
    const problem = secret.check();
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, path, message: problem });
  }
});

/**
 * The embedded dev server takes four ports: gRPC (port), metrics (port + 1), HTTP (port + 10) and
 * the UI. Any two the same, or the webhook on one of them, and the server exits with an obscure error.
 */
function embeddedPortProblems(c: z.output<typeof engineConfigShape>): Array<{ path: string[]; message: string }> {
  if (c.temporal.address) return [];
  const { port: grpc, uiPort } = c.temporal;
  if (!Number.isInteger(grpc) || !Number.isInteger(uiPort)) return [];
  const taken: Array<[number, string]> = [
    [grpc, 'gRPC'],
    [grpc + 1, 'metrics'],
    [grpc + 10, 'HTTP'],
  ];
  const layout = `temporal.port ${grpc} takes ${grpc} (gRPC), ${grpc + 1} (metrics) and ${grpc + 10} (HTTP)`;
  const problems: Array<{ path: string[]; message: string }> = [];
  if (grpc + 10 > 65_535)
    problems.push({ path: ['temporal', 'port'], message: `${grpc} leaves no room for the embedded server's HTTP port ${grpc + 10}` });
  const clash = taken.find(([p]) => p === uiPort);
  if (clash) problems.push({ path: ['temporal', 'uiPort'], message: `${uiPort} is the embedded server's ${clash[1]} port (${layout})` });
  const listen = Number(/:(\d+)$/.exec(c.webhook.listen)?.[1]);
  const webhookClash = [...taken, [uiPort, 'UI'] as [number, string]].find(([p]) => p === listen);
  if (listen > 0 && webhookClash) {
    problems.push({
      path: ['webhook', 'listen'],
      message: `port ${listen} is the embedded Temporal server's ${webhookClash[1]} port (${layout}, UI ${uiPort})`,
    });
  }
  return problems;
}

export type EngineConfigInput = z.input<typeof engineConfig>;
/** The checked config, with the runbook files it uses loaded and checked against it. */
export type EngineConfig = z.output<typeof engineConfig> & { runbookDefinitions: Record<string, RunbookDefinition> };
export type Target = z.output<typeof target>;
export type TargetKind = Target['kind'];
export type ContainerTarget = Extract<Target, { kind: 'container' }>;
export type SystemdTarget = Extract<Target, { kind: 'systemd' }>;
export type PostgresTarget = Extract<Target, { kind: 'postgres' }>;
export type MysqlTarget = Extract<Target, { kind: 'mysql' }>;
export type RedisTarget = Extract<Target, { kind: 'redis' }>;
export type HttpTarget = Extract<Target, { kind: 'http' }>;
export type Binding = z.output<typeof binding>;
export type Matcher = z.output<typeof matcher>;
export type Channel = z.output<typeof channel>;
export type EscalationPolicy = z.output<typeof escalationPolicy>;
export type MaintenanceSchedule = z.output<typeof maintenanceSchedule>;
export type DockerEndpoint = z.output<typeof dockerEndpoint>;
export type RunbookName = z.output<typeof runbookName>;
export type SecretRef = z.input<typeof secretRef>;
export type Operator = z.output<typeof operator>;
export type OperatorRole = Operator['role'];
export type OperatorApiConfig = z.output<typeof operatorApi>;
