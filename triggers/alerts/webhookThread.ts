// The spooled webhook's own thread, seen from the engine. On one event loop, a storm's answers
// waited behind the worker's workflow tasks and the forwarder's Temporal calls (event-loop turns
// of 200–300 ms under a paced storm): an answer to Alertmanager waited for two or three of them.
// The thread (webhookThreadMain.ts) owns the webhook's port and the spool, and answers a batch once
// it is fsynced, whatever the engine's loop is doing.
//
// Here, the spool as the forwarder sees it: which batches are pending is kept in step with the
// thread's (from its accepted batches and the done marks given), reads and fsyncs of marks are
// asked of the thread, and progress marks are sent to it to write.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { EngineMetrics } from '../metrics/metrics.js';
import type { AcceptanceGate } from './acceptanceFirst.js';
import type { Spool, SpoolEntry } from './spool.js';
import { PendingBatches } from './spoolIndex.js';
import { errorText } from './webhookDoor.js';
import type { Answer, FromThread, ThreadSettings, ToThread } from './webhookThreadMessages.js';

export interface WebhookThread {
  /** The spool, kept by the thread. Its append is the thread's: called here, it refuses. */
  spool: Spool;
  /** Opens the webhook's port in the thread. Accepted batches and the other paths come back here. */
  listen(handlers: {
    accepted(entry: SpoolEntry): void;
    other(method: string, path: string): Promise<Answer>;
    /** Told of each authorised batch's arrival and answer. */
    acceptance?: Pick<AcceptanceGate, 'arrived' | 'answered'>;
  }): Promise<{ host: string; port: number }>;
  /** Closes the port; batches being received are answered first. */
  closeServer(): Promise<void>;
}

type CallOp = Extract<ToThread, { t: 'call' }>['op'];

/**
 * Starts the thread and opens the spool in it. Rejects, naming the spool, when it cannot be opened
 * (another engine holds it, the directory is not writable). `onFailure` hears of a thread that died
 * afterwards: the webhook's port went with it.
 */
export async function startWebhookThread(opts: {
  settings: Omit<ThreadSettings, 'logLevels'>;
  logger: Logger;
  metrics: EngineMetrics;
  onFailure?: (err: Error) => void;
  /** Starts the thread (tests keep its handle to end it). */
  spawn?: (settings: ThreadSettings) => Worker;
}): Promise<WebhookThread> {
  const { logger, metrics } = opts;
  const levels = ['debug', 'info', 'warn', 'error'] as const;
  const settings: ThreadSettings = { ...opts.settings, logLevels: levels.filter((l) => logger.isLevelEnabled(l)) };
  const worker = (opts.spawn ?? webhookThreadOf)(settings);
  const mirror = new PendingBatches();
  const calls = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  let nextId = 0;
  let handlers: Parameters<WebhookThread['listen']>[0] | undefined;
  let gone: Error | undefined;
  let opened!: (pending: FromThread & { t: 'opened' }) => void;
  let notOpened!: (err: Error) => void;
  const open = new Promise<FromThread & { t: 'opened' }>((resolve, reject) => ((opened = resolve), (notOpened = reject)));

  const post = (message: ToThread) => {
    if (!gone) worker.postMessage(message);
  };
  const call = <T>(op: CallOp, extra: object = {}): Promise<T> => {
    if (gone) return Promise.reject(gone);
    const id = ++nextId;
    return new Promise<T>((resolve, reject) => {
      calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ t: 'call', id, op, ...extra } as ToThread);
    });
  };
  const lost = (err: Error) => {
    if (gone) return;
    gone = err;
    for (const c of calls.values()) c.reject(err);
    calls.clear();
    notOpened(err);
  };

  // The thread sends its messages in turns (webhookThreadMain.ts): in order, several at a time.
  worker.on('message', (messages: FromThread[]) => {
    for (const message of messages) take(message);
  });
  function take(message: FromThread): void {
    switch (message.t) {
      case 'opened':
        return opened(message);
      case 'failed':
        return notOpened(new Error(message.error));
      case 'accepted':
        mirror.add({ seq: message.entry.seq, offset: 0, bytes: message.entry.bytes, alerts: message.entry.alerts.length });
        return handlers?.accepted(message.entry);
      case 'arrived':
        return handlers?.acceptance?.arrived();
      case 'answered':
        return handlers?.acceptance?.answered();
      case 'log':
        return logger[message.level](message.fields, message.msg);
      case 'count':
        switch (message.what) {
          case 'received':
            return metrics.alertsReceived.inc({ status: message.label });
          case 'invalid':
            return metrics.alertsInvalid.inc(message.value);
          case 'spoolRefused':
            return metrics.spoolRefused.inc({ reason: message.label });
          case 'request':
            return metrics.webhookRequestDuration.observe({ code: message.label }, message.value);
        }
        return;
      case 'nice':
        return metrics.webhookThreadNice.set(message.value);
      case 'ask': {
        const asked = handlers?.other(message.method, message.path) ?? Promise.resolve(unavailable);
        void asked
          .catch((err: unknown) => {
            logger.error({ err: errorText(err) }, 'webhook request failed unexpectedly');
            return { status: 500, json: { error: 'internal error' }, headers: {} };
          })
          .then((answer) => post({ t: 'answer', id: message.id, ...answer }));
        return;
      }
      case 'reply': {
        const c = calls.get(message.id);
        calls.delete(message.id);
        if (message.error !== undefined) c?.reject(new Error(message.error));
        else c?.resolve(message.value);
      }
    }
  }
  /** From its spool's opening to its close: a thread gone meanwhile failed. */
  let running = false;
  const failed = (err: Error) => {
    if (gone || !running) return lost(err);
    logger.error({ err: err.message.slice(0, 500) }, 'the webhook thread failed; its port is closed');
    lost(err);
    opts.onFailure?.(err);
  };
  worker.on('error', failed);
  worker.on('exit', (code) => failed(new Error(`the webhook thread exited (code ${code})`)));

  let pending: FromThread & { t: 'opened' };
  try {
    pending = await open;
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  for (const ref of pending.pending) mirror.add(ref);
  running = true;

  const spool: Spool = {
    append: () => Promise.reject(new Error('batches are spooled by the webhook thread')),
    done(seq) {
      if (mirror.remove(seq)) post({ t: 'done', seq });
    },
    delivered(seq, i) {
      if (mirror.get(seq)) post({ t: 'delivered', seq, i });
    },
    syncMarks: () => call('syncMarks'),
    nextPending: (seq) => mirror.firstFrom(seq),
    read: async (seq) => (mirror.get(seq) ? call('read', { seq }) : undefined),
    pendingBatches: () => mirror.count,
    pendingAlerts: () => mirror.alerts,
    pendingBytes: () => mirror.bytes,
    pendingRefs: () => [...mirror.inOrder()],
    async close() {
      running = false;
      if (!gone) await call('close').catch(() => undefined);
      await worker.terminate();
    },
  };

  return {
    spool,
    listen(h) {
      handlers = h;
      return call('listen');
    },
    closeServer: () => (gone ? Promise.resolve() : call('closeServer')),
  };
}

const unavailable: Answer = { status: 503, json: { error: 'the engine is not answering yet' }, headers: {} };

/**
 * The built engine runs the thread's compiled module; tests and `tsx` run the sources, which the
 * thread compiles with tsx as it loads them.
 */
export function webhookThreadOf(settings: ThreadSettings): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(`./webhookThreadMain.${fromSources ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSources) return new Worker(entry, { workerData: settings });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData: settings });
}
