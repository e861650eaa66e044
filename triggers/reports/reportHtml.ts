// The report as one self-contained HTML file (`remediate report --format html`): the numbers of the
// JSON report, with charts drawn as inline SVG — outcomes per day, time to recover per target and
// availability against the objective. No script, no external resource: it opens anywhere, offline,
// and can be mailed. Every number carries a data-metric attribute naming where it comes from.
import type { Outcome } from '../../workflows/messages.js';
import type { IncidentReport } from './report.js';

const outcomeColours: Record<string, string> = {
  recovered: '#2e7d32',
  'resolved-externally': '#66bb6a',
  'false-alarm': '#90a4ae',
  suppressed: '#b0bec5',
  escalated: '#ef6c00',
  rejected: '#8d6e63',
  failed: '#c62828',
  completed: '#1565c0',
  cancelled: '#616161',
  terminated: '#424242',
};

export function reportHtml(r: IncidentReport & { truncated?: boolean }, generatedAt = new Date()): string {
  const title = `Incident report ${r.since.slice(0, 10)} – ${r.until.slice(0, 10)}`;
  const ttr = r.timeToRecover;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#212121;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:22px}table{border-collapse:collapse;margin-top:8px}td,th{border-bottom:1px solid #eee;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}.missed{color:#c62828;font-weight:600}.met{color:#2e7d32}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.note{color:#616161}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="note">Generated ${esc(generatedAt.toISOString())}. Time to recover counts from the alert's startsAt (when the outage began) to recovery${ttr && ttr.fromAlert < ttr.count ? `; ${ttr.count - ttr.fromAlert} older run(s) without it count from the run's start` : ''}.${r.truncated ? ' <b>Partial: more incidents closed in this period than the report reads.</b>' : ''}</p>
<div class="cards">
${card('Incidents', String(r.incidents), 'incidents')}
${card('Recovered', String(r.recovered), 'recovered')}
${card('Recovered automatically', r.automaticRecoveryRate === null ? '–' : pct(r.automaticRecoveryRate), 'automaticRecoveryRate')}
${card('Time to recover p50', ttr ? span(ttr.p50Ms) : '–', 'timeToRecover.p50Ms')}
${card('Time to recover p95', ttr ? span(ttr.p95Ms) : '–', 'timeToRecover.p95Ms')}
</div>
<h2>Outcomes per day</h2>
${legend(r)}
${dailyChart(r)}
<h2>Availability per target</h2>
${availabilityChart(r)}
<table><thead><tr><th>target</th><th>incidents</th><th>availability</th><th>objective</th><th>downtime</th><th>budget left</th><th>TTR p50</th><th>TTR p95</th></tr></thead><tbody>
${r.perTarget
  .map(
    (t) =>
      `<tr data-target="${esc(t.target)}"><td>${esc(t.target)}</td><td data-metric="incidents">${t.incidents}</td><td data-metric="availability" class="${t.met ? 'met' : 'missed'}">${pct(t.availability, 3)}</td><td>${pct(t.objective, 2)}</td><td data-metric="downtimeMs" data-value="${Math.round(t.downtimeMs)}">${span(t.downtimeMs)}</td><td data-metric="budgetLeftMs" data-value="${Math.round(t.budgetLeftMs)}" class="${t.met ? 'met' : 'missed'}">${t.budgetLeftMs < 0 ? '−' : ''}${span(Math.abs(t.budgetLeftMs))}</td><td data-metric="timeToRecover.p50Ms" data-value="${t.timeToRecover?.p50Ms ?? ''}">${t.timeToRecover ? span(t.timeToRecover.p50Ms) : '–'}</td><td data-metric="timeToRecover.p95Ms" data-value="${t.timeToRecover?.p95Ms ?? ''}">${t.timeToRecover ? span(t.timeToRecover.p95Ms) : '–'}</td></tr>`,
  )
  .join('\n')}
</tbody></table>
<h2>Time to recover per target</h2>
${recoveryChart(r)}
<h2>Incidents by outcome and runbook</h2>
<table><thead><tr><th>outcome</th><th>incidents</th></tr></thead><tbody>
${Object.entries(r.byOutcome)
  .map(([o, n]) => `<tr><td>${esc(o)}</td><td data-metric="byOutcome.${esc(o)}">${n}</td></tr>`)
  .join('\n')}
</tbody></table>
<table><thead><tr><th>runbook</th><th>incidents</th></tr></thead><tbody>
${Object.entries(r.byRunbook)
  .map(([rb, n]) => `<tr><td>${esc(rb)}</td><td data-metric="byRunbook.${esc(rb)}">${n}</td></tr>`)
  .join('\n')}
</tbody></table>
</body></html>
`;
}

function card(label: string, value: string, metric: string): string {
  return `<div class="card">${esc(label)}<b data-metric="${esc(metric)}">${esc(value)}</b></div>`;
}

function legend(r: IncidentReport): string {
  const seen = outcomesIn(r);
  return `<div class="legend">${seen.map((o) => `<span><i style="background:${colour(o)}"></i>${esc(o)}</span>`).join('')}</div>`;
}

function outcomesIn(r: IncidentReport): Outcome[] {
  return Object.keys(r.byOutcome) as Outcome[];
}

function dailyChart(r: IncidentReport): string {
  const days = r.daily;
  const w = 1000;
  const h = 180;
  const max = Math.max(1, ...days.map((d) => sum(Object.values(d.byOutcome))));
  const bw = w / Math.max(1, days.length);
  const bars = days
    .map((d, i) => {
      let y = h;
      return (Object.entries(d.byOutcome) as Array<[string, number]>)
        .map(([o, n]) => {
          const bh = (n / max) * (h - 20);
          y -= bh;
          return `<rect x="${(i * bw + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${colour(o)}"><title>${esc(`${d.day} ${o}: ${n}`)}</title></rect>`;
        })
        .join('');
    })
    .join('');
  const labels =
    days.length <= 31
      ? days
          .map(
            (d, i) =>
              `<text x="${(i * bw + bw / 2).toFixed(1)}" y="${h + 14}" font-size="10" text-anchor="middle">${esc(d.day.slice(5))}</text>`,
          )
          .join('')
      : '';
  return `<svg role="img" aria-label="outcomes per day" width="${w}" height="${h + 20}" viewBox="0 0 ${w} ${h + 20}">${bars}${labels}<text x="2" y="12" font-size="10">max ${max}/day</text></svg>`;
}

function availabilityChart(r: IncidentReport): string {
  if (r.perTarget.length === 0) return '<p class="note">No incidents in this period: every target was available throughout.</p>';
  const w = 1000;
  const row = 22;
  const h = r.perTarget.length * row + 10;
  // The scale starts at the lowest of 99 % and the worst target, so 99.9 % and 99.99 % look different.
  const floor = Math.min(0.99, ...r.perTarget.map((t) => t.availability));
  const x = (a: number) => 200 + ((a - floor) / (1 - floor || 1)) * (w - 220);
  const bars = r.perTarget
    .map((t, i) => {
      const y = i * row + 4;
      return `<text x="0" y="${y + 14}" font-size="12">${esc(label(t.target))}<title>${esc(t.target)}</title></text><rect x="200" y="${y}" width="${Math.max(1, x(t.availability) - 200).toFixed(1)}" height="16" fill="${t.met ? '#2e7d32' : '#c62828'}"><title>${esc(`${t.target}: ${pct(t.availability, 3)}`)}</title></rect><line x1="${x(t.objective).toFixed(1)}" x2="${x(t.objective).toFixed(1)}" y1="${y - 2}" y2="${y + 18}" stroke="#212121" stroke-dasharray="3,2"/>`;
    })
    .join('');
  return `<svg role="img" aria-label="availability per target" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${bars}</svg><p class="note">Bars from ${pct(floor, 2)} to 100 %; the dashed line is the objective.</p>`;
}

function recoveryChart(r: IncidentReport): string {
  const rows = r.perTarget.filter((t) => t.timeToRecover);
  if (rows.length === 0) return '<p class="note">Nothing recovered in this period.</p>';
  const w = 1000;
  const row = 22;
  const h = rows.length * row + 10;
  const max = Math.max(...rows.map((t) => t.timeToRecover!.p95Ms), 1);
  const x = (ms: number) => (ms / max) * (w - 420);
  const bars = rows
    .map((t, i) => {
      const y = i * row + 4;
      const { p50Ms, p95Ms } = t.timeToRecover!;
      return `<text x="0" y="${y + 14}" font-size="12">${esc(label(t.target))}<title>${esc(t.target)}</title></text><rect x="200" y="${y}" width="${Math.max(1, x(p95Ms)).toFixed(1)}" height="16" fill="#ffcc80"><title>p95 ${span(p95Ms)}</title></rect><rect x="200" y="${y + 4}" width="${Math.max(1, x(p50Ms)).toFixed(1)}" height="8" fill="#ef6c00"><title>p50 ${span(p50Ms)}</title></rect><text x="${(210 + x(p95Ms)).toFixed(1)}" y="${y + 14}" font-size="11">p50 ${span(p50Ms)} · p95 ${span(p95Ms)}</text>`;
    })
    .join('');
  return `<svg role="img" aria-label="time to recover per target" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${bars}</svg>`;
}

/** A chart's row label: long names are cut (the full name is the label's tooltip and in the table). */
function label(name: string): string {
  return name.length > 28 ? `${name.slice(0, 27)}…` : name;
}

function colour(outcome: string): string {
  return outcomeColours[outcome] ?? '#9e9e9e';
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function pct(x: number, digits = 1): string {
  return `${(x * 100).toFixed(digits)} %`;
}

export function span(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** Text for HTML content and attribute values alike. */
function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
