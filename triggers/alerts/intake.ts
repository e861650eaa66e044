// The webhook's intake in Temporal (webhook.intake): a batch is answered 200 once its alerts are in
// the intake workflow's history (workflows/intake.ts), which hands them to the incidents after. The
// batches that arrive while one signal is out go together in the next, so a storm costs Temporal one
// write per wave of batches instead of one start per alert, and nothing lives on this engine's disk:
// an engine lost with its host loses no alert it answered.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { intake, intakeSignal, intakeWorkflowId } from '../../workflows/intake.js';
import type { WebhookAlert } from './alertmanagerPayload.js';

export interface IntakeDoorOptions {
  client: Client;
  /** The engine's task queue: the intake runs there, one per queue. */
  taskQueue: string;
  /** Deadline of each signal. */
  timeoutMs: number;
  /** Bytes of alerts (as JSON) in one signal at most; a larger batch goes in several. Default 512 KiB. */
  maxSignalBytes?: number;
  /**
   * The intake's history (events) past which batches are refused: its alerts are not being
   * forwarded (Temporal refusing the incidents' starts, say), and a history at Temporal's limit
   * would end the intake. Default 20,000 (Temporal's limit is 51,200).
   */
  maxHistoryEvents?: number;
  /** The same in bytes. Default 24 MiB (Temporal's limit is 50 MiB). */
  maxHistoryBytes?: number;
  /**
   * Bytes of alerts waiting here for their signal at most (Temporal slow, batches arriving faster
   * than it takes them); past it, batches are refused. Default 64 MiB.
   */
  maxWaitingBytes?: number;
  /** How long the intake waits with nothing taken before it ends (its input); default its own, 10 minutes. */
  quietForMs?: number;
}

export interface IntakeDoor {
  /** Resolves once the alerts are in the intake; rejects with why not (IntakeFullError, or Temporal's error). */
  take(alerts: WebhookAlert[]): Promise<void>;
  /** Alerts this door took and has not yet put in the intake. */
  sending(): number;
  /**
   * The intake has ended since this door last put alerts in it: everything it held was handed on.
   * Asked of Temporal only once it has been quiet long enough to have ended (quietForMs).
   */
  ended(): Promise<boolean>;
}

/** The intake holds more than it may: its alerts are not being forwarded. */
export class IntakeFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntakeFullError';
  }
}

interface Waiting {
  alerts: WebhookAlert[];
  sizes: number[];
  bytes: number;
  resolve(): void;
  reject(err: unknown): void;
}

/** How often the intake's history is looked at (describe): at most once a second, never on the answer's path. */
const lookEveryMs = 1_000;

export function intakeDoor(options: IntakeDoorOptions): IntakeDoor {
  const { client, taskQueue, timeoutMs } = options;
  const maxSignalBytes = options.maxSignalBytes ?? 512 * 1024;
  const maxEvents = options.maxHistoryEvents ?? 20_000;
  const maxBytes = options.maxHistoryBytes ?? 24 * 1_048_576;
  const maxWaitingBytes = options.maxWaitingBytes ?? 64 * 1_048_576;
  const workflowId = intakeWorkflowId(taskQueue);
  const queue: Waiting[] = [];
  // One signal out at a time: the batches arriving meanwhile go in the next. Two or three at once
  // answered a storm slower (765–822 against 1,400 alerts/s): more signals, each a write and a
  // workflow task of the intake's.
  let out = false;
  let queued = 0;
  let waitingBytes = 0;
  /** The intake as last described: its history, and whether it had ended, as of `askedAt`. */
  let history = { events: 0, bytes: 0, ended: false, askedAt: 0, lookedAt: 0, looking: false };
  /** When this door last took a batch, and when Temporal last took one of its signals. */
  let takenAt = 0;
  let signalledAt = 0;

  function look(): Promise<void> | undefined {
    if (history.looking || Date.now() - history.lookedAt < lookEveryMs) return undefined;
    history.looking = true;
    const askedAt = Date.now();
    return client.connection
      .withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(workflowId).describe())
      .then(
        (d) => {
          const ended = d.status.name !== 'RUNNING';
          history = {
            events: ended ? 0 : d.historyLength,
            bytes: ended ? 0 : (d.historySize ?? 0),
            ended,
            askedAt,
            lookedAt: Date.now(),
            looking: false,
          };
        },
        (err: unknown) => {
          const gone = err instanceof WorkflowNotFoundError;
          const known = gone ? { events: 0, bytes: 0, ended: true, askedAt } : history;
          history = { ...known, lookedAt: Date.now(), looking: false };
        },
      );
  }

  async function send(alerts: WebhookAlert[]): Promise<void> {
    await client.connection.withDeadline(Date.now() + timeoutMs, () =>
      client.workflow.signalWithStart(intake, {
        workflowId,
        taskQueue,
        args: [options.quietForMs ? { quietFor: `${options.quietForMs}ms` } : {}],
        signal: intakeSignal,
        signalArgs: [{ alerts }],
      }),
    );
  }

  async function pump(): Promise<void> {
    if (out) return;
    out = true;
    try {
      while (queue.length > 0) {
        // One signal: whole batches while they fit (a batch larger than a signal goes alone, in
        // pieces, answered after its last).
        const wave: Waiting[] = [];
        let bytes = 0;
        while (queue.length > 0 && (wave.length === 0 || bytes + queue[0]!.bytes <= maxSignalBytes)) {
          const w = queue.shift()!;
          wave.push(w);
          bytes += w.bytes;
        }
        const alerts = wave.flatMap((w) => w.alerts);
        const sizes = wave.flatMap((w) => w.sizes);
        try {
          for (const [from, to] of pieces(sizes, maxSignalBytes)) await send(alerts.slice(from, to));
          signalledAt = Date.now();
          for (const w of wave) w.resolve();
        } catch (err) {
          for (const w of wave) w.reject(err);
        } finally {
          queued -= alerts.length;
          waitingBytes -= bytes;
        }
      }
    } finally {
      out = false;
    }
  }

  return {
    take(alerts) {
      // Beside the answer, never on its path (it never rejects).
      void look();
      if (history.events > maxEvents || history.bytes > maxBytes) {
        return Promise.reject(
          new IntakeFullError(
            `the intake (${workflowId}) holds ${history.events} events, ${Math.round(history.bytes / 1_048_576)} MiB: its alerts are not being forwarded to the incidents`,
          ),
        );
      }
      if (alerts.length === 0) return Promise.resolve();
      takenAt = Date.now();
      const sizes = alerts.map((a) => Buffer.byteLength(JSON.stringify(a)));
      const bytes = sizes.reduce((s, n) => s + n, 0);
      if (waitingBytes > 0 && waitingBytes + bytes > maxWaitingBytes) {
        return Promise.reject(
          new IntakeFullError(
            `${Math.round(waitingBytes / 1_048_576)} MiB of alerts are waiting here for Temporal to take them into the intake (${workflowId})`,
          ),
        );
      }
      queued += alerts.length;
      waitingBytes += bytes;
      return new Promise<void>((resolve, reject) => {
        queue.push({ alerts, sizes, bytes, resolve, reject });
        void pump();
      });
    },
    sending: () => queued,
    async ended() {
      const quietFor = options.quietForMs ?? 600_000;
      const last = () => Math.max(takenAt, signalledAt);
      if (queued > 0 || Date.now() - last() < quietFor) return false;
      // Asked again (at most once a second) unless already known to have ended since.
      if (!(history.ended && history.askedAt > last())) await look();
      // Asked after everything this door put in it, and nothing taken since.
      return queued === 0 && history.ended && history.askedAt > last();
    },
  };
}

/** [from, to) ranges of consecutive items whose sizes add up to at most max (one item at least). */
export function pieces(sizes: number[], max: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let from = 0;
  let bytes = 0;
  sizes.forEach((size, i) => {
    if (i > from && bytes + size > max) {
      out.push([from, i]);
      from = i;
      bytes = 0;
    }
    bytes += size;
  });
  if (from < sizes.length) out.push([from, sizes.length]);
  return out;
}
