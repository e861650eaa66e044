// The metric, dependencies, command and hostDiagnostics steps (and waitUntil on a metric) in the
// interpreter on the real dev server, with the harness's scripted targets, Prometheus and commands:
// what each step leaves for later steps, how it fails, what a dry run does, and retries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { parseRunbook } from '../../config/runbookLoad.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import {
  incidentWorkflowId,
  interpreterWorkflowType,
  type RunbookInput,
  type RunbookResult,
  type RunbookRunInput,
  type TargetRef,
} from '../../workflows/messages.js';
import { failureTypes } from '../../activities/failures.js';
import { permanentFailure, runbookInput, startHarness, uniqueTarget, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('wf-probes');
});
afterAll(async () => {
  await h?.close();
});

type Interpreter = (input: RunbookRunInput) => Promise<RunbookResult>;

function definition(name: string, steps: string): RunbookDefinition {
  return parseRunbook(`name: ${name}\ndescription: a runbook under test\nappliesTo: [container, systemd]\nsteps:\n${steps}`, 'probes.yaml');
}

/** A run on `target`, with other planned targets (its dependencies) and what the plan resolved for each. */
async function run(
  def: RunbookDefinition,
  target: string,
  extra: { own?: Partial<TargetRef>; others?: TargetRef[]; input?: Partial<RunbookInput> } = {},
) {
  const input: RunbookRunInput = {
    ...runbookInput(h, target, {
      runbook: def.name,
      escalation: { policy: 'one', levels: [{ name: 'primary', afterMs: 0, channels: ['ops'] }] },
      ...extra.input,
    }),
    definition: def,
    targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target }, ...extra.own }, ...(extra.others ?? [])],
    startedBy: 'alertmanager',
  };
  const handle = await h.client.workflow.start<Interpreter>(interpreterWorkflowType, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId(def.name, target),
    args: [input],
  });
  return { handle, result: await handle.result() };
}

const stepsOf = (result: RunbookResult) => result.timeline.map((e) => `${e.event}: ${e.detail ?? ''}`);

describe('alerts', () => {
  it('leaves count, names and summary for conditions and templates, asking with the labels as written', async () => {
    const def = definition(
      'whatElse',
      `  - id: firing
    uses: alerts
    with: { labels: { team: genesis }, limit: 5 }
  - id: busy
    when: steps.firing.count > 1 && 'DiskFull' in steps.firing.names
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.firing.count }} firing: \${{ steps.firing.summary }}" }
  - id: quiet
    uses: end
    with: { outcome: false-alarm }
`,
    );
    const target = uniqueTarget('alerts');
    const { result, handle } = await run(def, target);
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toBe(
      '2 firing: DiskFull [critical] {service=db} since 2026-12-05T00:00:00Z\nHighLatency [warning] {service=api} since 2026-12-05T00:01:00Z',
    );
    expect(stepsOf(result)).toContain('alerts: 2 firing: DiskFull, HighLatency');
    const history = JSON.stringify((await handle.fetchHistory()).events);
    expect(history).toContain('firingAlerts');
    expect(h.calls.filter((c) => c.activity === 'firingAlerts').map((c) => c.arg)).toContainEqual({
      labels: { team: 'genesis' },
      silenced: false,
      limit: 5,
    });
  });
});

describe('metric', () => {
  const def = definition(
    'errorRate',
    `  - id: errors
    uses: metric
    with: { query: 'sum(rate(http_requests_total{service="{{target}}",code=~"5.."}[5m]))', op: "<", threshold: 0.05 }
  - id: fine
    when: steps.errors.holds
    uses: end
    with: { outcome: false-alarm, detail: "error rate \${{ steps.errors.value }} over \${{ steps.errors.series }} series" }
  - id: bad
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.errors.detail }}" }
`,
  );

  it('leaves value, holds, series and detail for later steps, the query sent with its target', async () => {
    const target = uniqueTarget('metric');
    h.onMetric((req) => ({ value: 0.01, holds: req.threshold > 0.01, series: 1, detail: `0.01 ${req.op} ${req.threshold} holds` }));
    const { result } = await run(def, target);
    expect(result.outcome, result.detail).toBe('false-alarm');
    expect(result.detail).toBe('error rate 0.01 over 1 series');
    const call = h.calls.find((c) => c.activity === 'queryMetric' && c.target === target)!;
    expect(call.arg).toEqual({
      query: 'sum(rate(http_requests_total{service="{{target}}",code=~"5.."}[5m]))',
      op: '<',
      threshold: 0.05,
      target,
    });
    expect(stepsOf(result)).toContain('metric: 0.01 < 0.05 holds');
  });

  it('answers null and not holding when nothing comes back, and fails the step when the query is refused', async () => {
    const target = uniqueTarget('metric');
    h.onMetric(() => ({ value: null, holds: false, series: 0, detail: 'no series: the query returned nothing (< 0.05 cannot hold)' }));
    const { result } = await run(def, target);
    expect(result.outcome).toBe('escalated');
    expect(result.detail).toBe('no series: the query returned nothing (< 0.05 cannot hold)');

    h.onMetric(() => {
      throw ApplicationFailure.create({
        message: 'metric query refused: Prometheus rejected the query: parse error',
        type: failureTypes.badInput,
        nonRetryable: true,
      });
    });
    const refused = await run(def, uniqueTarget('metric'));
    expect(refused.result.outcome).toBe('failed');
    expect(refused.result.detail).toBe(
      'step errors failed: queryMetric failed: metric query refused: Prometheus rejected the query: parse error',
    );
  });

  it('sends no target for a query without placeholders, so a maintenance-wide check needs none', async () => {
    const plain = definition('plain', `  - id: q\n    uses: metric\n    with: { query: "scalar(vector(1))", op: "==", threshold: 1 }\n`);
    const target = uniqueTarget('metric');
    h.onMetric(() => ({ value: 1, holds: true, series: 1, detail: '1 == 1 holds' }));
    const before = h.calls.length;
    const { result } = await run(plain, target);
    expect(result.outcome).toBe('completed');
    expect(h.calls.slice(before).find((c) => c.activity === 'queryMetric')!.arg).toMatchObject({ target: '' });
  });
});

describe('waitUntil on a metric', () => {
  const def = definition(
    'recovery',
    `  - id: back-under
    uses: waitUntil
    with: { check: metric, query: 'job:errors:ratio5m{service="{{target}}"}', op: "<", threshold: 0.05, every: 100ms, deadline: 10s }
  - id: recovered
    when: steps.back_under.met
    uses: end
    with: { outcome: recovered, detail: "error rate back under 5% after \${{ steps.back_under.polls }} checks: \${{ steps.back_under.detail }}" }
`,
  );

  it('polls until the comparison holds (check.holds by default) and records the value it ended on', async () => {
    h.onMetric((_req, calls) =>
      calls >= 3
        ? { value: 0.02, holds: true, series: 1, detail: '0.02 < 0.05 holds' }
        : { value: 0.3, holds: false, series: 1, detail: '0.3 < 0.05 does not hold' },
    );
    const { result } = await run(def, uniqueTarget('wait'));
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('error rate back under 5% after 3 checks: 0.02 < 0.05 holds');
  });

  it('keeps polling through a Prometheus that cannot answer, and reports not met at the deadline', async () => {
    const short = definition(
      'short',
      `  - id: back-under
    uses: waitUntil
    with: { check: metric, query: "up", op: ">", threshold: 0, until: "check.holds && check.series > 1", every: 500ms, deadline: 4s }
  - id: report
    uses: end
    with: { outcome: completed, detail: "met=\${{ steps.back_under.met }} polls=\${{ steps.back_under.polls }}" }
`,
    );
    // The first poll's three attempts all fail: that poll is "not holding", and polling goes on.
    h.onMetric((_req, calls) => {
      if (calls <= 3)
        throw ApplicationFailure.create({ message: 'Prometheus unreachable', type: failureTypes.transient, nonRetryable: false });
      return { value: 1, holds: true, series: 1, detail: '1 > 0 holds' };
    });
    const target = uniqueTarget('wait');
    const { result } = await run(short, target);
    expect(result.outcome).toBe('completed');
    expect(result.detail).toMatch(/^met=false polls=([2-9]|\d\d)$/);
    const entry = result.timeline.find((e) => e.event === 'deadline passed')!;
    expect(entry.detail).toMatch(/^back-under: "check\.holds && check\.series > 1" did not hold after \d+ checks: 1 > 0 holds$/);
  }, 30_000);

  it('is refused at load when check.healthy is read from a metric, or a metric parameter is missing', () => {
    expect(() =>
      definition(
        'x',
        `  - id: w\n    uses: waitUntil\n    with: { check: metric, query: up, op: ">", threshold: 0, until: check.healthy, deadline: 1m }\n`,
      ),
    ).toThrow(/with\.until: check: metric offers check\.holds, check\.value, check\.series, check\.detail, not check\.healthy/);
    expect(() => definition('x', `  - id: w\n    uses: waitUntil\n    with: { check: metric, query: up, deadline: 1m }\n`)).toThrow(
      /with\.op: check: metric needs op/,
    );
  });
});

describe('dependencies', () => {
  const def = definition(
    'deps',
    `  - id: deps
    uses: dependencies
  - id: report
    uses: end
    with: { outcome: completed, detail: "ok=\${{ steps.deps.ok }} failed=\${{ steps.deps.failed.join(',') }}: \${{ steps.deps.detail }}" }
`,
  );

  it('checks every dependency at once, each on its own queue, and names the ones that are down', async () => {
    const [target, db, cache] = [uniqueTarget('app'), uniqueTarget('db'), uniqueTarget('cache')];
    h.script(db, { healthy: () => true });
    h.script(cache, { healthy: () => false });
    const others: TargetRef[] = [
      { name: db, kind: 'postgres', queue: h.queue, labels: {} },
      { name: cache, kind: 'redis', queue: h.queue, labels: {} },
    ];
    const { result } = await run(def, target, { own: { dependsOn: [db, cache] }, others });
    expect(result.outcome).toBe('completed');
    expect(result.detail).toBe(`ok=false failed=${cache}: ${db} ok: http ok: 200 OK; ${cache} DOWN: http failed: connection refused`);
    expect(h.callsFor(target)).toEqual([]);
    expect(stepsOf(result)).toContain(
      `dependencies down: ${cache}: ${db} ok: http ok: 200 OK; ${cache} DOWN: http failed: connection refused`,
    );
  });

  it('counts a dependency whose check cannot run as down, with the reason, and is ok with no dependencies', async () => {
    const [target, gone] = [uniqueTarget('app'), uniqueTarget('gone')];
    h.script(gone, {
      healthy: () => {
        throw permanentFailure(`status check of container '${gone}' failed: no such container`);
      },
    });
    const { result } = await run(def, target, {
      own: { dependsOn: [gone, 'never-planned'] },
      others: [{ name: gone, kind: 'container', queue: h.queue, labels: {} }],
    });
    expect(result.detail).toBe(
      `ok=false failed=${gone},never-planned: ${gone} DOWN: verification could not run: verifyTarget failed: status check of container '${gone}' failed: no such container; never-planned DOWN: not planned for this run`,
    );
    const alone = await run(def, uniqueTarget('app'));
    expect(alone.result.detail).toMatch(/^ok=true failed=: '.*' has no dependsOn in the config: nothing to check$/);
  });
});

describe('command', () => {
  const def = definition(
    'cmd',
    `  - id: env
    uses: command
    with: { command: env }
  - id: flush
    uses: command
    with: { command: flush-cache, expectExit: [0, 2] }
  - id: report
    uses: end
    with: { outcome: completed, detail: "env ran=\${{ steps.env.ran }} exit=\${{ steps.env.exitCode }} [\${{ steps.env.output }}]; flush ran=\${{ steps.flush.ran }} exit=\${{ steps.flush.exitCode }}" }
`,
  );

  it('leaves the exit code and output, and accepts the exit codes expectExit lists', async () => {
    const target = uniqueTarget('cmd');
    h.script(target, { commands: { env: { readOnly: true, output: 'DATABASE_URL=[redacted]' }, 'flush-cache': { exitCode: 2 } } });
    const { result } = await run(def, target, { own: { readOnlyCommands: ['env'] } });
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.detail).toBe('env ran=true exit=0 [DATABASE_URL=[redacted]]; flush ran=true exit=2');
  });

  it('fails the step on an exit code it does not expect, quoting the last line of stderr', async () => {
    const target = uniqueTarget('cmd');
    h.script(target, { commands: { env: { readOnly: true, exitCode: 127, stderr: 'starting\nenv: not found' }, 'flush-cache': {} } });
    const { result } = await run(def, target);
    expect(result.outcome).toBe('failed');
    expect(result.detail).toBe(`step env failed: env: 'env' on '${target}' exited 127, expected 0: env: not found`);
  });

  it('in a dry run runs the readOnly command and only describes the other', async () => {
    const target = uniqueTarget('cmd');
    h.script(target, { commands: { env: { readOnly: true, output: 'X=1' }, 'flush-cache': { exitCode: 9 } } });
    const { result } = await run(def, target, { own: { readOnlyCommands: ['env'] }, input: { dryRun: true } });
    expect(result.outcome, result.detail).toBe('completed');
    expect(result.detail).toBe('env ran=true exit=0 [X=1]; flush ran=false exit=0');
    expect(h.callsFor(target, 'runTargetCommand').map((c) => [(c.arg as { command: string }).command, c.dryRun])).toEqual([
      ['env', true],
      ['flush-cache', true],
    ]);
    expect(stepsOf(result)).toContain("command (dry-run): dry run: would run 'flush-cache'");
  });

  it('tries a readOnly command again on a transient failure, and one that may change something once', async () => {
    const target = uniqueTarget('cmd');
    let tries = 0;
    const flaky = definition(
      'flaky',
      `  - id: a\n    uses: command\n    with: { command: read }\n    onFailure: continue\n  - id: b\n    uses: command\n    with: { command: write }\n    onFailure: continue\n`,
    );
    // Both fail with a retryable failure; only the readOnly one is asked again.
    h.script(target, {
      commands: new Proxy(
        {},
        {
          get: () => {
            tries += 1;
            throw ApplicationFailure.create({ message: 'docker daemon unreachable', type: failureTypes.transient, nonRetryable: false });
          },
        },
      ) as never,
    });
    const { result } = await run(flaky, target, { own: { readOnlyCommands: ['read'] } });
    expect(result.outcome).toBe('completed');
    const calls = h.callsFor(target, 'runTargetCommand').map((c) => (c.arg as { command: string }).command);
    expect(calls).toEqual(['read', 'read', 'read', 'write']);
    expect(tries).toBe(4);
  }, 30_000);

  it('runs for an approver only once the approval said yes', async () => {
    const target = uniqueTarget('cmd');
    h.script(target, { commands: { 'flush-cache': {} } });
    const gated = definition(
      'gated',
      `  - id: ask\n    when: "false"\n    uses: approval\n    with: { action: flush }\n  - id: flush\n    uses: command\n    with: { command: flush-cache, approvedBy: ask }\n`,
    );
    const { result } = await run(gated, target);
    expect(result.outcome).toBe('failed');
    expect(result.detail).toBe('step flush failed: needs the approval of step ask, which is skipped');
    expect(h.callsFor(target, 'runTargetCommand')).toEqual([]);
  });
});

describe('hostDiagnostics', () => {
  it('leaves the figures for conditions, and joins the diagnosis later pages carry', async () => {
    const target = uniqueTarget('host');
    const def = definition(
      'disk',
      `  - id: host
    uses: hostDiagnostics
    with: { sections: [disk, tcp], tcp: ["127.0.0.1:5432"] }
  - id: page
    when: steps.host.diskMaxPercent > 90
    uses: escalate
    with: { reason: "disk at \${{ steps.host.diskMaxPercent }}% on '\${{ target.name }}'" }
  - id: done
    uses: end
    with: { outcome: escalated, detail: "\${{ steps.host.sections.join(',') }} ok=\${{ steps.host.ok }} failed=\${{ steps.host.tcpFailed.join(',') }}" }
`,
    );
    h.script(target, {
      hostDiagnostics: (req) => ({
        target,
        sections: [
          { title: 'disk', ok: true, text: ' 97% /: 9.7 GiB used' },
          { title: 'tcp', ok: false, text: 'FAILED 127.0.0.1:5432: connection refused (ECONNREFUSED)' },
        ],
        summary: `ok: disk:  97% /: 9.7 GiB used\nFAILED: tcp: FAILED 127.0.0.1:5432: connection refused (ECONNREFUSED) [${req.sections?.join('+')}]`,
        figures: { diskMaxPercent: 97, memoryUsedPercent: -1, load1: -1, cpus: 0, tcpFailed: ['127.0.0.1:5432'] },
      }),
    });
    const handle = await h.client.workflow.start<Interpreter>(interpreterWorkflowType, {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId(def.name, target),
      args: [
        {
          ...runbookInput(h, target, {
            runbook: def.name,
            escalation: { policy: 'fast', levels: [{ name: 'primary', afterMs: 0, channels: ['ops'] }] },
          }),
          definition: def,
          targets: [{ name: target, kind: 'systemd', queue: h.queue, labels: {} }],
          startedBy: 'alertmanager',
        },
      ],
    });
    const result = await handle.result();
    expect(result.outcome, result.detail).toBe('escalated');
    expect(result.detail).toBe('disk,tcp ok=false failed=127.0.0.1:5432');
    expect(h.callsFor(target, 'hostDiagnostics')[0]!.arg).toEqual({ sections: ['disk', 'tcp'], tcp: ['127.0.0.1:5432'], top: 10 });
    const page = h.notifications.find((n) => n.incidentKey === handle.workflowId && n.event === 'trigger')!;
    expect(page.title).toContain(target);
    expect(page.text).toContain(`disk at 97% on '${target}'`);
    expect(page.text).toContain('ok: host disk:  97% /: 9.7 GiB used');
    expect(page.text).toContain('FAILED: host tcp: FAILED 127.0.0.1:5432');
  });
});
