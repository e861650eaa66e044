// How activities fail. Temporal retries what can get better by waiting (a refused connection, a
// timeout, a 5xx) and must not retry what cannot (bad input, a missing target, a wrong password).
// Every message names the operation and the target, never a secret.
import { ApplicationFailure } from '@temporalio/common';
import { redact, type Secret } from '../config/secret.js';

export const failureTypes = {
  badInput: 'BadInput',
  targetNotFound: 'TargetNotFound',
  authFailed: 'AuthFailed',
  transient: 'Transient',
} as const;

/** "restart of container 'api'" — the subject of every message an activity produces. */
export function operation(op: string, kind: string, target: string): string {
  return `${op} of ${kind} '${target}'`;
}

export function badInput(what: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `${what} refused: ${problem}`, type: failureTypes.badInput, nonRetryable: true });
}

export function targetNotFound(what: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `${what} failed: ${problem}`, type: failureTypes.targetNotFound, nonRetryable: true });
}

export function authFailed(what: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `${what} failed: ${problem}`, type: failureTypes.authFailed, nonRetryable: true });
}

export function transient(what: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `${what} failed: ${problem}`, type: failureTypes.transient, nonRetryable: false });
}

const transientCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'PROTOCOL_CONNECTION_LOST',
  'TIMEOUT',
]);

/**
 * Turns whatever a driver threw into a classified failure. Drivers echo DSNs and URLs in their
 * messages, so the text is scrubbed of the given secrets before it leaves the activity.
 */
export function classify(what: string, err: unknown, secrets: Array<Secret | undefined> = []): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = err as { code?: string; errno?: string; cause?: { code?: string }; message?: string };
  const code = e?.code ?? e?.cause?.code ?? e?.errno;
  const message = redact(String(e?.message ?? err), secrets)
    .split('\n')[0]!
    .slice(0, 500);
  if (code && transientCodes.has(String(code))) return transient(what, `${message} (${code})`);
  return transient(what, message);
}

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Bounds a call that has no timeout of its own. The underlying call may still be running; callers
 * pass an abort hook where the driver supports one. */
export async function withTimeout<T>(what: string, ms: number, work: Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new TimeoutError(what, ms));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
