// The audit trail of the operator doors: one structured log line per action asked for, taken or
// refused, with who, through which door, on what, and how it ended. Credentials never appear;
// what the caller wrote (a reason, an id) is bounded before it is logged.
import type { Logger } from 'pino';
import type { Door } from './credentials.js';

export type AuditResult = 'done' | 'refused' | 'unauthenticated' | 'invalid' | 'not-found' | 'conflict' | 'failed';

export interface AuditEntry {
  /** The verified operator; absent when the caller could not be identified. */
  operator?: string;
  via: Door;
  action: string;
  /** What it was about: a workflow id, a runbook and target, a schedule. */
  subject?: string;
  result: AuditResult;
  /** Why it was refused or failed; the operator's own reason for a decision. */
  reason?: string;
  remote?: string;
}

const maxField = 300;

export type AuditLog = (entry: AuditEntry) => void;

export function auditLog(logger: Logger): AuditLog {
  const log = logger.child({ component: 'audit' });
  return (entry) => {
    const line = {
      audit: {
        at: new Date().toISOString(),
        ...Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, typeof v === 'string' ? bounded(v) : v])),
      },
    };
    if (entry.result === 'done') log.info(line, `operator action: ${entry.action}`);
    else log.warn(line, `operator action ${entry.result}: ${entry.action}`);
  };
}

function bounded(text: string): string {
  return text.length > maxField ? `${text.slice(0, maxField)}… (${text.length} chars)` : text;
}
