// Run by spool.test.ts under a file-size limit (ulimit -f): appends batches of ~10 KiB one after
// another until several were refused, then prints what each append answered as one JSON array.
// A second argument `this-thread` writes as the webhook's thread does (writeOnThisThread).
import type { WebhookAlert } from '../../../triggers/alerts/alertmanagerPayload.js';
import { openSpool } from '../../../triggers/alerts/spool.js';

const dir = process.argv[2]!;
const spool = await openSpool(dir, { writeOnThisThread: process.argv[3] === 'this-thread' });
const answers: Array<{ fingerprint: string; acknowledged: boolean; error?: string }> = [];
for (let i = 0; i < 40 && answers.filter((a) => !a.acknowledged).length < 3; i++) {
  const fingerprint = `batch-${i}`;
  const alert = {
    status: 'firing',
    labels: { alertname: 'ServiceDown', service: 'api' },
    annotations: { description: 'x'.repeat(10_000) },
    startsAt: '2026-11-23T00:00:00Z',
    endsAt: '',
    fingerprint,
  } as unknown as WebhookAlert;
  try {
    await spool.append([alert]);
    answers.push({ fingerprint, acknowledged: true });
  } catch (err) {
    answers.push({ fingerprint, acknowledged: false, error: String(err) });
  }
}
await spool.close();
process.stdout.write(JSON.stringify(answers));
