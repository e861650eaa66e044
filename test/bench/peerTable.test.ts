import { describe, expect, it } from 'vitest';
import { parsePeerTable, peerRss } from '../../bench/peerTable.js';

// As ../shared/peers/run.sh printed it on 2026-12-04 (a minus sign, not a hyphen, before floor-api's Δ).
const printed = `Rounds: 20 timed (+1 warm-up), interleaved in a shuffled order each round (seed 1); health polled every 5 ms.

| peer | what is timed | n ok / fail | p50 | p95 | min | max | paired Δ vs floor-start, median | HTTP answer to the POST, p50 (status) | warm-up round (cold) |
|---|---|---|---|---|---|---|---|---|---|
| floor-start | \`docker start\` → healthy | 20 / 0 | 86 ms | 99 ms | 76 ms | 130 ms | – | – | 109 ms |
| floor-api | Engine API start (unix socket, no CLI) → healthy | 20 / 0 | 73 ms | 86 ms | 64 ms | 90 ms | −14 ms | – | 79 ms |
| webhook | POST → healthy (answers before the action) | 20 / 0 | 91 ms | 105 ms | 81 ms | 112 ms | +4 ms | 1 ms (200) | 89 ms |
| engine | POST → healthy (extra receiver) | 20 / 0 | 154 ms | 183 ms | 134 ms | 195 ms | +68 ms | 3 ms (200) | 437 ms |
| eda | POST → healthy | 20 / 0 | 4.9 s | 5.2 s | 4.7 s | 5.5 s | +4.65 s | 2 ms (200) | 6.1 s |

| receiver | start-up to listening | RSS idle (tree) | RSS after rounds (tree) | peak RSS of process tree during rounds | main process VmHWM |
|---|---|---|---|---|---|
| webhook | 0.02 s | 11 MiB | 12 MiB | 37 MiB | 12 MiB |
| engine | – (not started here) | 348 MiB | 385 MiB | 385 MiB | 246 MiB |
`;

describe('the peers table', () => {
  it('reads each peer’s p50 and paired Δ, signs and units included', () => {
    const t = parsePeerTable(printed);
    expect(t.get('floor-start')).toEqual({ p50: 86, delta: 0 });
    expect(t.get('floor-api')).toEqual({ p50: 73, delta: -14 });
    expect(t.get('webhook')).toEqual({ p50: 91, delta: 4 });
    expect(t.get('engine')).toEqual({ p50: 154, delta: 68 });
    expect(t.get('eda')).toEqual({ p50: 4_900, delta: 4_650 });
    expect(t.size).toBe(5);
  });

  it('reads a receiver’s memory, and nothing for one that is absent', () => {
    expect(peerRss(printed, 'engine')).toEqual({ idle: '348 MiB', peak: '385 MiB' });
    expect(peerRss(printed, 'webhook')).toEqual({ idle: '11 MiB', peak: '37 MiB' });
    expect(peerRss(printed, 'nobody')).toBeUndefined();
  });

  it('skips a row with a failed peer instead of reading garbage', () => {
    const failed = printed.replace('| 20 / 0 | 154 ms', '| 0 / 20 | n/a');
    expect(parsePeerTable(failed).has('engine')).toBe(false);
  });
});
