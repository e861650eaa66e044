// host_agent_pollers against the real dev server: the pollers Temporal lists on a host's queue, counted
// while an agent polls it, none on a queue no agent ever polled, and none once the agent has stopped
// for longer than the window (Temporal keeps listing a stopped poller for minutes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import { registerDurableGauges } from '../../triggers/metrics/durableGauges.js';
import { createMetrics } from '../../triggers/metrics/metrics.js';
import { startWorker, temporalClient, uniqueQueue } from '../support/temporal.js';

let client: Client;
let connection: Connection;

beforeAll(async () => {
  ({ client, connection } = await temporalClient());
});

afterAll(async () => {
  await connection?.close();
});

/** The gauge's value per host, as a scrape reads it. */
async function pollers(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const text = await metrics.registry.getSingleMetricAsString('host_agent_pollers');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^host_agent_pollers\{host="([^"]+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe('host_agent_pollers', () => {
  it('counts the agents polling each host, and none on a host whose agent stopped or never came', async () => {
    const upQueue = uniqueQueue('agent-up');
    const neverQueue = uniqueQueue('agent-never');
    const agent = await startWorker({ taskQueue: upQueue, activities: { unitStatus: async () => 'active' } });
    const metrics = createMetrics({ processMetrics: false });
    registerDurableGauges(metrics.registry, {
      client,
      taskQueue: uniqueQueue('agent-engine'),
      maxConcurrentDestructive: 1,
      approvalRunbooks: [],
      agentQueues: [
        { host: 'web-1', queue: upQueue },
        { host: 'web-2', queue: neverQueue },
      ],
      // Reads every scrape, and a poller not seen for 3 s is gone (2 min in the engine).
      cacheMs: 0,
      scrapeWaitMs: 4_000,
      agentSeenMs: 3_000,
    });
    try {
      // The agent's first poll reaches the server a moment after it starts.
      let seen: Record<string, number> = {};
      for (let i = 0; i < 50 && !(seen['web-1']! >= 1); i++) {
        seen = await pollers(metrics);
        if (!(seen['web-1']! >= 1)) await new Promise((r) => setTimeout(r, 200));
      }
      expect(seen).toEqual({ 'web-1': 1, 'web-2': 0 });
    } finally {
      await agent.stop();
    }
    // Stopped: Temporal still lists its last poll, now older than the window.
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await pollers(metrics)).toEqual({ 'web-1': 0, 'web-2': 0 });
    const failures = await metrics.registry.getSingleMetricAsString('engine_state_read_failures_total');
    expect(failures).toMatch(/engine_state_read_failures_total\{source="agents"\} 0/);
  }, 30_000);
});
