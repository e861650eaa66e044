// Reading a run's workflow history: what its activities returned and which worker ran what. History
// is the record Temporal keeps whatever happened to the processes, so tests assert against it.
import type { WorkflowHandle } from '@temporalio/client';

export type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

export async function historyEvents(handle: WorkflowHandle): Promise<HistoryEvent[]> {
  return (await handle.fetchHistory()).events ?? [];
}

/** When the server wrote an event, in milliseconds since the epoch (sub-millisecond kept). */
export function eventTimeMs(e: Pick<HistoryEvent, 'eventTime'>): number {
  return Number(e.eventTime?.seconds ?? 0) * 1_000 + (e.eventTime?.nanos ?? 0) / 1e6;
}

/**
 * A local activity's marker (recorded when its workflow task completes; the activity ran earlier,
 * inside that task): its type, its sequence number (the order the workflow asked it in) and when
 * it completed, from core's marker data. Undefined for any
 * other event.
 */
export function localActivityMarker(e: HistoryEvent): { type: string; seq: number; completedAtMs: number } | undefined {
  const m = e.markerRecordedEventAttributes;
  const data = m?.markerName === 'core_local_activity' ? m.details?.['data']?.payloads?.[0]?.data : undefined;
  if (!data) return undefined;
  const d = JSON.parse(Buffer.from(data).toString('utf8')) as {
    activity_type: string;
    seq: number;
    complete_time?: { seconds?: number; nanos?: number };
  };
  const t = d.complete_time;
  return { type: d.activity_type, seq: d.seq, completedAtMs: t ? Number(t.seconds ?? 0) * 1_000 + Math.floor((t.nanos ?? 0) / 1e6) : NaN };
}

/** The activity type of each scheduled activity, by the id of its scheduled event. */
function activityTypes(events: HistoryEvent[]): Map<string, string> {
  return new Map(
    events.flatMap((e) =>
      e.activityTaskScheduledEventAttributes ? [[String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '']] : [],
    ),
  );
}

/** Results of one activity type, in order. */
export async function activityResults<T>(handle: WorkflowHandle, activityType: string): Promise<T[]> {
  const events = await historyEvents(handle);
  const types = activityTypes(events);
  return events.flatMap((e) => {
    const completed = e.activityTaskCompletedEventAttributes;
    if (!completed || types.get(String(completed.scheduledEventId)) !== activityType) return [];
    return [JSON.parse(Buffer.from(completed.result!.payloads![0]!.data!).toString('utf8')) as T];
  });
}

/**
 * Which worker ran each activity attempt, in order: [activity type, worker identity (pid@host)].
 * An activity's attempt is named by its started event; a local activity has none, only the marker
 * its workflow task recorded, so it is named by the worker that completed that workflow task.
 */
export async function activityRunners(handle: WorkflowHandle): Promise<Array<[string, string]>> {
  const events = await historyEvents(handle);
  const types = activityTypes(events);
  const taskCompletedBy = new Map(
    events.flatMap((e) =>
      e.workflowTaskCompletedEventAttributes ? [[String(e.eventId), e.workflowTaskCompletedEventAttributes.identity ?? '']] : [],
    ),
  );
  return events.flatMap((e): Array<[string, string]> => {
    const started = e.activityTaskStartedEventAttributes;
    if (started) return [[types.get(String(started.scheduledEventId))!, started.identity!]];
    const local = localActivityMarker(e);
    if (!local) return [];
    return [[local.type, taskCompletedBy.get(String(e.markerRecordedEventAttributes!.workflowTaskCompletedEventId)) ?? '']];
  });
}

/** Identities of the workers that completed the run's workflow tasks. */
export async function workflowTaskRunners(handle: WorkflowHandle): Promise<Set<string>> {
  return new Set(
    (await historyEvents(handle)).flatMap((e) =>
      e.workflowTaskCompletedEventAttributes ? [e.workflowTaskCompletedEventAttributes.identity!] : [],
    ),
  );
}
