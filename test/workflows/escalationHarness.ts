// The interpreter on Temporal's time-skipping test server: escalation timings of minutes and hours
// run in seconds. A worker with the real workflow bundle; notifications recorded with the server's
// (skipped) clock, or delivered for real by the notify activity when a test passes its own.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import type { NotificationRequest, NotificationResult } from '../../activities/contract.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import {
  alertFiringSignal,
  incidentWorkflowId,
  interpreterWorkflowType,
  statusQuery,
  type AlertEvent,
  type RunbookInput,
  type RunbookResult,
  type RunbookRunInput,
  type RunbookStatus,
  searchAttributeNames,
} from '../../workflows/messages.js';
import { bundlePath } from '../support/globalSetup.js';
import { noopSinks } from '../support/temporal.js';
import { timeSkippingEnvironment } from '../support/timeSkipping.js';

export type Interpreter = (input: RunbookRunInput) => Promise<RunbookResult>;
export type Run = WorkflowHandle<Interpreter>;

export const minute = 60_000;
export const hour = 60 * minute;

/** A notification as the stand-in received it, `at` on the server's clock. */
export type Sent = NotificationRequest & { dryRun: boolean; at: number };

export interface Skipping {
  env: TestWorkflowEnvironment;
  queue: string;
  sent: Sent[];
  /** Starts the interpreter on `target`; with a fingerprint, as an alert does (signal-with-start), so the run holds it. */
  start(def: RunbookDefinition, target: string, overrides?: Partial<RunbookInput>, fingerprint?: string): Promise<Run>;
  /** Stops the worker and starts another on the queue (an engine restart: its cache gone), after `whileDown`. */
  restartWorker(whileDown?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

type Activities = Record<string, (...args: never[]) => Promise<unknown>>;

/**
 * `activities` replaces the recording notify (a test of the real notification path passes the real
 * one). `restartable`: no sticky cache, so a stopped worker leaves no task on a queue of its own (the
 * test server never moves such a task back to the shared queue); every task replays the whole history.
 */
export async function startSkipping(activities?: Activities, options: { restartable?: boolean } = {}): Promise<Skipping> {
  const server = await timeSkippingEnvironment();
  const env = server.env;
  await registerSearchAttributes(env);
  const queue = `skip-${randomUUID().slice(0, 8)}`;
  const sent: Sent[] = [];
  const recording: Activities = {
    async notify(req: NotificationRequest & { dryRun: boolean }): Promise<NotificationResult> {
      sent.push({ ...req, at: Context.current().info.scheduledTimestampMs });
      return { delivered: req.channels.map((channel) => ({ channel, status: req.dryRun ? 'dry-run' : 'sent' })) };
    },
  };
  const startWorker = async () => {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue: queue,
      workflowBundle: { codePath: bundlePath },
      activities: activities ?? recording,
      sinks: noopSinks,
      ...(options.restartable ? { maxCachedWorkflows: 0 } : {}),
    });
    return { worker, running: worker.run() };
  };
  let current = await startWorker();
  const stop = async () => {
    if (current.worker.getState() === 'RUNNING') current.worker.shutdown();
    await current.running;
  };
  return {
    env,
    queue,
    sent,
    async start(def, target, overrides = {}, fingerprint) {
      const input: RunbookRunInput = {
        ...skippingInput(queue, target, def.name, overrides),
        definition: def,
        targets: [{ name: target, kind: 'container', queue, labels: { service: target } }],
        startedBy: 'alertmanager',
      };
      const workflowId = incidentWorkflowId(def.name, target);
      if (fingerprint === undefined)
        return env.client.workflow.start<Interpreter>(interpreterWorkflowType, { taskQueue: queue, workflowId, args: [input] });
      return env.client.workflow.signalWithStart<Interpreter, [AlertEvent]>(interpreterWorkflowType, {
        taskQueue: queue,
        workflowId,
        args: [input],
        signal: alertFiringSignal,
        signalArgs: [{ fingerprint, at: new Date(0).toISOString() }],
      });
    },
    async restartWorker(whileDown) {
      await stop();
      await whileDown?.();
      current = await startWorker();
    },
    async close() {
      await stop();
      await server.close();
    },
  };
}

/**
 * The incident's Keyword search attributes, which the runbooks set as they open. The test server
 * registers them but (in this release) never completes the call, hence the short deadline.
 */
async function registerSearchAttributes(env: TestWorkflowEnvironment): Promise<void> {
  const searchAttributes = Object.fromEntries(
    searchAttributeNames.map((n) => [n, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
  );
  await env.connection
    .withDeadline(Date.now() + 1_000, () =>
      env.connection.operatorService.addSearchAttributes({ namespace: env.namespace ?? 'default', searchAttributes }),
    )
    .catch(() => undefined);
}

function skippingInput(queue: string, target: string, runbook: string, overrides: Partial<RunbookInput>): RunbookInput {
  return {
    runbook,
    target,
    targetKind: 'container',
    targetQueue: queue,
    hasAction: false,
    alert: { name: 'ServiceDown', severity: 'critical', labels: { service: target } },
    escalation: { policy: 'default', levels: [{ name: 'on-call', afterMs: 0, channels: ['oncall'] }] },
    operators: ['alice', 'bob'],
    guardrails: {
      restartAttempts: 1,
      restartBackoffMs: 50,
      verifyDeadlineMs: 300,
      verifyIntervalMs: 100,
      approvalTimeoutMs: hour,
      restartsPerWindow: { max: 10, windowMs: hour },
      maxConcurrentDestructive: 5,
    },
    dryRun: false,
    ...overrides,
  };
}

/**
 * Lets the server's clock run `ms` (timers due meanwhile fire, the worker handles them), then
 * waits until the run has caught up: what the status query shows satisfies `ok`.
 */
export async function advance(
  s: Skipping,
  handle: Run,
  ms: number,
  ok: (st: RunbookStatus) => boolean = () => true,
): Promise<RunbookStatus> {
  await s.env.sleep(ms);
  return statusOf(handle, ok);
}

/** Polls the status query (real time) until `ok`; fails with the last status seen. */
export async function statusOf(handle: Run, ok: (st: RunbookStatus) => boolean, timeoutMs = 15_000): Promise<RunbookStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunbookStatus | undefined;
  let stuck = 0;
  for (;;) {
    try {
      // Each query bounded: the test server can leave one unanswered that met a run continuing as new.
      last = await handle.client.connection.withDeadline(Date.now() + 3_000, () => handle.query(statusQuery));
      if (ok(last)) return last;
    } catch (err) {
      // Not started yet, or a query left unanswered.
      if (/deadline/i.test(String(err))) stuck += 1;
    }
    if (Date.now() > deadline)
      throw new Error(
        `status never matched (${stuck} queries unanswered); last: ${JSON.stringify(last && { ...last, timeline: last.timeline.slice(-8) })}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The activity types the run scheduled, in order, from its history: what it touched. */
export async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.flatMap((e) =>
    e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? ''] : [],
  );
}

/** What the key of each page ends with ("on-call", "on-call#2", "acknowledge"…), per event. */
export function keysOf(sent: Sent[], workflowId: string, event?: Sent['event']): string[] {
  return sent
    .filter((n) => n.incidentKey === workflowId && (!event || n.event === event))
    .map((n) => n.idempotencyKey.split(':').slice(4).join(':'));
}
