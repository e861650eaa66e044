// A group restart's targets are planned into the run with the run's own target, each with the queue
// of the worker that owns it (a unit's host agent), and `remediate runbooks plan` shows those queues;
// housekeeping and logrotate run on the target's queue.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { matchBinding } from '../../triggers/alerts/binding.js';
import { planRunbookRun } from '../../triggers/plan.js';
import { planRunbookSteps } from '../../triggers/cli/runbookPreview.js';

const dir = mkdtempSync(join(tmpdir(), 't-plan-group-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  join(dir, 'fullStack.yaml'),
  `name: fullStack
description: the seeds' full stack restart, then the host's weekly upkeep
appliesTo: [systemd]
steps:
  - id: all
    uses: groupRestart
    with: { targets: [db-box, web-unit] }
  - id: clean
    uses: housekeeping
    with: { olderThanDays: 30 }
`,
);

const config = parseConfig(
  {
    temporal: { taskQueue: 'engine-q' },
    webhook: { token: 'tok-plan-group-0123' },
    runbooks: dir,
    hosts: { 'host-a': {} },
    targets: {
      'db-box': { kind: 'container', container: 'mariadb' },
      'web-unit': { kind: 'systemd', unit: 'web.service', host: 'host-a', housekeeping: { paths: ['/var/lib/web/runs'] } },
    },
    bindings: [{ alert: 'StackDown', runbook: 'fullStack', target: 'web-unit' }],
    channels: { log: { type: 'log' } },
    escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
  },
  'plan group test',
);

describe('planning a group restart', () => {
  it('plans every target of the group, each with its own queue', () => {
    const m = matchBinding(config, { labels: { alertname: 'StackDown' } });
    if (!m.matched) throw new Error(m.reason);
    const input = planRunbookRun(config, m, {
      labels: { alertname: 'StackDown' },
      annotations: {},
      fingerprint: 'fp',
      startsAt: '2025-01-05T02:00:00Z',
    });
    expect(input.targets.map((t) => [t.name, t.queue])).toEqual([
      ['web-unit', 'engine-q-host-host-a'],
      ['db-box', 'engine-q'],
    ]);
  });

  it("shows the queues the step runs on, and housekeeping on the unit's host agent", () => {
    const p = planRunbookSteps(config, { runbook: 'fullStack', labels: { alertname: 'StackDown' }, dryRun: false });
    if (!p.matched) throw new Error(p.reason);
    expect(p.steps.map((s) => [s.id, s.queue, s.mutating])).toEqual([
      ['all', 'engine-q, engine-q-host-host-a', true],
      ['clean', 'engine-q-host-host-a', true],
    ]);
  });
});
