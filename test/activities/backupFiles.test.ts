// What every backup does with its file once written: its checksum, read from disk. A dump of many
// GiB takes minutes to hash, longer than the backup activity's heartbeat timeout.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Of } from '../../activities/backupFiles.js';

let dir: string;
let file: string;
let content: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 't-backup-files-'));
  file = join(dir, 'db-20250105T020007Z.dump');
  content = randomBytes(4 * 1_048_576);
  await writeFile(file, content);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the checksum of a backup file', () => {
  it('heartbeats while it reads the file, so that a long hash is not taken for a dead worker', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const details = { op: 'backup checksum', target: 'db' };
    const sha256 = await env.run(() => sha256Of(file, details));
    expect(sha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(beats.length).toBeGreaterThan(0);
    expect(beats.every((d) => JSON.stringify(d) === JSON.stringify(details))).toBe(true);
  });

  it('hashes outside an activity too, with nobody to heartbeat to', async () => {
    expect(await sha256Of(file, { op: 'backup checksum', target: 'db' })).toBe(createHash('sha256').update(content).digest('hex'));
  });
});
