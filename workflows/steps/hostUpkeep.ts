// A runbook's `housekeeping` and `logrotate` steps: the weekly clean-up the seeds do by hand on the
// host (`find … -mtime +30 … rm`, `logrotate -f`), by the target's host agent, on what its config
// names. Neither takes a destructive slot: neither stops a service (put a logrotate whose
// postrotate reloads one behind an approval).
import { cap } from './incident.js';
import { outputs, type StepCall, type StepRun } from './stepCall.js';

function context(run: StepCall<'housekeeping' | 'logrotate'>['run'], stepId: string) {
  const m = run.input.maintenance;
  return {
    incidentId: run.rb.incident.workflowId,
    reason: m ? `maintenance '${m.schedule}': step ${stepId}` : `${run.input.alert.name}: step ${stepId}`,
    actor: run.input.startedBy === 'schedule' ? 'engine' : run.input.startedBy,
    dryRun: run.input.dryRun,
  };
}

export async function housekeeping({ run, step, params, target, on }: StepCall<'housekeeping'>): Promise<StepRun> {
  const r = await on().housekeepFiles(target.name, { ...context(run, step.id), olderThanDays: params.olderThanDays });
  run.rb.incident.record(r.dryRun ? 'housekeeping (dry-run)' : 'housekeeping', r.summary);
  return outputs({ files: r.files, bytes: r.bytes, listed: r.listed, complete: r.complete, summary: cap(r.summary, 2_000) });
}

export async function logrotate({ run, step, target, on }: StepCall<'logrotate'>): Promise<StepRun> {
  const r = await on().rotateLogs(target.name, context(run, step.id));
  run.rb.incident.record(r.dryRun ? 'logrotate (dry-run)' : 'logs rotated', r.summary);
  return outputs({ output: cap(r.output, 4_000), summary: r.summary });
}
