// What `remediate` prints for people. The same text whether the data came from the operator API or
// straight from Temporal (admin mode): the API serves the very objects these render.
import type { Operator } from '../../config/schema.js';
import type { RunbookStatus } from '../../workflows/messages.js';
import type { IncidentDetail, IncidentRow, ScheduleRow } from '../operators/operatorCommands.js';
import type { Whoami } from './operatorApiClient.js';
import { reportLimit } from '../operators/operatorCommands.js';
import type { IncidentReport } from '../reports/report.js';
import type { ClosedWindows, OpenWindow } from '../operators/maintenanceWindows.js';
import type { HeldSlot, ReleasedSlots } from '../operators/destructiveSlots.js';
import { formatRate, formatSpan, formatTime, renderTable, terminalSafe } from './table.js';

export function incidentsTable(rows: IncidentRow[]): string {
  if (rows.length === 0) return 'no incidents\n';
  return renderTable(
    ['WORKFLOW ID', 'STATUS', 'ALERT', 'SEVERITY', 'OUTCOME', 'STARTED', 'DURATION'],
    rows.map((r) => [
      r.workflowId,
      r.status.toLowerCase(),
      r.alert,
      r.severity,
      r.outcome || '-',
      formatTime(r.startTime),
      formatSpan(r.durationMs),
    ]),
  );
}

/** `remediate maintenance windows`: one row per open window, and what to do about one whose run ended. */
export function windowsTable(rows: OpenWindow[]): string {
  if (rows.length === 0) return 'no open maintenance windows\n';
  const table = renderTable(
    ['SCHEDULE', 'HELD BY', 'RUN', 'TARGETS', 'UNTIL'],
    rows.map((r) => [r.schedule, r.holder, r.status, r.targets.join(', '), formatTime(r.until)]),
  );
  const left = [...new Set(rows.filter((r) => r.status !== 'running').map((r) => r.schedule))];
  return left.length === 0
    ? table
    : `${table}${left.map((s) => `'${terminalSafe(s)}' is held by a run that ended: remediate maintenance close ${terminalSafe(s)}\n`).join('')}`;
}

/** What `remediate maintenance close` did (or, in a dry run, would do). */
export function closedWindowsText(c: ClosedWindows): string {
  const safe = terminalSafe;
  const would = c.dryRun ? 'would close' : 'closed';
  const lines = c.holders.map((h) => {
    const window =
      h.targets.length > 0 ? `window on ${h.targets.map(safe).join(', ')}${h.until ? ` (until ${formatTime(h.until)})` : ''}` : 'no window';
    return `${would} ${window}, left by workflow ${safe(h.workflowId)} (${safe(h.status)})`;
  });
  if (c.slotsReleased.length > 0)
    lines.push(
      `${c.dryRun ? 'would release' : 'released'} destructive slot${c.slotsReleased.length > 1 ? 's' : ''} ${c.slotsReleased.map(safe).join(', ')}`,
    );
  if (c.silencesExpired.length > 0)
    lines.push(
      `${c.dryRun ? 'would expire' : 'expired'} silence${c.silencesExpired.length > 1 ? 's' : ''} ${c.silencesExpired.map(safe).join(', ')}`,
    );
  for (const left of c.silencesLeft)
    lines.push(`could not expire silence ${safe(left.id)}: ${safe(left.error)} (it ends by itself with the window)`);
  return `maintenance '${safe(c.schedule)}': ${lines.join('\n  ')}\n`;
}

export function slotsTable(rows: HeldSlot[]): string {
  if (rows.length === 0) return 'no destructive slot held\n';
  const table = renderTable(
    ['HELD BY', 'RUN', 'ACTION', 'TARGET', 'SINCE', 'LAPSES'],
    rows.map((r) => [r.holder, r.status, r.action, r.target, formatTime(r.since), formatTime(r.lapses)]),
  );
  const left = [...new Set(rows.filter((r) => r.status !== 'running').map((r) => r.holder))];
  return `${table}${left.map((h) => `'${terminalSafe(h)}' ended holding its slot: remediate slots release ${terminalSafe(h)}\n`).join('')}`;
}

/** What `remediate slots release` did (or, in a dry run, would do). */
export function releasedSlotsText(r: ReleasedSlots): string {
  const lines = r.released.map(
    (s) =>
      `${r.dryRun ? 'would release' : 'released'} the slot for its ${terminalSafe(s.action)} of ${terminalSafe(s.target)} (held since ${formatTime(s.since)}, run ${terminalSafe(s.status)})`,
  );
  return `${terminalSafe(r.workflowId)}: ${lines.join('\n  ')}\n`;
}

export function schedulesTable(rows: ScheduleRow[]): string {
  if (rows.length === 0) return 'no maintenance schedules\n';
  return renderTable(
    ['NAME', 'STATE', 'NEXT RUN', 'LAST RUN', 'NOTE'],
    rows.map((r) => [r.name, r.paused ? 'paused' : 'active', formatTime(r.nextRun), formatTime(r.lastRun), r.note ?? '']),
  );
}

// What these print comes from alerts, logs and operators: every value goes through terminalSafe, so
// an escape sequence or a newline in a label or a log line can neither restyle the terminal nor forge
// a line. Text that is legitimately several lines (a diagnosis) keeps them, indented under its label.
const safe = (v: unknown) => terminalSafe(String(v ?? ''));
const block = (v: string) => v.split('\n').map(terminalSafe).join('\n    ');

export function detailText(d: IncidentDetail): string {
  const lines = [
    `${safe(d.workflowId)}  (${safe(d.type)}, ${safe(d.status).toLowerCase()})`,
    `target ${safe(d.target) || '-'}, alert ${safe(d.alert) || '-'} (${safe(d.severity) || '-'}), started ${formatTime(d.startTime)}` +
      (d.closeTime ? `, closed ${formatTime(d.closeTime)} after ${formatSpan(d.durationMs)}` : ''),
  ];
  if (d.live) lines.push(...liveText(d.live));
  if (d.liveError) lines.push(safe(d.liveError));
  if (d.result) {
    lines.push(`outcome: ${safe(d.result.outcome)}: ${safe(d.result.detail)}`);
    lines.push(...timelineText(d.result.timeline ?? []));
  }
  if (d.failure) lines.push(`failed: ${safe(d.failure)}`);
  return `${lines.join('\n')}\n`;
}

function liveText(s: RunbookStatus): string[] {
  const lines = [`step: ${safe(s.step)}; restarts: ${s.restartAttempts}; alerts folded: ${s.alertsFolded}`];
  if (s.pendingApproval)
    lines.push(
      `waiting for approval of ${safe(s.pendingApproval.step)} since ${formatTime(s.pendingApproval.since)} (times out ${formatTime(s.pendingApproval.timeoutAt)})`,
    );
  if (s.escalationLevel)
    lines.push(`escalated to ${safe(s.escalationLevel)}${s.acknowledgedBy ? `, acknowledged by ${safe(s.acknowledgedBy)}` : ''}`);
  if (s.diagnosticsSummary) lines.push(`diagnostics: ${block(s.diagnosticsSummary)}`);
  if (s.outcome) lines.push(`outcome: ${safe(s.outcome)}${s.outcomeDetail ? `: ${safe(s.outcomeDetail)}` : ''}`);
  return [...lines, ...timelineText(s.timeline ?? [])];
}

function timelineText(timeline: RunbookStatus['timeline']): string[] {
  if (timeline.length === 0) return [];
  return [
    'timeline:',
    ...timeline.map(
      (e) => `  ${formatTime(e.at)}  ${safe(e.step)}: ${safe(e.event)} (${safe(e.actor)})${e.detail ? ` — ${safe(e.detail)}` : ''}`,
    ),
  ];
}

export function reportText(r: IncidentReport & { truncated: boolean }): string {
  const ttr = r.timeToRecover;
  const head = [
    ...(r.truncated ? [`PARTIAL: only the newest ${reportLimit} incidents were read; narrow --since or --target`] : []),
    `incidents closed ${formatTime(r.since)} – ${formatTime(r.until)}: ${r.incidents}`,
    `by outcome: ${
      Object.entries(r.byOutcome)
        .map(([o, n]) => `${safe(o)} ${n}`)
        .join(', ') || '-'
    }`,
    `automatic recovery rate: ${formatRate(r.automaticRecoveryRate)} (${r.recoveredAutomatically} recovered without an operator; false alarms and suppressed alerts excluded)`,
    `time to recover (from the alert's startsAt): ${ttr ? `p50 ${formatSpan(ttr.p50Ms)}, p95 ${formatSpan(ttr.p95Ms)}, mean ${formatSpan(ttr.meanMs)} over ${ttr.count}` : '-'}`,
    `by runbook: ${
      Object.entries(r.byRunbook ?? {})
        .map(([rb, n]) => `${safe(rb)} ${n}`)
        .join(', ') || '-'
    }`,
    '',
  ].join('\n');
  if (r.perTarget.length === 0) return head;
  const budget = (ms: number) => `${ms < 0 ? '-' : ''}${formatSpan(Math.abs(ms))}`;
  return `${head}\n${renderTable(
    ['TARGET', 'INCIDENTS', 'AVAILABILITY', 'OBJECTIVE', 'DOWNTIME', 'BUDGET LEFT', 'AUTO RATE', 'P50 TTR', 'P95 TTR', 'OUTCOMES'],
    r.perTarget.map((p) => [
      p.target || '-',
      String(p.incidents),
      `${(p.availability * 100).toFixed(3)} %${p.met ? '' : ' MISSED'}`,
      `${(p.objective * 100).toFixed(2)} %`,
      formatSpan(p.downtimeMs),
      budget(p.budgetLeftMs),
      formatRate(p.automaticRecoveryRate),
      formatSpan(p.timeToRecover?.p50Ms),
      formatSpan(p.timeToRecover?.p95Ms),
      Object.entries(p.byOutcome)
        .map(([o, n]) => `${o} ${n}`)
        .join(', '),
    ]),
  )}`;
}

export function whoamiText(w: Whoami, url: string, tokenFrom: string): string {
  return [
    `${safe(w.operator)} (${safe(w.role)}) at ${safe(url)}, by ${safe(w.credential)} from ${safe(tokenFrom)}`,
    `may act on runbooks: ${w.runbooks ? w.runbooks.map(safe).join(', ') : 'all'}; targets: ${w.targets ? w.targets.map(safe).join(', ') : 'all'}`,
    '',
  ].join('\n');
}

/** An operator as `operators list` shows it: never the hash, only whether a token is set and until when. */
export interface OperatorRow {
  name: string;
  role: string;
  runbooks?: string[];
  targets?: string[];
  token: 'none' | 'set' | 'expired';
  tokenExpires?: string;
  chatUserId?: string;
}

export function operatorRows(operators: readonly Operator[], now = Date.now()): OperatorRow[] {
  return operators.map((o) => ({
    name: o.name,
    role: o.role,
    ...(o.runbooks ? { runbooks: o.runbooks } : {}),
    ...(o.targets ? { targets: o.targets } : {}),
    token: !o.tokenHash ? 'none' : o.tokenExpires && Date.parse(o.tokenExpires) <= now ? 'expired' : 'set',
    ...(o.tokenExpires ? { tokenExpires: o.tokenExpires } : {}),
    ...(o.chatUserId ? { chatUserId: o.chatUserId } : {}),
  }));
}

export function operatorsTable(rows: OperatorRow[]): string {
  if (rows.length === 0) return 'no operators configured: nobody can approve, reject or acknowledge\n';
  return renderTable(
    ['NAME', 'ROLE', 'RUNBOOKS', 'TARGETS', 'TOKEN', 'CHAT USER'],
    rows.map((r) => [
      r.name,
      r.role,
      r.runbooks?.join(', ') ?? 'all',
      r.targets?.join(', ') ?? 'all',
      r.token === 'none' ? '-' : r.tokenExpires ? `${r.token}, until ${formatTime(r.tokenExpires)}` : r.token,
      r.chatUserId ?? '-',
    ]),
  );
}

export function newTokenText(t: { operator: string; token: string; tokenHash: string; tokenExpires?: string }): string {
  return [
    `New API token for '${t.operator}'. It is shown only now: the engine keeps only its hash. Hand it over privately;`,
    `the operator keeps it in ~/.config/remediate/credentials (mode 0600) or in REMEDIATE_TOKEN.`,
    '',
    `  ${t.token}`,
    '',
    `Paste under '${t.operator}' in the engine config's operators: (replacing an older tokenHash revokes that token):`,
    '',
    `    tokenHash: ${t.tokenHash}`,
    ...(t.tokenExpires ? [`    tokenExpires: ${t.tokenExpires}`] : []),
    '',
  ].join('\n');
}
