// The guardrails view: the open maintenance windows and the held destructive-action slots, each with
// the run holding it and whether that run still runs. A run that ended without letting go of its
// window (terminated mid-VACUUM) keeps the schedule's next run refused and its targets' incidents
// held until the window's end; one that ended holding a slot (terminated mid-restart) keeps every
// other incident waiting for that slot until its lease lapses. An admin frees them here: the first
// click asks for a dry run and shows what would be done, the second, within 10 s, does it.
import { api, incidentHref, may, Unauthenticated } from './api.js';
import { cells, el, keyedRows, setText, table, time } from './dom.js';

const confirmMs = 10_000;

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** What a close did (or, dry, would do), in one line: runs, targets, silences, slots. */
export function closeSummary(r) {
  const targets = [...new Set(r.holders.flatMap((h) => h.targets))];
  const parts = [
    `${plural(r.holders.length, 'run', 'runs')} (${r.holders.map((h) => `${h.workflowId}, ${h.status}`).join('; ')})`,
    targets.length > 0 ? `window on ${targets.join(', ')}` : 'no window left in the guard',
    plural(r.silencesExpired.length, 'silence expired', 'silences expired'),
    r.slotsReleased.length > 0 ? `slots released: ${r.slotsReleased.join(', ')}` : 'no slot held',
  ];
  const left = r.silencesLeft.map((s) => `${s.id} (${s.error})`);
  const tail = left.length > 0 ? `; not expired, they end with the window: ${left.join(', ')}` : '';
  return `${r.dryRun ? 'Would close' : 'Closed'} maintenance ${r.schedule}: ${parts.join('; ')}${tail}`;
}

/** What a release did (or, dry, would do), in one line. */
export function releaseSummary(r) {
  const slots = r.released.map((s) => `${s.action} of ${s.target} (run ${s.status})`).join(', ');
  return `${r.dryRun ? 'Would release' : 'Released'} the slots of ${r.workflowId}: ${slots}`;
}

/**
 * A button that acts in two clicks: the first sends the request as a dry run and shows its answer,
 * the second, within confirmMs, sends it for real. Kept across polls, so an armed button survives
 * a refresh. `result` is where every answer and error is shown.
 */
function twoStepButton({ action, label, path, summary, result, refreshNow, isStopped }) {
  const button = el('button', { type: 'button', class: 'destructive', 'data-action': action, text: `${label}…` });
  const c = { button, armedUntil: undefined };
  const disarm = () => {
    clearTimeout(c.armedUntil);
    c.armedUntil = undefined;
    button.classList.remove('armed');
    setText(button, `${label}…`);
  };
  const send = async (dryRun) => {
    button.disabled = true;
    setText(result, dryRun ? `Asking what ${label.toLowerCase()} would do…` : `${label}…`);
    result.className = 'outcome';
    try {
      const r = await api('POST', path, { dryRun });
      if (isStopped()) return;
      setText(result, dryRun ? `${summary(r)}. Press "Confirm ${label.toLowerCase()}" within ${confirmMs / 1000} s to do it.` : summary(r));
      result.className = dryRun ? 'outcome' : 'outcome ok';
      if (dryRun) {
        button.classList.add('armed');
        setText(button, `Confirm ${label.toLowerCase()}`);
        c.armedUntil = setTimeout(disarm, confirmMs);
      }
    } catch (err) {
      if (err instanceof Unauthenticated || isStopped()) return;
      setText(result, err.message);
      result.className = 'outcome error';
    } finally {
      button.disabled = false;
    }
    if (!dryRun) refreshNow();
  };
  button.addEventListener('click', () => {
    if (c.armedUntil === undefined) return void send(true);
    disarm();
    return void send(false);
  });
  c.stop = () => clearTimeout(c.armedUntil);
  return c;
}

function runCell(cell, workflowId) {
  if (!cell.firstChild || cell.firstChild.getAttribute('href') !== incidentHref(workflowId))
    cell.replaceChildren(el('a', { href: incidentHref(workflowId), text: workflowId }));
}

export function guardrailsView(view, refreshNow) {
  const windows = table('windows', ['Schedule', 'Targets', 'Until', 'Run', 'Status', 'Close']);
  const slots = table('slots', ['Run', 'Action', 'Target', 'Since', 'Lapses', 'Status', 'Release']);
  const result = el('p', { class: 'outcome', role: 'status', 'data-result': '' });
  view.replaceChildren(
    el('h2', { text: 'Maintenance windows' }),
    windows.node,
    el('p', {
      class: 'note',
      text: 'A window holds its targets away from incidents and silences their alerts until it ends. A run still running is ended by cancelling it (its cleanup closes the window); one that ended without closing it is closed here by an admin.',
    }),
    el('h2', { text: 'Destructive slots' }),
    slots.node,
    el('p', {
      class: 'note',
      text: 'At most guardrails.maxConcurrentDestructive restarts and maintenance actions run at once; the others wait for a slot. A run releases its slot however its action ends, cancelled included; one that ended holding it is released here by an admin, or lapses by itself.',
    }),
    result,
  );
  // One control per schedule and per holder, kept across polls.
  const controls = new Map();
  let stopped = false;
  const isStopped = () => stopped;
  const control = (key, make) => {
    if (!controls.has(key)) controls.set(key, make());
    return controls.get(key);
  };
  const keepOnly = (prefix, keys) => {
    for (const [k, c] of controls) {
      if (!k.startsWith(prefix) || keys.has(k)) continue;
      c.stop();
      controls.delete(k);
    }
  };
  const actionCell = (cell, running, key, make, hint) => {
    if (running) return cell.replaceChildren(el('span', { class: 'hint', text: 'cancel the run to end it early' }));
    if (!may('admin')) return cell.replaceChildren(el('span', { class: 'hint', text: hint }));
    const { button } = control(key, make);
    if (cell.firstChild !== button) cell.replaceChildren(button);
  };

  const drawWindows = (rows) => {
    keepOnly('window ', new Set(rows.filter((w) => w.status !== 'running').map((w) => `window ${w.schedule}`)));
    // A close acts on every run of the schedule: one button, on its first row that ended.
    const placed = new Set();
    keyedRows(
      windows.tbody,
      rows,
      (w) => JSON.stringify([w.schedule, w.holder]),
      () => el('tr', { class: 'window' }),
      (tr, w) => {
        tr.setAttribute('data-schedule', w.schedule);
        const [schedule, targets, until, run, status, close] = cells(tr, 6);
        setText(schedule, w.schedule);
        setText(targets, w.targets.join(', '));
        setText(until, time(w.until));
        until.className = 'time';
        runCell(run, w.holder);
        const running = w.status === 'running';
        setText(status, running ? 'running' : `${w.status}: ended without closing its window`);
        status.className = running ? '' : 'outcome-failed';
        if (!running && may('admin') && placed.has(w.schedule))
          return close.replaceChildren(el('span', { class: 'hint', text: 'closed with the row above' }));
        if (!running) placed.add(w.schedule);
        actionCell(
          close,
          running,
          `window ${w.schedule}`,
          () =>
            twoStepButton({
              action: 'close',
              label: 'Close',
              path: `/api/v1/maintenance/${encodeURIComponent(w.schedule)}/close`,
              summary: closeSummary,
              result,
              refreshNow,
              isStopped,
            }),
          'an admin can close it',
        );
      },
    );
  };

  const drawSlots = (rows) => {
    keepOnly('slot ', new Set(rows.filter((s) => s.status !== 'running').map((s) => `slot ${s.holder}`)));
    const placed = new Set();
    keyedRows(
      slots.tbody,
      rows,
      (s) => JSON.stringify([s.holder, s.runId, s.action, s.target, s.since]),
      () => el('tr', { class: 'slot' }),
      (tr, s) => {
        tr.setAttribute('data-holder', s.holder);
        const [run, action, target, since, lapses, status, release] = cells(tr, 7);
        runCell(run, s.holder);
        setText(action, s.action);
        setText(target, s.target);
        setText(since, time(s.since));
        setText(lapses, time(s.lapses));
        since.className = lapses.className = 'time';
        const running = s.status === 'running';
        setText(status, running ? 'running' : `${s.status}: ended holding its slot`);
        status.className = running ? '' : 'outcome-failed';
        if (!running && may('admin') && placed.has(s.holder))
          return release.replaceChildren(el('span', { class: 'hint', text: 'released with the row above' }));
        if (!running) placed.add(s.holder);
        actionCell(
          release,
          running,
          `slot ${s.holder}`,
          () =>
            twoStepButton({
              action: 'release',
              label: 'Release',
              path: `/api/v1/slots/${encodeURIComponent(s.holder)}/release`,
              summary: releaseSummary,
              result,
              refreshNow,
              isStopped,
            }),
          'an admin can release it',
        );
      },
    );
  };

  return {
    interval: 5_000,
    async refresh() {
      const [w, s] = await Promise.all([api('GET', '/api/v1/maintenance/windows'), api('GET', '/api/v1/slots')]);
      if (stopped) return;
      drawWindows(w.windows);
      drawSlots(s.slots);
    },
    stop() {
      stopped = true;
      for (const c of controls.values()) c.stop();
    },
  };
}
