// The runbook language: what a runbook file may say, and the catalog of step types with their
// parameters. One schema is the single source of truth: the loader validates files against it and
// the interpreter workflow reads its inferred types (type-only: zod never enters workflow code).
import { z } from 'zod';
import { durationPattern, formatDuration, parseDuration } from './duration.js';
import { regexText } from './regexText.js';
import { maxQueryLength, queryProblems } from './promql.js';
import { commandName } from './targetCommands.js';
import { secretHeader } from './requestHeaders.js';

/** An `alerts` step lists at most this many alerts (activities/alertmanager.ts refuses more). */
export const maxAlertLines = 50;

/** Where a step definition came from, for errors and `remediate runbooks show`. */
export interface StepOrigin {
  line?: number;
}

const duration = z
  .string()
  .regex(durationPattern, 'expected a duration such as "30s", "15m" or "1h"')
  .transform((d) => parseDuration(d));

/**
 * The shortest wait between two checks of a polling step (`verify` with `within`, `waitUntil`).
 * Faster only loads the target; how many checks a step may make is bounded at load by
 * config/runbookPolling.ts, since each one is written to the run's history.
 */
export const minPollIntervalMs = 100;
const pollInterval = duration.superRefine((ms, ctx) => {
  if (typeof ms === 'number' && ms < minPollIntervalMs)
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected at least ${formatDuration(minPollIntervalMs)} between checks` });
});

const targetName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a configured target name');
const channelName = targetName;
export const stepIdPattern = /^[a-z][a-z0-9-]{0,40}$/;
const stepId = z
  .string()
  .regex(stepIdPattern, 'expected a step id of lower-case letters, digits and "-" (at most 41, starting with a letter)');
/** Text that may hold `${{ expression }}` parts; bounded, since it travels in workflow history. */
const text = (max = 4_000) => z.string().max(max, `at most ${max} characters`);

export const outcomes = [
  'recovered',
  'resolved-externally',
  'false-alarm',
  'escalated',
  'rejected',
  'suppressed',
  'failed',
  'completed',
] as const;

const onTarget = { target: targetName.optional() };

/** A literal PromQL instant query; `{{target}}` may stand only inside a quoted label value (config/promql.ts). */
const promql = z
  .string()
  .min(1)
  .max(maxQueryLength, `at most ${maxQueryLength} characters`)
  .superRefine((q, ctx) => {
    for (const problem of queryProblems(q)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });
export const comparisons = ['<', '<=', '>', '>=', '==', '!='] as const;
const comparison = z.enum(comparisons);
const threshold = z.number().finite();

/** What `hostDiagnostics` can gather; `tcp` and `paths` only when there is something to check. */
export const hostDiagnosticSections = ['disk', 'memory', 'load', 'processes', 'sockets', 'tcp', 'paths'] as const;
/** `host:port` or `[v6]:port`; the host must be one the config names (checked at load). */
const hostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([1-9][0-9]{0,4})$/, 'expected host:port, e.g. 127.0.0.1:5432')
  .refine((hp) => Number(hp.slice(hp.lastIndexOf(':') + 1)) <= 65_535, 'the port must be at most 65535');

/** What each `check` of a waitUntil offers its `until` as `check.*`. */
export const waitChecks = { verify: ['healthy', 'detail'], metric: ['holds', 'value', 'series', 'detail'] } as const;

/**
 * Every step type with its parameters. Keys are what `uses:` names. A parameter that picks what is
 * touched (`target`, `channels`, `url`) is a literal checked against the config at load time: never
 * an expression, so alert labels can never steer an action.
 */
export const stepCatalog = {
  checkSuppression: z.object({ ...onTarget }).strict(),
  verify: z
    .object({
      ...onTarget,
      /** Poll until healthy or this long has passed; "deadline" is guardrails.verifyDeadline. Unset: one check. */
      within: z.union([z.literal('deadline'), duration]).optional(),
      every: pollInterval.optional(),
    })
    .strict(),
  restart: z
    .object({
      ...onTarget,
      /** Automatic attempts, each verified (default guardrails.restartAttempts). */
      attempts: z.number().int().min(1).max(10).optional(),
      /** The approval step whose approver this restart acts for: one attempt, never refused by anti-flap. */
      approvedBy: stepId.optional(),
    })
    .strict(),
  diagnose: z
    .object({
      ...onTarget,
      /** Also run the health checks (detailed health endpoint, pings). */
      health: z.boolean().default(false),
      /** Keep only sections whose title contains one of these words ("logs", "connections", …). */
      sections: z.array(z.string().min(1).max(60)).max(20).optional(),
    })
    .strict(),
  logs: z
    .object({
      ...onTarget,
      tail: z.number().int().min(1).max(10_000).default(100),
      since: duration.optional(),
      /** Keep only lines matching this regular expression, e.g. "ERROR|CRITICAL|FATAL|OOM". */
      pattern: regexText.optional(),
      /** A log file the target's config names (`logFiles.<name>`), read instead of its container log or journal. */
      file: commandName.optional(),
    })
    .strict()
    .refine((p) => p.file === undefined || p.since === undefined, {
      path: ['since'],
      message: 'since is for container logs and journals; a log file is read by its last lines (tail)',
    }),
  http: z
    .object({
      method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
      /** A literal URL; its origin must be one the config already names (a target's health or action URL). */
      url: z.string().url().max(2_000),
      /** Header values are literal, or `{ secret: NAME, prefix?: "Bearer " }` naming an entry of the config's `secrets`. */
      headers: z
        .record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'expected a header name'), z.union([z.string().max(1_000), secretHeader]))
        .default({}),
      body: text(16_000).optional(),
      expectStatus: z.array(z.number().int().min(100).max(599)).min(1).max(20).default([200, 201, 202, 204]),
      timeout: duration.default('10s'),
    })
    .strict(),
  runAction: z.object({ ...onTarget, approvedBy: stepId.optional() }).strict(),
  backup: z.object({ ...onTarget }).strict(),
  /** VACUUM (ANALYZE) on PostgreSQL, OPTIMIZE + ANALYZE TABLE on MySQL/MariaDB, the configured tables only. */
  maintain: z
    .object({
      ...onTarget,
      /** Only refresh the planner statistics: ANALYZE on PostgreSQL, ANALYZE TABLE (no OPTIMIZE) on MySQL/MariaDB. */
      analyzeOnly: z.boolean().optional(),
    })
    .strict(),
  /** The schedule's maintenance window: incidents stand back, and its alerts are silenced. */
  openWindow: z.object({}).strict(),
  closeWindow: z.object({}).strict(),
  silence: z
    .object({
      ...onTarget,
      duration,
      comment: text(500).default('silenced by runbook ${{ incident.runbook }} (${{ incident.workflowId }})'),
    })
    .strict(),
  expireSilence: z.object({ silenceId: text(200) }).strict(),
  notify: z
    .object({
      /** Default: the first level of the incident's escalation policy. */
      channels: z.array(channelName).min(1).max(20).optional(),
      key: z.string().regex(/^[A-Za-z0-9_.:-]{1,60}$/, 'expected a short key'),
      event: z.enum(['trigger', 'resolve']).default('trigger'),
      severity: text(64).optional(),
      title: text(200),
      text: text().default(''),
    })
    .strict(),
  escalate: z
    .object({
      reason: text(1_000),
      /**
       * What the levels' `after` counts from: this step's start (default), or the incident's, so
       * the restarts, the gathering and an approval before it do not push the matrix back.
       */
      from: z.enum(['step', 'incident']).optional(),
    })
    .strict(),
  approval: z
    .object({
      /** What an approval allows, in words: "restart database 'app-db'". */
      action: text(300),
      /** Default guardrails.approvalTimeout. */
      timeout: duration.optional(),
      /** What the request says above the diagnostics. */
      lead: text(1_000).optional(),
    })
    .strict(),
  sleep: z.object({ duration }).strict(),
  /** Fails the step (and so, by default, the run) unless the condition holds. */
  assert: z.object({ that: z.string().min(1).max(1_000), message: text(1_000) }).strict(),
  waitUntil: z
    .object({
      ...onTarget,
      /** The check repeated; its outputs are `check.*` in `until`. */
      check: z.enum(['verify', 'metric']).default('verify'),
      /** check: metric: the query, and the comparison whose result is `check.holds`. */
      query: promql.optional(),
      op: comparison.optional(),
      threshold: threshold.optional(),
      /** Default: `check.healthy` (verify), `check.holds` (metric). */
      until: z.string().min(1).max(1_000).optional(),
      every: pollInterval.default('5s'),
      deadline: duration,
    })
    .strict()
    .superRefine((p, ctx) => {
      const metricKeys = ['query', 'op', 'threshold'] as const;
      for (const key of metricKeys) {
        if (p.check === 'metric' && p[key] === undefined)
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `check: metric needs ${key}` });
        if (p.check === 'verify' && p[key] !== undefined)
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `${key} is for check: metric` });
      }
      const offered: readonly string[] = waitChecks[p.check];
      for (const m of (p.until ?? '').matchAll(/\bcheck\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g))
        if (!offered.includes(m[1]!))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['until'],
            message: `check: ${p.check} offers check.${offered.join(', check.')}, not check.${m[1]}`,
          });
    }),
  /** An instant PromQL query against the configured Prometheus, compared with a threshold. */
  metric: z.object({ ...onTarget, query: promql, op: comparison, threshold }).strict(),
  /**
   * The alerts firing now in the configured Alertmanager, counted, named and listed (a read): what
   * else is going on, for a page or a condition. Labels as written, never a template.
   */
  alerts: z
    .object({
      labels: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/, 'expected a label name'), text(200))
        .refine((l) => Object.keys(l).length <= 10, 'at most 10 labels')
        .default({}),
      /** Also alerts a silence or an inhibition holds back. */
      silenced: z.boolean().default(false),
      /** Alerts listed in `summary`, at most (all are counted). */
      limit: z.number().int().min(1).max(maxAlertLines).default(20),
    })
    .strict(),
  /** Checks, in parallel, the targets the step's target `dependsOn` in the config. */
  dependencies: z.object({ ...onTarget }).strict(),
  /** Runs a command the config lists for the target (`targets.<name>.commands`), by its name. */
  command: z
    .object({
      ...onTarget,
      command: commandName,
      /** Run it in the name of that approval step's approver; the step fails unless it was approved. */
      approvedBy: stepId.optional(),
      /** Exit codes that count as success; any other fails the step. */
      expectExit: z.array(z.number().int().min(0).max(255)).min(1).max(20).default([0]),
    })
    .strict(),
  /**
   * Restarts several targets in this order (the seeds' "full stack restart"), each verified before the
   * next; stops at the first that does not come back. Every restart asks the guard as `restart` does.
   */
  groupRestart: z
    .object({
      targets: z
        .array(targetName)
        .min(1)
        .max(20)
        .refine((t) => new Set(t).size === t.length, 'a target is listed twice'),
      /** Automatic attempts per target, each verified (ignored with `approvedBy`). */
      attempts: z.number().int().min(1).max(10).default(1),
      /** The approval step whose approver this restart acts for: one attempt each, never refused by anti-flap. */
      approvedBy: stepId.optional(),
    })
    .strict()
    // Each attempt is a restart and a verification's polls in the run's history: 20 of them keep a step within a few thousand events.
    .refine((p) => p.targets.length * p.attempts <= 20, { path: ['attempts'], message: 'at most 20 restarts in all (targets × attempts)' }),
  /** Deletes regular files older than this under the target's `housekeeping.paths` (on a systemd unit's host). */
  housekeeping: z.object({ ...onTarget, olderThanDays: z.number().int().min(1).max(3_650) }).strict(),
  /** `logrotate -f` of the target's `housekeeping.logrotate` file (on a systemd unit's host). */
  logrotate: z.object({ ...onTarget }).strict(),
  /** Disk, memory, load, processes, sockets, TCP connects and path sizes, from the host agent or inside the container. */
  hostDiagnostics: z
    .object({
      ...onTarget,
      /** Default: all that apply (tcp when `tcp` lists something, paths when the target has diagnosticPaths). */
      sections: z.array(z.enum(hostDiagnosticSections)).min(1).max(hostDiagnosticSections.length).optional(),
      /** Connect checks from where the target runs; only hosts the config names. */
      tcp: z.array(hostPort).max(20).default([]),
      /** Processes listed by CPU and by memory. */
      top: z.number().int().min(1).max(50).default(10),
    })
    .strict()
    .superRefine((p, ctx) => {
      if (p.sections?.includes('tcp') && p.tcp.length === 0)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['sections'],
          message: 'the tcp section needs the tcp list of host:port to connect to',
        });
    }),
  end: z.object({ outcome: z.enum(outcomes), detail: text(1_000).default('') }).strict(),
} as const;

export type StepType = keyof typeof stepCatalog;
export const stepTypes = Object.keys(stepCatalog) as StepType[];
export type StepParams<T extends StepType> = z.output<(typeof stepCatalog)[T]>;

/** What each step type gives later steps, as `steps.<id>.<output>` (besides `status` and `error`). */
export const stepOutputs: Record<StepType, string[]> = {
  checkSuppression: ['suppressed', 'reason'],
  verify: ['healthy', 'detail'],
  restart: ['recovered', 'attempts', 'detail'],
  diagnose: ['summary', 'ok', 'sections'],
  logs: ['text', 'lines', 'matched'],
  http: ['code', 'ok', 'body'],
  runAction: ['summary'],
  backup: ['summary', 'file', 'bytes', 'sha256'],
  maintain: ['summary'],
  openWindow: ['silenceId'],
  closeWindow: [],
  silence: ['silenceId'],
  expireSilence: ['expired'],
  notify: ['sent'],
  escalate: ['end', 'acknowledgedBy', 'levels'],
  approval: ['decision', 'by', 'reason'],
  sleep: [],
  assert: [],
  waitUntil: ['met', 'polls', 'detail'],
  end: [],
  metric: ['value', 'holds', 'series', 'detail'],
  alerts: ['count', 'names', 'summary'],
  dependencies: ['ok', 'failed', 'detail'],
  command: ['exitCode', 'output', 'stderr', 'ran'],
  hostDiagnostics: ['summary', 'ok', 'sections', 'diskMaxPercent', 'memoryUsedPercent', 'load1', 'cpus', 'tcpFailed'],
  groupRestart: ['recovered', 'restarted', 'failedTarget', 'results', 'detail'],
  housekeeping: ['files', 'bytes', 'listed', 'complete', 'summary'],
  logrotate: ['output', 'summary'],
};

/** What every step leaves for later steps besides its outputs (workflows/runbook.ts, StepState). */
export const stepStateFields = ['status', 'error'] as const;
/** `status` is always one of these: never an HTTP code (an http step's is its `code`). */
export const stepStatuses = ['ok', 'failed', 'skipped'] as const;
/** What a group gives later steps besides status and error: the ids of its failed children, the targets done. */
export const groupOutputs: Record<GroupStep['kind'], string[]> = { parallel: ['failed'], forEach: ['done'] };

/**
 * The parameters whose `${{ }}` parts are rendered when the step runs. Anything else is used as
 * written, so a template there is refused at load: in particular what picks a target, a URL, a
 * channel or a log pattern is never an expression.
 */
export const templateParams: Record<StepType, string[]> = {
  checkSuppression: [],
  verify: [],
  restart: [],
  diagnose: [],
  logs: [],
  http: ['body'],
  runAction: [],
  backup: [],
  maintain: [],
  openWindow: [],
  closeWindow: [],
  silence: ['comment'],
  expireSilence: ['silenceId'],
  notify: ['severity', 'title', 'text'],
  escalate: ['reason'],
  approval: ['action', 'lead'],
  sleep: [],
  assert: ['message'],
  waitUntil: [],
  end: ['detail'],
  metric: [],
  alerts: [],
  dependencies: [],
  command: [],
  hostDiagnostics: [],
  groupRestart: [],
  housekeeping: [],
  logrotate: [],
};

/**
 * Template parameters that pick what a write acts on. Alert labels choose nothing: these may read
 * the run's own state (`steps.mute.silenceId`), never `alert.*`.
 */
export const selectingTemplateParams: Partial<Record<StepType, string[]>> = {
  expireSilence: ['silenceId'],
};

/** Step types that change something: dry-run applies, and `remediate runbooks plan` marks them. */
export const mutatingSteps: ReadonlySet<StepType> = new Set<StepType>([
  'restart',
  'runAction',
  'backup',
  'maintain',
  'openWindow',
  'closeWindow',
  'silence',
  'expireSilence',
  'notify',
  'escalate',
  'approval',
  'http',
  'groupRestart',
  'housekeeping',
  'logrotate',
]);

/**
 * Step types that change something or not depending on the config: a `command` does unless the
 * config marks it `readOnly: true`. Plan and show ask the config; the activity applies dry-run.
 */
export const configMutatingSteps: ReadonlySet<StepType> = new Set<StepType>(['command']);

const failurePolicy = z.union([z.enum(['fail', 'continue']), z.object({ goto: stepId }).strict()], {
  errorMap: (issue, ctx) =>
    issue.code === 'invalid_union' ? { message: 'expected fail, continue or { goto: <step id> }' } : { message: ctx.defaultError },
});

const common = {
  id: stepId,
  when: z.string().min(1).max(1_000).optional(),
  /** An attempt of the step fails if it has not finished in this long (each retry gets it again). */
  timeout: duration.optional(),
  /** Runs the step again when it fails (not when a check merely says "unhealthy"). */
  retry: z
    .object({ attempts: z.number().int().min(1).max(10), backoff: duration.default('5s') })
    .strict()
    .optional(),
  onFailure: failurePolicy.default('fail'),
  description: z.string().max(500).optional(),
};

const actionStep = z.object({ ...common, uses: z.string(), with: z.record(z.unknown()).default({}) }).strict();

export type ActionStepRaw = z.output<typeof actionStep>;

export interface ActionStep {
  kind: 'action';
  id: string;
  uses: StepType;
  with: Record<string, unknown>;
  when?: string;
  timeoutMs?: number;
  retry?: { attempts: number; backoffMs: number };
  onFailure: 'fail' | 'continue' | { goto: string };
  description?: string;
  line?: number;
}

export interface GroupStep {
  kind: 'parallel' | 'forEach';
  id: string;
  /** forEach: the run's targets (a maintenance schedule's); each step sees the current one as `item`. */
  steps: Step[];
  when?: string;
  timeoutMs?: number;
  onFailure: 'fail' | 'continue' | { goto: string };
  description?: string;
  line?: number;
}

export type Step = ActionStep | GroupStep;

const stepShape: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.object({ ...common, parallel: z.array(stepShape).min(1).max(20) }).strict(),
    z.object({ ...common, forEach: z.literal('targets'), steps: z.array(stepShape).min(1).max(50) }).strict(),
    actionStep,
  ]),
);

export const runbookFile = z
  .object({
    name: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,62}$/, 'expected a runbook name of letters, digits, "_" or "-"'),
    description: z.string().min(1).max(2_000),
    /** The target kinds this runbook may run on; a binding to another kind is refused at load. */
    appliesTo: z.array(z.enum(['container', 'systemd', 'postgres', 'mysql', 'redis', 'http'])).min(1),
    /** `incident` runbooks are started by alerts and by hand; `maintenance` ones by schedules. */
    kind: z.enum(['incident', 'maintenance']).default('incident'),
    steps: z.array(z.unknown()).min(1).max(100),
    finally: z.array(z.unknown()).max(20).default([]),
  })
  .strict();

export { stepShape };

/** A runbook as it travels in workflow input: validated, durations in milliseconds, no secrets. */
export interface RunbookDefinition {
  name: string;
  description: string;
  appliesTo: string[];
  kind: 'incident' | 'maintenance';
  /** The file it came from and a hash of its text: a run records exactly which definition it ran. */
  source: string;
  sha256: string;
  steps: Step[];
  finally: Step[];
}
