// Where an incident's time went: its history events with their offsets from the start, and for a
// guard workflow how many updates it served per second and how long its workflow tasks took.
//   npx tsx bench/timeline.ts 'WorkflowType = "serviceDown" AND ExecutionStatus = "Completed"'
//   npx tsx bench/timeline.ts 'WorkflowType = "guardrails" AND ExecutionStatus = "Running"'
// The newest execution the visibility query lists is shown; TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE
// pick the server (the stack's by default, its cluster with TEMPORAL_MODE=cluster).
import type { temporal } from '@temporalio/proto';
import { Client, Connection } from '@temporalio/client';
import { stack } from '../test/support/stack.js';
import { temporalConnectOptions } from '../test/support/temporal.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const query = process.argv[2];
if (!query) {
  console.error('usage: npx tsx bench/timeline.ts <visibility query>');
  process.exit(2);
}
// The stack's cluster over mTLS as its administrator; an address of your own without TLS.
const connection = await Connection.connect(process.env.TEMPORAL_ADDRESS ? { address: process.env.TEMPORAL_ADDRESS } : temporalConnectOptions());
const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? stack().temporalNamespace });
let newest: { workflowId: string; runId: string; type: string; startTime: Date } | undefined;
for await (const wf of client.workflow.list({ query })) {
  if (!newest || wf.startTime > newest.startTime) newest = wf;
}
if (!newest) {
  console.error(`nothing matches: ${query}`);
  process.exit(1);
}
const events = (await client.workflow.getHandle(newest.workflowId, newest.runId).fetchHistory()).events ?? [];
const at = (e: HistoryEvent) => Number(e.eventTime?.seconds ?? 0) * 1_000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
const t0 = at(events[0]!);
console.log(`${newest.type} ${newest.workflowId} (${events.length} events)`);

if (newest.type === 'guardrails') {
  const updates = events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes).map(at);
  const taskMs = events.flatMap((e, i) => (e.workflowTaskStartedEventAttributes && events[i + 1] ? [at(events[i + 1]!) - at(e)] : []));
  const spanS = (updates.at(-1)! - updates[0]!) / 1_000;
  const p = (q: number) => [...taskMs].sort((a, b) => a - b)[Math.floor(taskMs.length * q)];
  console.log(`updates ${updates.length} over ${spanS.toFixed(1)} s (${(updates.length / spanS).toFixed(1)}/s) in ${taskMs.length} workflow tasks`);
  console.log(`workflow task started → completed: p50 ${p(0.5)} ms, p90 ${p(0.9)} ms`);
} else {
  for (const e of events) {
    const kind = Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? '?';
    const attrs = (e as Record<string, { activityType?: { name?: string }; signalName?: string; timerId?: string }>)[kind];
    const what = attrs?.activityType?.name ?? attrs?.signalName ?? attrs?.timerId ?? '';
    console.log(`${String(at(e) - t0).padStart(7)} ms  ${kind.replace('EventAttributes', '')} ${what}`);
  }
}
await connection.close();
