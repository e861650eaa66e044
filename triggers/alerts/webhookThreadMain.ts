// Runs in the webhook's own thread (webhookThread.ts starts it): the webhook's port, its door, and
// the spool. A batch is authorised, checked, written and fsynced, and answered here, so no load on
// the engine's event loop (a storm's workflow tasks, its Temporal calls) delays an answer. Accepted
// batches, log lines and counts go to the engine as messages; the paths that need the engine
// (health, readiness, metrics) are asked of it.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { timeSlices } from './slices.js';
import { setThisThreadNice } from './threadPriority.js';
import { openSpool, type Spool } from './spool.js';
import { doorServer, spoolBatch, type DoorCounts, type DoorLogger } from './webhookDoor.js';
import { closeListener, listenOn } from './webhookHttp.js';
import { writeAnswer, type FromThread, type ThreadSettings, type ToThread } from './webhookThreadMessages.js';

const port = parentPort as MessagePort;
const settings = workerData as ThreadSettings;

// A storm's alerts each gave the engine 5 messages (arrived, accepted, answered, counted, timed),
// each its own postMessage and its own turn of the engine's loop. The arrivals and counts now wait
// for the next message that goes at once, or for the end of this thread's turn: an accepted batch
// goes at once (the engine holds it before its sender has the answer, as before), and so does
// everything else (log lines, replies, answers asked for), after whatever was waiting, so the order
// stays as posted and a line logged just before the thread fails is not left behind.
const batched = new Set<FromThread['t']>(['arrived', 'answered', 'count']);
let outbox: FromThread[] = [];
function flush(): void {
  if (outbox.length === 0) return;
  const messages = outbox;
  outbox = [];
  port.postMessage(messages);
}
function post(message: FromThread): void {
  if (!batched.has(message.t)) {
    outbox.push(message);
    return flush();
  }
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(message);
}

const logAt =
  (level: 'debug' | 'info' | 'warn' | 'error') =>
  (fields: object, msg?: string): void => {
    if (settings.logLevels.includes(level)) post({ t: 'log', level, fields, msg: msg ?? '' });
  };
const logger = { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') } as unknown as DoorLogger;

const counts: DoorCounts = {
  received: (status) => post({ t: 'count', what: 'received', label: status }),
  invalid: (alerts) => post({ t: 'count', what: 'invalid', value: alerts }),
  spoolRefused: (reason) => post({ t: 'count', what: 'spoolRefused', label: reason }),
  request() {
    const began = performance.now();
    return (code) => post({ t: 'count', what: 'request', label: code, value: (performance.now() - began) / 1_000 });
  },
};

// Before anything is listened to or written: a storm's first batch is answered at this priority.
const priority = setThisThreadNice(settings.nice);
if (priority.unchanged) logger.info({ ...priority, asked: settings.nice }, 'webhook thread keeps its priority');
else logger.info(priority, 'webhook thread priority set');
if (priority.nice !== undefined) post({ t: 'nice', value: priority.nice });

let spool: Spool;
let server: Server | undefined;
let asked = 0;
const answers = new Map<number, (answer: Extract<ToThread, { t: 'answer' }>) => void>();

/** Health, readiness and metrics are the engine's to say: asked of it, answered here. */
async function other(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const id = ++asked;
  const answer = await new Promise<Extract<ToThread, { t: 'answer' }>>((resolve) => {
    answers.set(id, resolve);
    post({ t: 'ask', id, method: req.method ?? 'GET', path });
  });
  writeAnswer(res, answer);
}

async function call(op: Extract<ToThread, { t: 'call' }>): Promise<unknown> {
  switch (op.op) {
    case 'listen': {
      server = doorServer({
        tokenDigest: settings.tokenDigest,
        maxBodyBytes: settings.maxBodyBytes,
        logger,
        counts,
        slices: timeSlices(),
        acceptance: { arrived: () => post({ t: 'arrived' }), answered: () => post({ t: 'answered' }) },
        take: async (batch) => {
          const { entry, answer } = await spoolBatch(spool, batch, settings.limits, counts);
          post({ t: 'accepted', entry });
          return answer;
        },
        other,
      });
      return listenOn(server, settings.listen);
    }
    case 'closeServer':
      if (server) await closeListener(server);
      return undefined;
    case 'read':
      return spool.read(op.seq);
    case 'syncMarks':
      return spool.syncMarks();
    case 'close':
      // The engine ends the thread once it has the reply.
      await spool.close();
      return undefined;
  }
}

port.on('message', (message: ToThread) => {
  switch (message.t) {
    case 'done':
      return spool.done(message.seq);
    case 'delivered':
      return spool.delivered(message.seq, message.i);
    case 'answer':
      answers.get(message.id)?.(message);
      answers.delete(message.id);
      return;
    case 'call':
      call(message).then(
        (value) => post({ t: 'reply', id: message.id, value }),
        (err: unknown) => post({ t: 'reply', id: message.id, error: err instanceof Error ? err.message : String(err) }),
      );
  }
});

try {
  spool = await openSpool(settings.dir, { writeOnThisThread: true });
  post({ t: 'opened', pending: spool.pendingRefs() });
} catch (err) {
  post({ t: 'failed', error: err instanceof Error ? err.message : String(err) });
}
