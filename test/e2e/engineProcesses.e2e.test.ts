// Engines as operators run them: separate processes on one Temporal server and one task queue,
// killed and stopped the way machines and deploys kill and stop them. Containers are real
// (busybox, killed to make the incidents); which process did what is read from workflow history,
// where every task records the identity (pid@host) of the worker that ran it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, Connection } from '@temporalio/client';
import type { EngineConfigInput } from '../../config/schema.js';
import { approveSignal, incidentWorkflowId, statusQuery, type RunbookResult } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { busyboxRun, docker } from '../support/docker.js';
import { engineMetric } from '../support/engineMetrics.js';
import { spawnEngine, type EngineProcess } from '../support/engineProcess.js';
import { activityRunners, eventTimeMs, historyEvents, workflowTaskRunners } from '../support/history.js';
import { guardrailsWorkflowId } from '../../activities/guardMessages.js';
import { closedPort } from '../support/ports.js';
import { temporalClient, temporalConfigInput, terminateRunning, uniqueQueue } from '../support/temporal.js';
import { httpOk, until, untilHttpOk } from '../support/wait.js';
import { e2eConfigInput } from './engine.js';

const token = `tok-${randomBytes(12).toString('hex')}`;
const created: string[] = [];
const engines: EngineProcess[] = [];
let client: Client;
let connection: Connection;

interface Service {
  target: string;
  container: string;
  health: string;
}

/** A busybox web server on 127.0.0.1; `script` replaces its command (it runs again on every restart). */
async function service(what: string, script?: string): Promise<Service> {
  const port = await closedPort();
  const container = `remediation-e2e-${what}-${randomBytes(3).toString('hex')}`;
  created.push(container);
  await docker(...busyboxRun(container, { port, ...(script ? { entrypoint: '/bin/sh', command: ['-c', script] } : {}) }));
  return { target: what, container, health: `http://127.0.0.1:${port}/health` };
}

function config(taskQueue: string, services: Service[], extra: Partial<EngineConfigInput> = {}): EngineConfigInput {
  const targets = services.map((s) => s.target);
  return e2eConfigInput({
    temporal: { ...temporalConfigInput(), taskQueue },
    webhook: { listen: '127.0.0.1:0', token },
    targets: Object.fromEntries(
      services.map((s) => [
        s.target,
        {
          kind: 'container',
          container: s.container,
          stopTimeout: '5s',
          labels: { service: s.target },
          health: { url: s.health, timeout: '1s' },
        },
      ]),
    ),
    bindings: [
      { alert: 'ServiceDown', targetLabel: 'service', targets, runbook: 'serviceDown' },
      { alert: 'ResourcePressure', targetLabel: 'service', targets, runbook: 'resourcePressure' },
    ],
    guardrails: {
      restarts: { max: 1000, window: '1h' },
      restartBackoff: '1s',
      verifyDeadline: '20s',
      verifyInterval: '500ms',
      maxConcurrentDestructive: 4,
    },
    ...extra,
  });
}

async function fire(engine: EngineProcess, alertname: string, target: string): Promise<{ started: number; folded: number }> {
  const { status, json } = await postAlerts(engine.webhookUrl, token, [
    {
      labels: { alertname, service: target, severity: 'critical' },
      annotations: { summary: `${target} is down` },
      fingerprint: `fp-${alertname}-${target}`,
    },
  ]);
  expect(status).toBe(200);
  return json as { started: number; folded: number };
}

const identityOf = (engine: EngineProcess) => (identity: string) => identity.startsWith(`${engine.pid}@`);

/**
 * The result of the newest run of `workflowId`, once it finished. With `startedFrom`, only a run the
 * server started then or later: an alert answered from the spool is started after its 200, and until
 * then the newest run is an earlier test's (the dev server keeps closed runs, and the id is the target's).
 */
async function result(workflowId: string, ms: number, startedFrom = 0): Promise<RunbookResult> {
  return until(
    `${workflowId} to finish`,
    ms,
    async () => {
      const d = await client.workflow.getHandle(workflowId).describe();
      if (d.startTime.getTime() < startedFrom || d.status.name === 'RUNNING') return undefined;
      return (await client.workflow.getHandle(workflowId, d.runId).result()) as RunbookResult;
    },
    500,
  );
}

const metric = (engine: EngineProcess, series: string) => engineMetric(engine.webhookUrl, series);

async function spawn(cfg: EngineConfigInput, options: Parameters<typeof spawnEngine>[1] = {}): Promise<EngineProcess> {
  const engine = await spawnEngine(cfg, options);
  engines.push(engine);
  return engine;
}

beforeAll(async () => {
  ({ client, connection } = await temporalClient());
});

afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop(5_000)));
  if (created.length) await docker('rm', '-f', ...created).catch(() => '');
  await connection?.close();
});

describe('the engine as `npm start` runs it', () => {
  const queue = uniqueQueue('e2e-build');
  afterAll(() => terminateRunning(client, queue));

  it('builds its workflow bundle with npm run build, loads it from dist/, spools the alert and recovers a killed container', async () => {
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: process.cwd(), timeout: 120_000 });
    const svc = await service('build');
    await untilHttpOk(svc.health, `${svc.container} healthy`);
    await docker('kill', svc.container);
    // No bundle named: the compiled engine must find the one `npm run build` made in dist/. The
    // spool is on, as it is by default with the embedded dev server `npm start` runs.
    const cfg = config(queue, [svc]);
    const engine = await spawn(
      { ...cfg, webhook: { ...cfg.webhook, spool: true } },
      { fromBuild: true, env: { REMEDIATION_WORKFLOW_BUNDLE: '' }, startTimeoutMs: 120_000 },
    );
    expect(engine.output()).toContain('dist/workflows.bundle.js');
    const posted = Date.now();
    const { status, json } = await postAlerts(engine.webhookUrl, token, [
      { labels: { alertname: 'ServiceDown', service: svc.target, severity: 'critical' }, fingerprint: 'fp-build' },
    ]);
    expect({ status, json }).toMatchObject({ status: 200, json: { status: 'queued', alerts: 1 } });
    expect((await result(incidentWorkflowId('serviceDown', svc.target), 60_000, posted)).outcome).toBe('recovered');
    expect(await httpOk(svc.health)).toBe(true);
  }, 180_000);
});

describe('two engine processes on one task queue', () => {
  const queue = uniqueQueue('e2e-share');
  let services: Service[];
  afterAll(() => terminateRunning(client, queue));

  it('share the work: each webhook starts runs, a run begun by one is finished by the other, and nothing runs twice', async () => {
    // c1: A alone restarts it. c2: A diagnoses it and waits for approval, then A dies and B restarts it.
    // c3: posted to B. c4: the same alert posted to both at once.
    services = await Promise.all(['c1', 'c2', 'c3', 'c4'].map((n) => service(`share-${n}`)));
    await Promise.all(services.map((s) => untilHttpOk(s.health, `${s.container} healthy`)));
    await docker('kill', ...services.map((s) => s.container));
    const [c1, c2, c3, c4] = services.map((s) => s.target) as [string, string, string, string];
    const cfg = config(queue, services);

    const a = await spawn(cfg);
    expect((await fire(a, 'ServiceDown', c1)).started).toBe(1);
    expect((await fire(a, 'ResourcePressure', c2)).started).toBe(1);
    const c2Id = incidentWorkflowId('resourcePressure', c2);
    expect((await result(incidentWorkflowId('serviceDown', c1), 60_000)).outcome).toBe('recovered');
    // Waiting means the approval page has gone out too: no activity of c2's left in flight on A.
    await until('c2 waiting for approval', 60_000, async () => {
      const handle = client.workflow.getHandle(c2Id);
      const waiting = (await handle.query(statusQuery)).pendingApproval;
      return waiting && ((await handle.describe()).raw.pendingActivities ?? []).length === 0 ? waiting : undefined;
    });

    const b = await spawn(cfg);
    expect((await fire(b, 'ServiceDown', c3)).started).toBe(1);
    const both = await Promise.all([fire(a, 'ServiceDown', c4), fire(b, 'ServiceDown', c4)]);
    expect(both.map((r) => r.started + r.folded)).toEqual([1, 1]);
    expect(both[0].started + both[1].started).toBe(1);
    for (const t of [c3, c4]) expect((await result(incidentWorkflowId('serviceDown', t), 60_000)).outcome).toBe('recovered');

    // Every closed run is counted once, by whichever process closed it.
    const recovered = 'runbook_outcomes_total{runbook="serviceDown",outcome="recovered"}';
    const closedBy = await until('three recoveries counted', 10_000, async () => {
      const counts = [await metric(a, recovered), await metric(b, recovered)];
      return counts[0]! + counts[1]! >= 3 ? counts : undefined;
    });
    expect(closedBy[0]).toBeGreaterThanOrEqual(1);
    expect(closedBy[0]! + closedBy[1]!).toBe(3);

    // A dies with nothing in flight (c2 only waits for a person), so the handover is not a timeout.
    expect((await client.workflow.getHandle(c2Id).describe()).raw.pendingActivities ?? []).toEqual([]);
    a.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    await client.workflow.getHandle(c2Id).signal(approveSignal, { operator: 'alice', reason: 'e2e: restart it' });
    const c2Result = await result(c2Id, 60_000);
    console.log(`after SIGKILL of engine A, engine B finished the approved run in ${Date.now() - killedAt} ms`);
    expect(c2Result.outcome).toBe('recovered');
    expect(await httpOk(services[1]!.health)).toBe(true);

    // c1 ran entirely on A (B did not exist yet); c2 was diagnosed on A and restarted on B.
    expect([...(await workflowTaskRunners(client.workflow.getHandle(incidentWorkflowId('serviceDown', c1))))].every(identityOf(a))).toBe(
      true,
    );
    const c2Runners = await activityRunners(client.workflow.getHandle(c2Id));
    const restart = c2Runners.filter(([type]) => type === 'restartTarget');
    expect(c2Runners.some(([type, id]) => type === 'diagnoseTarget' && identityOf(a)(id))).toBe(true);
    expect(restart).toHaveLength(1);
    expect(identityOf(b)(restart[0]![1])).toBe(true);
    expect(await metric(b, 'runbook_outcomes_total{runbook="resourcePressure",outcome="recovered"}')).toBe(1);

    // One execution per incident id, the doubly-posted c4 included.
    const ids: string[] = [];
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${queue}' AND WorkflowType != 'guardrails'` }))
      ids.push(wf.workflowId);
    expect(ids.sort()).toEqual([c2Id, ...[c1, c3, c4].map((t) => incidentWorkflowId('serviceDown', t))].sort());
  }, 150_000);
});

describe('graceful shutdown', () => {
  const queue = uniqueQueue('e2e-shutdown');
  afterAll(() => terminateRunning(client, queue));

  it('SIGTERM mid-restart: refuses new alerts, finishes the restart in hand, exits 0; the next engine verifies and closes the run', async () => {
    // Down at first (nothing listens); every later start serves. It ignores SIGTERM, so a restart
    // takes the whole 5 s stop timeout: the window in which the engine is told to stop.
    const slow = await service(
      'slowstop',
      'trap "" TERM; if [ -e /tmp/started ]; then /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www & else echo 1 > /tmp/started; sleep 3600 & fi; wait',
    );
    const cfg = config(queue, [slow]);
    const first = await spawn(cfg);
    const id = incidentWorkflowId('serviceDown', slow.target);
    expect((await fire(first, 'ServiceDown', slow.target)).started).toBe(1);
    await until(
      'the restart activity running',
      60_000,
      async () => {
        const pending = (await client.workflow.getHandle(id).describe()).raw.pendingActivities ?? [];
        return pending.some((p) => p.activityType?.name === 'restartTarget' && p.state === 2 /* STARTED */) ? true : undefined;
      },
      100,
    );

    const termAt = Date.now();
    first.kill('SIGTERM');
    let exited = false;
    void first.exited.then(() => (exited = true));
    const refusal = await until(
      'the webhook to refuse connections',
      10_000,
      async () => {
        try {
          const r = await fetch(`${first.webhookUrl}/alertmanager`, { method: 'POST', signal: AbortSignal.timeout(1_000) });
          return r.status === 503 ? 'HTTP 503' : undefined;
        } catch (err) {
          const code = (err as { cause?: { code?: string } }).cause?.code;
          return code === 'ECONNREFUSED' ? code : undefined;
        }
      },
      50,
    );
    const refusedWhileDraining = !exited;
    const end = await first.exited;
    const stopMs = Date.now() - termAt;
    console.log(
      `engine stopped ${stopMs} ms after SIGTERM with a restart in flight (webhook: ${refusal} while draining: ${refusedWhileDraining})`,
    );
    expect(end).toEqual({ code: 0, signal: null });
    expect(first.output()).toContain('"msg":"stopped"');
    expect(refusedWhileDraining).toBe(true);
    expect(stopMs).toBeLessThan(20_000 + 5_000); // shutdownGraceTime, plus closing connections

    // The restart in hand was finished, and reported, by the stopping engine — not abandoned to time out.
    const events = await historyEvents(client.workflow.getHandle(id));
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartTarget')!;
    const completed = events.find(
      (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === String(scheduled.eventId),
    );
    expect(completed, 'restartTarget completed').toBeDefined();
    const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === String(scheduled.eventId))!;
    expect(identityOf(first)(started.activityTaskStartedEventAttributes!.identity!)).toBe(true);
    expect((await client.workflow.getHandle(id).describe()).status.name).toBe('RUNNING');

    const next = await spawn(cfg);
    // Ahead of its first incident the next engine wrote its codecs and read the guard the first
    // engine's claim made (its history replayed on a worker now, not at the next claim).
    const ready = await until('the next engine ready for its first incident', 30_000, async () =>
      next
        .output()
        .split('\n')
        .find((line) => line.includes('"msg":"ready for the first incident"')),
    );
    expect(JSON.parse(ready)).toMatchObject({ guardStickyQueue: 'reset', guard: 'read', codecs: expect.any(Number) });
    expect((JSON.parse(ready) as { codecs: number }).codecs).toBeGreaterThan(200);
    const r = await result(id, 60_000);
    expect(r.outcome).toBe('recovered');
    const verifiedByNext = (await activityRunners(client.workflow.getHandle(id))).filter(
      ([type, who]) => type === 'verifyTarget' && identityOf(next)(who),
    );
    expect(verifiedByNext.length).toBeGreaterThanOrEqual(1);

    // An idle engine stops at once.
    const idleAt = Date.now();
    next.kill('SIGTERM');
    expect(await next.exited).toEqual({ code: 0, signal: null });
    const idleMs = Date.now() - idleAt;
    expect(next.output()).toContain('"msg":"stopped"');
    console.log(`idle engine stopped ${idleMs} ms after SIGTERM`);
    expect(idleMs).toBeLessThan(5_000);
  }, 150_000);
});

describe('an engine killed with kill -9', () => {
  // One queue per test: the first test's second engine still runs until the file ends, and would
  // be a third engine on the second test's queue (which engine ran the guard's last task matters).
  const queue = uniqueQueue('e2e-crash');
  const peersQueue = uniqueQueue('e2e-crash-peers');
  afterAll(() => Promise.all([terminateRunning(client, queue), terminateRunning(client, peersQueue)]));

  it("hands the guard back to the shared queue when the next engine starts: its first restart claim is not held on the dead engine's own queue", async () => {
    const [first, second] = await Promise.all(['crash-a', 'crash-b'].map((n) => service(n)));
    await Promise.all([first!, second!].map((s) => untilHttpOk(s.health, `${s.container} healthy`)));
    const cfg = config(queue, [first!, second!]);

    // The guard's last workflow task runs on the dead engine: its next would be sent to that engine's queue.
    const a = await spawn(cfg);
    await docker('kill', first!.container);
    const firstAt = Date.now();
    expect((await fire(a, 'ServiceDown', first!.target)).started).toBe(1);
    expect((await result(incidentWorkflowId('serviceDown', first!.target), 60_000, firstAt)).outcome).toBe('recovered');
    a.kill('SIGKILL');
    await a.exited;

    const b = await spawn(cfg);
    const ready = await until('the next engine ready for its first incident', 30_000, async () =>
      b
        .output()
        .split('\n')
        .find((line) => line.includes('"msg":"ready for the first incident"')),
    );
    expect(JSON.parse(ready)).toMatchObject({ guardStickyQueue: 'reset', guard: 'read' });
    await docker('kill', second!.container);
    const firedAt = Date.now();
    expect((await fire(b, 'ServiceDown', second!.target)).started).toBe(1);
    await untilHttpOk(second!.health, `${second!.container} restarted`);
    const recoveredMs = Date.now() - firedAt;
    console.log(`the first alert after kill -9 and a new engine: healthy again ${recoveredMs} ms after it was posted`);
    expect((await result(incidentWorkflowId('serviceDown', second!.target), 60_000, firedAt)).outcome).toBe('recovered');

    // No guard task waited out the dead engine's queue (a schedule-to-start timeout, ~10 s each).
    const guardEvents = await historyEvents(client.workflow.getHandle(guardrailsWorkflowId(queue)));
    expect(guardEvents.filter((e) => e.workflowTaskTimedOutEventAttributes)).toEqual([]);
    expect(recoveredMs).toBeLessThan(8_000);
  }, 120_000);

  it("keeps the engines still running waiting at most 2 s for the guard when the engine that ran the guard's last task dies", async () => {
    const [first, second] = await Promise.all(['crash-c', 'crash-d'].map((n) => service(n)));
    await Promise.all([first!, second!].map((s) => untilHttpOk(s.health, `${s.container} healthy`)));
    const cfg = config(peersQueue, [first!, second!]);
    const [a, b] = [await spawn(cfg), await spawn(cfg)];
    await docker('kill', first!.container);
    const firstAt = Date.now();
    expect((await fire(a, 'ServiceDown', first!.target)).started).toBe(1);
    expect((await result(incidentWorkflowId('serviceDown', first!.target), 60_000, firstAt)).outcome).toBe('recovered');

    // The engine whose worker completed the guard's last task dies; the other one carries on.
    const guard = client.workflow.getHandle(guardrailsWorkflowId(peersQueue));
    const completions = (await historyEvents(guard)).filter((e) => e.workflowTaskCompletedEventAttributes);
    const lastRunner = completions.at(-1)!.workflowTaskCompletedEventAttributes!.identity!;
    const [dying, survivor] = identityOf(a)(lastRunner) ? [a, b] : [b, a];
    expect(identityOf(dying)(lastRunner)).toBe(true);
    const before = (await historyEvents(guard)).length;
    dying.kill('SIGKILL');
    await dying.exited;

    await docker('kill', second!.container);
    const firedAt = Date.now();
    expect((await fire(survivor, 'ServiceDown', second!.target)).started).toBe(1);
    await untilHttpOk(second!.health, `${second!.container} restarted`);
    const recoveredMs = Date.now() - firedAt;
    console.log(`the survivor's first alert after its peer's kill -9: healthy again ${recoveredMs} ms after it was posted`);
    expect((await result(incidentWorkflowId('serviceDown', second!.target), 60_000, firedAt)).outcome).toBe('recovered');

    // The claim's task went to the dead engine's queue first and timed out there after 2 s, not 10.
    const after = (await historyEvents(guard)).slice(before);
    const timedOut = after.filter((e) => e.workflowTaskTimedOutEventAttributes);
    expect(timedOut.length).toBeGreaterThanOrEqual(1);
    for (const t of timedOut) {
      const scheduled = after.find((e) => String(e.eventId) === String(t.workflowTaskTimedOutEventAttributes!.scheduledEventId))!;
      expect(eventTimeMs(t) - eventTimeMs(scheduled)).toBeLessThan(3_000);
    }
    expect(recoveredMs).toBeLessThan(6_000);
  }, 120_000);
});
