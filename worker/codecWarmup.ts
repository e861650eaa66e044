// The Temporal SDK codes every message it exchanges with Temporal (and with its own core) through
// protobufjs, which writes a message type's encoder, decoder and converters the first time the type
// is used. A CPU profile of an engine's first incidents showed its main thread spending ~180 ms of
// one core writing them: the first runs' activations and completions and the client's first starts
// each paid for their types on the way. So the first incident after an engine starts (a deploy, or
// the reboot that is why alerts are coming) paid for what every later one gets for free.
//
// Here the engine prepares those types once it is running, a few at a time, each slice its own turn
// of the event loop: an alert arriving meanwhile waits one slice (4 ms; the first is ~25 ms, as it
// also warms protobufjs's own code generator). What is prepared is what an incident's path touches
// on this thread: the worker's activations and completions, its activity tasks and heartbeats, the
// client calls that start, signal, update and query runs, and every type they contain (~250 types,
// ~170 ms in all). The SDK's workflow threads keep their own copies of these types, out of reach
// here: each still pays ~60–70 ms on its first activation.
//
// Measured (bench `1r`): the first alert after a start ~50 ms sooner with this alone. A storm's
// acceptance does not change: its runs start once its alerts are in, after the codecs are written.
import proto from '@temporalio/proto';

/** What this module uses of a protobufjs reflection type (the SDK's messages are reflection types). */
interface MessageType {
  fullName: string;
  fieldsArray: Array<{ resolve(): { resolvedType: unknown } }>;
  setup(): unknown;
  root: { lookupType(path: string): MessageType };
}

/** The client calls an incident's path makes (start, update-with-start, signal, query, list, count). */
const clientCalls = [
  'StartWorkflowExecution',
  'ExecuteMultiOperation',
  'UpdateWorkflowExecution',
  'PollWorkflowExecutionUpdate',
  'SignalWorkflowExecution',
  'SignalWithStartWorkflowExecution',
  'QueryWorkflow',
  'DescribeWorkflowExecution',
  'CountWorkflowExecutions',
  'ListWorkflowExecutions',
];

/** The messages the worker exchanges with its core on this thread, and the client's calls. */
export const warmedMessages: readonly string[] = [
  'coresdk.workflow_activation.WorkflowActivation',
  'coresdk.workflow_completion.WorkflowActivationCompletion',
  'coresdk.activity_task.ActivityTask',
  'coresdk.ActivityTaskCompletion',
  'coresdk.ActivityHeartbeat',
  'google.rpc.Status',
  ...clientCalls.flatMap((call) => [`temporal.api.workflowservice.v1.${call}Request`, `temporal.api.workflowservice.v1.${call}Response`]),
];

function isMessageType(value: unknown): value is MessageType {
  return typeof value === 'object' && value !== null && Array.isArray((value as MessageType).fieldsArray);
}

/**
 * The named message types: each, and every type it contains, is prepared. A name this SDK version
 * does not know is left out (its test names every one): a warm-up never stops an engine.
 */
export function namedTypes(names: readonly string[] = warmedMessages): MessageType[] {
  const root = (proto.coresdk.workflow_activation.WorkflowActivation as unknown as MessageType).root;
  return names.flatMap((name) => {
    try {
      return [root.lookupType(name)];
    } catch {
      return [];
    }
  });
}

/** A type's field types that are messages themselves. */
function containedTypes(type: MessageType): MessageType[] {
  return type.fieldsArray.map((field) => field.resolve().resolvedType).filter(isMessageType);
}

export interface CodecWarmup {
  /**
   * Settles once every type is prepared, or the warm-up was stopped. Never rejects: a type whose
   * codec could not be written is counted in `failed` (written on first use, as before).
   */
  done: Promise<{ types: number; failed: number; slices: number; ms: number; stopped: boolean }>;
  stop(): void;
}

export interface CodecWarmupOptions {
  /** How long one slice may run before the loop gets a turn (at least one type a slice). */
  sliceMs?: number;
  types?: () => MessageType[];
  now?: () => number;
}

/**
 * Prepares the named types' codecs and those of every type they contain, each type once, a slice at
 * a time, each slice in a turn of the event loop of its own.
 */
export function warmCodecs(opts: CodecWarmupOptions = {}): CodecWarmup {
  const sliceMs = opts.sliceMs ?? 4;
  const now = opts.now ?? (() => performance.now());
  let stopped = false;
  const done = (async () => {
    const t0 = now();
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    let slices = 0;
    await turn();
    const queue = stopped ? [] : (opts.types ?? namedTypes)();
    const seen = new Set(queue);
    let prepared = 0;
    let failed = 0;
    while (prepared < queue.length && !stopped) {
      if (slices++ > 0) await turn();
      const sliceEnd = now() + sliceMs;
      do {
        const type = queue[prepared++]!;
        try {
          for (const inner of containedTypes(type)) {
            if (seen.has(inner)) continue;
            seen.add(inner);
            queue.push(inner);
          }
          type.setup();
        } catch {
          failed++;
        }
      } while (prepared < queue.length && now() < sliceEnd);
    }
    return { types: prepared, failed, slices, ms: now() - t0, stopped };
  })();
  return { done, stop: () => void (stopped = true) };
}
