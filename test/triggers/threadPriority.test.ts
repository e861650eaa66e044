// A thread's own nice value: set on the calling thread only, read back from the kernel, and left
// as it is (with the reason) where it cannot be set.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { niceOf } from './support/threadNice.js';
import { setThisThreadNice, type PrioritySystem } from '../../triggers/alerts/threadPriority.js';

const here = new URL('../../triggers/alerts/threadPriority.ts', import.meta.url).href;

describe("a thread's priority", () => {
  it("sets the calling thread's nice value and no other thread's", async () => {
    // A worker thread lowers its own priority (any user may): the kernel shows it on that thread only.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(here)}); })
         .then((m) => parentPort.postMessage(m.setThisThreadNice(7)));
       setTimeout(() => {}, 5000);`,
      { eval: true },
    );
    try {
      const set = await new Promise<{ tid: number; nice: number; unchanged?: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(set.unchanged).toBeUndefined();
      expect(set.nice).toBe(7);
      expect(set.tid).not.toBe(process.pid);
      expect(niceOf(set.tid)).toBe(7);
      expect(niceOf(process.pid)).not.toBe(7);
    } finally {
      await worker.terminate();
    }
  });

  it('leaves it, naming CAP_SYS_NICE, when raising it is not allowed', () => {
    const calls: number[] = [];
    const system: PrioritySystem = {
      threadSelf: () => '4242/task/4250',
      getPriority: () => 0,
      setPriority: (_tid, nice) => {
        calls.push(nice);
        throw Object.assign(new Error('A system error occurred: uv_os_setpriority returned EACCES (permission denied)'), {
          code: 'ERR_SYSTEM_ERROR',
          info: { code: 'EACCES' },
        });
      },
    };
    expect(setThisThreadNice(-10, system)).toEqual({ tid: 4250, nice: 0, unchanged: 'raising it needs CAP_SYS_NICE (EACCES)' });
    expect(calls).toEqual([-10]);
  });

  it('leaves it where there is no /proc/thread-self (not Linux), and asks nothing when it is already so', () => {
    const missing: PrioritySystem = {
      threadSelf: () => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      },
      getPriority: () => 0,
      setPriority: () => expect.unreachable('nothing to set'),
    };
    expect(setThisThreadNice(-10, missing)).toEqual({ unchanged: 'no /proc/thread-self: thread priorities are set on Linux only' });
    const already: PrioritySystem = {
      threadSelf: () => '1/task/9',
      getPriority: () => -10,
      setPriority: () => expect.unreachable('already -10'),
    };
    expect(setThisThreadNice(-10, already)).toEqual({ tid: 9, nice: -10 });
  });
});
