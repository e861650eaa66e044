import { readFileSync } from 'node:fs';

/** A thread of this process's nice value as the kernel reports it (field 19 of its stat), not as os.getPriority says. */
export function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}
