// Diagnosis: gather what a human will want to see before they are paged, in parallel and capped,
// and attach the summary to the status. A diagnosis that fails is itself a finding, never a reason
// to stop the runbook.
import type { DiagnosticSection, Diagnostics } from '../../activities/contract.js';
import type { TargetSteps } from './activities.js';
import { cap, capTail, describeFailure, type Incident } from './incident.js';
import { describeChecks } from './verify.js';

/** Bounds what diagnosis adds to workflow history and to every page. */
const maxSections = 20;
const maxSectionText = 8_000;
const maxSummary = 2_000;

export interface DiagnosePlan {
  /** Also run the health checks (detailed health endpoint, pings) alongside the diagnosis. */
  withHealth: boolean;
}

export async function diagnose(incident: Incident, target: TargetSteps, name: string, plan: DiagnosePlan): Promise<Diagnostics> {
  incident.enter('diagnose');
  const [diagnosis, health] = await Promise.allSettled([
    target.diagnoseTarget(name),
    plan.withHealth ? target.verifyTarget(name) : Promise.resolve(undefined),
  ]);
  const sections: DiagnosticSection[] = [];
  const summary: string[] = [];
  if (plan.withHealth) {
    if (health.status === 'fulfilled' && health.value) {
      const text = describeChecks(health.value);
      sections.push({ title: 'health', ok: health.value.healthy, text });
      summary.push(`health: ${health.value.healthy ? 'ok' : text}`);
    } else if (health.status === 'rejected') {
      sections.push({ title: 'health', ok: false, text: describeFailure(health.reason) });
      summary.push(`health: check failed: ${describeFailure(health.reason)}`);
    }
  }
  if (diagnosis.status === 'fulfilled') {
    sections.push(...diagnosis.value.sections);
    if (diagnosis.value.summary) summary.push(diagnosis.value.summary);
  } else {
    sections.push({ title: 'diagnosis', ok: false, text: describeFailure(diagnosis.reason) });
    summary.push(`diagnosis failed: ${describeFailure(diagnosis.reason)}`);
  }
  const result: Diagnostics = {
    target: name,
    sections: sections.slice(0, maxSections).map((s) => ({ ...s, text: capTail(s.text, maxSectionText) })),
    summary: cap(summary.join('\n'), maxSummary),
  };
  incident.status.diagnosticsSummary = result.summary;
  incident.record('diagnosed', result.summary);
  return result;
}
