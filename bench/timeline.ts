// Where an incident's time went: its history events with their offsets from the start, and for a
// guard workflow how many updates it served per second and how long its workflow tasks took.
//   npx tsx bench/timeline.ts 'WorkflowType = "serviceDown" AND ExecutionStatus = "Completed"'
//   npx tsx bench/timeline.ts 'WorkflowType = "guardrails" AND ExecutionStatus = "Running"'
// The newest execution the visibility query lists is shown; TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE
// pick the server (the stack's by default, its cluster with TEMPORAL_MODE=cluster).
//   npx tsx bench/timeline.ts --last 16 'WorkflowType = "serviceDown" AND ExecutionStatus = "Completed"'
// With --last N: the N newest executions summed up instead, p50 / min / max of how long each took
// to reach its restart (started → restartTarget scheduled) and how many workflow tasks that took.
import type { temporal } from '@temporalio/proto';
import { Client, Connection } from '@temporalio/client';
import { stack } from '../test/support/stack.js';
import { eventTimeMs, historyEvents, localActivityMarker } from '../test/support/history.js';
import { temporalConnectOptions } from '../test/support/temporal.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const lastAt = process.argv.indexOf('--last');
const last = lastAt >= 0 ? Number(process.argv[lastAt + 1]) : 0;
const query = process.argv.filter((_, i) => lastAt < 0 || (i !== lastAt && i !== lastAt + 1))[2];
if (!query || (lastAt >= 0 && !(last > 0))) {
  console.error('usage: npx tsx bench/timeline.ts [--last N] <visibility query>');
  process.exit(2);
}
// The stack's cluster over mTLS as its administrator; an address of your own without TLS.
const connection = await Connection.connect(
  process.env.TEMPORAL_ADDRESS ? { address: process.env.TEMPORAL_ADDRESS } : temporalConnectOptions(),
);
const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? stack().temporalNamespace });
const listed: Array<{ workflowId: string; runId: string; type: string; startTime: Date }> = [];
for await (const wf of client.workflow.list({ query })) listed.push(wf);
listed.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
const newest = listed[0];
if (!newest) {
  console.error(`nothing matches: ${query}`);
  process.exit(1);
}
const at = (e: HistoryEvent) => Math.floor(eventTimeMs(e));
if (last > 0) {
  const toRestart: number[] = [];
  const tasks: number[] = [];
  const taskMs: number[] = [];
  // When the guard answered each run's first restart claim (the update carrying a request id with
  // the run's id), from the start of the run.
  const claims = await guardClaimTimes();
  const claimedAt: number[] = [];
  for (const wf of listed.slice(0, last)) {
    const evs = await historyEvents(client.workflow.getHandle(wf.workflowId, wf.runId));
    const restart = evs.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget');
    if (restart < 0) continue;
    const before = evs.slice(0, restart);
    const claimed = claims.find((c) => c.text.includes(`/${wf.runId}/`));
    if (claimed) claimedAt.push(claimed.completedAt - at(evs[0]!));
    toRestart.push(at(evs[restart]!) - at(evs[0]!));
    tasks.push(before.filter((e) => e.workflowTaskCompletedEventAttributes).length);
    before.forEach((e, i) => {
      if (e.workflowTaskStartedEventAttributes && before[i + 1]) taskMs.push(at(before[i + 1]!) - at(e));
    });
  }
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const spread = (xs: number[]) => `p50 ${p50(xs)}, min ${Math.min(...xs)}, max ${Math.max(...xs)}`;
  console.log(`${toRestart.length} of the ${Math.min(last, listed.length)} newest ${newest.type} runs reached restartTarget`);
  console.log(`started → restartTarget scheduled (ms): ${spread(toRestart)}`);
  console.log(`workflow tasks before it: ${spread(tasks)}; each started → completed (ms): ${spread(taskMs)}`);
  if (claimedAt.length > 0)
    console.log(`started → its restart claim answered by the guard (ms): ${spread(claimedAt)} (${claimedAt.length} runs)`);
  await connection.close();
  process.exit(0);
}
const events = await historyEvents(client.workflow.getHandle(newest.workflowId, newest.runId));
const t0 = at(events[0]!);
console.log(`${newest.type} ${newest.workflowId} (${events.length} events)`);

if (newest.type === 'guardrails') {
  const updates = events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes).map(at);
  const taskMs = events.flatMap((e, i) => (e.workflowTaskStartedEventAttributes && events[i + 1] ? [at(events[i + 1]!) - at(e)] : []));
  const spanS = (updates.at(-1)! - updates[0]!) / 1_000;
  const p = (q: number) => [...taskMs].sort((a, b) => a - b)[Math.floor(taskMs.length * q)];
  console.log(
    `updates ${updates.length} over ${spanS.toFixed(1)} s (${(updates.length / spanS).toFixed(1)}/s) in ${taskMs.length} workflow tasks`,
  );
  console.log(`workflow task started → completed: p50 ${p(0.5)} ms, p90 ${p(0.9)} ms`);
} else {
  // Core records a local activity's completion as its workflow task's start plus the activity's own
  // run time: how long it ran, not when it ended.
  let taskStarted = t0;
  for (const e of events) {
    const kind = Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? '?';
    const attrs = (e as Record<string, { activityType?: { name?: string }; signalName?: string; timerId?: string }>)[kind];
    if (e.workflowTaskStartedEventAttributes) taskStarted = at(e);
    const what = attrs?.activityType?.name ?? attrs?.signalName ?? attrs?.timerId ?? localActivity(e, taskStarted) ?? '';
    console.log(`${String(at(e) - t0).padStart(7)} ms  ${kind.replace('EventAttributes', '')} ${what}`);
  }
}
await connection.close();

/** A local activity's marker, named with its type and how long it ran (core's record, from its task's start). */
function localActivity(e: HistoryEvent, taskStarted: number): string | undefined {
  const local = localActivityMarker(e);
  if (!local) return e.markerRecordedEventAttributes?.markerName ?? undefined;
  const ran = local.completedAtMs - taskStarted;
  return `local activity ${local.type} (ran ${Number.isFinite(ran) ? `${ran} ms` : '?'})`;
}

/** Every update the guard completed: its input's text and when (the guard's own history). */
async function guardClaimTimes(): Promise<Array<{ text: string; completedAt: number }>> {
  const guards: Array<{ workflowId: string; runId: string }> = [];
  for await (const wf of client.workflow.list({ query: 'WorkflowType = "guardrails"' })) guards.push(wf);
  const out: Array<{ text: string; completedAt: number }> = [];
  for (const g of guards) {
    const evs = await historyEvents(client.workflow.getHandle(g.workflowId, g.runId));
    const inputs = new Map<string, string>();
    for (const e of evs) {
      const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
      if (accepted) {
        const payloads = accepted.acceptedRequest?.input?.args?.payloads ?? [];
        inputs.set(accepted.protocolInstanceId ?? '', payloads.map((p) => Buffer.from(p.data ?? []).toString('utf8')).join(' '));
      }
      const completed = e.workflowExecutionUpdateCompletedEventAttributes;
      const text = completed ? inputs.get(completed.meta?.updateId ?? '') : undefined;
      if (text !== undefined) out.push({ text, completedAt: at(e) });
    }
  }
  return out;
}
