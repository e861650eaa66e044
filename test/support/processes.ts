// Processes a test finds by what they run (a dev server by its data file), and Temporal made to hang
// the way a frozen host or a network black hole does: it keeps its port, accepts connections and
// answers nothing (SIGSTOP), until it is thawed.
import { readdirSync, readFileSync } from 'node:fs';

/** The pid of the one process whose command line contains `fragment`, if there is one. */
export function pidRunning(fragment: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(fragment) && alive(Number(entry))) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/** Running or stopped; not gone, and not a zombie nobody reaped yet. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Freezes the process whose command line contains `fragment`; the returned function thaws it. */
export function freeze(fragment: string): () => void {
  const pid = pidRunning(fragment);
  if (pid === undefined) throw new Error(`no process runs ${fragment}`);
  process.kill(pid, 'SIGSTOP');
  return () => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone meanwhile.
    }
  };
}
