// The stack's Alertmanager posts every alert to one webhook port. Test files that close the real loop
// through it (container, systemd, maintenance) take turns: each holds this lock for its whole run, so
// no two engines ever compete for the port or see each other's alerts. So does a file whose incidents
// read its silences (the README's CLI examples): a maintenance window silences service=demo. vitest
// runs files in parallel forks, hence a lock between processes: a directory (mkdir is atomic) naming
// its holder's pid.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { RunbookResult } from '../../workflows/messages.js';
import { stack } from './stack.js';
import { until } from './wait.js';

function holderAlive(dir: string): boolean {
  try {
    process.kill(Number(readFileSync(join(dir, 'pid'), 'utf8')), 0);
    return true;
  } catch (err) {
    // EPERM means it exists; no pid file yet means the holder is between mkdir and write.
    return (err as NodeJS.ErrnoException).code === 'EPERM' || (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Waits for the alert loop, holds it, and returns the release function. */
export async function holdAlertLoop(timeoutMs = 600_000): Promise<() => void> {
  const dir = join(stack().dir, 'locks', 'alert-loop');
  mkdirSync(join(stack().dir, 'locks'), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // A holder that died (a killed test run) does not block the next run for ever.
    if (!holderAlive(dir)) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the alert loop stayed held by another test file for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The result of the first run of `workflowId` started after `sinceMs` that did something. Alertmanager
 * starts the runs; a late repeat of an earlier alert may start one of its own that rightly ends as a
 * false alarm, so those are passed over.
 */
export async function runThatActed(client: Client, workflowId: string, sinceMs: number, what: string, ms = 90_000): Promise<RunbookResult> {
  const seen = new Set<string>();
  return until(what, ms, async () => {
    const d = await client.workflow.getHandle(workflowId).describe();
    if (d.startTime.getTime() < sinceMs || seen.has(d.runId)) return undefined;
    const r = (await client.workflow.getHandle(workflowId, d.runId).result()) as RunbookResult;
    seen.add(d.runId);
    return r.outcome === 'false-alarm' ? undefined : r;
  });
}
