// The webhook thread's scheduling priority. On Linux a nice value belongs to a thread, not to the
// process: the thread that answers Alertmanager can run ahead of the engine's other threads (its
// workflow threads, its Temporal core, its event loop) without the engine as a whole being raised.
// In a storm of 1,000 alerts on 2 cores, answers within 20 ms by the engine's own clock went from
// 59–64 % to 84–90 % at -10 (bench: 3 alternating runs each). Raising a priority needs
// CAP_SYS_NICE (root has it); without it the thread keeps the engine's priority, and says so.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export interface ThreadPriority {
  /** The thread's id, as /proc/<pid>/task/<tid> and `ps -L` show it. */
  tid?: number;
  /** The thread's nice value once set (or as it stays). */
  nice?: number;
  /** Why the thread's priority was left as it was, when it was. */
  unchanged?: string;
}

export interface PrioritySystem {
  /** Where /proc/thread-self points: "<pid>/task/<tid>" for the calling thread. */
  threadSelf(): string;
  setPriority(tid: number, nice: number): void;
  getPriority(tid: number): number;
}

const linux: PrioritySystem = {
  threadSelf: () => readlinkSync('/proc/thread-self'),
  setPriority,
  getPriority,
};

/** Sets the calling thread's nice value (-20, first, to 19, last); never throws. */
export function setThisThreadNice(nice: number, system: PrioritySystem = linux): ThreadPriority {
  let tid: number;
  try {
    tid = Number(/\/task\/(\d+)$/.exec(system.threadSelf())?.[1]);
  } catch {
    return { unchanged: 'no /proc/thread-self: thread priorities are set on Linux only' };
  }
  if (!Number.isSafeInteger(tid) || tid <= 0) return { unchanged: 'no thread id in /proc/thread-self' };
  try {
    if (system.getPriority(tid) !== nice) system.setPriority(tid, nice);
    return { tid, nice: system.getPriority(tid) };
  } catch (err) {
    const code = (err as { info?: { code?: string }; code?: string }).info?.code ?? (err as { code?: string }).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'raising it needs CAP_SYS_NICE' : (err as Error).message;
    return { tid, nice: safely(() => system.getPriority(tid)), unchanged: `${why} (${code ?? 'error'})` };
  }
}

function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
