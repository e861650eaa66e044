// The workflow tests' world: a real worker on the stack's Temporal server running the real
// workflows and the real guard, with the activities that touch targets, channels and
// Alertmanager replaced by scripted stand-ins that record every call.
import { randomUUID } from 'node:crypto';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { localActivityMarker, type HistoryEvent } from '../support/history.js';
import { gate, until } from '../support/wait.js';
import { createGuardrailActivities } from '../../activities/guardrails.js';
import { readsTogetherOver } from '../../activities/readsTogether.js';
import { createIntakeActivities } from '../../activities/intake.js';
import { guardrailsWorkflowId, guardStateQuery } from '../../workflows/guardrails.js';
import type {
  ActionContext,
  ActionResult,
  BackupResult,
  CommandRequest,
  CommandRun,
  Diagnostics,
  HostDiagnostics,
  HostDiagnosticsRequest,
  HousekeepingRequest,
  HousekeepingResult,
  LogrotateResult,
  EngineActivities,
  GuardrailActivities,
  HttpStepRequest,
  HttpStepResult,
  LogRequest,
  LogResult,
  FiringAlertsRequest,
  FiringAlertsResult,
  MetricRequest,
  MetricResult,
  NotificationRequest,
  NotificationResult,
  RestartClaim,
  SilenceRequest,
  Suppression,
  TargetActivities,
  Verification,
  TogetherAnswer,
} from '../../activities/contract.js';
import { failureTypes } from '../../activities/failures.js';
import type { InjectedSinks, WorkerOptions } from '@temporalio/worker';
import type { MaintenanceInput, RunbookInput, RunbookMetricsSinks, RunbookStatus } from '../../workflows/messages.js';
import { statusQuery } from '../../workflows/messages.js';
import { startWorker, temporalClient, uniqueQueue } from '../support/temporal.js';

export interface TargetState {
  verifies: number;
  restarts: number;
  /** Silence checks asked, a cancelled one included. */
  suppressionChecks: number;
  /** The alert labels the latest suppression check was given, if any. */
  suppressionLabels?: Record<string, string>;
}

/** How one fake target behaves. Everything defaults to "works, and is unhealthy". */
export interface TargetScript {
  healthy?: (s: TargetState) => boolean;
  restart?: (ctx: ActionContext, s: TargetState) => Promise<void> | void;
  diagnose?: () => Promise<Diagnostics> | Diagnostics;
  action?: (ctx: ActionContext) => Promise<void> | void;
  backup?: (ctx: ActionContext) => Promise<void> | void;
  maintain?: (ctx: ActionContext) => Promise<void> | void;
  /** An Alertmanager silence covering the target. */
  silencedBy?: string;
  /** When not healthy: its health endpoint answers 401 (the engine's token refused), not "down". */
  refusesEngine?: boolean;
  /** The silence check answers only once this settles (a run caught while its first reads are out). */
  suppressionHeld?: Promise<unknown>;
  /** The guard's restart claim answers this much later (a busy guard: it comes after the other first reads). */
  claimDelayMs?: number;
  /** The guard refuses the restart claim (bad input): the claim answers nothing, a window included. */
  claimRefused?: boolean;
  /** What targetLogs reads, one line per log line; filtered by the request's pattern like the real one. */
  logs?: string;
  /** Configured commands: what each prints and exits with; one not readOnly is only described in a dry run, like the real one. */
  commands?: Record<string, { exitCode?: number; output?: string; stderr?: string; readOnly?: boolean }>;
  hostDiagnostics?: (req: HostDiagnosticsRequest) => HostDiagnostics;
}

export interface Call {
  activity: string;
  target?: string;
  ctx?: ActionContext;
  dryRun?: boolean;
  at: number;
  arg?: unknown;
}

export interface Harness {
  queue: string;
  client: Client;
  guardId: string;
  guard: GuardrailActivities;
  calls: Call[];
  /** Every restart claim the guard was asked, as asked (request id, target, holder), in order. */
  claims: RestartClaim[];
  /** Set: createSilence answers only once this settles (Alertmanager slow); like the real one, it does not see a cancel. */
  holds: { silence?: Promise<unknown> };
  /** What runbooks reported to the metrics sink as they closed. */
  outcomes: Array<{ workflowId: string; runbook: string; outcome: string; durationMs: number }>;
  /** Local reads runs reported to the metrics sink as dropped by the worker and asked again. */
  droppedReads: Array<{ workflowId: string; activityType: string }>;
  /** What the intake's activity handed to the (scripted) webhook, in order; refuse: what it refuses now. */
  intake: { delivered: unknown[]; refuse?: (alert: unknown) => boolean };
  notifications: Array<NotificationRequest & { dryRun: boolean; at: number }>;
  script(target: string, script: TargetScript): TargetState;
  /** What queryMetric answers (calls counts the queries so far, this one included); default: nothing comes back. */
  onMetric(answer: (req: MetricRequest, calls: number) => MetricResult): void;
  callsFor(target: string, activity?: string): Call[];
  /** A host agent on `queue`: a worker taking the scripted target activities asked there, until the returned stop. */
  serveAgentQueue(queue: string): Promise<() => Promise<void>>;
  /** Stops the worker and starts a new one on the queue: an engine restart, with its cache gone; `whileDown` runs between. */
  restartWorker(whileDown?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export function permanentFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: failureTypes.targetNotFound, nonRetryable: true });
}

/** What an activity throws when the target refuses the engine's credentials. */
export function authRefused(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: failureTypes.authFailed, nonRetryable: true });
}

/** What a test may set on the harness's worker: a bundle of its own (with a test interceptor, say). */
export type HarnessWorkerOptions = Pick<WorkerOptions, 'workflowBundle'>;

export async function startHarness(prefix: string, workerOptions: HarnessWorkerOptions = {}): Promise<Harness> {
  const queue = uniqueQueue(prefix);
  const guardId = guardrailsWorkflowId(queue);
  const { client, connection } = await temporalClient();
  const scripts = new Map<string, { script: TargetScript; state: TargetState }>();
  const calls: Call[] = [];
  const claims: RestartClaim[] = [];
  const holds: Harness['holds'] = {};
  const notifications: Harness['notifications'] = [];
  const outcomes: Harness['outcomes'] = [];
  const droppedReads: Harness['droppedReads'] = [];
  const intake: Harness['intake'] = { delivered: [] };
  let silences = 0;
  let metricCalls = 0;
  let metricAnswer: (req: MetricRequest, calls: number) => MetricResult = () => ({
    value: null,
    holds: false,
    series: 0,
    detail: 'no series',
  });

  const of = (target: string) => {
    let entry = scripts.get(target);
    if (!entry) {
      entry = { script: {}, state: { verifies: 0, restarts: 0, suppressionChecks: 0 } };
      scripts.set(target, entry);
    }
    return entry;
  };
  const record = (activity: string, target?: string, ctx?: ActionContext, arg?: unknown) =>
    calls.push({ activity, target, ctx, dryRun: ctx?.dryRun, at: Date.now(), arg });
  const result = (target: string, action: string, ctx: ActionContext): ActionResult => ({
    target,
    action,
    dryRun: ctx.dryRun,
    summary: `${ctx.dryRun ? 'would have run' : 'ran'} ${action} of '${target}'`,
  });

  const targetActivities: TargetActivities = {
    async verifyTarget(target): Promise<Verification> {
      const { script, state } = of(target);
      state.verifies += 1;
      record('verifyTarget', target);
      const healthy = script.healthy?.(state) ?? false;
      if (!healthy && script.refusesEngine)
        return {
          target,
          healthy,
          checks: [{ check: 'http', ok: false, detail: 'expected status 200, got 401 Unauthorized', refused: true }],
        };
      return { target, healthy, checks: [{ check: 'http', ok: healthy, detail: healthy ? '200 OK' : 'connection refused' }] };
    },
    async restartTarget(target, ctx) {
      const { script, state } = of(target);
      record('restartTarget', target, ctx);
      await script.restart?.(ctx, state);
      if (!ctx.dryRun) state.restarts += 1;
      return result(target, 'restart', ctx);
    },
    async diagnoseTarget(target) {
      const { script } = of(target);
      record('diagnoseTarget', target);
      if (script.diagnose) return script.diagnose();
      return {
        target,
        sections: [{ title: 'logs', ok: false, text: 'panic: out of cheese' }],
        summary: `logs: panic: out of cheese (${target})`,
      };
    },
    async targetLogs(target, req: LogRequest): Promise<LogResult> {
      record('targetLogs', target, undefined, req);
      const all = (of(target).script.logs ?? 'INFO started\nERROR panic: out of cheese').split('\n').slice(-req.tail);
      const pattern = req.pattern === undefined ? undefined : new RegExp(req.pattern);
      const kept = pattern ? all.filter((l) => pattern.test(l)) : all;
      return { target, text: kept.join('\n'), lines: all.length, matched: kept.length };
    },
    async runTargetAction(target, ctx) {
      record('runTargetAction', target, ctx);
      await of(target).script.action?.(ctx);
      return result(target, 'action', ctx);
    },
    async backupTarget(target, ctx): Promise<BackupResult> {
      record('backupTarget', target, ctx);
      await of(target).script.backup?.(ctx);
      return { ...result(target, 'backup', ctx), file: `/backups/${target}.sql` };
    },
    async maintainTarget(target, ctx, ...opts) {
      // The arguments after the context as they came: none from a step without options.
      record('maintainTarget', target, ctx, opts);
      await of(target).script.maintain?.(ctx);
      return result(target, 'maintenance', ctx);
    },
    async runTargetCommand(target, req: CommandRequest): Promise<CommandRun> {
      record('runTargetCommand', target, undefined, req);
      calls[calls.length - 1]!.dryRun = req.dryRun;
      const c = of(target).script.commands?.[req.command];
      if (!c)
        throw permanentFailure(`command '${req.command}' on target '${target}' refused: the target has no such command in the config`);
      if (req.dryRun && !c.readOnly)
        return {
          target,
          command: req.command,
          dryRun: true,
          exitCode: 0,
          output: `dry run: would run '${req.command}'`,
          stderr: '',
          summary: `dry run: would run '${req.command}'`,
        };
      const exitCode = c.exitCode ?? 0;
      return {
        target,
        command: req.command,
        dryRun: false,
        exitCode,
        output: c.output ?? '',
        stderr: c.stderr ?? '',
        summary: `'${req.command}' exited ${exitCode}`,
      };
    },
    async hostDiagnostics(target, req: HostDiagnosticsRequest): Promise<HostDiagnostics> {
      record('hostDiagnostics', target, undefined, req);
      const scripted = of(target).script.hostDiagnostics;
      if (scripted) return scripted(req);
      return {
        target,
        sections: [{ title: 'disk', ok: true, text: ' 97% /: 9.7 GiB used, 300.0 MiB free of 10.0 GiB (overlay)' }],
        summary: 'ok: disk:  97% /: 9.7 GiB used, 300.0 MiB free of 10.0 GiB (overlay)',
        figures: { diskMaxPercent: 97, memoryUsedPercent: -1, load1: -1, cpus: 0, tcpFailed: [] },
      };
    },
    async housekeepFiles(target, req: HousekeepingRequest): Promise<HousekeepingResult> {
      record('housekeepFiles', target, req, req);
      const summary = `/var/lib/app/runs: ${req.dryRun ? 'would delete' : 'deleted'} 2 file(s), 3.0 KiB older than ${req.olderThanDays} day(s)`;
      return {
        target,
        dryRun: req.dryRun,
        files: 2,
        bytes: 3_072,
        listed: ['/var/lib/app/runs/a.json', '/var/lib/app/runs/b.json'],
        complete: true,
        summary,
      };
    },
    async rotateLogs(target, ctx): Promise<LogrotateResult> {
      record('rotateLogs', target, ctx);
      return {
        target,
        dryRun: ctx.dryRun,
        output: ctx.dryRun ? 'rotating pattern: /var/log/app/*.log' : '',
        summary: ctx.dryRun ? 'dry run: logrotate -d' : 'logrotate -f: rotated',
      };
    },
  };

  const engineActivities: EngineActivities = {
    async firingAlerts(req: FiringAlertsRequest): Promise<FiringAlertsResult> {
      record('firingAlerts', undefined, undefined, req);
      return {
        count: 2,
        names: ['DiskFull', 'HighLatency'],
        summary:
          'DiskFull [critical] {service=db} since 2026-12-05T00:00:00Z\nHighLatency [warning] {service=api} since 2026-12-05T00:01:00Z',
      };
    },
    async queryMetric(req: MetricRequest): Promise<MetricResult> {
      metricCalls += 1;
      record('queryMetric', req.target || undefined, undefined, req);
      return metricAnswer(req, metricCalls);
    },
    // Like the real one: reads are sent even in a dry run, writes are only described.
    async httpRequest(req: HttpStepRequest): Promise<HttpStepResult> {
      record('httpRequest', undefined, undefined, req);
      calls[calls.length - 1]!.dryRun = req.dryRun;
      if (req.dryRun && !['GET', 'HEAD'].includes(req.method)) {
        return { status: 0, ok: true, body: `dry-run: would ${req.method} ${req.url}`, dryRun: true };
      }
      return { status: 200, ok: req.expectStatus.includes(200), body: 'ok', dryRun: false };
    },
    async notify(req): Promise<NotificationResult> {
      notifications.push({ ...req, at: Date.now() });
      record('notify', undefined, undefined, req);
      calls[calls.length - 1]!.dryRun = req.dryRun;
      return { delivered: req.channels.map((channel) => ({ channel, status: req.dryRun ? 'dry-run' : 'sent' })) };
    },
    async createSilence(req: SilenceRequest) {
      silences += 1;
      record('createSilence', undefined, undefined, req);
      await holds.silence;
      calls[calls.length - 1]!.dryRun = req.dryRun;
      return { silenceId: req.dryRun ? 'dry-run' : `silence-${silences}`, dryRun: req.dryRun };
    },
    async expireSilence(silenceId, dryRun) {
      record('expireSilence', undefined, undefined, silenceId);
      calls[calls.length - 1]!.dryRun = dryRun;
      return { expired: true };
    },
    async checkSuppression(target, alertLabels): Promise<Suppression> {
      // Like the real check, it stops when it is cancelled.
      const { script, state } = of(target);
      state.suppressionChecks += 1;
      state.suppressionLabels = alertLabels;
      if (script.suppressionHeld) await Promise.race([script.suppressionHeld, Context.current().cancelled]);
      const by = of(target).script.silencedBy;
      return by ? { suppressed: true, reason: `silence ${by}` } : { suppressed: false };
    },
  };

  const guard = createGuardrailActivities({ client, taskQueue: queue });
  const activities = {
    ...targetActivities,
    ...engineActivities,
    ...guard,
    async claimRestart(req: Parameters<typeof guard.claimRestart>[0]) {
      claims.push(req);
      const delay = of(req.target).script.claimDelayMs;
      if (delay) await new Promise((r) => setTimeout(r, delay));
      if (of(req.target).script.claimRefused) throw ApplicationFailure.nonRetryable('the guard refused the claim', 'BadInput');
      return guard.claimRestart(req);
    },
  };
  const start = () =>
    startWorker({
      taskQueue: queue,
      // The first reads asked together run the scripted reads above, as the engine's run its own.
      activities: {
        ...activities,
        ...readsTogetherOver(activities),
        ...createIntakeActivities(() => ({
          async deliver(alert) {
            if (intake.refuse?.(alert)) throw new Error('Temporal refused the alert');
            intake.delivered.push(alert);
          },
          forwarding: () => {},
        })),
      },
      sinks: <InjectedSinks<RunbookMetricsSinks>>{
        metrics: {
          runbookOutcome: {
            fn: (info, runbook, outcome, durationMs) => {
              outcomes.push({ workflowId: info.workflowId, runbook, outcome, durationMs });
            },
            callDuringReplay: false,
          },
          localReadDropped: {
            fn: (info, activityType) => void droppedReads.push({ workflowId: info.workflowId, activityType }),
            callDuringReplay: false,
          },
        },
      },
      shutdownGraceTime: '2s',
      ...workerOptions,
    });
  let worker = await start();

  return {
    queue,
    client,
    guardId,
    guard,
    calls,
    claims,
    holds,
    outcomes,
    droppedReads,
    notifications,
    intake,
    script(target, script) {
      const entry = of(target);
      entry.script = script;
      return entry.state;
    },
    onMetric(answer) {
      metricCalls = 0;
      metricAnswer = answer;
    },
    async serveAgentQueue(agentQueue) {
      const agent = await startWorker({ taskQueue: agentQueue, activities: targetActivities, shutdownGraceTime: '2s' });
      return agent.stop;
    },
    async restartWorker(whileDown) {
      await worker.stop();
      await whileDown?.();
      worker = await start();
    },
    callsFor(target, activity) {
      return calls.filter((c) => c.target === target && (!activity || c.activity === activity));
    },
    async close() {
      await client.workflow
        .getHandle(guardId)
        .terminate('test finished')
        .catch(() => undefined);
      await worker.stop();
      await (connection as Connection).close();
    },
  };
}

export function uniqueTarget(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export const levels = [
  { name: 'primary', afterMs: 0, channels: ['ops'] },
  { name: 'secondary', afterMs: 1_000, channels: ['ops', 'lead'] },
  { name: 'manager', afterMs: 2_000, channels: ['manager'] },
];

export function runbookInput(h: Harness, target: string, overrides: Partial<RunbookInput> = {}): RunbookInput {
  const { guardrails, ...rest } = overrides;
  return {
    runbook: 'serviceDown',
    target,
    targetKind: 'container',
    targetQueue: h.queue,
    hasAction: false,
    alert: { name: 'ServiceDown', severity: 'critical', labels: { service: target } },
    escalation: { policy: 'default', levels },
    operators: ['alice', 'bob'],
    dryRun: false,
    ...rest,
    guardrails: {
      restartAttempts: 3,
      restartBackoffMs: 50,
      verifyDeadlineMs: 300,
      verifyIntervalMs: 100,
      approvalTimeoutMs: 5_000,
      restartsPerWindow: { max: 10, windowMs: 3_600_000 },
      maxConcurrentDestructive: 5,
      slotWaitMs: 5_000,
      ...guardrails,
    },
  };
}

export function maintenanceInput(h: Harness, targets: string[], overrides: Partial<MaintenanceInput> = {}): MaintenanceInput {
  return {
    schedule: uniqueTarget('weekly'),
    targets: targets.map((name) => ({ name, kind: 'postgres', queue: h.queue })),
    windowMs: 60_000,
    silence: [{ name: 'service', value: targets.join('|'), isRegex: true, isEqual: true }],
    channels: ['ops'],
    dryRun: false,
    ...overrides,
  };
}

/** Polls the status query until `ok` holds; fails with the last status seen. */
export async function waitForStatus(handle: WorkflowHandle, ok: (s: RunbookStatus) => boolean, timeoutMs = 15_000): Promise<RunbookStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunbookStatus | undefined;
  for (;;) {
    try {
      last = await handle.query(statusQuery);
      if (ok(last)) return last;
    } catch {
      // Not started yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`status never matched; last: ${JSON.stringify(last && { ...last, timeline: last.timeline.slice(-6) })}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A promise a stubbed activity waits on until the test opens it. */
export { gate };

/** `fn` run while the harness's guard holds a maintenance window ('weekly') open on `target`; closed after. */
export async function inMaintenanceWindow<T>(h: Harness, target: string, fn: () => Promise<T>): Promise<T> {
  const holder = `maintenance:${target}`;
  await h.guard.openWindow({ holder, schedule: 'weekly', targets: [target], untilMs: Date.now() + 60_000 });
  try {
    return await fn();
  } finally {
    await h.guard.closeWindow(holder);
  }
}

/** The local activities a run asked, in the order it asked them (their sequence numbers). */
export async function localReads(handle: WorkflowHandle): Promise<string[]> {
  const marked = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
    const m = localActivityMarker(e);
    return m ? [{ ...m, event: e }] : [];
  });
  // The reads asked together, each named in their one answer (activities/readsTogether.ts).
  return marked
    .sort((a, b) => a.seq - b.seq)
    .flatMap((m) => (m.type === 'readsTogether' ? togetherKinds(m.event).map((k) => `readsTogether/${k}`) : [m.type]));
}

function togetherKinds(e: HistoryEvent): string[] {
  const data = e.markerRecordedEventAttributes?.details?.['result']?.payloads?.[0]?.data;
  if (!data) return ['(no answer)'];
  return (JSON.parse(Buffer.from(data).toString('utf8')) as TogetherAnswer[]).map((a) => ('failed' in a ? `${a.kind}(failed)` : a.kind));
}

/** What the harness's guard holds for one target: how many leases, and the restarts it counts (undefined: none ever). */
export async function guardHolds(h: Harness, target: string): Promise<{ leases: number; restarts: number[] | undefined }> {
  const state = await h.client.workflow.getHandle(h.guardId).query(guardStateQuery);
  return { leases: state.leases.filter((l) => l.target === target).length, restarts: state.restarts[target] };
}

/**
 * Starts a run whose silence check does not answer, waits until the guard holds the claim asked
 * beside it, and cancels the run there; the check answers afterwards. Returns the run and what its
 * result threw.
 */
export async function cancelWhileFirstReadsOut(
  h: Harness,
  target: string,
  start: () => Promise<WorkflowHandle>,
): Promise<{ handle: WorkflowHandle; error: unknown }> {
  const held = gate();
  h.script(target, { suppressionHeld: held.wait });
  try {
    const handle = await start();
    await until(
      'the guard to hold a lease for the target',
      10_000,
      async () => ((await guardHolds(h, target)).leases > 0 ? true : undefined),
      50,
    );
    await handle.cancel();
    return {
      handle,
      error: await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      ),
    };
  } finally {
    held.open();
  }
}

export function events(timeline: Array<{ event: string }>): string[] {
  return timeline.map((e) => e.event);
}
