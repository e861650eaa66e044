// What the engine and the webhook's thread say to each other (webhookThread.ts, webhookThreadMain.ts).
import type { ServerResponse } from 'node:http';
import type { SpoolBatchRef, SpoolEntry, SpoolLimits } from './spool.js';
import { send } from './webhookHttp.js';

/** Everything the thread is given when it starts: no secret (the token's digest only). */
export interface ThreadSettings {
  /** The spool's directory: the thread opens it and alone writes it. */
  dir: string;
  listen: string;
  tokenDigest: Uint8Array;
  maxBodyBytes: number;
  limits: SpoolLimits;
  /** The thread's nice value (webhook.threadNice): set as it starts (threadPriority.ts). */
  nice: number;
  /** The levels the engine's logger writes: the thread sends no line it would drop. */
  logLevels: string[];
}

/** An answer the engine gives for a path other than the webhook's. */
export interface Answer {
  status: number;
  /** A JSON answer's body, or the text of one that is not JSON (metrics). */
  json?: unknown;
  text?: string;
  headers: Record<string, string>;
}

export type ToThread =
  | { t: 'call'; id: number; op: 'listen' | 'closeServer' | 'syncMarks' | 'close' }
  | { t: 'call'; id: number; op: 'read'; seq: number }
  | { t: 'done'; seq: number }
  | { t: 'delivered'; seq: number; i: number }
  | ({ t: 'answer'; id: number } & Answer);

export type FromThread =
  | { t: 'opened'; pending: SpoolBatchRef[] }
  | { t: 'failed'; error: string }
  | { t: 'accepted'; entry: SpoolEntry }
  /** An authorised batch arrived, and was answered: the engine's forwarding gives way meanwhile (acceptanceFirst.ts). */
  | { t: 'arrived' }
  | { t: 'answered' }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; fields: object; msg: string }
  | { t: 'count'; what: 'received' | 'spoolRefused'; label: string }
  | { t: 'count'; what: 'invalid'; value: number }
  | { t: 'count'; what: 'request'; label: string; value: number }
  /** The thread's nice value, as the kernel answers it once set (threadPriority.ts). */
  | { t: 'nice'; value: number }
  | { t: 'ask'; id: number; method: string; path: string }
  | { t: 'reply'; id: number; value?: unknown; error?: string };

export function writeAnswer(res: ServerResponse, answer: Answer): void {
  if (answer.text === undefined) return send(res, answer.status, answer.json, answer.headers);
  res.writeHead(answer.status, answer.headers);
  res.end(answer.text);
}
