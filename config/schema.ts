// The one schema for the engine's configuration. Every type the rest of the code uses
// for configuration is inferred from here, so a key exists in exactly one place.
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { Secret } from './secret.js';
import { durationPattern } from './duration.js';
import { unitNameProblem } from '../activities/systemd.js';
import type { RunbookDefinition } from './runbookSchema.js';

/** A duration written the way operators write them: "90s", "15m", "1h30m", "500ms". */
const duration = z.string().regex(durationPattern, 'expected a duration such as "30s", "15m" or "1h"');

/** Names that end up in workflow ids, task queues and search attributes. */
const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a name of letters, digits, ".", "_" or "-" (at most 63)');

/**
 * A secret is never written inline in production configs; it is read from the environment
 * or a file when the config loads. Inline values are accepted for local stacks and tests.
 */
export const secretRef = z
  .union([
    z.string().min(1),
    z.object({ env: z.string().min(1) }).strict(),
    z.object({ file: z.string().min(1) }).strict(),
  ])
  .transform((ref, ctx) => {
    try {
      return Secret.resolve(ref);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      return z.NEVER;
    }
  });

const healthCheck = z
  .object({
    url: z.string().url(),
    expectStatus: z.number().int().min(100).max(599).default(200),
    timeout: duration.default('3s'),
    /** A JSON endpoint such as /health/detailed that reports per-dependency checks. */
    detailedUrl: z.string().url().optional(),
  })
  .strict();

const dockerEndpoint = z
  .object({
    socketPath: z.string().optional(),
    host: z.string().optional(),
    port: z.number().int().positive().optional(),
    protocol: z.enum(['http', 'https', 'ssh']).optional(),
    username: z.string().optional(),
    ca: secretRef.optional(),
    cert: secretRef.optional(),
    key: secretRef.optional(),
    timeout: duration.default('15s'),
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
  verifyDeadline: duration.optional(),
};

const containerTarget = z
  .object({
    kind: z.literal('container'),
    container: z.string().min(1),
    docker: name.default('local'),
    stopTimeout: duration.default('10s'),
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
    ...targetBase,
  })
  .strict();

const connection = {
  host: z.string().default('127.0.0.1'),
  port: z.number().int().positive(),
  user: z.string().optional(),
  password: secretRef.optional(),
  database: z.string().optional(),
  timeout: duration.default('5s'),
};

const postgresTarget = z
  .object({
    kind: z.literal('postgres'),
    ...connection,
    /** Tables VACUUM (ANALYZE) touches during maintenance; empty means the whole database. */
    maintenanceTables: z.array(z.string()).default([]),
    /** The container or unit that runs the server, for an approved restart. */
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

const mysqlTarget = z
  .object({
    kind: z.literal('mysql'),
    ...connection,
    maintenanceTables: z.array(z.string()).default([]),
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

const redisTarget = z
  .object({
    kind: z.literal('redis'),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().positive(),
    password: secretRef.optional(),
    timeout: duration.default('3s'),
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

const httpTarget = z
  .object({
    kind: z.literal('http'),
    /** A configured action such as a cache clear, run only after approval. */
    action: z
      .object({ method: z.enum(['POST', 'PUT', 'DELETE']).default('POST'), url: z.string().url() })
      .strict()
      .optional(),
    restartVia: name.optional(),
    ...targetBase,
  })
  .strict();

export const target = z.discriminatedUnion('kind', [
  containerTarget,
  systemdTarget,
  postgresTarget,
  mysqlTarget,
  redisTarget,
  httpTarget,
]);

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
  .strict();

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
    escalation: name.optional(),
    /**
     * Rollback lever while runbook files are new: run the compiled runbook of the same name (as
     * releases before runbook files did) instead of the file. Only for the four compiled incident runbooks.
     */
    compiled: z.boolean().default(false),
  })
  .strict()
  .refine((b) => !b.compiled || (runbookNames as readonly string[]).includes(b.runbook) && b.runbook !== 'maintenance', {
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
      url: z.string().url().default('https://events.pagerduty.com/v2/enqueue'),
    })
    .strict(),
]);

const escalationLevel = z
  .object({
    name: z.string().min(1),
    after: duration,
    channels: z.array(name).min(1),
  })
  .strict();

const escalationPolicy = z
  .object({ levels: z.array(escalationLevel).min(1) })
  .strict()
  .refine((p) => p.levels.every((l, i) => i === 0 || parseDuration(l.after) >= parseDuration(p.levels[i - 1]!.after)), {
    message: 'levels must be in order of their "after" delay',
  });

const operator = z
  .object({ name: name, role: z.enum(['operator', 'admin']).default('operator') })
  .strict();

const maintenanceSchedule = z
  .object({
    name: name,
    /** Cron in UTC unless timezone says otherwise. The seeds' default: Sunday 02:00 UTC. */
    cron: z.string().default('0 2 * * 0'),
    timezone: z.string().default('UTC'),
    window: duration.default('1h'),
    targets: z.array(name).min(1),
    /** The maintenance runbook file the schedule runs. */
    runbook: runbookRef.default('maintenance'),
    /** Alerts silenced for the window; defaults to each target's labels. */
    silence: z.array(matcher).default([]),
    paused: z.boolean().default(false),
  })
  .strict();

export const engineConfig = z
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
        uiPort: z.number().int().positive().default(8233),
        port: z.number().int().positive().default(7233),
        /**
         * Runs kept in the worker's memory between tasks. Most incidents sit for minutes on an
         * escalation or approval timer; one that was evicted is replayed (milliseconds) when its
         * timer fires. 100 rather than 200: with 500 incidents open, ~260 instead of ~400 MiB.
         */
        maxCachedWorkflows: z.number().int().min(0).default(100),
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
        listen: z.string().default('127.0.0.1:9797'),
        token: secretRef,
        maxBodyBytes: z.number().int().positive().default(1_048_576),
        /**
         * Answer Alertmanager once a batch is fsynced to a spool under dataDir, and forward it to
         * Temporal after. Unset: on with the embedded dev server (its state is on the same disk),
         * off with a cluster (200 only once the cluster took the alerts).
         */
        spool: z.boolean().optional(),
      })
      .strict(),
    alertmanager: z
      .object({ url: z.string().url(), timeout: duration.default('5s') })
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
    guardrails: z
      .object({
        restarts: z.object({ max: z.number().int().min(0).default(3), window: duration.default('1h') }).strict().default({}),
        restartAttempts: z.number().int().min(1).max(10).default(3),
        restartBackoff: duration.default('10s'),
        verifyDeadline: duration.default('60s'),
        verifyInterval: duration.default('2s'),
        maxConcurrentDestructive: z.number().int().min(1).default(2),
        approvalTimeout: duration.default('30m'),
      })
      .strict()
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
  .strict();

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
