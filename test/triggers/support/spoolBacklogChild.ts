// Run as a process of its own by spoolBacklog.test.ts: opens a spool an earlier process left behind
// and forwards all of it, as a restarted engine would (delivering to a stand-in for Temporal), then
// prints what it delivered and the most memory it ever held (VmHWM, the peak resident set).
import { readFileSync } from 'node:fs';
import type { WebhookAlert } from '../../../triggers/alerts/alertmanagerPayload.js';
import { openSpool } from '../../../triggers/alerts/spool.js';
import { startForwarder } from '../../../triggers/alerts/spoolForwarder.js';

const dir = process.argv[2]!;
const began = performance.now();
const spool = await openSpool(dir);
const opened = {
  batches: spool.pendingBatches(),
  alerts: spool.pendingAlerts(),
  bytes: spool.pendingBytes(),
  ms: Math.round(performance.now() - began),
};

// Each alert carries its place in the file (annotation `n`): one alert's events must arrive in it.
const lastSeen = new Map<string, number>();
let delivered = 0;
let outOfOrder = 0;
const deliver = async (alert: WebhookAlert) => {
  const n = Number(alert.annotations.n);
  if (n <= (lastSeen.get(alert.fingerprint) ?? -1)) outOfOrder++;
  lastSeen.set(alert.fingerprint, n);
  delivered++;
};
const forwarder = startForwarder({ spool, deliver, logger: { warn() {}, info() {} } as never });
await forwarder.drained();
await forwarder.stop();
const left = spool.pendingBatches();
await spool.close();

const hwmKiB = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
process.stdout.write(
  `${JSON.stringify({ opened, delivered, outOfOrder, left, vmHWMMiB: Math.round(hwmKiB / 1024), ms: Math.round(performance.now() - began) })}\n`,
);
