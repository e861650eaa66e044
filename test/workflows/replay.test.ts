// Replays recorded histories of representative runs against the current workflow code, so a
// change that would break running workflows on deploy (nondeterminism) fails here first.
// Histories are recorded on the real server when missing; RECORD_HISTORIES=1 records them again
// (do that only for a deliberate, versioned change, and commit the new files).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { RestartClaim } from '../../activities/contract.js';
import { loadRunbookDir, loadRunbookFile, parseRunbook } from '../../config/runbookLoad.js';
import type { RunbookDefinition } from '../../config/runbookSchema.js';
import type { TargetKind } from '../../config/schema.js';
import { databaseConnection } from '../../workflows/databaseConnection.js';
import { guardrails } from '../../workflows/guardrails.js';
import { intake, intakeSignal } from '../../workflows/intake.js';
import { highErrorRate } from '../../workflows/highErrorRate.js';
import { maintenance } from '../../workflows/maintenance.js';
import {
  acknowledgeSignal,
  alertFiringSignal,
  alertResolvedSignal,
  approveSignal,
  incidentWorkflowId,
  interpreterWorkflowType,
  maintenanceWorkflowId,
  rejectSignal,
  statusQuery,
  type AlertEvent,
  type RunbookInput,
  type RunbookResult,
  type RunbookRunInput,
} from '../../workflows/messages.js';
import { resourcePressure } from '../../workflows/resourcePressure.js';
import { incidentSearchAttributes } from '../../triggers/plan.js';
import { serviceDown } from '../../workflows/serviceDown.js';
import { coveredByOneMarker } from '../../workflows/steps/patchesFirst.js';
import { bundlePath } from '../support/globalSetup.js';
import { noopSinks } from '../support/temporal.js';
import {
  authRefused,
  cancelWhileFirstReadsOut,
  gate,
  inMaintenanceWindow,
  maintenanceInput,
  permanentFailure,
  runbookInput,
  startHarness,
  uniqueTarget,
  waitForStatus,
  type Harness,
} from './harness.js';
import { until } from '../support/wait.js';
import { escalationThroughOutage, repeatEveryMs } from './missedRepeats.js';

const historiesDir = join(dirname(fileURLToPath(import.meta.url)), 'histories');
const rerecord = process.env.RECORD_HISTORIES === '1';

const oneLevel = { policy: 'p', levels: [{ name: 'primary', afterMs: 0, channels: ['ops'] }] };
const pending = (s: { pendingApproval?: unknown }) => s.pendingApproval !== undefined;

/** Started with the search attributes the webhook gives an incident (triggers/alerts/incidents.ts). */
function startIncident(h: Harness, wf: typeof serviceDown, input: RunbookInput) {
  return h.client.workflow.start(wf, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId(input.runbook, input.target),
    args: [input],
    typedSearchAttributes: incidentSearchAttributes(input),
  });
}

const shippedRunbooks = loadRunbookDir('runbooks');
/** An earlier serviceDown.yaml: a run recorded with it must replay whatever the shipped file says now. */
const serviceDownV0 = join(dirname(fileURLToPath(import.meta.url)), 'runbooks', 'serviceDown-v0.yaml');

/** The interpreter started as planRunbook would start it for an alert on `target`. */
function startInterpreter(
  h: Harness,
  definition: RunbookDefinition,
  target: string,
  overrides: Partial<RunbookInput> = {},
  kind: TargetKind = 'container',
) {
  const input: RunbookRunInput = {
    ...runbookInput(h, target, { runbook: definition.name, targetKind: kind, ...overrides }),
    definition,
    targets: [{ name: target, kind, queue: h.queue, labels: { service: target } }],
    startedBy: 'alertmanager',
  };
  return h.client.workflow.start<(i: RunbookRunInput) => Promise<RunbookResult>>(interpreterWorkflowType, {
    taskQueue: h.queue,
    workflowId: incidentWorkflowId(definition.name, target),
    args: [input],
    typedSearchAttributes: incidentSearchAttributes(input),
  });
}

/**
 * Starts a run and cancels it while Alertmanager is still taking the silence `isOurs` picks out;
 * Alertmanager answers `answerAfterMs` after the cancel. The run as it then ended.
 */
async function cancelWhileSilencing(
  h: Harness,
  start: () => Promise<WorkflowHandle>,
  isOurs: (silenceRequest: unknown) => boolean,
  answerAfterMs = 0,
): Promise<WorkflowHandle> {
  const slow = gate();
  h.holds.silence = slow.wait;
  try {
    const handle = await start();
    await until(
      'the silence to be asked for',
      10_000,
      async () => (h.calls.some((c) => c.activity === 'createSilence' && isOurs(c.arg)) ? true : undefined),
      50,
    );
    await handle.cancel();
    if (answerAfterMs > 0) await new Promise((r) => setTimeout(r, answerAfterMs));
    slow.open();
    await handle.result().catch(() => undefined);
    return handle;
  } finally {
    delete h.holds.silence;
    slow.open();
  }
}

/** A guard workflow of the scenario's own (its history limit given), and the activities that ask it. */
/** Incident i's claim of a restart of target, as the guard scenarios ask it. */
function incidentClaim(target: string, i: number): RestartClaim {
  const holder = `incident:serviceDown:${target.replace(/-\d+$/, '')}-${i}`;
  return {
    target,
    holder,
    requestId: `claim-${i}`,
    max: 3,
    windowMs: 60_000,
    enforce: true,
    dryRun: false,
    maxConcurrent: 4,
    leaseMs: 60_000,
  };
}

async function guardOfItsOwn(h: Harness, suffix: string, historyLimit: number) {
  const handle = await h.client.workflow.start(guardrails, {
    taskQueue: h.queue,
    workflowId: `${h.guardId}-${suffix}`,
    args: [{ historyLimit }],
  });
  const { createGuardrailActivities } = await import('../../activities/guardrails.js');
  return { handle, guard: createGuardrailActivities({ client: h.client, taskQueue: h.queue, workflowId: handle.workflowId }) };
}

/** Each scenario runs one workflow to its end and returns its handle. */
const scenarios: Record<string, (h: Harness) => Promise<WorkflowHandle>> = {
  // The webhook's intake (webhook.intake): waves of alerts signalled, handed on, then a quiet end.
  'intake-waves-forwarded-then-quiet': async (h) => {
    const workflowId = `intake:${h.queue}`;
    const wave = (n: number) => ({
      alerts: [{ status: 'firing', fingerprint: `fp-${n}`, labels: { alertname: 'ServiceDown', service: `svc-${n}` } }],
    });
    for (let n = 0; n < 3; n++) {
      await h.client.workflow.signalWithStart(intake, {
        taskQueue: h.queue,
        workflowId,
        args: [{ quietFor: '1s' }],
        signal: intakeSignal,
        signalArgs: [wave(n)],
      });
    }
    const handle = h.client.workflow.getHandle(workflowId);
    await handle.result();
    return handle;
  },
  'serviceDown-recovered-on-third-restart': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 3 });
    const handle = await startIncident(h, serviceDown, runbookInput(h, target));
    await handle.result();
    return handle;
  },
  // The first restart's claim is asked beside the first check, then withdrawn when it finds the target healthy.
  'serviceDown-false-alarm-claim-withdrawn': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => true });
    const handle = await startIncident(h, serviceDown, runbookInput(h, target));
    await handle.result();
    return handle;
  },
  'serviceDown-escalated-then-acknowledged': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await startIncident(h, serviceDown, runbookInput(h, target, { guardrails: { restartAttempts: 2 } as never }));
    await waitForStatus(handle, (s) => s.escalationLevel === 'secondary');
    await handle.signal(acknowledgeSignal, { operator: 'mallory', reason: 'not an operator' });
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
    await handle.result();
    return handle;
  },
  'serviceDown-folded-then-resolved': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const options = {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId('serviceDown', target),
      args: [runbookInput(h, target, { guardrails: { restartBackoffMs: 3_000 } as never })] as [RunbookInput],
      signal: alertFiringSignal,
      signalArgs: [{ fingerprint: 'f1', at: '2026-01-01T00:00:00Z' }] as [{ fingerprint: string; at: string }],
    };
    const handle = await h.client.workflow.signalWithStart(serviceDown, options);
    await waitForStatus(handle, (s) => s.restartAttempts === 1);
    await h.client.workflow.signalWithStart(serviceDown, options);
    await waitForStatus(handle, (s) => s.alertsFolded === 1);
    await handle.signal(alertResolvedSignal, { at: '2026-01-01T00:05:00Z' });
    await handle.result();
    return handle;
  },
  'serviceDown-anti-flap-refused': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const input = runbookInput(h, target, {
      escalation: oneLevel,
      guardrails: { restartAttempts: 3, restartsPerWindow: { max: 1, windowMs: 600_000 } } as never,
    });
    const handle = await startIncident(h, serviceDown, input);
    await handle.result();
    return handle;
  },
  'databaseConnection-approved-and-recovered': async (h) => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await startIncident(h, databaseConnection, runbookInput(h, target, { runbook: 'databaseConnection' }));
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'alice', reason: 'go' });
    await handle.result();
    return handle;
  },
  'databaseConnection-approval-timed-out': async (h) => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const input = runbookInput(h, target, {
      runbook: 'databaseConnection',
      escalation: oneLevel,
      guardrails: { approvalTimeoutMs: 1_000 } as never,
    });
    const handle = await startIncident(h, databaseConnection, input);
    await handle.result();
    return handle;
  },
  'highErrorRate-rejected': async (h) => {
    const target = uniqueTarget('api');
    h.script(target, { healthy: () => true });
    const handle = await startIncident(h, highErrorRate, runbookInput(h, target, { runbook: 'highErrorRate', hasAction: true }));
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'mallory', reason: '' });
    await handle.signal(rejectSignal, { operator: 'bob', reason: 'deploy rolling back' });
    await handle.result();
    return handle;
  },
  // After the 'resolve-page-on-reject' patch: the rejection resolves the approval page.
  'databaseConnection-rejected-page-resolved': async (h) => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: () => false });
    const handle = await startIncident(h, databaseConnection, runbookInput(h, target, { runbook: 'databaseConnection' }));
    await waitForStatus(handle, pending);
    await handle.signal(rejectSignal, { operator: 'bob', reason: 'failover in progress' });
    await handle.result();
    return handle;
  },
  'resourcePressure-approved-action': async (h) => {
    const target = uniqueTarget('cache');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await startIncident(h, resourcePressure, runbookInput(h, target, { runbook: 'resourcePressure' }));
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'alice', reason: '' });
    await handle.result();
    return handle;
  },
  'maintenance-step-failed': async (h) => {
    const target = uniqueTarget('pg');
    h.script(target, {
      healthy: () => true,
      maintain: () => {
        throw permanentFailure(`maintenance of postgres '${target}' failed: relation "orders" does not exist`);
      },
    });
    const input = maintenanceInput(h, [target]);
    const handle = await h.client.workflow.start(maintenance, {
      taskQueue: h.queue,
      workflowId: maintenanceWorkflowId(input.schedule),
      args: [input],
    });
    await handle.result();
    return handle;
  },
  'maintenance-cancelled': async (h) => {
    const target = uniqueTarget('pg');
    const inBackup = gate();
    const finish = gate();
    h.script(target, {
      healthy: () => true,
      backup: async () => {
        inBackup.open();
        await finish.wait;
      },
    });
    const input = maintenanceInput(h, [target]);
    const handle = await h.client.workflow.start(maintenance, {
      taskQueue: h.queue,
      workflowId: maintenanceWorkflowId(input.schedule),
      args: [input],
    });
    await inBackup.wait;
    await handle.cancel();
    await handle.result().catch(() => undefined);
    finish.open();
    return handle;
  },
  // Recorded once a cancelled silence check stopped the run ('cancelled-suppression-check-stops'):
  // cancelled while its first reads are out, the claim asked beside them is withdrawn.
  'serviceDown-cancelled-during-first-reads': async (h) => {
    const target = uniqueTarget('svc');
    return (await cancelWhileFirstReadsOut(h, target, () => startIncident(h, serviceDown, runbookInput(h, target)))).handle;
  },
  'runbook-serviceDown-cancelled-during-first-reads': async (h) => {
    const target = uniqueTarget('svc');
    return (await cancelWhileFirstReadsOut(h, target, () => startInterpreter(h, shippedRunbooks.serviceDown!, target))).handle;
  },
  // The guard's claim answering after the other first reads, as a busy guard does: its result
  // lands in a later workflow task than theirs. (A storm once showed such a history failing replay.)
  'runbook-serviceDown-slow-claim': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 1, claimDelayMs: 300 });
    const handle = await startInterpreter(h, shippedRunbooks.serviceDown!, target);
    await handle.result();
    return handle;
  },
  'serviceDown-slow-claim': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 1, claimDelayMs: 300 });
    const handle = await startIncident(h, serviceDown, runbookInput(h, target));
    await handle.result();
    return handle;
  },
  'runbook-serviceDown-recovered-on-third-restart': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 3 });
    const handle = await startInterpreter(h, shippedRunbooks.serviceDown!, target);
    await handle.result();
    return handle;
  },
  // Recorded once a run decided in its first task to ask again a local read the worker dropped
  // ('dropped-local-reads-asked-again', steps/activities.ts).
  'runbook-serviceDown-recovered-dropped-reads-patch': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 2 });
    const handle = await startInterpreter(h, shippedRunbooks.serviceDown!, target);
    await handle.result();
    return handle;
  },
  'runbook-databaseConnection-approved': async (h) => {
    const target = uniqueTarget('db');
    h.script(target, { healthy: (s) => s.restarts >= 1 });
    const handle = await startInterpreter(h, shippedRunbooks.databaseConnection!, target, { runbook: 'databaseConnection' }, 'postgres');
    await waitForStatus(handle, pending);
    await handle.signal(approveSignal, { operator: 'mallory', reason: 'not an operator' });
    await handle.signal(approveSignal, { operator: 'alice', reason: 'pool exhausted' });
    await handle.result();
    return handle;
  },
  // Recorded once an http step's HTTP status became its `code` output ('http-output-code' patched):
  // `steps.probe.status` is the step's own 'ok'.
  'runbook-http-step-code-output': async (h) => {
    const target = uniqueTarget('svc');
    const definition = parseRunbook(
      [
        'name: httpProbe',
        'description: an http probe, then an end that reads its outputs',
        'kind: incident',
        'appliesTo: [container]',
        'steps:',
        '  - id: probe',
        '    uses: http',
        '    with: { method: GET, url: "http://127.0.0.1:9/health" }',
        '  - id: done',
        '    when: "steps.probe.status == \'ok\' && steps.probe.code == 200"',
        '    uses: end',
        '    with: { outcome: recovered, detail: "probe answered ${{ steps.probe.code }}" }',
      ].join('\n'),
      'httpProbe.yaml',
    );
    const handle = await startInterpreter(h, definition, target, { runbook: 'httpProbe' });
    const result = (await handle.result()) as RunbookResult;
    if (result.outcome !== 'recovered') throw new Error(`httpProbe ended ${result.outcome}: ${result.detail}`);
    return handle;
  },
  // Recorded with an earlier definition of serviceDown (test/workflows/runbooks/serviceDown-v0.yaml).
  'runbook-serviceDown-earlier-definition': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: (s) => s.restarts >= 2 });
    const handle = await startInterpreter(h, loadRunbookFile(serviceDownV0), target);
    await handle.result();
    return handle;
  },
  // Recorded before escalation followed an acknowledged incident until its alert cleared: the run,
  // which holds a firing alert, ends at the acknowledgement ('escalation-follows-ack' not patched).
  'runbook-serviceDown-acknowledged-before-follow': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const input: RunbookRunInput = {
      ...runbookInput(h, target, { guardrails: { restartAttempts: 1 } as never }),
      definition: shippedRunbooks.serviceDown!,
      targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target } }],
      startedBy: 'alertmanager',
    };
    const handle = await h.client.workflow.signalWithStart<(i: RunbookRunInput) => Promise<RunbookResult>, [AlertEvent]>(
      interpreterWorkflowType,
      {
        taskQueue: h.queue,
        workflowId: incidentWorkflowId('serviceDown', target),
        args: [input],
        signal: alertFiringSignal,
        signalArgs: [{ fingerprint: 'fp-ack', at: '2026-01-01T00:00:00Z' }],
      },
    );
    await waitForStatus(handle, (s) => s.escalationLevel === 'secondary');
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
    await handle.result();
    return handle;
  },
  // After 'escalation-follows-alerts': a repeated page, an acknowledgement followed until it lapsed,
  // a re-escalation to the last level again, a second acknowledgement, and the alert clearing.
  'runbook-serviceDown-repeated-reescalated-resolved': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const escalation = {
      policy: 'matrix',
      levels: [
        { name: 'primary', afterMs: 0, channels: ['ops'], repeatMs: 1_000, repeatTimes: 1 },
        // Paged again by the re-escalation, it then has 10 s to be acknowledged before the run ends.
        { name: 'secondary', afterMs: 5_000, channels: ['lead'] },
      ],
      reescalateAfterAckMs: 1_000,
    };
    const input: RunbookRunInput = {
      ...runbookInput(h, target, { escalation, guardrails: { restartAttempts: 1 } as never }),
      definition: shippedRunbooks.serviceDown!,
      targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target } }],
      startedBy: 'alertmanager',
    };
    const handle = await h.client.workflow.signalWithStart<(i: RunbookRunInput) => Promise<RunbookResult>, [AlertEvent]>(
      interpreterWorkflowType,
      {
        taskQueue: h.queue,
        workflowId: incidentWorkflowId('serviceDown', target),
        args: [input],
        signal: alertFiringSignal,
        signalArgs: [{ fingerprint: 'fp-matrix', at: '2026-01-01T00:00:00Z' }],
      },
    );
    await waitForStatus(handle, (s) => s.escalationLevel === 'secondary');
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'on it' });
    await waitForStatus(handle, (s) => s.timeline.some((e) => e.event === 'paged secondary (re-escalation 1)'));
    await handle.signal(acknowledgeSignal, { operator: 'bob', reason: 'taking over' });
    await waitForStatus(handle, (s) => s.timeline.filter((e) => e.event === 'notified acknowledge').length === 2);
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-matrix', at: '2026-01-01T00:05:00Z' });
    const result = await handle.result();
    expect(result.outcome).toBe('resolved-externally');
    return handle;
  },
  // Eagerly started by the webhook: the opening alert in the input, not a signal; then a repeat and its resolution.
  'runbook-serviceDown-opening-alert-in-input-resolved': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const handle = await startInterpreter(h, shippedRunbooks.serviceDown!, target, {
      openingAlert: { fingerprint: 'fp-eager', at: '2026-01-01T00:00:00Z' },
      guardrails: { restartAttempts: 1 } as never,
    });
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(alertFiringSignal, { fingerprint: 'fp-eager', at: '2026-01-01T00:00:00Z' });
    await waitForStatus(handle, (s) => s.alertsFolded === 1);
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-eager', at: '2026-01-01T00:05:00Z' });
    expect((await handle.result()).outcome).toBe('resolved-externally');
    return handle;
  },
  // After 'restart-slot-keyed-by-step-and-target': two restart steps side by side, each claiming
  // its own slot (its requests keyed by its step and target).
  'runbook-parallel-restarts-keyed-by-step': async (h) => {
    const [a, b] = [uniqueTarget('svc-a'), uniqueTarget('svc-b')];
    for (const t of [a, b]) h.script(t, { healthy: (s) => s.restarts >= 1 });
    const definition = parseRunbook(
      [
        'name: bothRestarted',
        'description: two targets restarted side by side',
        'kind: incident',
        'appliesTo: [container]',
        'steps:',
        '  - id: both',
        '    parallel:',
        `      - { id: restart-a, uses: restart, with: { target: ${a} } }`,
        `      - { id: restart-b, uses: restart, with: { target: ${b} } }`,
      ].join('\n'),
      'bothRestarted.yaml',
    );
    const input: RunbookRunInput = {
      ...runbookInput(h, a, { runbook: 'bothRestarted', guardrails: { restartAttempts: 1 } as never }),
      definition,
      targets: [a, b].map((name) => ({ name, kind: 'container' as const, queue: h.queue, labels: { service: name } })),
      startedBy: 'alertmanager',
    };
    const handle = await h.client.workflow.start<(i: RunbookRunInput) => Promise<RunbookResult>>(interpreterWorkflowType, {
      taskQueue: h.queue,
      workflowId: incidentWorkflowId('bothRestarted', a),
      args: [input],
      typedSearchAttributes: incidentSearchAttributes(input),
    });
    const result = await handle.result();
    if (result.outcome !== 'completed') throw new Error(`bothRestarted ended ${result.outcome}: ${result.detail}`);
    return handle;
  },
  // After 'new-alert-reopens-incident': a new alert fires while the run sleeps, after the one it
  // held resolved; the run pages for it, and ends once it resolves too.
  'runbook-new-alert-reopens-incident': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, { healthy: () => false });
    const definition = parseRunbook(
      [
        'name: reopened',
        'description: a wait, then a page',
        'kind: incident',
        'appliesTo: [container]',
        'steps:',
        '  - { id: hold, uses: sleep, with: { duration: 3s } }',
        '  - { id: escalate, uses: escalate, with: { reason: "an alert fires" } }',
      ].join('\n'),
      'reopened.yaml',
    );
    // Paged at once, then waiting for a level a minute away: the alert's resolution ends the wait.
    const pagedThenWaiting = { policy: 'p', levels: [oneLevel.levels[0]!, { name: 'secondary', afterMs: 60_000, channels: ['lead'] }] };
    const fire = (fingerprint: string) =>
      h.client.workflow.signalWithStart<(i: RunbookRunInput) => Promise<RunbookResult>, [AlertEvent]>(interpreterWorkflowType, {
        taskQueue: h.queue,
        workflowId: incidentWorkflowId('reopened', target),
        args: [
          {
            ...runbookInput(h, target, { runbook: 'reopened', escalation: pagedThenWaiting }),
            definition,
            targets: [{ name: target, kind: 'container', queue: h.queue, labels: { service: target } }],
            startedBy: 'alertmanager',
          },
        ],
        signal: alertFiringSignal,
        signalArgs: [{ fingerprint, at: '2026-01-01T00:00:00Z' }],
      });
    const handle = await fire('fp-a');
    await waitForStatus(handle, (s) => s.step === 'hold');
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-a', at: '2026-01-01T00:05:00Z' });
    await waitForStatus(handle, (s) => s.timeline.some((e) => /every alert of this incident resolved/.test(e.detail ?? '')));
    await fire('fp-b');
    const reopened = await waitForStatus(handle, (s) => s.timeline.some((e) => /open again/.test(e.detail ?? '')));
    if (reopened.step !== 'hold') throw new Error(`fp-b came after the sleep (${reopened.step}): record again`);
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(alertResolvedSignal, { fingerprint: 'fp-b', at: '2026-01-01T00:10:00Z' });
    expect((await handle.result()).outcome).toBe('resolved-externally');
    return handle;
  },
  // After 'all-patches-2026-12-05': the shipped maintenance runbook, cancelled while Alertmanager is
  // still creating its silence: the creation is waited out, then the silence expired.
  'runbook-maintenance-cancelled-while-silencing': async (h) => {
    const target = uniqueTarget('pg');
    h.script(target, { healthy: () => true });
    const schedule = uniqueTarget('weekly');
    const input: RunbookRunInput = {
      ...runbookInput(h, schedule, {
        runbook: 'maintenance',
        targetKind: 'postgres',
        alert: { name: 'maintenance', severity: 'info', labels: {} },
        escalation: { policy: 'default', levels: [{ name: 'maintenance', afterMs: 0, channels: ['ops'] }] },
      }),
      definition: shippedRunbooks.maintenance!,
      targets: [{ name: target, kind: 'postgres', queue: h.queue, labels: { service: target } }],
      maintenance: {
        schedule,
        targets: [target],
        windowMs: 60_000,
        silence: [{ name: 'service', value: target, isRegex: false, isEqual: true }],
        channels: ['ops'],
      },
      startedBy: 'schedule',
    };
    return cancelWhileSilencing(
      h,
      () =>
        h.client.workflow.start<(i: RunbookRunInput) => Promise<RunbookResult>>(interpreterWorkflowType, {
          taskQueue: h.queue,
          workflowId: maintenanceWorkflowId(schedule),
          args: [input],
        }),
      (arg) => (arg as { comment: string }).comment.includes(maintenanceWorkflowId(schedule)),
    );
  },
  // After 'all-patches-2026-12-05': a target the engine cannot check (its credentials refused) is
  // not restarted; the run diagnoses and pages its one level.
  'runbook-serviceDown-uncheckable-not-restarted': async (h) => {
    const target = uniqueTarget('svc');
    h.script(target, {
      healthy: () => {
        throw authRefused(`health check of container '${target}' failed: server answered 401 Unauthorized`);
      },
    });
    const handle = await startInterpreter(h, shippedRunbooks.serviceDown!, target, { escalation: oneLevel });
    const result = await handle.result();
    if (!result.detail.startsWith('not restarted')) throw new Error(`the run restarted: ${result.detail}`);
    return handle;
  },
  // After 'all-patches-2026-12-05-night': a silence made whole though the run was cancelled while
  // Alertmanager took it, then expired by the runbook's finally.
  'runbook-silence-made-whole-through-cancel': async (h) => {
    const target = uniqueTarget('mute');
    const def = parseRunbook(
      [
        'name: silenceCut',
        'description: silences, then waits for an approval; finally expires the silence',
        'appliesTo: [container]',
        'steps:',
        '  - { id: mute, uses: silence, with: { duration: 1h } }',
        '  - { id: ask, uses: approval, with: { action: restart it, timeout: 1h } }',
        '  - { id: done, uses: end, with: { outcome: completed, detail: asked } }',
        'finally:',
        '  - id: unmute',
        '    uses: expireSilence',
        '    when: has(steps.mute.silenceId)',
        '    with: { silenceId: "${{ steps.mute.silenceId }}" }',
        '',
      ].join('\n'),
      'silenceCut.yaml',
    );
    return cancelWhileSilencing(
      h,
      () => startInterpreter(h, def, target),
      (arg) => JSON.stringify(arg).includes(target),
      300,
    );
  },
  // After 'all-patches-2026-12-05-day': acknowledged while its approval waited, nobody approved:
  // the escalation pages the first level once with why, and escalates no further.
  'runbook-escalation-after-early-ack': async (h) => {
    const target = uniqueTarget('early');
    const def = parseRunbook(
      [
        'name: earlyAck',
        'description: asks, and escalates when nobody approves',
        'appliesTo: [container]',
        'steps:',
        '  - { id: ask, uses: approval, with: { action: restart it, timeout: 2s } }',
        '  - { id: escalate, when: "steps.ask.decision != \'approved\'", uses: escalate, with: { reason: nobody approved } }',
        '',
      ].join('\n'),
      'earlyAck.yaml',
    );
    const handle = await startInterpreter(h, def, target, { escalation: oneLevel });
    await waitForStatus(handle, pending);
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'looking' });
    await handle.result();
    const status = await handle.query(statusQuery);
    if (!status.timeline.some((e) => e.event === 'paged primary (acknowledged earlier)')) throw new Error('the first level was not told');
    return handle;
  },
  // A plan that gives the last level time to answer (lastAnswerMs): a single level paged at once
  // waits for the acknowledgement on a timer, where runs planned before gave up as they paged.
  'runbook-escalation-one-level-waits-for-ack': async (h) => {
    const target = uniqueTarget('one');
    const def = parseRunbook(
      [
        'name: oneLevel',
        'description: pages one level and waits for it',
        'appliesTo: [container]',
        'steps:',
        '  - { id: escalate, uses: escalate, with: { reason: needs a human } }',
        '',
      ].join('\n'),
      'oneLevel.yaml',
    );
    const handle = await startInterpreter(h, def, target, { escalation: { ...oneLevel, lastAnswerMs: 60_000 } });
    await waitForStatus(handle, (s) => s.escalationLevel === 'primary');
    await handle.signal(acknowledgeSignal, { operator: 'alice', reason: 'mine' });
    await handle.result();
    const status = await handle.query(statusQuery);
    if (!status.timeline.some((e) => e.event === 'notified acknowledge')) throw new Error('the acknowledgement was not passed on');
    return handle;
  },
  // After 'all-patches-2026-12-05-day': a silence Alertmanager made after its step timed out is
  // expired at once; the step fails and its id is not handed on.
  'runbook-silence-step-timed-out-expired-at-once': async (h) => {
    const target = uniqueTarget('mute');
    const def = parseRunbook(
      [
        'name: silenceSlow',
        'description: silences within half a second, carries on if it cannot',
        'appliesTo: [container]',
        'steps:',
        '  - { id: mute, uses: silence, timeout: 500ms, onFailure: continue, with: { duration: 1h } }',
        '  - { id: done, uses: end, with: { outcome: completed, detail: "mute ${{ steps.mute.status }}" } }',
        '',
      ].join('\n'),
      'silenceSlow.yaml',
    );
    const slow = gate();
    h.holds.silence = slow.wait;
    try {
      const handle = await startInterpreter(h, def, target);
      await until(
        'the silence to be asked for',
        10_000,
        async () => (h.calls.some((c) => c.activity === 'createSilence' && JSON.stringify(c.arg).includes(target)) ? true : undefined),
        50,
      );
      await new Promise((r) => setTimeout(r, 1_000));
      slow.open();
      const result = (await handle.result()) as { outcome: string; detail: string };
      if (result.detail !== 'mute failed') throw new Error(`the step did not fail: ${result.detail}`);
      if (!h.calls.some((c) => c.activity === 'expireSilence')) throw new Error('the silence was not expired');
      return handle;
    } finally {
      delete h.holds.silence;
      slow.open();
    }
  },
  // After 'all-patches-2026-12-05-late': repeats that fell due while no worker ran are sent as one
  // page when a worker runs the incident again.
  'runbook-serviceDown-missed-repeats-caught-up': async (h) => {
    const { handle, result } = await escalationThroughOutage(h, 4 * repeatEveryMs);
    if (!result.timeline.some((e) => e.event === 'repeats caught up')) throw new Error('no repeat was caught up');
    return handle;
  },
  // After 'all-patches-2026-12-05-afternoon': the claim asked ahead goes first, and the target's
  // maintenance window, open here, is read from its answer instead of a read of its own.
  'runbook-serviceDown-in-window-read-with-claim': async (h) => {
    const target = uniqueTarget('svc');
    return inMaintenanceWindow(h, target, async () => {
      const handle = await startInterpreter(h, shippedRunbooks.serviceDown!, target);
      const result = (await handle.result()) as { outcome: string };
      if (result.outcome !== 'suppressed') throw new Error(`not suppressed by the window: ${result.outcome}`);
      return handle;
    });
  },
  'guardrails-continued-as-new': async (h) => {
    const { handle, guard } = await guardOfItsOwn(h, 'replay', 20);
    const lease = await guard.acquireSlot({ requestId: 'l1', holder: 'h', target: 'api', action: 'restart', max: 1, leaseMs: 60_000 });
    await guard.openWindow({ holder: 'm', schedule: 'weekly', targets: ['db'], untilMs: Date.now() + 60_000 });
    for (let i = 0; i < 6; i++)
      await guard.reserveRestart({
        target: 'api',
        holder: 'h',
        requestId: `r${i}`,
        max: 3,
        windowMs: 60_000,
        enforce: true,
        dryRun: false,
      });
    await guard.releaseSlot(lease.leaseId!);
    await guard.closeWindow('m');
    // The first run, which ended in continue-as-new, is the interesting history.
    return h.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
  },
  'guardrails-batched-claims': async (h) => {
    const { handle, guard } = await guardOfItsOwn(h, 'batched', 30);
    // Claims from many incidents at once: they go to the guard as a few guardBatch updates.
    const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => guard.claimRestart(incidentClaim(`api-${i % 3}`, i))));
    const held = claims.filter((c) => c.acquired).map((c) => c.leaseId!);
    await Promise.all([guard.withdrawClaim(held[0]!), ...held.slice(1).map((id) => guard.releaseSlot(id))]);
    return h.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
  },
  // Claims that ask the windows of their targets, a window read beside them answered from it.
  'guardrails-claims-with-windows': async (h) => {
    const { handle, guard } = await guardOfItsOwn(h, 'windows', 30);
    await guard.openWindow({ holder: 'm', schedule: 'weekly', targets: ['db-0'], untilMs: Date.now() + 60_000 });
    const claims = Array.from({ length: 4 }, (_, i) => guard.claimRestart(incidentClaim(`db-${i % 2}`, i)));
    const read = await guard.maintenanceWindowFor('db-0');
    if (!read.suppressed) throw new Error('the window was not seen beside the claim');
    const held = (await Promise.all(claims)).filter((c) => c.acquired).map((c) => c.leaseId!);
    await Promise.all(held.map((id) => guard.releaseSlot(id)));
    await guard.closeWindow('m');
    return h.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
  },
};

/**
 * The same runs, recorded once a new run marked every patch at once ('all-patches-2026-12',
 * steps/patchesFirst.ts): one patch marker in place of each patch's own. The histories above keep
 * the runs that asked each patch on its own.
 */
const oneMarker = (name: string) => `${name}-one-patch-marker`;
const recordedWithOneMarker = [
  'serviceDown-recovered-on-third-restart',
  'serviceDown-false-alarm-claim-withdrawn',
  'serviceDown-slow-claim',
  'runbook-serviceDown-recovered-on-third-restart',
  'runbook-serviceDown-slow-claim',
  'runbook-serviceDown-cancelled-during-first-reads',
  'runbook-serviceDown-repeated-reescalated-resolved',
  'runbook-http-step-code-output',
];
for (const name of recordedWithOneMarker) scenarios[oneMarker(name)] = scenarios[name]!;
// After 'all-patches-2026-12-05-night': the same run, whose claim asked ahead is now withdrawn as
// the run goes past the restart step, before it pages.
scenarios['runbook-serviceDown-uncheckable-claim-withdrawn-at-once'] = scenarios['runbook-serviceDown-uncheckable-not-restarted']!;
// After 'all-patches-2026-12-05-afternoon': the same recovery, its claim asked first and the window
// read from the claim's answer.
scenarios['runbook-serviceDown-window-read-with-claim'] = scenarios['runbook-serviceDown-recovered-dropped-reads-patch']!;
// After 'all-patches-2026-12-06': the same runs, their first reads asked as one local activity.
scenarios['runbook-serviceDown-reads-together'] = scenarios['runbook-serviceDown-recovered-dropped-reads-patch']!;
scenarios['runbook-serviceDown-reads-together-cancelled'] = scenarios['runbook-serviceDown-cancelled-during-first-reads']!;
scenarios['serviceDown-reads-together'] = scenarios['serviceDown-recovered-on-third-restart']!;
// After 'all-patches-2026-12-07': guard requests asked with `once`, and a settled id never asked
// again (a restart step's retry asks with `#2`).
scenarios['runbook-serviceDown-settles-once'] = scenarios['runbook-serviceDown-recovered-dropped-reads-patch']!;
scenarios['serviceDown-settles-once'] = scenarios['serviceDown-recovered-on-third-restart']!;
scenarios['runbook-restart-retried-settles-once'] = async (h) => {
  const target = uniqueTarget('svc');
  h.script(target, { healthy: () => false });
  const definition = parseRunbook(
    [
      'name: restartRetried',
      'description: a restart step cut off by its timeout while it verifies, then retried',
      'kind: incident',
      'appliesTo: [container]',
      'steps:',
      '  - { id: restart, uses: restart, timeout: 1s, retry: { attempts: 2, backoff: 100ms } }',
    ].join('\n'),
    'restartRetried.yaml',
  );
  const handle = await startInterpreter(h, definition, target, { guardrails: { restartAttempts: 1, verifyDeadlineMs: 30_000 } as never });
  const result = (await handle.result()) as { outcome: string };
  if (result.outcome !== 'failed') throw new Error(`the retried restart step did not fail: ${result.outcome}`);
  if (!h.claims.some((c) => c.holder === handle.workflowId && c.requestId.endsWith('#2'))) throw new Error('no second pass asked with #2');
  return handle;
};
// The guard refusing settled `once` ids asked again, and carrying them across continue-as-new.
scenarios['guardrails-late-duplicates-refused'] = async (h) => {
  const { handle, guard } = await guardOfItsOwn(h, 'settled', 20);
  const once = (i: number): RestartClaim => ({ ...incidentClaim(`api-${i}`, i), once: true });
  const held = (await Promise.all([0, 1, 2].map((i) => guard.claimRestart(once(i))))).map((c) => c.leaseId!);
  await guard.releaseSlot(held[0]!);
  await guard.withdrawClaim(held[1]!);
  for (const i of [0, 1]) {
    if ((await guard.claimRestart(once(i))).acquired) throw new Error(`the settled claim-${i} was granted again`);
  }
  await guard.releaseSlot(held[2]!);
  for (let i = 3; i < 12; i++) await guard.releaseSlot((await guard.claimRestart(once(i))).leaseId!);
  if ((await guard.claimRestart(once(0))).acquired) throw new Error('claim-0 was granted again after continue-as-new');
  return h.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
};

const file = (name: string) => join(historiesDir, `${name}.json`);

/** Replays a history against the current bundle: rejects, as a worker would fail its task, on nondeterminism. */
function replay(history: Parameters<typeof Worker.runReplayHistory>[1], name: string): Promise<void> {
  return Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath }, replayName: name, sinks: noopSinks }, history, name);
}

// Stored as protobufjs' object JSON (enum names, base64 bytes, string longs) rather than with
// @temporalio/common's historyToJSON: that helper fails in this install ("type must be a Type")
// because @temporalio/common and @temporalio/proto each carry their own copy of protobufjs.
interface StoredEvent {
  eventId: string;
  eventType: string;
  [attributes: string]: unknown;
}

/**
 * The history as a worker under load can leave it: its first workflow task completed once the
 * first reads (health check, silence check, window read) had answered but before the workflow had
 * seen their answers, so everything the workflow did next (a patch marker, the claim's marker, the
 * restart) is in a second task. Made by moving the task boundary of a recorded history; the storm
 * in CI that showed it recorded exactly this shape.
 */
function withFirstTaskEndingAfterReads(json: { events: StoredEvent[] }): { events: StoredEvent[] } {
  const events = json.events;
  const reads = new Set(['verifyTarget', 'checkSuppression', 'maintenanceWindowFor', 'readsTogether']);
  const laType = (e: StoredEvent): string | undefined => {
    const m = e.markerRecordedEventAttributes as
      { markerName?: string; details?: Record<string, { payloads: Array<{ data: string }> }> } | undefined;
    if (m?.markerName !== 'core_local_activity') return undefined;
    return (JSON.parse(Buffer.from(m.details!.data!.payloads[0]!.data, 'base64').toString('utf8')) as { activity_type: string })
      .activity_type;
  };
  const firstCompleted = events.findIndex((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED');
  const secondScheduled = events.findIndex((e, i) => i > firstCompleted && e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED');
  let lastRead = -1;
  for (let i = firstCompleted + 1; i < secondScheduled; i++) if (reads.has(laType(events[i]!) ?? '')) lastRead = i;
  expect(lastRead, 'the first task holds the reads').toBeGreaterThan(firstCompleted);
  expect(lastRead, 'something follows the reads in the first task').toBeLessThan(secondScheduled - 1);
  const at = Number(events[lastRead]!.eventId);
  const renumber = (id: number) => (id > at ? id + 3 : id);
  const completedId = String(at + 3);
  const moved = (i: number) => i > lastRead && i < secondScheduled;
  const out = events.map((e, i) => {
    const copy = JSON.parse(JSON.stringify(e)) as StoredEvent;
    copy.eventId = String(renumber(Number(e.eventId)));
    for (const [key, value] of Object.entries(copy)) {
      if (!key.endsWith('Attributes') || typeof value !== 'object' || value === null) continue;
      for (const [field, ref] of Object.entries(value as Record<string, unknown>)) {
        if (!field.endsWith('EventId') || typeof ref !== 'string') continue;
        (value as Record<string, unknown>)[field] =
          field === 'workflowTaskCompletedEventId' && moved(i) ? completedId : String(renumber(Number(ref)));
      }
    }
    return copy;
  });
  const first = events[firstCompleted - 2]!;
  const task = (id: number, type: string, attributes: Record<string, unknown>): StoredEvent => ({
    eventId: String(id),
    eventTime: events[lastRead]!.eventTime,
    eventType: `EVENT_TYPE_WORKFLOW_TASK_${type}`,
    [`workflowTask${type[0]}${type.slice(1).toLowerCase()}EventAttributes`]: attributes,
  });
  out.splice(
    lastRead + 1,
    0,
    task(at + 1, 'SCHEDULED', first.workflowTaskScheduledEventAttributes as Record<string, unknown>),
    task(at + 2, 'STARTED', { scheduledEventId: String(at + 1), identity: 'replay-test', requestId: 'split' }),
    task(at + 3, 'COMPLETED', { scheduledEventId: String(at + 1), startedEventId: String(at + 2), identity: 'replay-test' }),
  );
  return { ...json, events: out };
}

const History = proto.temporal.api.history.v1.History;
type StoredHistory = ReturnType<typeof History.fromObject>;

function historyToText(history: unknown): string {
  const message = History.fromObject(history as Record<string, unknown>);
  return `${JSON.stringify(History.toObject(message, { longs: String, enums: String, bytes: String }), null, 1)}\n`;
}

function historyFromText(text: string): StoredHistory {
  return History.fromObject(JSON.parse(text));
}

describe('workflow histories replay against the current code', () => {
  let h: Harness | undefined;

  beforeAll(async () => {
    try {
      // Replay workers log every start and stop at INFO otherwise.
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      // Already installed in this process.
    }
    const missing = Object.keys(scenarios).filter((name) => rerecord || !existsSync(file(name)));
    if (missing.length === 0) return;
    mkdirSync(historiesDir, { recursive: true });
    h = await startHarness('wf-replay');
    for (const name of missing) {
      const handle = await scenarios[name]!(h);
      const history = await handle.fetchHistory();
      writeFileSync(file(name), historyToText(history));
    }
  }, 300_000);

  afterAll(async () => {
    await h?.close();
  });

  const stored = () =>
    readdirSync(historiesDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.replace(/\.json$/, ''));
  const names = [...new Set([...Object.keys(scenarios), ...(existsSync(historiesDir) ? stored() : [])])].sort();

  it.each(names)('%s replays without nondeterminism', async (name) => {
    const history = historyFromText(readFileSync(file(name), 'utf8'));
    await replay(history, name);
  });

  it.each([
    'runbook-serviceDown-slow-claim',
    'serviceDown-slow-claim',
    ...['runbook-serviceDown-slow-claim', 'serviceDown-slow-claim'].map(oneMarker),
    'runbook-serviceDown-reads-together',
    'serviceDown-reads-together',
  ])("%s replays when its first task ended before the workflow saw its reads' answers", async (name) => {
    const split = withFirstTaskEndingAfterReads(JSON.parse(readFileSync(file(name), 'utf8')));
    await replay(History.fromObject(split), `${name}-split`);
  });

  it('a run recorded before the patches were decided first breaks on such a history, as the CI storm did', async () => {
    // The check above would prove nothing if the split it makes were harmless: on a run whose restart
    // patch came after its reads, the same split fails replay with the storm's error.
    const split = withFirstTaskEndingAfterReads(JSON.parse(readFileSync(file('runbook-serviceDown-slow-claim-late-patch'), 'utf8')));
    const err = await replay(History.fromObject(split), 'late-patch-split').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeterminismViolationError);
    expect((err as Error).message).toContain('one-guard-call-per-restart');
  });

  it('a new run records one patch marker and upserts only its version; a run before recorded each patch and its upsert, and the incident attributes', () => {
    const firstTask = (name: string) => {
      const all = (JSON.parse(readFileSync(file(name), 'utf8')) as { events: StoredEvent[] }).events;
      // The first workflow task's commands: up to the restart it schedules.
      const events = all.slice(
        0,
        all.findIndex((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED'),
      );
      const markers = events
        .map(
          (e) =>
            e.markerRecordedEventAttributes as { markerName?: string; details?: Record<string, { payloads: Array<{ data: string }> }> },
        )
        .filter((m) => m?.markerName === 'core_patch')
        .map((m) => (JSON.parse(Buffer.from(m.details!['patch-data']!.payloads[0]!.data, 'base64').toString('utf8')) as { id: string }).id);
      const upserted = events
        .map(
          (e) =>
            (e.upsertWorkflowSearchAttributesEventAttributes as { searchAttributes?: { indexedFields?: object } } | undefined)
              ?.searchAttributes?.indexedFields,
        )
        .filter((fields) => fields !== undefined)
        .map((fields) => Object.keys(fields!).sort().join(','));
      return { markers, upserted };
    };
    for (const name of ['serviceDown-recovered-on-third-restart', 'runbook-serviceDown-recovered-on-third-restart']) {
      expect(firstTask(oneMarker(name)), name).toEqual({ markers: ['all-patches-2026-12'], upserted: ['TemporalChangeVersion'] });
    }
    // The run before: each patch its own marker and upsert, and the incident's attributes upserted
    // whether its start had set them or not.
    const before = firstTask('runbook-serviceDown-recovered-dropped-reads-patch');
    expect(before.markers).toHaveLength(8);
    expect(before.upserted.filter((keys) => keys === 'TemporalChangeVersion')).toHaveLength(8);
    expect(before.upserted).toContain('AlertName,RemediationTarget,Runbook,Severity');
  });

  it('a change made after the one marker comes with a newer marker standing for all of them: still one marker in a new run', () => {
    const eventsOf = (name: string) => (JSON.parse(readFileSync(file(name), 'utf8')) as { events: StoredEvent[] }).events;
    const patchIds = (events: StoredEvent[]) =>
      events.flatMap((e) => {
        const m = e.markerRecordedEventAttributes as {
          markerName?: string;
          details?: Record<string, { payloads: Array<{ data: string }> }>;
        };
        if (m?.markerName !== 'core_patch') return [];
        return [(JSON.parse(Buffer.from(m.details!['patch-data']!.payloads[0]!.data, 'base64').toString('utf8')) as { id: string }).id];
      });
    for (const name of [
      'runbook-parallel-restarts-keyed-by-step',
      'runbook-new-alert-reopens-incident',
      'runbook-maintenance-cancelled-while-silencing',
      'runbook-serviceDown-uncheckable-not-restarted',
    ]) {
      expect(patchIds(eventsOf(name)), name).toEqual(['all-patches-2026-12-05']);
    }
    // The change after that one came with a marker of its own, asked first.
    expect(patchIds(eventsOf('runbook-serviceDown-missed-repeats-caught-up'))).toEqual(['all-patches-2026-12-05-late']);
    for (const name of ['runbook-serviceDown-uncheckable-claim-withdrawn-at-once', 'runbook-silence-made-whole-through-cancel'])
      expect(patchIds(eventsOf(name)), name).toEqual(['all-patches-2026-12-05-night']);
    for (const name of ['runbook-silence-step-timed-out-expired-at-once', 'runbook-escalation-after-early-ack'])
      expect(patchIds(eventsOf(name)), name).toEqual(['all-patches-2026-12-05-day']);
    for (const name of ['runbook-serviceDown-window-read-with-claim', 'runbook-serviceDown-in-window-read-with-claim'])
      expect(patchIds(eventsOf(name)), name).toEqual(['all-patches-2026-12-05-afternoon']);
    for (const name of ['runbook-serviceDown-reads-together', 'runbook-serviceDown-reads-together-cancelled', 'serviceDown-reads-together'])
      expect(patchIds(eventsOf(name)), name).toEqual(['all-patches-2026-12-06']);
  });

  it('the one marker stands for the eleven patches it was recorded with, no more: a patch added to it would turn true in runs recorded before that patch existed', () => {
    expect([...coveredByOneMarker].sort()).toEqual([
      'cancelled-suppression-check-stops',
      'checks-and-claim-together',
      'dropped-local-reads-asked-again',
      'dry-run-silence-not-expired',
      'escalation-follows-alerts',
      'http-output-code',
      'interpreter-checks-ahead',
      'local-reads',
      'local-restart-claim',
      'one-guard-call-per-restart',
      'resolve-page-on-reject',
    ]);
  });

  it('workflow code asks patches only through steps/patchesFirst.ts, where the one marker and the order are decided', () => {
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
      );
    const asking = sources('workflows').filter(
      (f) => !f.endsWith(join('steps', 'patchesFirst.ts')) && /\b(patched|deprecatePatch)\(/.test(readFileSync(f, 'utf8')),
    );
    expect(asking).toEqual([]);
  });

  it('notices a history that the code would not produce', async () => {
    // The same history with one step swapped: replay must refuse it, or the checks above prove nothing.
    const json = JSON.parse(readFileSync(file('serviceDown-recovered-on-third-restart'), 'utf8'));
    const scheduled = json.events.find(
      (e: { activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } }) =>
        e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget',
    );
    scheduled.activityTaskScheduledEventAttributes.activityType.name = 'backupTarget';
    const err = await replay(History.fromObject(json), 'tampered').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeterminismViolationError);
  });

  it('a definition changed between two runs: the first run still replays', async () => {
    // The run carries its definition in its input: what runbooks/serviceDown.yaml says now does not
    // matter to a run that started on an earlier version of it.
    const json = JSON.parse(readFileSync(file('runbook-serviceDown-earlier-definition'), 'utf8'));
    const started = json.events[0].workflowExecutionStartedEventAttributes;
    expect(started.workflowType.name).toBe(interpreterWorkflowType);
    const input = JSON.parse(Buffer.from(started.input.payloads[0].data, 'base64').toString('utf8')) as RunbookRunInput;
    const earlier = createHash('sha256').update(readFileSync(serviceDownV0)).digest('hex');
    const current = createHash('sha256').update(readFileSync('runbooks/serviceDown.yaml')).digest('hex');
    expect(input.definition.sha256).toBe(earlier);
    expect(input.definition.name).toBe('serviceDown');
    expect(current).not.toBe(earlier);
    expect(shippedRunbooks.serviceDown!.sha256).toBe(current);
    await replay(History.fromObject(json), 'earlier-definition');

    // Had the run read the current file instead, its history would not replay: the shipped runbook
    // checks suppression first, the earlier one verified first.
    const swapped = structuredClone(json);
    const swappedStart = swapped.events[0].workflowExecutionStartedEventAttributes;
    swappedStart.input.payloads[0].data = Buffer.from(JSON.stringify({ ...input, definition: shippedRunbooks.serviceDown })).toString(
      'base64',
    );
    const err = await replay(History.fromObject(swapped), 'current-definition').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeterminismViolationError);
  });

  it('has a stored history for every scenario', () => {
    for (const name of Object.keys(scenarios)) expect(existsSync(file(name)), name).toBe(true);
  });
});
