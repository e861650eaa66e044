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
import { OperatorActions } from '../../triggers/operators/actions.js';
import type { Identity } from '../../triggers/operators/credentials.js';
import type { Temporal } from '../../triggers/operators/operatorTemporal.js';

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
    operators: [
      { name: 'wendy', role: 'operator', targets: ['web-unit'] },
      { name: 'ava', role: 'operator', targets: ['web-unit', 'db-box'] },
      { name: 'rob', role: 'responder' },
    ],
    channels: { log: { type: 'log' } },
    escalation: { policies: { p: { levels: [{ name: 'l', after: '0s', channels: ['log'] }] } }, default: 'p' },
  },
  'plan group test',
);

/** The run a StackDown alert plans. */
function plannedRun() {
  const m = matchBinding(config, { labels: { alertname: 'StackDown' } });
  if (!m.matched) throw new Error(m.reason);
  return planRunbookRun(config, m, {
    labels: { alertname: 'StackDown' },
    annotations: {},
    fingerprint: 'fp',
    startsAt: '2025-01-05T02:00:00Z',
  });
}

describe('planning a group restart', () => {
  it('plans every target of the group, each with its own queue', () => {
    const input = plannedRun();
    expect(input.targets.map((t) => [t.name, t.queue])).toEqual([
      ['web-unit', 'engine-q-host-host-a'],
      ['db-box', 'engine-q'],
    ]);
  });

  it('takes decisions only from operators who have every target it restarts in scope, not only the incident target', () => {
    const input = plannedRun();
    // wendy may act on web-unit only; the run also restarts db-box.
    expect(input.operators).toEqual(['ava']);
    expect(input.responders).toEqual(['rob']);
  });

  it('refuses wendy, at the operator door, a start of it by hand: it would restart db-box, outside her scope', async () => {
    const temporal = {
      address: 'nowhere:0',
      client: {},
      call: () => Promise.reject(new Error('Temporal must not be reached')),
      close: async () => undefined,
    } as unknown as Temporal;
    const actions = new OperatorActions({ config, temporal, audit: () => {} });
    const as = (name: string): Identity => ({ operator: config.operators.find((o) => o.name === name)!, via: 'api', credential: 'token' });
    await expect(actions.run(as('wendy'), { runbook: 'fullStack', target: 'web-unit' })).rejects.toMatchObject({
      status: 403,
      message: "'wendy' may act on targets web-unit only, not 'db-box'",
    });
    // ava passes the check and gets as far as Temporal.
    await expect(actions.run(as('ava'), { runbook: 'fullStack', target: 'web-unit' })).rejects.not.toMatchObject({ status: 403 });
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
