// What workflows may ask of the outside world, by target name only.
//
// Workflows never carry connection details or secrets: they name a configured target and the
// activity resolves it against the worker's own config. That keeps secrets out of workflow
// history and makes alert labels unable to reach anything the config does not name.
//
// Target activities run on the target's task queue: the engine's queue for containers, databases
// and HTTP targets; the owning host's queue for systemd units (the host agent registers the same
// facade). Engine activities always run on the engine's queue.

export interface ActionContext {
  /** The workflow id of the incident, for idempotency keys and audit. */
  incidentId: string;
  reason: string;
  /** Who asked for it: "engine" for automatic steps, an operator's name after approval. */
  actor: string;
  dryRun: boolean;
}

/** How a maintain step maintains; absent, as before it existed: VACUUM (ANALYZE), OPTIMIZE + ANALYZE TABLE. */
export interface MaintainOptions {
  /** Only refresh the planner statistics: ANALYZE (PostgreSQL), ANALYZE TABLE without OPTIMIZE (MySQL). */
  analyzeOnly?: boolean;
}

export interface Check {
  /** "container", "unit", "http", "postgres", "mysql", "redis". */
  check: string;
  ok: boolean;
  detail: string;
  latencyMs?: number;
  /** Failed because the target refused the engine (its credentials), not because it is down. */
  refused?: true;
}

export interface Verification {
  target: string;
  healthy: boolean;
  checks: Check[];
}

export interface ActionResult {
  target: string;
  action: string;
  dryRun: boolean;
  /** What was (or, in dry-run, would have been) done, in words for the timeline. */
  summary: string;
  before?: string;
  after?: string;
}

export interface DiagnosticSection {
  title: string;
  ok: boolean;
  /** Capped text: log tails, processlists, parsed stats rendered as lines. */
  text: string;
}

export interface Diagnostics {
  target: string;
  sections: DiagnosticSection[];
  /** One line per section, for notifications and the status query. */
  summary: string;
}

export interface BackupResult extends ActionResult {
  file?: string;
  bytes?: number;
  sha256?: string;
}

/** A runbook's `logs` step: the newest lines of a container's log or a unit's journal. */
export interface LogRequest {
  /** Lines read from the end (before filtering). */
  tail: number;
  /** Only lines newer than this many milliseconds. */
  sinceMs?: number;
  /** A regular expression (from the runbook file, never from an alert); only matching lines are kept. */
  pattern?: string;
  /** A log file the target's config names (`logFiles.<file>`), read where the target runs; no `sinceMs` then. */
  file?: string;
}

export interface LogResult {
  target: string;
  /** Capped at the config's limits.outputBytes, newest lines kept. */
  text: string;
  /** Lines read, and lines kept by the pattern. */
  lines: number;
  matched: number;
}

/** A runbook's `command` step: a command the config lists for the target, named by its key. */
export interface CommandRequest {
  command: string;
  incidentId: string;
  reason: string;
  actor: string;
  /** A command the config does not mark readOnly is only described in a dry run. */
  dryRun: boolean;
}

export interface CommandRun {
  target: string;
  command: string;
  /** True when it was only described (a dry run of a command that is not readOnly). */
  dryRun: boolean;
  exitCode: number;
  /** stdout, then filtered by the command's `keep`, masked by its `redact`, scrubbed of secrets, capped. */
  output: string;
  stderr: string;
  summary: string;
}

export type HostDiagnosticSection = 'disk' | 'memory' | 'load' | 'processes' | 'sockets' | 'tcp' | 'paths';

/** A runbook's `hostDiagnostics` step: read-only figures of the host (or container) the target runs on. */
export interface HostDiagnosticsRequest {
  /** Unset: every section that applies. */
  sections?: HostDiagnosticSection[];
  /** host:port to connect to, hosts the config names only. */
  tcp: string[];
  /** Processes listed by CPU and by memory. */
  top: number;
}

export interface HostFigures {
  /** The fullest filesystem's use, in percent (-1 when disk was not read). */
  diskMaxPercent: number;
  /** Memory in use (total less available), in percent (-1 when not read). */
  memoryUsedPercent: number;
  /** 1-minute load average (-1 when not read). */
  load1: number;
  cpus: number;
  /** host:port that did not accept a connection. */
  tcpFailed: string[];
}

export interface HostDiagnostics extends Diagnostics {
  figures: HostFigures;
}

/** A runbook's `metric` step: one instant query against the configured Prometheus. */
export interface MetricRequest {
  /** The runbook's literal PromQL; its `{{target}}` placeholders are filled in here, escaped. */
  query: string;
  /** Whose name and configured labels fill the placeholders. */
  target: string;
  op: '<' | '<=' | '>' | '>=' | '==' | '!=';
  threshold: number;
}

/** A runbook's `alerts` step: the alerts firing now in the configured Alertmanager (a read). */
export interface FiringAlertsRequest {
  /** Only alerts carrying all these labels, with these values; {} for every alert. */
  labels: Record<string, string>;
  /** Also alerts a silence or an inhibition holds back (by default only those people are being told of). */
  silenced: boolean;
  /** Alerts listed in the summary, at most (all are counted). */
  limit: number;
}

export interface FiringAlertsResult {
  /** Every firing alert that matched. */
  count: number;
  /** Their distinct alert names, sorted (at most 50). */
  names: string[];
  /** One line per alert, most severe and newest first, at most `limit`; label values capped. */
  summary: string;
}

export interface MetricResult {
  /** The value compared: the only series', else the one farthest from holding; null when nothing came back. */
  value: number | null;
  /** Every series returned holds `value op threshold`; false when nothing came back. */
  holds: boolean;
  series: number;
  detail: string;
}

export interface TargetActivities {
  verifyTarget(target: string): Promise<Verification>;
  targetLogs(target: string, req: LogRequest): Promise<LogResult>;
  restartTarget(target: string, ctx: ActionContext): Promise<ActionResult>;
  diagnoseTarget(target: string): Promise<Diagnostics>;
  /** The target's configured HTTP action (for example a cache clear). */
  runTargetAction(target: string, ctx: ActionContext): Promise<ActionResult>;
  backupTarget(target: string, ctx: ActionContext): Promise<BackupResult>;
  /**
   * VACUUM (ANALYZE) for PostgreSQL, OPTIMIZE + ANALYZE TABLE for MySQL; with `analyzeOnly`, ANALYZE
   * for PostgreSQL and ANALYZE TABLE alone for MySQL (planner statistics, nothing rewritten).
   */
  maintainTarget(target: string, ctx: ActionContext, opts?: MaintainOptions): Promise<ActionResult>;
  /** A configured command: `docker exec` in a container, the host agent for a systemd unit. */
  runTargetCommand(target: string, req: CommandRequest): Promise<CommandRun>;
  /** Disk, memory, load, processes, sockets, connects, path sizes where the target runs. */
  hostDiagnostics(target: string, req: HostDiagnosticsRequest): Promise<HostDiagnostics>;
  /** Deletes regular files older than the request's age under the target's `housekeeping.paths` (its host agent). */
  housekeepFiles(target: string, req: HousekeepingRequest): Promise<HousekeepingResult>;
  /** `logrotate -f` of the target's `housekeeping.logrotate` file (its host agent); `-d` in a dry run. */
  rotateLogs(target: string, ctx: ActionContext): Promise<LogrotateResult>;
}

/** A runbook's `housekeeping` step. */
export interface HousekeepingRequest extends ActionContext {
  /** Files whose content changed longer ago than this many days go. */
  olderThanDays: number;
}

export interface HousekeepingResult {
  target: string;
  dryRun: boolean;
  /** Regular files deleted (in a dry run: that would be), over every configured directory. */
  files: number;
  bytes: number;
  /** The first of them, by path (at most 20 per directory, 50 in all). */
  listed: string[];
  /** False when a directory's listing stopped at the read limit: there may be more (run it again). */
  complete: boolean;
  /** One line per directory, for the timeline. */
  summary: string;
}

export interface LogrotateResult {
  target: string;
  dryRun: boolean;
  /** What logrotate printed (in a dry run its -d report), scrubbed and capped. */
  output: string;
  summary: string;
}

export interface NotificationRequest {
  channels: string[];
  /** trigger opens or updates the incident; acknowledge and resolve close the loop (PagerDuty semantics). */
  event: 'trigger' | 'acknowledge' | 'resolve';
  /** The incident's workflow id: what a page's buttons act on, and how channels group its messages. */
  incidentKey: string;
  /**
   * The incident's run chain (its first run id, the same across continue-as-new). Set, PagerDuty
   * deduplicates by `<incidentKey>:<incidentRun>`: the next incident on the target reuses the
   * workflow id, and PagerDuty would fold its trigger into this one's alert, acknowledged or not,
   * and notify nobody. Unset (runs started before it was set), by the workflow id alone.
   */
  incidentRun?: string;
  /** Stable per message, so a retried activity never posts twice. */
  idempotencyKey: string;
  severity: string;
  title: string;
  text: string;
  /**
   * What the person paged may answer from the page itself: an approval request's approve and
   * reject, an escalation's acknowledge. Chat channels show them as buttons; others ignore them.
   */
  actions?: PageAction[];
  /**
   * Which run chain (the first run id, the same across continue-as-new) and which approval step the
   * actions are about: a button pressed on this page later acts on that incident and step only, not
   * on whatever run now has the same workflow id.
   */
  about?: { chain: string; step?: string };
}

export type PageAction = 'approve' | 'reject' | 'acknowledge';

export interface NotificationResult {
  delivered: Array<{ channel: string; status: 'sent' | 'duplicate' | 'dry-run' }>;
}

export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

export interface SilenceRequest {
  matchers: SilenceMatcher[];
  durationMs: number;
  createdBy: string;
  comment: string;
  dryRun: boolean;
}

export interface Suppression {
  suppressed: boolean;
  /** "silence 3f2… by alice until 03:00Z" or "maintenance window weekly-db". */
  reason?: string;
}

/**
 * A runbook's `http` step. The URL's origin must be one the config names (a target's health or action
 * URL); a header value `{ secret }` names an entry of the config's `secrets`, resolved only here.
 */
export interface HttpStepRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers: Record<string, string | { secret: string; prefix?: string }>;
  body?: string;
  expectStatus: number[];
  timeoutMs: number;
  incidentId: string;
  actor: string;
  /** GET and HEAD run in a dry run (they change nothing); other methods are only described. */
  dryRun: boolean;
}

export interface HttpStepResult {
  status: number;
  ok: boolean;
  /** The start of the response body, capped, secrets redacted. */
  body: string;
  dryRun: boolean;
}

export interface EngineActivities {
  httpRequest(req: HttpStepRequest): Promise<HttpStepResult>;
  queryMetric(req: MetricRequest): Promise<MetricResult>;
  firingAlerts(req: FiringAlertsRequest): Promise<FiringAlertsResult>;
  notify(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult>;
  createSilence(req: SilenceRequest): Promise<{ silenceId: string; dryRun: boolean }>;
  expireSilence(silenceId: string, dryRun: boolean): Promise<{ expired: boolean }>;
  /** Active Alertmanager silences that cover the target's configured labels. */
  /**
   * Whether an active silence stands the target's runs down. `alertLabels`: the labels of the alert
   * the run is about, when it is about this target: silences are matched against them (with the
   * target's labels filling in what they lack), as Alertmanager matches them; without, against the
   * target's labels alone.
   */
  checkSuppression(target: string, alertLabels?: Record<string, string>): Promise<Suppression>;
}

/**
 * A run's first reads asked as one local activity (workflows/steps/readsTogether.ts): the silence
 * check, the target's check and the first restart's claim, each with the arguments its own activity
 * takes. One local activity is one answer to the run instead of one per read.
 */
export type TogetherRead =
  | { kind: 'checkSuppression'; args: [target: string, labels?: Record<string, string>] }
  | { kind: 'verifyTarget'; args: [string] }
  | { kind: 'claimRestart'; args: [RestartClaim] };

/** Each read's answer, in the order asked and named by its kind, or why it failed (the run then asks that read on its own). */
export type TogetherAnswer = { kind: TogetherRead['kind'] } & ({ value: unknown } | { failed: string });

export interface FirstReadActivities {
  readsTogether(reads: TogetherRead[]): Promise<TogetherAnswer[]>;
}

// Guardrails live in one long-lived workflow (workflows/guardrails.ts) so that every incident, on
// every worker, sees the same restart history and the same count of destructive actions in flight.
// Workflows reach it through these activities (update-with-start), never through a client.

export interface RestartReservation {
  target: string;
  /** The incident's workflow id, shown to operators who ask why a restart was refused. */
  holder: string;
  /** Unique per run and attempt (it includes the run id): a retried activity never counts twice. */
  requestId: string;
  max: number;
  windowMs: number;
  /** Automatic restarts are refused past `max`; an operator-approved restart is recorded but never refused. */
  enforce: boolean;
  /** Evaluated but not recorded: nothing was restarted. */
  dryRun: boolean;
}

export interface RestartDecision {
  allowed: boolean;
  /** Restarts of the target recorded in the window, this one included when allowed. */
  recent: number;
  reason: string;
}

export interface SlotRequest extends SettlesOnce {
  /** Becomes the lease id; asking again with the same id returns the same lease. */
  requestId: string;
  holder: string;
  target: string;
  /** "restart", "maintenance", "action". */
  action: string;
  max: number;
  /** After this the lease lapses by itself, so a workflow that died cannot hold a slot forever. */
  leaseMs: number;
}

/**
 * A run that never asks again for a request id whose lease it released or withdrew says so with
 * `once` (runs since 'all-patches-2026-12-07'): the guard then remembers that id as settled, and
 * the same id asked again later is a late duplicate (a stalled worker's queued claim, sent after
 * another worker retried, restarted and released) and is not granted again when asked with `once`.
 * Asked without `once` (runs recorded before, which ask a settled id again on a step's retry) a
 * settled id is granted anew, as it always was, even when the lease it settled had `once` (a new
 * engine's door claiming for a run that an old engine then executes, during a rolling upgrade).
 */
export interface SettlesOnce {
  once?: true;
}

export interface SlotGrant {
  acquired: boolean;
  leaseId?: string;
  inUse: number;
  /** "incident:serviceDown:api restart api" for each lease in use, for the timeline. */
  holders: string[];
}

/** A restart's anti-flap reservation and its destructive slot, asked of the guard in one call. */
export interface RestartClaim extends RestartReservation, SettlesOnce {
  /** The concurrency cap on destructive actions. */
  maxConcurrent: number;
  leaseMs: number;
}

/**
 * Refused by anti-flap (`allowed` false); allowed but every slot taken (`acquired` false, nothing
 * recorded: ask again); or allowed and held, the restart recorded. A dry run takes no lease.
 */
export interface RestartClaimed extends RestartDecision, SlotGrant {
  /**
   * The target's maintenance window, as the guard answered it with the claim (its batch asks the
   * windows of the targets it claims for). Absent when the guard did not answer it (one from before).
   */
  window?: Suppression;
}

export interface WindowRequest {
  holder: string;
  schedule: string;
  targets: string[];
  untilMs: number;
}

export interface GuardrailActivities {
  reserveRestart(req: RestartReservation): Promise<RestartDecision>;
  acquireSlot(req: SlotRequest): Promise<SlotGrant>;
  /** reserveRestart and acquireSlot as one guard call: what a restart asks since it was patched. */
  claimRestart(req: RestartClaim): Promise<RestartClaimed>;
  releaseSlot(leaseId: string): Promise<boolean>;
  /** Takes back a granted claim (by its request id) for a restart that did not happen: lease and count. */
  withdrawClaim(requestId: string): Promise<boolean>;
  openWindow(req: WindowRequest): Promise<void>;
  /** Closes every window the holder opened; returns how many were open. */
  closeWindow(holder: string): Promise<number>;
  /** An open maintenance window covering the target, as a suppression. */
  maintenanceWindowFor(target: string): Promise<Suppression>;
}

// The webhook's intake in Temporal (workflows/intake.ts) hands its alerts back to an engine.

/** An alert as the webhook's door checked it (the door's own type names every field). */
export interface IntakeAlert {
  status: string;
  fingerprint: string;
  labels: Record<string, string>;
  [field: string]: unknown;
}

export interface IntakeRequest {
  alerts: IntakeAlert[];
}

export interface IntakeForwarded {
  /** Alerts handed on by this attempt. */
  delivered: number;
  /** Alerts an earlier attempt handed on (its heartbeat said so), or firings whose resolution follows. */
  skipped: number;
}

export interface IntakeActivities {
  forwardAlerts(req: IntakeRequest): Promise<IntakeForwarded>;
}
