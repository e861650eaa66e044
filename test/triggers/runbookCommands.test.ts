// `remediate runbooks list|show|validate|plan` and `remediate run`, as an operator runs them: the
// real CLI process, the shipped runbook files, and for `run` the real interpreter on the stack's
// Temporal (the workflow harness's worker, whose activities touch nothing).
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { incidentWorkflowId, type RunbookResult, type RunbookRunInput } from '../../workflows/messages.js';
import { repoRoot } from '../support/engineProcess.js';
import { runCli } from '../support/operatorCli.js';
import { stack } from '../support/stack.js';
import { terminateRunning } from '../support/temporal.js';
import { eventually } from '../support/wait.js';
import { startHarness, type Harness } from '../workflows/harness.js';
import { triggerConfig, type TriggerFixture } from './support/config.js';

let h: Harness;
let fx: TriggerFixture;
let dir: string;
let configPath: string;
/** The same config with its webhook token in an environment variable nobody set. */
let secretlessConfigPath: string;

const withConfig = (...args: string[]) => ['--config', configPath, ...args];
const shipped = (name: string) => join(repoRoot, 'runbooks', `${name}.yaml`);

beforeAll(async () => {
  h = await startHarness('runbook-cli');
  fx = triggerConfig({ taskQueue: h.queue, temporalAddress: stack().temporalAddress });
  dir = mkdtempSync(join(tmpdir(), 'remediate-runbooks-'));
  configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(fx.raw));
  secretlessConfigPath = join(dir, 'secretless.yaml');
  // Unset secrets of every shape: a token, a channel URL (checked as a URL once read), an operator's token hash.
  writeFileSync(
    secretlessConfigPath,
    stringify({
      ...fx.raw,
      webhook: { ...fx.raw.webhook, token: { env: 'REMEDIATE_TEST_NEVER_SET' } },
      channels: { ...fx.raw.channels, pager: { type: 'webhook', url: { env: 'REMEDIATE_TEST_NEVER_SET_URL' } } },
      operators: [
        ...(fx.raw.operators ?? []),
        { name: 'hashed-a', role: 'operator', tokenHash: { env: 'REMEDIATE_TEST_NEVER_SET_A' } },
        { name: 'hashed-b', role: 'operator', tokenHash: { file: '/nonexistent/hash' } },
      ],
    }),
  );
});

afterAll(async () => {
  if (h) {
    await terminateRunning(h.client, h.queue);
    await h.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('remediate runbooks list and show', () => {
  it('lists the runbooks with the bindings that start them, without Temporal and without secrets it does not use', async () => {
    const r = await runCli(['--config', secretlessConfigPath, 'runbooks', 'list', '--json'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(0);
    expect(r.json.map((row: { name: string }) => row.name)).toEqual([
      'databaseConnection',
      'highErrorRate',
      'maintenance',
      'resourcePressure',
      'serviceDown',
      'slaBreach',
    ]);
    expect(r.json.find((row: { name: string }) => row.name === 'serviceDown')).toEqual({
      name: 'serviceDown',
      kind: 'incident',
      appliesTo: ['container', 'systemd', 'http'],
      file: shipped('serviceDown'),
      steps: 9,
      usedBy: ['alert ServiceDown (binding #0)'],
    });
    expect(r.json.find((row: { name: string }) => row.name === 'databaseConnection').usedBy).toEqual(['alert DatabaseDown (binding #1)']);
    expect(r.json.find((row: { name: string }) => row.name === 'maintenance')).toMatchObject({ kind: 'maintenance', usedBy: [] });

    const table = await runCli(withConfig('runbooks', 'list'));
    expect(table.stdout).toMatch(/^NAME\s+KIND\s+APPLIES TO\s+FILE\s+STEPS\s+USED BY\n/);
    expect(table.stdout).toMatch(
      /serviceDown\s+incident\s+container, systemd, http\s+runbooks\/serviceDown\.yaml\s+9\s+alert ServiceDown \(binding #0\)/,
    );
  });

  it('shows every step in order with its condition, failure policy, parameters and outputs, marking the mutating ones', async () => {
    const r = await runCli([...withConfig('runbooks', 'show', 'serviceDown'), '--json']);
    expect(r.code).toBe(0);
    const sha = createHash('sha256')
      .update(readFileSync(shipped('serviceDown')))
      .digest('hex');
    expect(r.json).toMatchObject({
      name: 'serviceDown',
      kind: 'incident',
      file: shipped('serviceDown'),
      sha256: sha.slice(0, 12),
      finally: [],
    });
    const steps = r.json.steps as Array<Record<string, unknown>>;
    expect(steps.map((s) => s.id)).toEqual([
      'suppression-check',
      'stand-down',
      'verify',
      'false-alarm',
      'restart',
      'recovered',
      'diagnose',
      'escalate',
      'escalated',
    ]);
    const step = (id: string) => steps.find((s) => s.id === id)!;
    expect(step('restart')).toMatchObject({
      uses: 'restart',
      mutating: true,
      onFailure: 'fail',
      outputs: ['recovered', 'attempts', 'detail', 'status', 'error'],
    });
    expect(step('verify')).toMatchObject({ mutating: false, outputs: ['healthy', 'detail', 'status', 'error'] });
    expect(step('stand-down')).toMatchObject({ uses: 'end', when: 'steps.suppression_check.suppressed', with: { outcome: 'suppressed' } });
    expect(step('diagnose')).toMatchObject({ onFailure: 'continue', with: { health: false } });

    const text = await runCli(withConfig('runbooks', 'show', 'serviceDown'));
    expect(text.stdout).toContain(`file:    runbooks/serviceDown.yaml (sha256 ${sha.slice(0, 12)})`);
    expect(text.stdout).toMatch(/\n {2}restart: restart {2}\[mutating\] {2}\(line \d+\)\n/);
    expect(text.stdout).toContain('      outputs: steps.suppression_check.{suppressed, reason, status, error}');
  });

  it('shows groups indented and the finally steps of a maintenance runbook', async () => {
    const r = await runCli([...withConfig('runbooks', 'show', 'maintenance'), '--json']);
    expect(r.json.steps.find((s: { id: string }) => s.id === 'each-target')).toMatchObject({
      kind: 'forEach',
      mutating: true,
      outputs: ['done', 'status', 'error'],
      steps: [
        { id: 'backup', mutating: true },
        { id: 'maintain' },
        { id: 'post-check', mutating: false },
        { id: 'post-check-passed', uses: 'assert' },
      ],
    });
    expect(r.json.finally).toMatchObject([{ id: 'close-window', uses: 'closeWindow' }]);
    const text = await runCli(withConfig('runbooks', 'show', 'maintenance'));
    expect(text.stdout).toMatch(/\n {2}each-target: for each target {2}\[mutating\].*\n(.*\n)*? {6}backup: backup {2}\[mutating\]/);
    expect(text.stdout).toMatch(/finally \(however the run ends\):\n {2}close-window: closeWindow/);
  });

  it('exits 2 for a runbook that is not loaded', async () => {
    const r = await runCli(withConfig('runbooks', 'show', 'rebootTheWorld'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'no runbook "rebootTheWorld" (known: databaseConnection, highErrorRate, maintenance, resourcePressure, serviceDown, slaBreach)',
    );
  });
});

/** Runbook files with one mistake each: the text, and where the mistake is. */
const badRunbooks: Record<string, { text: string; at: string; step: string; says: string }> = {
  'unknown-type.yaml': {
    text: 'name: unknownType\ndescription: x\nappliesTo: [container]\nsteps:\n  - id: verify\n    uses: verify\n  - id: reboot\n    uses: rebootEverything\n',
    at: 'uses: rebootEverything',
    step: 'reboot',
    says: 'steps.1.uses: unknown step type "rebootEverything"',
  },
  'bad-parameter.yaml': {
    text: 'name: badParameter\ndescription: x\nappliesTo: [container]\nsteps:\n  - id: restart\n    uses: restart\n    with:\n      attempts: 99\n',
    at: 'attempts: 99',
    step: 'restart',
    says: 'steps.0.with.attempts: Number must be less than or equal to 10 (got 99)',
  },
  'bad-when.yaml': {
    text: 'name: badWhen\ndescription: x\nappliesTo: [container]\nsteps:\n  - id: verify\n    uses: verify\n  - id: done\n    when: steps.verify.healthy ==\n    uses: end\n    with: { outcome: recovered }\n',
    at: 'when: steps.verify.healthy ==',
    step: 'done',
    says: 'steps.1.when: condition "steps.verify.healthy ==" cannot be used',
  },
  'unknown-target.yaml': {
    text: 'name: unknownTarget\ndescription: x\nappliesTo: [container]\nsteps:\n  - id: verify\n    uses: verify\n  - id: check-db\n    uses: verify\n    with: { target: nowhere }\n',
    at: '- id: check-db',
    step: 'check-db',
    says: 'with.target: no target named "nowhere"',
  },
  'goto-missing.yaml': {
    text: 'name: gotoMissing\ndescription: x\nappliesTo: [container]\nsteps:\n  - id: verify\n    uses: verify\n    onFailure: { goto: nowhere }\n  - id: done\n    uses: end\n    with: { outcome: recovered }\n',
    at: 'goto: nowhere',
    step: 'verify',
    says: 'steps.0.onFailure.goto: jumps to step "nowhere", which is not a step of steps at this level',
  },
  'goto-back.yaml': {
    text: 'name: gotoBack\ndescription: x\nappliesTo: [container]\nsteps:\n  - id: verify\n    uses: verify\n  - id: restart\n    uses: restart\n    onFailure: { goto: verify }\n',
    at: 'goto: verify',
    step: 'restart',
    says: 'steps.1.onFailure.goto: jumps back to step "verify": jumps go forward only, so a runbook cannot loop',
  },
};

function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`no line with ${needle}`);
  return i + 1;
}

function writeBadRunbooks(into: string, names = Object.keys(badRunbooks)): string[] {
  mkdirSync(into, { recursive: true });
  return names.map((name) => {
    const file = join(into, name);
    writeFileSync(file, badRunbooks[name]!.text);
    return file;
  });
}

describe('remediate runbooks validate', () => {
  it("passes the config's runbook folder, with no Temporal and no unset secret in the way", async () => {
    const r = await runCli(['--config', secretlessConfigPath, 'runbooks', 'validate'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok: 6 runbooks');
    expect(r.stdout).toContain('left unresolved: webhook.token');
  });

  it('names the file, line and step of every problem in the given files, and exits 1', async () => {
    const files = writeBadRunbooks(join(dir, 'bad'));
    const r = await runCli(withConfig('runbooks', 'validate', ...files));
    expect(r.code).toBe(1);
    for (const [i, [name, bad]] of Object.entries(badRunbooks).entries()) {
      expect(r.stdout, name).toContain(`${files[i]}:${lineOf(bad.text, bad.at)}: step "${bad.step}": ${bad.says}`);
    }
    expect(r.stdout).toContain(`${Object.keys(badRunbooks).length} problems`);

    const json = await runCli([...withConfig('runbooks', 'validate', ...files), '--json']);
    expect(json.code).toBe(1);
    expect(json.json).toMatchObject({ ok: false, runbooks: files.length, config: configPath, referencesChecked: true });
    expect(json.json.problems).toHaveLength(Object.keys(badRunbooks).length);
  });

  it('without a config checks the structure only, and says so', async () => {
    const [file] = writeBadRunbooks(join(dir, 'alone'), ['unknown-target.yaml']);
    const r = await runCli(['runbooks', 'validate', file!], {}, dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no configuration (--config or REMEDIATION_CONFIG): checked structure only');
    expect(r.stdout).toContain('ok: 1 runbook\n');
  });

  it("reports every problem of a config's runbook folder at once, where the engine stops at the first kind", async () => {
    const folder = join(dir, 'folder', 'runbooks');
    mkdirSync(folder, { recursive: true });
    cpSync(join(repoRoot, 'runbooks'), folder, { recursive: true });
    writeBadRunbooks(folder, ['unknown-type.yaml', 'unknown-target.yaml']);
    const config = join(dir, 'folder', 'config.yaml');
    writeFileSync(config, stringify({ ...fx.raw, runbooks: 'runbooks' }));

    const r = await runCli(['--config', config, 'runbooks', 'validate']);
    expect(r.code).toBe(1);
    const typo = badRunbooks['unknown-type.yaml']!;
    const target = badRunbooks['unknown-target.yaml']!;
    expect(r.stdout).toContain(`${join(folder, 'unknown-type.yaml')}:${lineOf(typo.text, typo.at)}: step "reboot": ${typo.says}`);
    expect(r.stdout).toContain(`unknown-target.yaml:${lineOf(target.text, target.at)}: step "check-db": ${target.says}`);
    expect(r.stdout).toContain('2 problems');
    // The engine (and every other command) refuses the config as it is.
    const list = await runCli(['--config', config, 'runbooks', 'list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('unknown step type "rebootEverything"');
  });
});

describe('remediate runbooks plan', () => {
  it('shows the steps a ServiceDown alert would run, in order, on which target and queue, marking restart mutating', async () => {
    const r = await runCli(
      [...withConfig('runbooks', 'plan', 'serviceDown', '-l', 'alertname=ServiceDown', '-l', `service=${fx.api}`), '--json'],
      {
        TEMPORAL_ADDRESS: '127.0.0.1:1',
      },
    );
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      matched: true,
      runbook: 'serviceDown',
      target: fx.api,
      workflowId: incidentWorkflowId('serviceDown', fx.api),
      binding: 0,
      dryRun: false,
    });
    const steps = r.json.steps as Array<Record<string, unknown>>;
    expect(steps.map((s) => `${s.id}:${s.decision}`)).toEqual([
      'suppression-check:runs',
      'stand-down:depends',
      'verify:runs',
      'false-alarm:depends',
      'restart:runs',
      'recovered:depends',
      'diagnose:runs',
      'escalate:runs',
      'escalated:runs',
    ]);
    const step = (id: string) => steps.find((s) => s.id === id)!;
    expect(step('restart')).toMatchObject({ uses: 'restart', target: fx.api, queue: h.queue, mutating: true });
    expect(step('verify')).toMatchObject({ target: fx.api, queue: h.queue, mutating: false });
    // What is known is rendered; what only the run will know stays as written.
    expect(step('false-alarm')).toMatchObject({
      because: 'depends on earlier steps: steps.verify.healthy',
      with: { detail: `'${fx.api}' is healthy: \${{ steps.verify.detail }}` },
    });

    const text = await runCli(withConfig('runbooks', 'plan', 'serviceDown', '-l', 'alertname=ServiceDown', '-l', `service=${fx.api}`));
    expect(text.stdout).toContain(`   5. restart: restart on '${fx.api}' (queue ${h.queue})  [mutating]  runs`);
    expect(text.stdout).toContain('depends on earlier steps: steps.suppression_check.suppressed');
    expect(text.stdout).toContain('dry run:     no: mutating steps act');
  });

  it('explains an alert that would not start the runbook, with label values made harmless for a terminal', async () => {
    const foreign = await runCli(
      withConfig('runbooks', 'plan', 'serviceDown', '-l', 'alertname=ServiceDown', '-l', 'service=\u001b[2Jevil'),
    );
    expect(foreign.code).toBe(0);
    expect(foreign.stdout).toBe(
      `serviceDown would not run: label service='?[2Jevil' names no target this binding allows (allowed: ${fx.api}, ${fx.web})\n`,
    );
    const other = await runCli([...withConfig('runbooks', 'plan', 'serviceDown', '-l', 'alertname=DatabaseDown'), '--json']);
    expect(other.json).toEqual({
      matched: false,
      code: 'other-runbook',
      reason: `this alert would start 'databaseConnection' on '${fx.db}', not 'serviceDown'`,
    });
  });

  it('decides conditions known before the run, and checks a target given directly', async () => {
    const r = await runCli([...withConfig('runbooks', 'plan', 'highErrorRate', '--target', fx.web, '--dry-run'), '--json']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ dryRun: true, alert: { name: 'manual', severity: 'warning' } });
    const step = (id: string) => r.json.steps.find((s: { id: string }) => s.id === id);
    // The web container has no configured action: it is offered a restart.
    expect(step('approve-action')).toMatchObject({ decision: 'skipped', because: 'target.hasAction is false' });
    expect(step('approve-restart')).toMatchObject({ decision: 'runs', mutating: true, with: { action: `restart '${fx.web}'` } });

    const wrongKind = await runCli(withConfig('runbooks', 'plan', 'serviceDown', '--target', fx.db));
    expect(wrongKind.code).toBe(1);
    expect(wrongKind.stderr).toContain(`runbook 'serviceDown' applies to container, systemd, http, and '${fx.db}' is a postgres`);
    expect((await runCli(withConfig('runbooks', 'plan', 'serviceDown', '--target', 'nope'))).code).toBe(2);
    expect((await runCli(withConfig('runbooks', 'plan', 'serviceDown'))).stderr).toContain("give the alert's labels");
  });
});

// Started by hand as a named operator, straight to Temporal: the administrators' mode.
describe('remediate admin run', () => {
  it('refuses a name that is not an operator, an unknown target, a target of another kind and a maintenance runbook', async () => {
    const stranger = await runCli(withConfig('admin', 'run', 'serviceDown', '--target', fx.api, '--as', 'mallory'));
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain("'mallory' is not a configured operator and cannot start a runbook (operators: alice, bob)");
    const unknown = await runCli(withConfig('admin', 'run', 'serviceDown', '--target', 'nope', '--as', 'alice'));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no target "nope" in the configuration');
    const kind = await runCli(withConfig('admin', 'run', 'serviceDown', '--target', fx.db, '--as', 'alice'));
    expect(kind.code).toBe(1);
    expect(kind.stderr).toContain(`runbook 'serviceDown' applies to container, systemd, http, and '${fx.db}' is a postgres`);
    const maintenance = await runCli(withConfig('admin', 'run', 'maintenance', '--target', fx.db, '--as', 'alice'));
    expect(maintenance.code).toBe(1);
    expect(maintenance.stderr).toContain("'maintenance' is a maintenance runbook");
    // Nothing was started by any of them.
    await expect(h.client.workflow.getHandle(incidentWorkflowId('serviceDown', fx.api)).describe()).rejects.toThrow();
  });

  it('starts a dry run by hand that records who started it, and remediate show and incidents find it', async () => {
    // Down until restarted: the dry-run restart is reported, and the next check passes.
    h.script(fx.api, { healthy: (s) => s.verifies >= 2 });
    const r = await runCli([
      ...withConfig('admin', 'run', 'serviceDown', '--target', fx.api, '--as', 'alice', '--reason', 'trying the new runbook', '--dry-run'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    const workflowId = incidentWorkflowId('serviceDown', fx.api);
    expect(r.json).toMatchObject({ workflowId, runbook: 'serviceDown', target: fx.api, startedBy: 'alice', dryRun: true });

    const handle = h.client.workflow.getHandle(workflowId);
    const result = (await handle.result()) as RunbookResult;
    expect(result.outcome).toBe('recovered');
    expect(result.timeline.find((e) => e.event === 'definition')).toMatchObject({
      actor: 'alice',
      detail: expect.stringContaining('started by alice, dry-run'),
    });
    expect(h.callsFor(fx.api, 'restartTarget').map((c) => c.dryRun)).toEqual([true]);

    const described = await handle.describe();
    expect(described.type).toBe('runbook');
    expect(described.taskQueue).toBe(h.queue);
    const attributes = Object.fromEntries(described.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
    expect(attributes).toMatchObject({ RemediationTarget: fx.api, AlertName: 'manual', Severity: 'warning', Runbook: 'serviceDown' });
    const history = await handle.fetchHistory();
    const input = h.client.options.loadedDataConverter.payloadConverter.fromPayload(
      history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!,
    );
    expect(input).toMatchObject({
      runbook: 'serviceDown',
      target: fx.api,
      startedBy: 'alice',
      dryRun: true,
      alert: { name: 'manual', severity: 'warning', summary: 'trying the new runbook' },
      definition: { name: 'serviceDown', source: 'serviceDown.yaml' },
    } satisfies Partial<Record<keyof RunbookRunInput, unknown>>);

    const shown = await runCli([...withConfig('admin', 'show', workflowId), '--json']);
    expect(shown.json).toMatchObject({ status: 'COMPLETED', runbook: 'serviceDown', alert: 'manual', result: { outcome: 'recovered' } });
    const text = await runCli(withConfig('admin', 'show', workflowId));
    expect(text.stdout).toMatch(/definition \(alice\) — serviceDown\.yaml \(sha256 [0-9a-f]{12}\), started by alice, dry-run/);

    const listed = await eventually(
      () => runCli([...withConfig('admin', 'incidents', '--runbook', 'serviceDown', '--target', fx.api), '--json']),
      (x) => Array.isArray(x.json) && x.json.length === 1,
    );
    expect(listed.json[0]).toMatchObject({ workflowId, runbook: 'serviceDown', alert: 'manual', outcome: 'recovered' });
    expect(
      (await runCli([...withConfig('admin', 'incidents', '--runbook', 'databaseConnection', '--target', fx.api), '--json'])).json,
    ).toEqual([]);
  });

  it('refuses to start a runbook on a target where it is already running', async () => {
    // databaseConnection waits for an approval: it is still running when asked again.
    const first = await runCli(withConfig('admin', 'run', 'databaseConnection', '--target', fx.db, '--as', 'bob'));
    expect(first.code).toBe(0);
    const workflowId = incidentWorkflowId('databaseConnection', fx.db);
    expect(first.stdout).toContain(`follow it: remediate show ${workflowId}`);
    const again = await runCli(withConfig('admin', 'run', 'databaseConnection', '--target', fx.db, '--as', 'alice'));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`runbook 'databaseConnection' on '${fx.db}' is already running (workflow ${workflowId})`);
    await h.client.workflow.getHandle(workflowId).terminate('test finished');
  });
});
