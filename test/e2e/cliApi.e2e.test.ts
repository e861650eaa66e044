// The operator CLI through the operator API of a running engine, as a separate process with nothing
// but a URL and a token (no engine config, no Temporal address, no database secret): a Redis-backed
// incident waits for approval; a viewer's token lists and shows it but cannot approve it; an
// operator's token, made with `remediate operators token`, approves it, and the timeline says the
// decision came through the CLI.
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { parseConfig } from '../../config/load.js';
import type { EngineConfigInput } from '../../config/schema.js';
import { newOperatorToken } from '../../triggers/operators/credentials.js';
import { startEngine, type RunningEngine } from '../../worker/engine.js';
import { guardrailsWorkflowId } from '../../workflows/guardrails.js';
import { incidentWorkflowId, type RunbookResult, type RunbookStatus } from '../../workflows/messages.js';
import { postAlerts } from '../support/alertmanagerPayload.js';
import { bundlePath } from '../support/globalSetup.js';
import { runCli, runCliWithOnly, type CliRun } from '../support/operatorCli.js';
import { startRedisContainer, type RedisContainer } from '../support/redisContainer.js';
import { pendingApproval, statusWhen } from '../support/runStatus.js';
import { quietRuntime, temporalConfigInput, uniqueQueue } from '../support/temporal.js';
import { eventually } from '../support/wait.js';
import { e2eConfigInput } from './engine.js';

const suffix = randomUUID().slice(0, 8);
const cache = `cache-${suffix}`;
const cacheServer = `cache-server-${suffix}`;
const alertname = 'RedisConnectionFailed';
const webhookToken = randomUUID();
const workflowId = incidentWorkflowId('databaseConnection', cache);
const vera = newOperatorToken();
const home = mkdtempSync(join(tmpdir(), 'remediate-cli-api-'));

let alice: { token: string; tokenHash: string };
let redis: RedisContainer;
let engine: RunningEngine;
let queue: string;
const logLines: string[] = [];

const handle = (): WorkflowHandle => engine.client.workflow.getHandle(workflowId);

/**
 * The CLI on an operator's laptop: only PATH, a home of its own, and the API's URL and a token in
 * its environment, started from that home (no config file anywhere it looks).
 */
const operatorCli = (token: string | undefined, ...args: string[]): Promise<CliRun> =>
  runCliWithOnly(args, { HOME: home, REMEDIATE_URL: engine.apiUrl!, ...(token ? { REMEDIATE_TOKEN: token } : {}) }, home);

beforeAll(async () => {
  quietRuntime();
  // The administrator's side: a token made by the CLI itself, its hash pasted into the config.
  const made = await runCli(['operators', 'token', 'alice', '--json']);
  expect(made.code, made.stderr).toBe(0);
  alice = made.json;
  queue = uniqueQueue('e2e-cli-api');
  redis = await startRedisContainer();
  const overrides: Partial<EngineConfigInput> = {
    temporal: { ...temporalConfigInput(), taskQueue: queue },
    webhook: { listen: '127.0.0.1:0', token: webhookToken },
    targets: {
      [cacheServer]: { kind: 'container', container: redis.name, stopTimeout: '5s' },
      [cache]: { kind: 'redis', host: '127.0.0.1', port: redis.port, password: redis.password, timeout: '2s', restartVia: cacheServer },
    },
    bindings: [{ alert: alertname, target: cache, runbook: 'databaseConnection' }],
    operators: [
      { name: 'alice', role: 'operator', tokenHash: alice.tokenHash },
      { name: 'vera', role: 'viewer', tokenHash: vera.tokenHash },
    ],
    api: { listen: '127.0.0.1:0' },
  };
  const config = parseConfig(e2eConfigInput(overrides), 'CLI through the API e2e');
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  engine = await startEngine({ config, logger, workflowBundlePath: bundlePath });
});

afterAll(async () => {
  if (engine) {
    await handle()
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.client.workflow
      .getHandle(guardrailsWorkflowId(queue))
      .terminate('end-to-end test finished')
      .catch(() => undefined);
    await engine.stop();
  }
  await redis?.remove();
  rmSync(home, { recursive: true, force: true });
});

const audits = () =>
  logLines
    .map((l) => JSON.parse(l) as { audit?: { operator?: string; via: string; action: string; result: string; reason?: string } })
    .flatMap((l) => (l.audit ? [l.audit] : []));

describe('the CLI through the operator API', () => {
  it('lets a viewer read an incident but not approve it; an operator approves it, recorded as via cli', async () => {
    await redis.stop();
    const stoppedAt = await redis.startedAt();
    const fired = await postAlerts(engine.webhookUrl, webhookToken, [{ labels: { alertname, severity: 'critical', service: cache } }]);
    expect(fired.json.started, JSON.stringify(fired.json)).toBe(1);
    await pendingApproval(handle());

    // Who am I: the token's operator, through the CLI's door.
    const whoami = await operatorCli(vera.token, 'whoami', '--json');
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(whoami.json).toEqual({ operator: 'vera', role: 'viewer', via: 'cli', credential: 'token', url: engine.apiUrl });

    // A viewer reads: the open incidents, and this one waiting for approval, as JSON and as text.
    const listed = await operatorCli(vera.token, 'incidents', '--open', '--target', cache, '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.json).toEqual([
      expect.objectContaining({ workflowId, status: 'RUNNING', target: cache, alert: alertname, severity: 'critical' }),
    ]);
    const table = await operatorCli(vera.token, 'incidents', '--open', '--target', cache);
    expect(table.stdout).toMatch(
      new RegExp(`^${workflowId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+running\\s+${alertname}\\s+critical`, 'm'),
    );
    const shown = await operatorCli(vera.token, 'show', workflowId, '--json');
    expect(shown.code, shown.stderr).toBe(0);
    expect((shown.json as { live: RunbookStatus }).live.pendingApproval?.step).toBe('approve-restart');
    const text = await operatorCli(vera.token, 'show', workflowId);
    expect(text.stdout).toContain(`${workflowId}  (runbook, running)`);
    expect(text.stdout).toMatch(/waiting for approval of approve-restart since/);

    // …but cannot approve: the server's reason, exit 4, and nothing changes.
    const refused = await operatorCli(vera.token, 'approve', workflowId, '--reason', 'looks fine to me');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^remediate: refused: 'vera' is a viewer; (to approve|approving) needs the operator role or above\n$/);
    expect(refused.stdout).toBe('');
    const after = await statusWhen(handle(), 'the refusal on the timeline', 15_000, (s) =>
      s.timeline.some((e) => e.event === 'approve refused'),
    );
    expect(after.timeline.find((e) => e.event === 'approve refused')).toMatchObject({
      actor: 'vera',
      detail: expect.stringContaining('(via cli)'),
    });
    expect(after.pendingApproval?.step).toBe('approve-restart');
    expect(after.approvedBy).toBeUndefined();
    expect(await redis.state()).toBe('exited');
    expect(await redis.startedAt()).toBe(stoppedAt);

    // No token, and a token the engine does not know: refused, with what to do, and nothing sent.
    const none = await operatorCli(undefined, 'approve', workflowId, '--reason', 'x');
    expect(none.code).toBe(4);
    expect(none.stderr).toContain('remediate: no operator token: set REMEDIATE_TOKEN (and REMEDIATE_URL)');
    const stranger = newOperatorToken().token;
    const wrong = await operatorCli(stranger, 'approve', workflowId, '--reason', 'x');
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toBe(
      `remediate: the token was refused by the operator API at ${engine.apiUrl} (token from REMEDIATE_TOKEN): it is unknown, expired or revoked; ask an administrator for a new one\n`,
    );
    expect(wrong.stderr).not.toContain(stranger);
    expect((await operatorCli(stranger, 'incidents')).code).toBe(4);

    // The operator, with the token from the credentials file the CLI made for them.
    mkdirSync(join(home, '.config', 'remediate'), { recursive: true });
    const credentials = join(home, '.config', 'remediate', 'credentials');
    writeFileSync(credentials, `url = ${engine.apiUrl}\ntoken = ${alice.token}\n`);
    chmodSync(credentials, 0o600);
    const approved = await runCliWithOnly(['approve', workflowId, '--reason', 'cache is down, restart it'], { HOME: home }, home);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toBe(`approve by alice sent to ${workflowId}\n`);

    const result = (await handle().result()) as RunbookResult;
    expect(result.outcome, result.detail).toBe('recovered');
    expect(result.detail).toBe('healthy after the restart approved by alice');
    expect(result.timeline.find((e) => e.event === 'approved')).toMatchObject({
      actor: 'alice',
      detail: 'approve-restart: cache is down, restart it (via cli)',
    });
    expect(await redis.ping()).toBe(true);
    expect(await redis.startedAt()).not.toBe(stoppedAt);

    // The engine's audit trail has each attempt, by whom and through which door.
    const trail = audits().filter((a) => a.action === 'approve' || a.result === 'unauthenticated');
    expect(trail).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ operator: 'vera', via: 'cli', action: 'approve', result: 'refused' }),
        expect.objectContaining({ operator: 'alice', via: 'cli', action: 'approve', result: 'done', reason: 'cache is down, restart it' }),
        expect.objectContaining({ via: 'cli', result: 'unauthenticated', reason: 'unknown token' }),
      ]),
    );
    expect(logLines.join('\n')).not.toContain(alice.token);
    expect(logLines.join('\n')).not.toContain(stranger);

    // Approving again: the incident is over, and the API says so (exit 1).
    const again = await operatorCli(alice.token, 'approve', workflowId, '--reason', 'again');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^remediate: .*(completed|not waiting)/);
  }, 120_000);

  it('reads the report and schedules with a viewer token, and shows them as the admin mode does', async () => {
    // Visibility lags the close by a moment: the report is read until the incident is in it.
    const report = await eventually(
      () => operatorCli(vera.token, 'report', '--since', '1d', '--target', cache, '--json'),
      (r) => r.code !== 0 || r.json?.perTarget?.length > 0,
    );
    expect(report.code, report.stderr).toBe(0);
    expect(report.json).toMatchObject({ truncated: false, perTarget: [{ target: cache, byOutcome: { recovered: 1 } }] });
    const text = await operatorCli(vera.token, 'report', '--since', '1d', '--target', cache);
    expect(text.stdout).toMatch(/^incidents closed .* – .*: 1$/m);
    // Any period, through the API as in admin mode; the HTML report is one self-contained page.
    const hours = await operatorCli(vera.token, 'report', '--since', '36h', '--target', cache, '--objective', '99.95', '--json');
    expect(hours.code, hours.stderr).toBe(0);
    expect(Date.parse(hours.json.until) - Date.parse(hours.json.since)).toBe(36 * 3_600_000);
    expect(hours.json.perTarget[0]).toMatchObject({ target: cache, objective: 0.9995 });
    expect(hours.json.perTarget[0].downtimeMs).toBeGreaterThan(0);
    const html = await operatorCli(vera.token, 'report', '--since', '1d', '--target', cache, '--format', 'html');
    expect(html.code, html.stderr).toBe(0);
    expect(html.stdout).toMatch(/^<!doctype html>/);
    expect(html.stdout).toContain(`data-target="${cache}"`);
    expect((await operatorCli(vera.token, 'report', '--since', '30s')).code).toBe(1);
    const schedules = await operatorCli(vera.token, 'schedules', 'list', '--json');
    expect(schedules.code, schedules.stderr).toBe(0);
    expect(Array.isArray(schedules.json)).toBe(true);
    // The destructive slots: read by a viewer (the table, or none held); a release needs an admin.
    const slots = await operatorCli(vera.token, 'slots', '--json');
    expect(slots.code, slots.stderr).toBe(0);
    expect(Array.isArray(slots.json)).toBe(true);
    const slotsText = await operatorCli(vera.token, 'slots');
    expect(slotsText.stdout).toMatch(/^(no destructive slot held\n|HELD BY +RUN +ACTION)/);
    const release = await operatorCli(vera.token, 'slots', 'release', `incident:serviceDown:nope-${suffix}`, '--dry-run');
    expect(release.code).toBe(4);
    expect(release.stderr).toContain("refused: 'vera' is a viewer; releasing a destructive slot needs the admin role or above");
    // Reading is not starting: a viewer's run is refused with the reason.
    const run = await operatorCli(vera.token, 'run', 'databaseConnection', '--target', cache, '--dry-run');
    expect(run.code).toBe(4);
    expect(run.stderr).toContain("refused: 'vera' is a viewer");
  }, 60_000);

  it('names an unknown incident (exit 2) and an unsafe filter (exit 1) from the server', async () => {
    const missing = await operatorCli(vera.token, 'show', `incident:serviceDown:nope-${suffix}`);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`remediate: no workflow 'incident:serviceDown:nope-${suffix}'\n`);
    const unsafe = await operatorCli(vera.token, 'incidents', '--target', "x' OR 1=1");
    expect(unsafe.code).toBe(1);
    expect(unsafe.stderr).toContain('only letters, digits and . _ - : @ / are allowed');
  });
});
