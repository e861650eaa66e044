// Gauges of what Temporal holds durably (the guard's destructive slots, open incidents, approvals
// waiting), read from Temporal when Prometheus scrapes rather than counted in this process: an
// engine that restarts, or one of several sharing a queue, reports the same numbers as any other.
// Reads happen only when scraped, at most once per cacheMs, each bounded by timeoutMs; a slow or
// unreachable Temporal leaves the previous values (and a failure count), never a slow /metrics.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { guardrailsWorkflowId, guardStateQuery } from '../../activities/guardMessages.js';
import { inFlightLimit } from '../../activities/limits.js';
import type { RunbookDefinition, Step } from '../../config/runbookSchema.js';
import { runbookAttribute, statusQuery } from '../../workflows/messages.js';
import { incidentQuery } from '../operators/operatorCommands.js';

export interface DurableGaugeOptions {
  client: Client;
  taskQueue: string;
  /** guardrails.maxConcurrentDestructive: the slots the guard hands out. */
  maxConcurrentDestructive: number;
  /** Scrapes within this long of a read share it (default 10 s). */
  cacheMs?: number;
  /** One read of Temporal at most this long (default 4 s). */
  timeoutMs?: number;
  /** How long a scrape waits for a read it started before answering with the previous one (default 300 ms). */
  scrapeWaitMs?: number;
  /**
   * The runbooks with an approval step (runbooksWithApproval): only their open incidents are asked
   * for their status, so a storm of incidents that can never wait for an approval costs no query.
   */
  approvalRunbooks: readonly string[];
  /**
   * Open incidents asked for their status (approvals waiting) per read, at most. Each is a query
   * the incident's worker answers; past this many the approval gauges are a lower bound, and
   * runbooks_open still counts them all.
   */
  statusLimit?: number;
  /**
   * The hosts whose agent runs their systemd units, each with its task queue: how many agents poll
   * each is read from Temporal (the queue's pollers), so a dead agent shows before an incident needs it.
   */
  agentQueues?: ReadonlyArray<{ host: string; queue: string }>;
  /** A poller Temporal last saw longer ago than this is not counted (default 2 min; an idle poll lasts ~1 min). */
  agentSeenMs?: number;
}

interface Reading {
  slotsInUse: number;
  open: number;
  /** Runbook → approvals waiting. */
  approvals: Map<string, number>;
  oldestApprovalSince?: number;
  /** Host → agents Temporal saw polling its queue within agentSeenMs. */
  agents: Map<string, number>;
}

// The SDK's protobuf module is CommonJS: its enums come through its default export.
const { TaskQueueKind, TaskQueueType } = proto.temporal.api.enums.v1;

/** Hosts' queues described at once, however many hosts the config names. */
const agentReadsAtOnce = 8;

/** Status queries in flight at once: enough to read 200 incidents within the timeout, few enough not to crowd the workers. */
const statusQueriesAtOnce = 8;

/** The runbooks that have an approval step anywhere (in a group or `finally` too). */
export function runbooksWithApproval(definitions: Record<string, RunbookDefinition>): string[] {
  const hasApproval = (steps: Step[]): boolean => steps.some((s) => (s.kind === 'action' ? s.uses === 'approval' : hasApproval(s.steps)));
  return Object.values(definitions)
    .filter((d) => /^[A-Za-z][A-Za-z0-9_-]{0,62}$/.test(d.name) && (hasApproval(d.steps) || hasApproval(d.finally)))
    .map((d) => d.name);
}

export function registerDurableGauges(registry: Registry, opts: DurableGaugeOptions): void {
  const cacheMs = opts.cacheMs ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 4_000;
  const statusLimit = opts.statusLimit ?? 200;
  const scrapeWaitMs = opts.scrapeWaitMs ?? 300;
  const registers = [registry];
  const failures = new Counter({
    name: 'engine_state_read_failures_total',
    help: 'Reads of Temporal for the durable gauges that failed or timed out (the gauges kept their previous values), by source.',
    labelNames: ['source'] as const,
    registers,
  });
  const agentQueues = opts.agentQueues ?? [];
  const agentSeenMs = opts.agentSeenMs ?? 120_000;
  for (const source of ['guard', 'incidents', ...(agentQueues.length ? ['agents'] : [])]) failures.inc({ source }, 0);

  let last: Reading = { slotsInUse: 0, open: 0, approvals: new Map(), agents: new Map() };
  let read: { at: number; done: Promise<Reading> } | undefined;
  // A scrape waits for a fresh read only briefly, then answers with the last one: a scrape_timeout
  // of a second must not turn a slow Temporal into a failed scrape (up == 0, RemediationEngineDown).
  const current = async (): Promise<Reading> => {
    if (!read || Date.now() - read.at > cacheMs) read = { at: Date.now(), done: readTemporal().then((r) => (last = r)) };
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, scrapeWaitMs)));
    await Promise.race([read.done, waited]);
    clearTimeout(timer);
    return last;
  };

  const bounded = <T>(fn: () => Promise<T>) => opts.client.connection.withDeadline(Date.now() + timeoutMs, fn);

  async function slotsInUse(): Promise<number> {
    try {
      const state = await bounded(() => opts.client.workflow.getHandle(guardrailsWorkflowId(opts.taskQueue)).query(guardStateQuery));
      // Lapsed leases stay in the state until the guard's next update prunes them; they hold nothing.
      return state.leases.filter((l) => l.expiresAt > state.now).length;
    } catch (err) {
      // No guard yet: nothing ever asked for a slot on this queue.
      if (err instanceof WorkflowNotFoundError) return 0;
      failures.inc({ source: 'guard' });
      return last.slotsInUse;
    }
  }

  async function incidents(): Promise<Pick<Reading, 'open' | 'approvals' | 'oldestApprovalSince'>> {
    try {
      return await bounded(async () => {
        const query = `${incidentQuery({ open: true })} AND TaskQueue = '${opts.taskQueue}'`;
        const { count } = await opts.client.workflow.count(query);
        const listed: Array<{ workflowId: string; runbook: string }> = [];
        if (opts.approvalRunbooks.length > 0) {
          const mayWait = `${query} AND Runbook IN (${opts.approvalRunbooks.map((r) => `'${r}'`).join(', ')})`;
          for await (const info of opts.client.workflow.list({ query: mayWait, pageSize: Math.min(statusLimit, 1_000) })) {
            listed.push({ workflowId: info.workflowId, runbook: info.typedSearchAttributes.get(runbookAttribute) ?? info.type });
            if (listed.length >= statusLimit) break;
          }
        }
        const approvals = new Map<string, number>();
        let oldest: number | undefined;
        const atOnce = inFlightLimit(statusQueriesAtOnce);
        await Promise.all(
          listed.map(({ workflowId, runbook }) =>
            atOnce(async () => {
              // An incident that closed meanwhile, or whose worker is busy, is not waiting on anyone here.
              const status = await opts.client.workflow
                .getHandle(workflowId)
                .query(statusQuery)
                .catch(() => undefined);
              if (!status?.pendingApproval || status.outcome) return;
              approvals.set(runbook, (approvals.get(runbook) ?? 0) + 1);
              const since = Date.parse(status.pendingApproval.since);
              if (Number.isFinite(since)) oldest = Math.min(oldest ?? since, since);
            }),
          ),
        );
        return { open: count, approvals, ...(oldest !== undefined ? { oldestApprovalSince: oldest } : {}) };
      });
    } catch {
      failures.inc({ source: 'incidents' });
      return last;
    }
  }

  /** Agents polling each host's queue (activity tasks: an agent runs no workflows), as Temporal last saw them. */
  async function agents(): Promise<Map<string, number>> {
    if (agentQueues.length === 0) return last.agents;
    try {
      return await bounded(async () => {
        const seen = new Map<string, number>();
        const atOnce = inFlightLimit(agentReadsAtOnce);
        await Promise.all(
          agentQueues.map(({ host, queue }) =>
            atOnce(async () => {
              const res = await opts.client.workflowService.describeTaskQueue({
                namespace: opts.client.options.namespace,
                taskQueue: { name: queue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
                taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
              });
              const now = Date.now();
              const polling = (res.pollers ?? []).filter((p) => now - (optionalTsToMs(p.lastAccessTime) ?? 0) <= agentSeenMs);
              seen.set(host, polling.length);
            }),
          ),
        );
        return seen;
      });
    } catch {
      failures.inc({ source: 'agents' });
      return last.agents;
    }
  }

  async function readTemporal(): Promise<Reading> {
    const [slots, open, polling] = await Promise.all([slotsInUse(), incidents(), agents()]);
    return { slotsInUse: slots, ...open, agents: polling };
  }

  new Gauge({
    name: 'guard_destructive_slots_limit',
    help: 'Destructive actions (restarts, actions) the guard allows at once on this task queue (guardrails.maxConcurrentDestructive).',
    registers,
  }).set(opts.maxConcurrentDestructive);
  new Gauge({
    name: 'guard_destructive_slots_in_use',
    help: "Destructive slots the guard has leased and not yet released, read from the guard workflow's state.",
    registers,
    async collect() {
      this.set((await current()).slotsInUse);
    },
  });
  new Gauge({
    name: 'runbooks_open',
    help: 'Incident workflows running on this task queue, counted by Temporal visibility.',
    registers,
    async collect() {
      this.set((await current()).open);
    },
  });
  new Gauge({
    name: 'runbook_approvals_waiting',
    help: 'Open incidents waiting for an operator to approve or reject a step, by runbook.',
    labelNames: ['runbook'] as const,
    registers,
    async collect() {
      const r = await current();
      this.reset();
      for (const [runbook, n] of r.approvals) this.set({ runbook }, n);
    },
  });
  if (agentQueues.length > 0) {
    new Gauge({
      name: 'host_agent_pollers',
      help: "Host agents Temporal saw polling a host's task queue in the last 2 minutes, by host (0: its systemd units cannot be checked or restarted).",
      labelNames: ['host'] as const,
      registers,
      async collect() {
        // Hosts read at least once: before the first read (or while Temporal cannot be read, which
        // engine_state_read_failures_total{source="agents"} says) none is reported as without an agent.
        for (const [host, n] of (await current()).agents) this.set({ host }, n);
      },
    });
  }
  new Gauge({
    name: 'runbook_approval_oldest_wait_seconds',
    help: 'How long the longest-waiting approval has waited; 0 when none waits.',
    registers,
    async collect() {
      const r = await current();
      this.set(r.oldestApprovalSince === undefined ? 0 : Math.max(0, Date.now() - r.oldestApprovalSince) / 1_000);
    },
  });
}
