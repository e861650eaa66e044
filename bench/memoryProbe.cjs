// Preloaded into the engine by bench/memory.ts (NODE_OPTIONS=--require): it runs in the main thread
// and in every worker thread the process starts (Temporal's workflow threads among them), so each
// V8 isolate can report its own heap. On SIGUSR2 the main thread asks every thread over a
// BroadcastChannel and writes one JSON report to $MEMORY_PROBE_OUT. Measurement only: it changes
// nothing the engine does, and without the variable it stays silent.
'use strict';
const v8 = require('node:v8');
const fs = require('node:fs');
const { isMainThread, threadId, BroadcastChannel } = require('node:worker_threads');

const out = process.env.MEMORY_PROBE_OUT;
if (out) {
  const channel = new BroadcastChannel('remediation-memory-probe');
  channel.unref();
  const isolate = () => {
    const h = v8.getHeapStatistics();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
    return {
      threadId,
      // What each worker thread runs, so the report can name it (a Temporal workflow thread, a pool).
      script: isMainThread ? process.argv[1] : (require.main?.filename ?? process.argv[1] ?? ''),
      heapUsed: h.used_heap_size,
      heapTotal: h.total_heap_size,
      physical: h.total_physical_size,
      external: h.external_memory,
      malloced: h.malloced_memory,
      contexts: h.number_of_native_contexts,
      code: spaces.code_space ?? 0,
    };
  };
  if (!isMainThread) {
    channel.onmessage = (event) => {
      if (event.data?.ask) channel.postMessage({ answer: event.data.ask, isolate: isolate() });
    };
  } else {
    process.on('SIGUSR2', () => {
      const ask = Date.now();
      const isolates = [];
      channel.onmessage = (event) => {
        if (event.data?.answer === ask) isolates.push(event.data.isolate);
      };
      // Workflow threads answer between activations: half a second is plenty for an idle engine.
      setTimeout(() => {
        channel.onmessage = null;
        const read = (file) => {
          try {
            return fs.readFileSync(file, 'utf8');
          } catch {
            return '';
          }
        };
        const report = {
          at: new Date().toISOString(),
          memoryUsage: process.memoryUsage(),
          main: isolate(),
          workers: isolates,
          smapsRollup: read('/proc/self/smaps_rollup'),
          smaps: read('/proc/self/smaps'),
          status: read('/proc/self/status'),
        };
        fs.writeFileSync(`${out}.tmp`, JSON.stringify(report));
        fs.renameSync(`${out}.tmp`, out);
      }, 500).unref();
      channel.postMessage({ ask });
    });
  }
}
