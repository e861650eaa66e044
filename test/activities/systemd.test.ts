// Runs the systemd activities inside the stack's systemd container through `docker exec`, the way
// a host agent on that host runs them, against units this file creates and removes.
import { execFile } from 'node:child_process';
import { access, readdir, readFile, rm } from 'node:fs/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimeoutError } from '../../activities/failures.js';
import {
  createSystemdActivities,
  dockerExecRunner,
  localRunner,
  unitNameProblem,
  validUnitName,
  type CommandRunner,
} from '../../activities/systemd.js';
import { failureOf } from '../support/net.js';
import { stack } from '../support/stack.js';
import { until } from '../support/wait.js';

const web = 't-systemd-web.service';
const slow = 't-systemd-slow.service';
const broken = 't-systemd-broken.service';
const missing = 't-systemd-missing.service';
const masked = 't-systemd-masked.service';
const healthUrl = 'http://127.0.0.1:28101/health';

const units: Record<string, string> = {
  [web]: `[Unit]
Description=t-systemd-web test httpd
[Service]
ExecStart=/bin/busybox httpd -f -p 127.0.0.1:28101 -h /www
Restart=always
RestartSec=1
`,
  // Its start job lasts a minute: a `systemctl restart` of it hangs.
  [slow]: `[Unit]
Description=t-systemd-slow test unit that takes a minute to start
[Service]
ExecStartPre=/bin/sleep 60
ExecStart=/bin/sleep infinity
`,
  [broken]: `[Unit]
Description=t-systemd-broken test unit that cannot start
[Service]
Type=oneshot
ExecStart=/bin/false
`,
};

let container: string;
let run: CommandRunner;

/** docker itself, for setting the scene; the activities go through dockerExecRunner only. */
function docker(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('docker', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      if (typeof code !== 'number') return reject(err);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

async function inContainer(...args: string[]): Promise<string> {
  const out = await docker(['exec', container, ...args]);
  if (out.code !== 0) throw new Error(`${args.join(' ')} exited ${out.code}: ${out.stderr}`);
  return out.stdout;
}

/** Command lines of the processes running in the container (busybox has ps, not pgrep). */
async function processes(): Promise<string> {
  const ps = await inContainer('/bin/busybox', 'ps', '-o', 'args');
  expect(ps).toContain('/lib/systemd/systemd');
  return ps;
}

async function health(): Promise<number | string> {
  try {
    const res = await fetch(healthUrl, { signal: AbortSignal.timeout(2_000) });
    return res.status;
  } catch (err) {
    return String((err as { cause?: { code?: string } }).cause?.code ?? err);
  }
}

function activities(timeoutMs = 20_000, runner: CommandRunner = run) {
  return createSystemdActivities({ run: runner, timeoutMs, outputBytes: 64 * 1024 });
}

beforeAll(async () => {
  container = stack().systemdContainer;
  run = dockerExecRunner(container);
  for (const [name, text] of Object.entries(units)) {
    const out = await docker(['exec', '-i', container, 'tee', `/etc/systemd/system/${name}`], text);
    if (out.code !== 0) throw new Error(`writing ${name} failed: ${out.stderr}`);
  }
  await inContainer('systemctl', 'daemon-reload');
  await inContainer('systemctl', 'start', web);
});

afterAll(async () => {
  if (!container) return;
  await docker(['exec', container, 'systemctl', 'stop', web, slow, broken]);
  await docker(['exec', container, 'rm', '-f', ...Object.keys(units).map((u) => `/etc/systemd/system/${u}`)]);
  await docker(['exec', container, 'systemctl', 'unmask', masked]);
  await docker(['exec', container, 'systemctl', 'daemon-reload']);
  await docker(['exec', container, 'systemctl', 'reset-failed', web, slow, broken]);
});

describe('unit status', () => {
  it('reports a running unit as active/running with its main PID and when it started', async () => {
    const s = await activities().unitStatus(web);
    expect(s).toMatchObject({ unit: web, loadState: 'loaded', activeState: 'active', subState: 'running' });
    expect(s.mainPid).toBeGreaterThan(1);
    expect(await inContainer('cat', `/proc/${s.mainPid}/comm`)).toMatch(/busybox|httpd/);
    expect(s.since).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Math.abs(Date.now() - Date.parse(s.since!))).toBeLessThan(10 * 60_000);
    expect(s.nRestarts).toBe(0);
  });

  it('reports a stopped unit as inactive with no main process', async () => {
    await inContainer('systemctl', 'stop', web);
    const s = await activities().unitStatus(web);
    expect(s).toMatchObject({ activeState: 'inactive', subState: 'dead', mainPid: 0 });
    expect(await health()).toBe('ECONNREFUSED');
    await inContainer('systemctl', 'start', web);
  });

  it('names a unit that does not exist in a non-retryable targetNotFound', async () => {
    const f = await failureOf(activities().unitStatus(missing));
    expect(f.type).toBe('TargetNotFound');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(`status of systemd unit '${missing}' failed: no such unit`);

    const r = await failureOf(activities().restartUnit(missing, { dryRun: false }));
    expect(r.type).toBe('TargetNotFound');
    expect(r.message).toBe(`restart of systemd unit '${missing}' failed: no such unit`);
  });
});

describe('restart', () => {
  it('brings a stopped unit back to active with a new main process that answers health', async () => {
    const old = await activities().unitStatus(web);
    await inContainer('systemctl', 'stop', web);
    expect(await health()).toBe('ECONNREFUSED');

    const r = await activities().restartUnit(web, { dryRun: false });
    expect(r.dryRun).toBe(false);
    expect(r.before).toMatchObject({ activeState: 'inactive', mainPid: 0 });
    expect(r.after).toMatchObject({ activeState: 'active', subState: 'running' });
    expect(r.after!.mainPid).toBeGreaterThan(1);
    expect(r.after!.mainPid).not.toBe(old.mainPid);
    expect(r.summary).toContain(`restarted systemd unit '${web}'`);
    // Fails the test unless the unit answers 200 within 15 s.
    await until('health 200', 15_000, async () => ((await health()) === 200 ? true : undefined));
  });

  it('replaces the main process of a running unit and clears the count of automatic restarts', async () => {
    const first = await activities().unitStatus(web);
    await inContainer('/bin/busybox', 'kill', '-9', String(first.mainPid));
    // Restart=always brings it back by itself: that is what NRestarts counts.
    const revived = await until('automatic restart', 15_000, async () => {
      const s = await activities().unitStatus(web);
      return s.activeState === 'active' && s.mainPid > 0 && s.mainPid !== first.mainPid ? s : undefined;
    });
    expect(revived.nRestarts).toBe(1);

    const r = await activities().restartUnit(web, { dryRun: false });
    expect(r.before.mainPid).toBe(revived.mainPid);
    expect(r.after!.activeState).toBe('active');
    expect(r.after!.mainPid).not.toBe(revived.mainPid);
    // A restart asked for by hand resets the counter systemd keeps for Restart=.
    expect(r.after!.nRestarts).toBe(0);
    // Fails the test unless the unit answers 200 within 15 s.
    await until('health 200', 15_000, async () => ((await health()) === 200 ? true : undefined));
  });

  it('in dry-run reports what it would do and leaves the main process alone', async () => {
    const before = await activities().unitStatus(web);
    const r = await activities().restartUnit(web, { dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.after).toBeUndefined();
    expect(r.before.mainPid).toBe(before.mainPid);
    expect(r.summary).toBe(`dry run: would restart systemd unit '${web}' (now active/running, MainPID ${before.mainPid})`);
    const later = await activities().unitStatus(web);
    expect(later.mainPid).toBe(before.mainPid);
    expect(later.since).toBe(before.since);
  });

  it('returns a unit that fails to start as a failed result for the caller to verify, not as an error', async () => {
    const r = await activities().restartUnit(broken, { dryRun: false });
    expect(r.after).toMatchObject({ activeState: 'failed', subState: 'failed', mainPid: 0, execMainStatus: 1 });
    expect(r.summary).toContain(`restart of systemd unit '${broken}' did not succeed`);
    expect(r.summary).toContain('Job for t-systemd-broken.service failed');
  });

  it('refuses to restart a masked unit, even in dry-run, as non-retryable', async () => {
    await inContainer('systemctl', 'mask', masked);
    for (const dryRun of [true, false]) {
      const f = await failureOf(activities().restartUnit(masked, { dryRun }));
      expect(f.type).toBe('BadInput');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toBe(`restart of systemd unit '${masked}' refused: the unit is masked`);
    }
  });

  it('gives up on a restart that hangs at the timeout, as a retryable failure, and leaves nothing running', async () => {
    const started = Date.now();
    const f = await failureOf(activities(1_500).restartUnit(slow, { dryRun: false }));
    const took = Date.now() - started;
    expect(f.type).toBe('Transient');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(
      new RegExp(`^restart of systemd unit '${slow}' failed: systemctl in container '${container}' timed out after 1500 ms`),
    );
    expect(took).toBeGreaterThanOrEqual(1_500);
    expect(took).toBeLessThan(6_000);
    // The systemctl inside the container is gone too, not just the docker client.
    expect(await processes()).not.toContain(`systemctl restart -- ${slow}`);
    await inContainer('systemctl', 'stop', slow);
  });
});

describe('restart on a retry of the activity', () => {
  type Restart = Awaited<ReturnType<ReturnType<typeof activities>['restartUnit']>>;
  /** Attempt 2 of a restart activity first scheduled at `scheduledMs`, as Temporal runs it after a timed-out attempt. */
  const secondAttempt = (unit: string, scheduledMs: number, timeoutMs = 20_000) =>
    new MockActivityEnvironment({ attempt: 2, scheduledTimestampMs: scheduledMs, currentAttemptScheduledTimestampMs: Date.now() }).run(
      activities(timeoutMs).restartUnit,
      unit,
      { dryRun: false },
    ) as Promise<Restart>;

  /** What a second start job would change: a new invocation, a new ExecStartPre process. */
  const invocation = async (unit: string) => (await inContainer('systemctl', 'show', '-p', 'InvocationID,ControlPID', '--', unit)).trim();

  it('leaves the start job of a slow unit that the timed-out first attempt left running alone', async () => {
    const scheduled = Date.now();
    // Attempt 1: systemctl is killed at the timeout; the start job it queued goes on (a minute of ExecStartPre).
    const f = await failureOf(activities(1_500).restartUnit(slow, { dryRun: false }));
    expect(f.message).toContain('timed out after 1500 ms');
    const starting = await activities().unitStatus(slow);
    expect(starting.activeState).toBe('activating');
    const job = await invocation(slow);
    expect(job).toMatch(/ControlPID=[1-9]/);

    try {
      // Another `systemctl restart` would replace the job and wait for the new one: over this timeout.
      const r = await secondAttempt(slow, scheduled, 5_000);

      expect(r.dryRun).toBe(false);
      expect(r.summary).toBe(
        `not restarted again: the restart of attempt 1 is under way (systemd unit '${slow}' activating since ${starting.since}; activating/start-pre)`,
      );
      expect(r.after).toMatchObject({ activeState: 'activating', since: starting.since });
      expect(await invocation(slow)).toBe(job);
      expect((await activities().unitStatus(slow)).since).toBe(starting.since);
    } finally {
      await inContainer('systemctl', 'stop', slow);
    }
  });

  it('leaves alone a unit the first attempt restarted: active since after the attempt began, same main process', async () => {
    const scheduled = Date.now();
    await activities().restartUnit(web, { dryRun: false });
    const restarted = await activities().unitStatus(web);
    expect(restarted.activeState).toBe('active');
    expect(Date.parse(restarted.since!)).toBeGreaterThanOrEqual(scheduled);

    const r = await secondAttempt(web, scheduled);

    expect(r.summary).toBe(
      `not restarted again: the restart of attempt 1 took effect (systemd unit '${web}' active since ${restarted.since}; active/running, MainPID ${restarted.mainPid})`,
    );
    const now = await activities().unitStatus(web);
    expect(now.mainPid).toBe(restarted.mainPid);
    expect(now.since).toBe(restarted.since);
  });

  it('restarts a unit that has been active since before the first attempt began', async () => {
    const before = await activities().unitStatus(web);
    expect(before.activeState).toBe('active');
    await new Promise((r) => setTimeout(r, 20));

    const r = await secondAttempt(web, Date.now());

    expect(r.summary).toContain(`restarted systemd unit '${web}'`);
    expect(r.after!.activeState).toBe('active');
    expect(r.after!.mainPid).not.toBe(before.mainPid);
  });

  it('starts a unit that stopped after the first attempt restarted it', async () => {
    const scheduled = Date.now();
    await activities().restartUnit(web, { dryRun: false });
    await inContainer('systemctl', 'stop', web);

    const r = await secondAttempt(web, scheduled);

    expect(r.before).toMatchObject({ activeState: 'inactive', mainPid: 0 });
    expect(r.after).toMatchObject({ activeState: 'active', subState: 'running' });
    expect(r.summary).toContain(`restarted systemd unit '${web}'`);
    await until('health 200', 15_000, async () => ((await health()) === 200 ? true : undefined));
  });
});

describe('journal tail', () => {
  it("shows the unit's starts, oldest first, with ISO timestamps", async () => {
    const t = await activities().journalTail(web, { lines: 200, maxBytes: 64 * 1024 });
    const started = t.lines.filter((l) => l.includes(`Started ${web}`));
    // Started at setup, by the restart tests, and once by Restart=always.
    expect(started.length).toBeGreaterThanOrEqual(3);
    const stamps = t.lines.map((l) => Date.parse(l.split(' ')[0]!.replace(/([+-]\d\d)(\d\d)$/, '$1:$2')));
    expect(stamps.every((s) => !Number.isNaN(s))).toBe(true);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
    expect(t.text).toBe(t.lines.join('\n'));
  });

  it('returns only the newest lines asked for', async () => {
    const all = await activities().journalTail(web, { lines: 200, maxBytes: 64 * 1024 });
    const two = await activities().journalTail(web, { lines: 2, maxBytes: 64 * 1024 });
    expect(two.lines).toEqual(all.lines.slice(-2));
  });

  it('keeps the newest whole lines when the byte cap cuts the tail', async () => {
    const all = await activities().journalTail(web, { lines: 200, maxBytes: 64 * 1024 });
    expect(Buffer.byteLength(all.text)).toBeGreaterThan(600);
    const cut = await activities().journalTail(web, { lines: 200, maxBytes: 400 });
    expect(Buffer.byteLength(cut.text)).toBeLessThanOrEqual(400);
    expect(cut.lines.length).toBeGreaterThan(0);
    expect(cut.lines).toEqual(all.lines.slice(-cut.lines.length));
    expect(cut.text.startsWith('[older lines cut at 400 bytes]\n')).toBe(true);
  });

  it('honours since: nothing is newer than the future', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const t = await activities().journalTail(web, { lines: 50, since: future, maxBytes: 64 * 1024 });
    expect(t.lines).toEqual([]);
    const recent = await activities().journalTail(web, { lines: 50, since: '-1h', maxBytes: 64 * 1024 });
    expect(recent.lines.some((l) => l.includes(`Started ${web}`))).toBe(true);
  });

  it('refuses a since that journalctl would not understand', async () => {
    const f = await failureOf(activities().journalTail(web, { lines: 5, since: '--flush', maxBytes: 1024 }));
    expect(f.type).toBe('BadInput');
    expect(f.nonRetryable).toBe(true);
  });
});

describe('unit names', () => {
  const invalid = ['foo;rm -rf /', '-H', '../x.service', 'web', 'x@.service', 'a b.service', `${'a'.repeat(250)}.service`, 'x.service\n-H'];

  it.each(invalid)('refuses %j as non-retryable badInput without running anything', async (name) => {
    const calls: string[][] = [];
    const counting: CommandRunner = (cmd, args, opts) => {
      calls.push([cmd, ...args]);
      return run(cmd, args, opts);
    };
    const a = activities(20_000, counting);
    for (const work of [a.unitStatus(name), a.restartUnit(name, { dryRun: false }), a.journalTail(name, { lines: 5, maxBytes: 1024 })]) {
      const f = await failureOf(work);
      expect(f.type).toBe('BadInput');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain(`systemd unit '${name.replace(/\n/g, '?').slice(0, 80)}`);
      expect(f.message).toContain('not a valid unit name');
    }
    expect(calls).toEqual([]);
  });

  it('accepts the names systemd itself uses', () => {
    for (const name of [
      'getty@tty1.service',
      'sys-devices-virtual-net-lo.device',
      'var-lib\\x2ddata.mount',
      'a:b_c.socket',
      'user@1000.service',
      'x@a@b.timer',
      `${'a'.repeat(247)}.service`,
    ]) {
      expect(unitNameProblem(name), name).toBeUndefined();
      expect(validUnitName(name)).toBe(name);
    }
  });
});

describe('command runners', () => {
  it('cuts a local command that hangs at the timeout', async () => {
    const started = Date.now();
    await expect(localRunner('sleep', ['30'], { timeoutMs: 300, maxBytes: 1024 })).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops a local command at maxBytes and says the output was truncated and the command did not finish', async () => {
    const out = await localRunner('head', ['-c', '1000000', '/dev/zero'], { timeoutMs: 5_000, maxBytes: 4096 });
    expect(out.truncated).toBe(true);
    expect(out.stoppedAtLimit).toBe(true);
    expect(out.stdout.length).toBe(4096);
    expect((await localRunner('head', ['-c', '4096', '/dev/zero'], { timeoutMs: 5_000, maxBytes: 4096 })).stoppedAtLimit).toBeUndefined();
  });

  it('gives a local command no stdin: one that reads it sees its end at once', async () => {
    expect(await localRunner('cat', [], { timeoutMs: 2_000, maxBytes: 1024 })).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('stops the children of a local command stopped at maxBytes along with it', async () => {
    const n = 100_000 + Math.floor(Math.random() * 800_000);
    const marker = `/tmp/t-systemd-orphan-${n}`;
    try {
      const script = `(sleep 2.${n}; touch ${marker}) & head -c 100000 /dev/zero; sleep 600.${n}`;
      const out = await localRunner('/bin/sh', ['-c', script], { timeoutMs: 10_000, maxBytes: 4096 });
      expect(out.stoppedAtLimit).toBe(true);
      await new Promise((r) => setTimeout(r, 3_500));
      await expect(access(marker)).rejects.toThrow();
      const left: string[] = [];
      for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes(`.${n}`)) left.push(cmdline.replace(/\0/g, ' '));
      }
      expect(left).toEqual([]);
    } finally {
      await rm(marker, { force: true });
    }
  });

  it('passes exit codes through and gives children only a minimal environment', async () => {
    expect((await localRunner('false', [], { timeoutMs: 5_000, maxBytes: 1024 })).code).toBe(1);
    process.env.T_SYSTEMD_SECRET_PROBE = 'do-not-leak';
    try {
      const env = (await localRunner('env', [], { timeoutMs: 5_000, maxBytes: 64 * 1024 })).stdout;
      expect(env).toContain('LANG=C');
      expect(env).not.toContain('do-not-leak');
    } finally {
      delete process.env.T_SYSTEMD_SECRET_PROBE;
    }
  });

  it('reports a container that does not exist as a non-retryable targetNotFound', async () => {
    const a = activities(20_000, dockerExecRunner('t-systemd-no-such-container'));
    const f = await failureOf(a.unitStatus(web));
    expect(f.type).toBe('TargetNotFound');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain(`status of systemd unit '${web}' failed: `);
    expect(f.message).toContain('No such container: t-systemd-no-such-container');
  });

  it('cuts a command that hangs inside the container at the timeout', async () => {
    const started = Date.now();
    await expect(run('sleep', ['30.281'], { timeoutMs: 500, maxBytes: 1024 })).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(await processes()).not.toContain('sleep 30.281');
  });
});
