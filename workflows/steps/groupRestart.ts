// A runbook's `groupRestart` step: the seeds' "full stack restart" (`docker-compose down && up -d`)
// as an ordered restart of configured targets, each verified before the next is touched, so that the
// database that does not come back is named before the app that needs it is restarted against it.
// Each restart is the `restart` step's own: the guard's anti-flap allowance and a destructive slot,
// dry-run, verification within the deadline; only the slot's key tells the targets apart.
import { targetActivities } from './activities.js';
import { cap } from './incident.js';
import { restartOnce, restartWithRetries, type RestartOutcome } from './restartWithRetries.js';
import { approver, outputs, StepFailed, type StepCall, type StepRun } from './stepCall.js';

interface TargetResult extends RestartOutcome {
  target: string;
}

export async function groupRestart({ run, step, params }: StepCall<'groupRestart'>): Promise<StepRun> {
  const { incident, engine } = run.rb;
  const input = run.input;
  const by = params.approvedBy ? approver(run, params.approvedBy) : undefined;
  // Every target resolved before any is touched: a group that cannot finish does not start.
  const refs = params.targets.map((name) => {
    const ref = input.targets.find((t) => t.name === name);
    if (!ref) throw new StepFailed(`target '${name}' was not planned for this run`);
    return ref;
  });
  const guardrails = { ...input.guardrails, restartAttempts: params.attempts };
  const reason = `${input.alert.name}: group restart ${step.id}${by ? `, approved by ${by}` : ''}`;
  const results: TargetResult[] = [];
  let stopped = '';
  for (const ref of refs) {
    if (incident.resolved) {
      stopped = `the alert resolved before '${ref.name}' was restarted`;
      break;
    }
    const plan = { target: ref.name, guardrails, reason, dryRun: input.dryRun, slotKey: `${step.id}/${ref.name}` };
    const on = targetActivities(ref.queue);
    let r: RestartOutcome;
    if (by) {
      const once = await restartOnce(incident, on, engine, plan, { attempt: 1, actor: by, automatic: false });
      r = { recovered: once.kind === 'recovered', attempts: once.kind === 'refused' ? 0 : 1, detail: once.detail };
    } else {
      r = await restartWithRetries(incident, on, engine, plan);
    }
    results.push({ target: ref.name, recovered: r.recovered, attempts: r.attempts, detail: cap(r.detail, 300) });
    if (!r.recovered) break;
  }

  const restarted = results.filter((r) => r.recovered).map((r) => r.target);
  const failed = results.find((r) => !r.recovered);
  const untouched = refs.slice(results.length).map((r) => r.name);
  const recovered = restarted.length === refs.length;
  const parts = [
    recovered ? `all ${refs.length} back, in order: ${restarted.join(', ')}` : restarted.length ? `back: ${restarted.join(', ')}` : '',
    failed ? `'${failed.target}' did not come back: ${failed.detail}` : '',
    stopped,
    untouched.length ? `not restarted: ${untouched.join(', ')}` : '',
  ].filter(Boolean);
  const detail = cap(parts.join('; '), 1_000);
  incident.record(recovered ? 'group restarted' : 'group restart stopped', detail, by ?? 'engine');
  return outputs({ recovered, restarted, failedTarget: failed?.target ?? '', results, detail });
}
