// The report view: outcomes, automatic recovery rate and time to recover, overall and per target,
// over the last days (GET /api/v1/report).
import { api } from './api.js';
import { cells, duration, el, keyedRows, setText, table, time } from './dom.js';

export function reportView(view, refreshNow) {
  const days = el(
    'select',
    { 'aria-label': 'days' },
    ...[1, 7, 30, 90].map((n) => el('option', { value: n, text: `last ${n} day${n === 1 ? '' : 's'}` })),
  );
  days.value = '7';
  const summary = el('dl', { class: 'facts' });
  const t = table('per-target', ['Target', 'Incidents', 'Recovered', 'Automatically', 'Auto rate', 'MTTR', 'p95', 'Outcomes']);
  const refresh = el('button', { type: 'button', 'data-action': 'refresh', text: 'Refresh' });
  const computing = el('span', { class: 'note' });
  view.replaceChildren(el('h2', {}, 'Report ', days, ' ', refresh, ' ', computing), summary, el('h3', { text: 'Per target' }), t.node);
  const rate = (r) => (r === null || r === undefined ? '—' : `${Math.round(r * 100)} %`);
  const outcomes = (by) =>
    Object.entries(by || {})
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const refreshing = {
    // The report reads every incident closed in the period (thousands on a busy engine): on
    // demand and every few minutes, not at the incident lists' pace.
    interval: 300_000,
    async refresh() {
      setText(computing, 'computing…');
      let r;
      try {
        r = await api('GET', `/api/v1/report?days=${encodeURIComponent(days.value)}`);
      } finally {
        setText(computing, '');
      }
      const pairs = [
        ['Since', time(r.since)],
        ['Until', time(r.until)],
        ['Incidents', r.incidents],
        ['Recovered', r.recovered],
        ['Recovered automatically', r.recoveredAutomatically],
        ['Automatic recovery rate', rate(r.automaticRecoveryRate)],
        [
          'Time to recover (mean / p95)',
          r.timeToRecover ? `${duration(r.timeToRecover.meanMs)} / ${duration(r.timeToRecover.p95Ms)}` : '—',
        ],
        ['Outcomes', outcomes(r.byOutcome)],
        ...(r.truncated ? [['Note', 'more incidents closed than the report reads: counts are partial']] : []),
      ];
      summary.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v, 'data-fact': k })]));
      keyedRows(
        t.tbody,
        r.perTarget || [],
        (p) => p.target,
        () => el('tr'),
        (tr, p) => {
          const c = cells(tr, 8);
          const values = [
            p.target,
            p.incidents,
            p.recovered,
            p.recoveredAutomatically,
            rate(p.automaticRecoveryRate),
            p.timeToRecover ? duration(p.timeToRecover.meanMs) : '—',
            p.timeToRecover ? duration(p.timeToRecover.p95Ms) : '—',
            outcomes(p.byOutcome),
          ];
          values.forEach((v, i) => setText(c[i], v));
        },
      );
    },
  };
  days.addEventListener('change', () => refreshNow());
  refresh.addEventListener('click', () => refreshNow());
  return refreshing;
}
