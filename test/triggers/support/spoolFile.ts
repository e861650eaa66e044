// The webhook spool as tests see it: what is pending, read back as a forwarder would.
import type { Spool, SpoolEntry } from '../../../triggers/alerts/spool.js';

/** Every batch still pending, oldest first, with its alerts read back from disk. */
export async function pendingEntries(spool: Spool): Promise<SpoolEntry[]> {
  const out: SpoolEntry[] = [];
  for (let ref = spool.nextPending(0); ref; ref = spool.nextPending(ref.seq + 1)) {
    const entry = await spool.read(ref.seq);
    if (entry) out.push(entry);
  }
  return out;
}
