// What every backup does with its file: a sortable UTC name, a check that it is new, its checksum.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { heartbeating } from './limits.js';

/** 2025-01-05T02:00:07.123Z → 20250105T020007Z: sortable and safe in file names. */
export function utcStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The file's SHA-256, heartbeating with `details` while it reads: a dump of many GiB takes minutes
 * to hash, past the backup's heartbeat timeout, and a backup taken for dead is dumped again.
 */
export async function sha256Of(path: string, details: unknown): Promise<string> {
  return heartbeating(digest(path), details);
}

async function digest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
