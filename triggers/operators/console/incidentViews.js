// The incident views: open incidents (with their step and decision box), one incident (facts,
// diagnostics, timeline) and closed incidents. Each returns { interval, refresh(), stop() } for
// console.js to poll.
import { api, incidentHref, incidentPath, Unauthenticated } from './api.js';
import { decisionFor, forgetDecisions } from './decisions.js';
import { cells, duration, el, keyedRows, setText, table, time } from './dom.js';

/** Open incidents whose step and pending approval are fetched: one status query each. */
const detailLimit = 20;

export function openView(view) {
  const t = table('open', ['Target', 'Runbook', 'Alert', 'Severity', 'Started', 'Step', 'Waiting for', 'Decision']);
  const note = el('p', { class: 'note' });
  view.replaceChildren(el('h2', { text: 'Open incidents' }), t.node, note);
  // Each incident's step and pending approval come from its own status query, answered by the
  // worker that runs it. They are fetched beside the list, at most 4 at a time, so a run whose
  // worker is gone (a 5 s query timeout) never delays the list. Which go first: the runs that
  // answered last time (quick, and the buttons an operator waits for come from their refresh),
  // then those never asked, newest first (a new incident), then those whose query failed, asked
  // again later and later, up to every 30 s. Runs not known to answer hold at most 2 of the 4 at once, and failed
  // ones 1: a page listing runs of a stopped engine still shows a new incident's buttons within one
  // query timeout, where it used to wait for every such run ahead of it (~25 s behind 20 of them).
  const details = new Map();
  let queued = [];
  // The runs being asked now, each with its kind when asked: the only count of what is in flight.
  const inFlight = new Map();
  const asking = (...kinds) => [...inFlight.values()].filter((k) => kinds.includes(k)).length;
  let incidents = [];
  // Set when another view takes over: a detail arriving later must not draw into this one (it
  // would take the decision box, which is shared, away from the incident view).
  let stopped = false;
  const due = (id, now) => {
    const d = details.get(id);
    if (inFlight.has(id)) return false;
    if (!d) return true;
    // A run that failed is asked again after 2 s, then 4, 8, 16 and every 30 s: a worker that was
    // only slow once shows its step again soon, and a gone engine's runs cost one query in 30 s.
    return now - d.at >= (d.failures ? Math.min(30_000, 1_000 * 2 ** d.failures) : 0);
  };
  const kind = (id) => {
    const d = details.get(id);
    return !d ? 'fresh' : d.failures ? 'failed' : 'answered';
  };
  const next = () => {
    let pick = queued.findIndex((id) => kind(id) === 'answered');
    const uncertain = asking('fresh', 'failed');
    if (pick < 0 && uncertain < 2) pick = queued.findIndex((id) => kind(id) === 'fresh');
    if (pick < 0 && uncertain < 2 && asking('failed') < 1) pick = queued.findIndex((id) => kind(id) === 'failed');
    return pick < 0 ? undefined : queued.splice(pick, 1)[0];
  };
  const pump = () => {
    while (!stopped && inFlight.size < 4) {
      const id = next();
      if (id === undefined) return;
      const before = details.get(id);
      inFlight.set(id, kind(id));
      // A run that did not answer keeps what it showed before, so a decision box an operator is
      // typing in stays where it is.
      const failed = (liveError) =>
        details.set(id, {
          data: { ...(before && before.data), liveError },
          at: Date.now(),
          failures: Math.min(5, ((before && before.failures) || 0) + 1),
        });
      api('GET', incidentPath(id))
        .then(
          // The API answers with liveError when the run's status query failed (no worker, or a slow one).
          (data) => (data.live || !data.liveError ? details.set(id, { data, at: Date.now() }) : failed(data.liveError)),
          (err) => {
            if (!(err instanceof Unauthenticated)) failed(err.message);
          },
        )
        .finally(() => {
          inFlight.delete(id);
          draw();
          pump();
        });
    }
  };
  return {
    interval: 2_000,
    async refresh() {
      ({ incidents } = await api('GET', '/api/v1/incidents?open=1&limit=100'));
      const now = Date.now();
      const listed = new Set(incidents.map((r) => r.workflowId));
      for (const id of details.keys()) if (!listed.has(id)) details.delete(id);
      forgetDecisions(listed);
      // Rebuilt on every poll in the list's order (newest first), so a new incident is never queued
      // behind runs listed before it came.
      queued = incidents
        .slice(0, detailLimit)
        .map((r) => r.workflowId)
        .filter((id) => due(id, now));
      draw();
      pump();
    },
    stop() {
      stopped = true;
      queued = [];
    },
  };
  function draw() {
    if (stopped) return;
    keyedRows(
      t.tbody,
      incidents,
      (r) => r.workflowId,
      () => el('tr', { class: 'incident' }),
      (tr, r) => {
        tr.setAttribute('data-incident', r.workflowId);
        const [target, runbook, alert, severity, started, step, waiting, decision] = cells(tr, 8);
        if (!target.firstChild) target.append(el('a', { href: incidentHref(r.workflowId) }));
        setText(target.firstChild, r.target || r.workflowId);
        setText(runbook, r.runbook);
        setText(alert, r.alert);
        setText(severity, r.severity);
        setText(started, time(r.startTime));
        started.className = 'time';
        const d = (details.get(r.workflowId) || {}).data;
        const live = d && d.live;
        setText(step, d && d.liveError ? '(no status)' : live ? live.step : '');
        step.title = d && d.liveError ? d.liveError : '';
        setText(
          waiting,
          live && live.pendingApproval
            ? `approval of ${live.pendingApproval.step} (until ${time(live.pendingApproval.timeoutAt)})`
            : live && live.escalationLevel && !live.acknowledgedBy
              ? `acknowledgement (paged ${live.escalationLevel})`
              : '',
        );
        const box = decisionFor(r.workflowId, live);
        if (box) {
          if (decision.firstChild !== box) decision.replaceChildren(box);
        } else if (decision.firstChild) decision.replaceChildren();
      },
    );
    setText(
      note,
      incidents.length > detailLimit
        ? `Step and approval shown for the first ${detailLimit} of ${incidents.length}; open one for the rest.`
        : '',
    );
  }
}

export function incidentView(view, id) {
  const heading = el('h2', { text: id });
  const facts = el('dl', { class: 'facts' });
  const decision = el('div');
  const diagnostics = el('pre', { class: 'diagnostics' });
  const result = el('p', { class: 'result' });
  const t = table('timeline', ['At', 'Step', 'Event', 'Actor', 'Detail']);
  view.replaceChildren(
    el('p', {}, el('a', { href: '#/open', text: '← open incidents' })),
    heading,
    // Above the facts, which grow as the incident goes on: the buttons stay where they are.
    decision,
    result,
    facts,
    el('h3', { text: 'Diagnostics' }),
    diagnostics,
    el('h3', { text: 'Timeline' }),
    t.node,
  );
  // The last status the run answered: when one query fails (a slow or restarting worker), the page
  // keeps it, says so, and the decision box an operator may be typing in stays.
  let lastLive;
  return {
    interval: 2_000,
    async refresh() {
      const d = await api('GET', incidentPath(id));
      if (d.live) lastLive = d.live;
      const live = d.live || (d.liveError ? lastLive : undefined);
      const pairs = [
        ['Status', d.status],
        ['Runbook', d.runbook],
        ['Target', d.target],
        ['Alert', d.alert],
        ['Severity', d.severity],
        ['Started', time(d.startTime)],
        ['Closed', time(d.closeTime)],
        ['Outcome', d.outcome],
        ['Step', live && live.step],
        [
          'Pending approval',
          live && live.pendingApproval
            ? `${live.pendingApproval.step} since ${time(live.pendingApproval.since)}, until ${time(live.pendingApproval.timeoutAt)}`
            : undefined,
        ],
        ['Escalation level', live && live.escalationLevel],
        ['Approved by', live && live.approvedBy],
        ['Acknowledged by', live && live.acknowledgedBy],
        ['Restart attempts', live ? live.restartAttempts : undefined],
        ['Alerts folded', live ? live.alertsFolded : undefined],
        ['Status query', d.liveError && (live ? `${d.liveError} (the last status it answered is shown)` : d.liveError)],
        ['Failure', d.failure],
      ].filter(([, v]) => v !== undefined && v !== null && v !== '');
      facts.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v, 'data-fact': k })]));
      const box = decisionFor(id, live);
      if (box) {
        if (decision.firstChild !== box) decision.replaceChildren(box);
      } else if (decision.firstChild) decision.replaceChildren();
      setText(
        result,
        d.result ? `${d.result.outcome}: ${d.result.detail}` : live && live.outcome ? `${live.outcome}: ${live.outcomeDetail || ''}` : '',
      );
      const timeline = ((live && live.timeline) || (d.result && d.result.timeline) || []).slice(-1000);
      // A closed run's result has no status: its diagnosis is the last "diagnosed" entry.
      const diagnosed = [...timeline].reverse().find((e) => e.event === 'diagnosed');
      setText(diagnostics, (live && live.diagnosticsSummary) || (diagnosed && diagnosed.detail) || '(none gathered)');
      keyedRows(
        t.tbody,
        timeline.map((e, i) => ({ ...e, i })),
        (e) => String(e.i),
        () => el('tr', { class: 'event' }),
        (tr, e) => {
          const [at, step, event, actor, detail] = cells(tr, 5);
          setText(at, time(e.at));
          setText(step, e.step);
          setText(event, e.event);
          setText(actor, e.actor);
          setText(detail, e.detail);
        },
      );
    },
  };
}

export function closedView(view) {
  const t = table('closed', ['Target', 'Runbook', 'Alert', 'Outcome', 'Started', 'Closed', 'Took']);
  view.replaceChildren(el('h2', { text: 'Closed incidents' }), t.node);
  return {
    interval: 5_000,
    async refresh() {
      const { incidents } = await api('GET', '/api/v1/incidents?closed=1&limit=100');
      keyedRows(
        t.tbody,
        incidents,
        (r) => `${r.workflowId}/${r.runId}`,
        () => el('tr', { class: 'incident' }),
        (tr, r) => {
          tr.setAttribute('data-incident', r.workflowId);
          const [target, runbook, alert, outcome, started, closed, took] = cells(tr, 7);
          if (!target.firstChild) target.append(el('a', { href: incidentHref(r.workflowId) }));
          setText(target.firstChild, r.target || r.workflowId);
          setText(runbook, r.runbook);
          setText(alert, r.alert);
          setText(outcome, r.outcome);
          outcome.className = `outcome-${String(r.outcome).replace(/[^a-z-]/g, '')}`;
          setText(started, time(r.startTime));
          setText(closed, time(r.closeTime));
          started.className = closed.className = 'time';
          setText(took, duration(r.durationMs));
        },
      );
    },
  };
}
