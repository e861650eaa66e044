// The step catalog: what each `uses:` of a runbook file does, built from the same step functions
// the compiled runbooks use (verify, restartWithRetries, diagnose, escalate, awaitApproval, the
// maintenance window), so a runbook file keeps every guarantee: verification, anti-flap, the
// destructive-action cap, dry-run, capped output, pages sent once.
import { cleansUpCutSteps, httpOutputCode, takesDayChanges, interpreterChecksAhead, isPatched, takesLaterChanges } from './patchesFirst.js';
import { CancellationScope, proxyActivities, sleep } from '@temporalio/workflow';
import { evaluateCondition, renderTemplate, type ExpressionContext } from '../../config/expressions.js';
import { safeUrl } from '../../config/safeUrl.js';
import type { ActionStep, StepParams, StepType } from '../../config/runbookSchema.js';
import type { EngineActivities } from '../../activities/contract.js';
import type { RunbookResume, RunbookRunInput, TargetRef } from '../messages.js';
import type { RunState } from '../runbook.js';
import { ContinueRun } from './continuation.js';
import { commandActivity, targetActivities, type TargetSteps } from './activities.js';
import { awaitApproval } from './awaitApproval.js';
import { withDestructiveSlot } from './destructiveSlot.js';
import { diagnose } from './diagnose.js';
import { resolve, trigger } from './escalate.js';
import { escalateByPolicy } from './escalationPolicy.js';
import { cap, capTail, describeFailure } from './incident.js';
import { dryRunSilenceId, MaintenanceWindow, suppression } from './maintenanceWindow.js';
import { restartOnce, restartStepKey, restartWithRetries } from './restartWithRetries.js';
import { verify, verifyFrom, verifyWithin } from './verify.js';
import { askAhead, takeCheck, takeClaim, windowFromClaim } from './checksAhead.js';
import { firstReadsTogether } from './readsTogether.js';
import { checkDependencies, metricRequest, pollMetric, withHostDiagnostics } from './probes.js';
import { pageText, title } from './runbook.js';
import { approver, maxOutputText, outputs, StepFailed, type Impl, type StepCall, type StepRun } from './stepCall.js';
import { groupRestart } from './groupRestart.js';
import { housekeeping, logrotate } from './hostUpkeep.js';

export { StepFailed, type Ending, type StepRun } from './stepCall.js';

const catalog: { [T in StepType]: Impl<T> } = {
  async checkSuppression({ run, step, target, on }) {
    // The alert's labels, when the check is of the target the alert is about (silences are written
    // against alerts: alertname="…", severity!="critical").
    const { input } = run;
    const alertLabels =
      takesDayChanges() && input.definition.kind === 'incident' && target.name === input.target && Object.keys(input.alert.labels).length
        ? input.alert.labels
        : undefined;
    const s = await firstReadsTogether(() => {
      // Runs started before asked the check and the claim only when their own steps came.
      if (isPatched(interpreterChecksAhead)) askAhead(run, step, target, on());
      return suppression(run.rb.incident, run.rb.engine, target.name, alertLabels, windowFromClaim(run, target.name));
    });
    return outputs({ suppressed: s.suppressed, reason: s.reason ?? '' });
  },

  async verify({ run, step, params, target, on }) {
    const g = run.input.guardrails;
    if (params.within === undefined) {
      const asked = takeCheck(run, step.id);
      const r = asked ? await verifyFrom(run.rb.incident, asked) : await verify(run.rb.incident, on(), target.name);
      if (takesLaterChanges()) {
        run.uncheckable ??= {};
        if (r.uncheckable) run.uncheckable[target.name] = r.detail;
        else delete run.uncheckable[target.name];
      }
      return outputs({ healthy: r.healthy, detail: r.detail });
    }
    const r = await verifyWithin(run.rb.incident, on(), target.name, {
      deadlineMs: params.within === 'deadline' ? g.verifyDeadlineMs : params.within,
      intervalMs: params.every ?? g.verifyIntervalMs,
    });
    return outputs({ healthy: r.healthy, detail: r.detail });
  },

  async restart({ run, step, params, target, on }) {
    const { incident, engine } = run.rb;
    const input = run.input;
    const guardrails = params.attempts ? { ...input.guardrails, restartAttempts: params.attempts } : input.guardrails;
    const key = restartStepKey(step.id, target.name);
    if (params.approvedBy) {
      const by = approver(run, params.approvedBy);
      const r = await restartOnce(
        incident,
        on(),
        engine,
        { target: target.name, guardrails, reason: `${input.alert.name}: approved by ${by}`, dryRun: input.dryRun, ...key },
        { attempt: 1, actor: by, automatic: false },
      );
      return outputs({ recovered: r.kind === 'recovered', attempts: 1, detail: r.detail });
    }
    // "Not healthy" because the engine could not ask (its credentials refused, say) is no reason to
    // restart: the target may be fine. The step ends unrecovered, so the runbook goes on to
    // diagnose and page; its claim asked ahead is withdrawn with the run. An approved restart is
    // an operator's call and goes ahead.
    const blind = run.uncheckable?.[target.name];
    if (blind !== undefined) {
      const detail = `not restarted: the engine cannot check '${target.name}' (${blind})`;
      incident.record('restart skipped', detail);
      return outputs({ recovered: false, attempts: 0, detail });
    }
    const ahead = takeClaim(run, step.id);
    const r = await restartWithRetries(incident, on(), engine, {
      target: target.name,
      guardrails,
      reason: `${input.alert.name}: '${target.name}' is down`,
      dryRun: input.dryRun,
      ...key,
      ...(ahead ? { ahead } : {}),
    });
    return outputs({ recovered: r.recovered, attempts: r.attempts, detail: r.detail });
  },

  async diagnose({ run, params, target, on }) {
    const d = await diagnose(run.rb.incident, on(), target.name, { withHealth: params.health });
    const wanted = params.sections?.map((w) => w.toLowerCase());
    const sections = wanted ? d.sections.filter((s) => wanted.some((w) => s.title.toLowerCase().includes(w))) : d.sections;
    run.diagnostics = wanted ? { ...d, sections } : d;
    return outputs({ summary: d.summary, ok: sections.every((s) => s.ok), sections: sections.map((s) => s.title) });
  },

  async logs({ run, params, target, on }) {
    const r = await on().targetLogs(target.name, {
      tail: params.tail,
      ...(params.since !== undefined ? { sinceMs: params.since } : {}),
      ...(params.pattern !== undefined ? { pattern: params.pattern } : {}),
      ...(params.file !== undefined ? { file: params.file } : {}),
    });
    run.rb.incident.record(
      'logs',
      `${r.matched} of ${r.lines} lines${params.file ? ` of log file ${params.file}` : ''}${params.pattern ? ` matching /${params.pattern}/` : ''}`,
    );
    return outputs({ text: capTail(r.text, maxOutputText), lines: r.lines, matched: r.matched });
  },

  async http({ run, params, step, text }) {
    const write = !['GET', 'HEAD'].includes(params.method);
    // A write is tried once: repeating a POST is the runbook's decision (`retry`), never a transport's.
    const http = proxyActivities<EngineActivities>({
      startToCloseTimeout: params.timeout + 5_000,
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: write ? 1 : 3 },
    });
    const r = await http.httpRequest({
      method: params.method,
      url: params.url,
      headers: params.headers,
      ...(params.body !== undefined ? { body: text(params.body) } : {}),
      expectStatus: params.expectStatus,
      timeoutMs: params.timeout,
      incidentId: run.rb.incident.workflowId,
      actor: run.input.startedBy,
      dryRun: run.input.dryRun,
    });
    // The timeline and errors reach pages and history: the URL without credentials or query.
    const shown = safeUrl(params.url);
    run.rb.incident.record(r.dryRun ? 'http (dry-run)' : 'http', `${params.method} ${shown} → ${r.dryRun ? 'not sent' : r.status}`);
    if (!r.ok)
      throw new StepFailed(`${step.id}: ${params.method} ${shown} answered ${r.status}, expected ${params.expectStatus.join(' or ')}`);
    // The HTTP status is `code`: an output named `status` would overwrite the step's own status
    // ('ok'), so `steps.x.status == 'ok'` would be false for a call that succeeded. Runs started
    // before keep the old shape they replay with.
    if (!isPatched(httpOutputCode)) return outputs({ status: r.status, ok: r.ok, body: cap(r.body, maxOutputText) });
    return outputs({ code: r.status, ok: r.ok, body: cap(r.body, maxOutputText) });
  },

  async runAction({ run, params, target, on }) {
    const by = params.approvedBy ? approver(run, params.approvedBy) : run.input.startedBy;
    const done = await on().runTargetAction(target.name, {
      incidentId: run.rb.incident.workflowId,
      reason: `${run.input.alert.name}: ${params.approvedBy ? `approved by ${by}` : `run by ${by}`}`,
      actor: by,
      dryRun: run.input.dryRun,
    });
    run.rb.incident.record('action ran', done.summary, by);
    return outputs({ summary: done.summary });
  },

  async backup(call) {
    const r = await slotted(call, 'backup', (t, ctx) => t.backupTarget(call.target.name, ctx));
    call.run.rb.incident.record('backed up', r.summary);
    return outputs({ summary: r.summary, file: r.file ?? '', bytes: r.bytes ?? 0, sha256: r.sha256 ?? '' });
  },

  async maintain(call) {
    // The option goes to the activity only when set: a run started before it existed calls it as it did.
    const r = await slotted(call, 'maintenance', (t, ctx) =>
      call.params.analyzeOnly ? t.maintainTarget(call.target.name, ctx, { analyzeOnly: true }) : t.maintainTarget(call.target.name, ctx),
    );
    call.run.rb.incident.record('maintained', r.summary);
    return outputs({ summary: r.summary });
  },

  async openWindow({ run }) {
    const m = run.input.maintenance;
    if (!m) throw new StepFailed('openWindow needs a maintenance run (started by a schedule)');
    const window = new MaintenanceWindow(run.rb.incident, run.rb.engine, {
      schedule: m.schedule,
      targets: m.targets,
      windowMs: m.windowMs,
      silence: m.silence,
      dryRun: run.input.dryRun,
    });
    run.window = window;
    await window.open();
    return outputs({ silenceId: window.silenceId ?? '' });
  },

  async closeWindow({ run }) {
    await run.window?.close();
    return outputs({});
  },

  async silence({ run, params, target, text }) {
    const matchers = Object.entries(target.labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    if (matchers.length === 0) throw new StepFailed(`target '${target.name}' has no labels configured: a silence would match every alert`);
    const create = async () => {
      const s = await run.rb.engine.createSilence({
        matchers,
        durationMs: params.duration,
        createdBy: 'remediation-engine',
        comment: text(params.comment),
        dryRun: run.input.dryRun,
      });
      run.rb.incident.record('silenced', `${s.silenceId}${s.dryRun ? ' (dry-run)' : ''} for '${target.name}'`);
      return s;
    };
    // Made whole even when a timeout or a cancellation comes meanwhile: half-made, nobody would know its id.
    const s = await (cleansUpCutSteps() ? CancellationScope.nonCancellable(create) : create());
    if (takesDayChanges() && CancellationScope.current().consideredCancelled && !s.dryRun) {
      // The step was cut off while Alertmanager took it: it fails (or the run ends), and a step
      // that failed leaves nothing behind. Left to a finally, a runbook without one would keep
      // the target's alerts silenced for the whole duration.
      try {
        const r = await CancellationScope.nonCancellable(() => run.rb.engine.expireSilence(s.silenceId, false));
        run.rb.incident.record(
          'silence expired',
          `${s.silenceId}${r.expired ? '' : ' (was already gone)'}: Alertmanager made it after the step was cut off`,
        );
        // No id to hand on (a cleanup reading steps.<id>.silenceId finds '' and has nothing to expire).
        return outputs({ silenceId: '' });
      } catch (err) {
        // The timeline names it to expire by hand; a cancelled run also hands the id on to its finally
        // (a timed-out step fails, and its outputs go with it).
        run.rb.incident.record(
          'silence not expired',
          `${s.silenceId}, made after the step was cut off, could not be expired (expire it in Alertmanager): ${describeFailure(err)}`,
        );
      }
    }
    return outputs({ silenceId: s.silenceId });
  },

  async expireSilence({ run, params, text }) {
    const id = text(params.silenceId);
    if (!id) return outputs({ expired: false });
    if (id === dryRunSilenceId && run.input.dryRun) {
      run.rb.incident.record('silence expired', 'nothing to expire: the dry run created no silence');
      return outputs({ expired: false });
    }
    const r = await run.rb.engine.expireSilence(id, run.input.dryRun);
    run.rb.incident.record('silence expired', `${id}${r.expired ? '' : ' (was already gone)'}`);
    return outputs({ expired: r.expired });
  },

  async notify({ run, params, text }) {
    const { incident, engine } = run.rb;
    if (params.event === 'resolve') {
      await resolve(incident, engine, text(params.text || params.title), run.input.dryRun);
      return outputs({ sent: incident.triggered.size > 0 });
    }
    const sent = await trigger(incident, engine, {
      channels: params.channels ?? run.input.escalation.levels[0]?.channels ?? [],
      key: params.key,
      severity: params.severity !== undefined ? text(params.severity) : run.input.alert.severity,
      title: text(params.title),
      text: text(params.text),
      dryRun: run.input.dryRun,
    });
    return outputs({ sent });
  },

  async escalate({ run, step, params, text, interruptWhen }) {
    const { rb } = run;
    const resumed = takeResume(run, step);
    // From the incident's start, levels already due are paged at once, in order.
    const startedAt = params.from === 'incident' ? Date.parse(rb.incident.startedAt) : Date.now();
    const progress = resumed?.escalation ?? { startedAt, paged: 0, ...(params.from === 'incident' ? { levelPagedAt: [] } : {}) };
    const end = await escalateByPolicy(
      rb.incident,
      rb.engine,
      {
        escalation: run.input.escalation,
        severity: run.input.alert.severity,
        title: title(rb),
        text: pageText(rb, run.diagnostics),
        dryRun: run.input.dryRun,
        progress,
        ...(interruptWhen ? { interruptWhen } : {}),
      },
      text(params.reason),
    );
    if (end === 'interrupted') throw new ContinueRun({ at: step.id, escalation: progress });
    return outputs({ end, acknowledgedBy: rb.incident.acknowledgement?.operator ?? '', levels: run.input.escalation.levels.length });
  },

  async approval({ run, step, params, text, interruptWhen }) {
    const { rb, input } = run;
    const resumed = takeResume(run, step);
    const body = pageText(rb, run.diagnostics);
    const r = await awaitApproval(
      rb.incident,
      rb.engine,
      {
        step: step.id,
        action: text(params.action),
        timeoutMs: params.timeout ?? input.guardrails.approvalTimeoutMs,
        channels: input.escalation.levels[0]?.channels ?? [],
        severity: input.alert.severity,
        text: params.lead ? `${text(params.lead)}\n\n${body}` : body,
        dryRun: input.dryRun,
      },
      { ...(resumed?.approval ? { resumeUntil: resumed.approval.timeoutAt } : {}), ...(interruptWhen ? { interruptWhen } : {}) },
    );
    if (r.kind === 'interrupted') throw new ContinueRun({ at: step.id, approval: { timeoutAt: r.timeoutAt } });
    return outputs({ decision: r.kind, by: 'by' in r ? r.by : '', reason: 'reason' in r ? r.reason : '' });
  },

  async sleep({ params }) {
    await sleep(params.duration);
    return outputs({});
  },

  async assert({ params, text, ctx }) {
    if (!evaluateCondition(params.that, ctx())) throw new StepFailed(text(params.message));
    return outputs({});
  },

  async waitUntil(call) {
    const { run, step, params, on, ctx } = call;
    const until = params.until ?? (params.check === 'metric' ? 'check.holds' : 'check.healthy');
    const started = Date.now();
    for (let polls = 1; ; polls++) {
      let check: Record<string, unknown>;
      if (params.check === 'metric') {
        const m = await pollMetric(
          run.rb.engine,
          metricRequest({ query: params.query!, op: params.op!, threshold: params.threshold! }, () => call.target),
        );
        check = { holds: m.holds, value: m.value, series: m.series, detail: m.detail };
      } else {
        const r = await verify(run.rb.incident, on(), call.target.name);
        check = { healthy: r.healthy, detail: r.detail };
      }
      const detail = String(check.detail);
      if (evaluateCondition(until, { ...ctx(), check })) {
        if (params.check === 'metric')
          run.rb.incident.record('condition met', `${step.id}: ${detail} after ${polls} check${polls === 1 ? '' : 's'}`);
        return outputs({ met: true, polls, detail });
      }
      const remaining = started + params.deadline - Date.now();
      if (remaining <= 0) {
        run.rb.incident.record(
          'deadline passed',
          `${step.id}: "${until}" did not hold after ${polls} checks${params.check === 'metric' ? `: ${detail}` : ''}`,
        );
        return outputs({ met: false, polls, detail });
      }
      await sleep(Math.min(params.every, remaining));
    }
  },

  async end({ params, text }) {
    return { ending: { outcome: params.outcome, detail: text(params.detail) } };
  },

  async metric(call) {
    const { run, params } = call;
    const r = await run.rb.engine.queryMetric(metricRequest(params, () => call.target));
    run.rb.incident.record('metric', r.detail);
    return outputs({ value: r.value, holds: r.holds, series: r.series, detail: r.detail });
  },

  async alerts({ run, params }) {
    const r = await run.rb.engine.firingAlerts({ labels: params.labels, silenced: params.silenced, limit: params.limit });
    run.rb.incident.record('alerts', r.count === 0 ? 'none firing' : `${r.count} firing: ${r.names.join(', ')}`);
    return outputs({ count: r.count, names: r.names, summary: r.summary });
  },

  async dependencies({ run, target }) {
    const r = await checkDependencies(run.rb.incident, target, run.input.targets);
    return outputs({ ok: r.ok, failed: r.failed, detail: r.detail });
  },

  async command({ run, step, params, target }) {
    const by = params.approvedBy ? approver(run, params.approvedBy) : run.input.startedBy;
    const readOnly = target.readOnlyCommands?.includes(params.command) ?? false;
    const r = await commandActivity(target.queue, readOnly)(target.name, {
      command: params.command,
      incidentId: run.rb.incident.workflowId,
      reason: `${run.input.alert.name}: step ${step.id}${params.approvedBy ? `, approved by ${by}` : ''}`,
      actor: by,
      dryRun: run.input.dryRun,
    });
    run.rb.incident.record(r.dryRun ? 'command (dry-run)' : 'command ran', r.summary, by);
    if (!r.dryRun && !params.expectExit.includes(r.exitCode)) {
      const why = r.stderr.trim().split('\n').pop() ?? '';
      throw new StepFailed(
        `${step.id}: '${params.command}' on '${target.name}' exited ${r.exitCode}, expected ${params.expectExit.join(' or ')}${why ? `: ${why.slice(0, 300)}` : ''}`,
      );
    }
    return outputs({ exitCode: r.exitCode, output: capTail(r.output, maxOutputText), stderr: capTail(r.stderr, 1_000), ran: !r.dryRun });
  },

  groupRestart,
  housekeeping,
  logrotate,

  async hostDiagnostics({ run, params, target, on }) {
    const d = await on().hostDiagnostics(target.name, {
      ...(params.sections ? { sections: params.sections } : {}),
      tcp: params.tcp,
      top: params.top,
    });
    run.diagnostics = withHostDiagnostics(run.diagnostics, d);
    run.rb.incident.record('host diagnostics', d.summary);
    return outputs({
      summary: cap(d.summary, 2_000),
      ok: d.sections.every((s) => s.ok),
      sections: d.sections.map((s) => s.title),
      ...d.figures,
    });
  },
};

/** Runs one action step of the catalog against its target. */
export function runStepType(
  run: RunState,
  step: ActionStep,
  target: () => TargetRef,
  ctx: () => ExpressionContext,
  interruptWhen?: () => boolean,
): Promise<StepRun> {
  const impl = catalog[step.uses] as Impl<StepType>;
  return impl({
    run,
    step,
    params: step.with as StepParams<StepType>,
    get target() {
      return target();
    },
    on: (longRunMs?: number, untilMs?: number) => targetActivities(target().queue, longRunMs, target().kind, untilMs),
    text: (template) => renderTemplate(template, ctx()),
    ctx,
    ...(interruptWhen ? { interruptWhen } : {}),
  });
}

/** The carried state of a resumed step, handed to it once. */
function takeResume(run: RunState, step: ActionStep): RunbookResume | undefined {
  const r = run.resume;
  if (!r || r.at !== step.id) return undefined;
  delete run.resume;
  return r;
}

/**
 * A long destructive call (backup, VACUUM, ANALYZE) holding a destructive slot: inside a maintenance window
 * it may take what is left of the window; otherwise an hour.
 */
async function slotted<R>(
  call: StepCall<'backup' | 'maintain'>,
  action: string,
  work: (t: TargetSteps, ctx: { incidentId: string; reason: string; actor: string; dryRun: boolean }) => Promise<R>,
): Promise<R> {
  const { run, target, on } = call;
  const remaining = run.window ? Math.max(1_000, run.window.endsAt - Date.now()) : 3_600_000;
  const reason = run.input.maintenance
    ? `maintenance '${run.input.maintenance.schedule}'`
    : `${run.input.runbook} (${run.rb.incident.workflowId})`;
  const slot = await withDestructiveSlot(
    run.rb.incident,
    run.rb.engine,
    {
      target: target.name,
      action,
      key: `${call.step.id}:${target.name}`,
      max: run.input.guardrails.maxConcurrentDestructive,
      leaseMs: remaining + 300_000,
      waitMs: remaining,
      dryRun: run.input.dryRun,
    },
    () => {
      const ctx = {
        incidentId: run.rb.incident.workflowId,
        reason,
        actor: run.input.startedBy === 'schedule' ? 'engine' : run.input.startedBy,
        dryRun: run.input.dryRun,
      };
      if (!run.window || !takesLaterChanges()) return work(on(remaining), ctx);
      // What is left once the slot is granted, not before the wait: the work, its retry included,
      // ends with the window, whose silence and guard entry end there too.
      const left = run.window.endsAt - Date.now();
      if (left <= 0) throw new StepFailed(`'${target.name}' not done: the maintenance window ended while it waited for a destructive slot`);
      return work(on(left, run.window.endsAt), ctx);
    },
  );
  if (!slot.ran) throw new StepFailed(`'${target.name}' not done: ${slot.reason}`);
  return slot.value;
}

export type { RunbookRunInput };
