// The maintenance view: the open maintenance windows, the run holding each and whether it still
// runs. A window whose run ended without closing it (terminated mid-VACUUM) keeps the schedule's
// next run refused and its targets' incidents held until its end. An admin closes it here: the
// first click asks for a dry run and shows what would be closed, the second, within 10 s, closes.
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

export function maintenanceView(view, refreshNow) {
  const t = table('windows', ['Schedule', 'Targets', 'Until', 'Run', 'Status', 'Close']);
  const result = el('p', { class: 'outcome', role: 'status', 'data-close-result': '' });
  view.replaceChildren(
    el('h2', { text: 'Maintenance windows' }),
    t.node,
    result,
    el('p', {
      class: 'note',
      text: 'A window holds its targets away from incidents and silences their alerts until it ends. A run still running is ended by cancelling it (its cleanup closes the window); one that ended without closing it is closed here by an admin.',
    }),
  );
  // One close control per schedule, kept across polls, so an armed button survives a refresh.
  const controls = new Map();
  let stopped = false;

  const control = (schedule) => {
    let c = controls.get(schedule);
    if (c) return c;
    const button = el('button', { type: 'button', class: 'close', 'data-action': 'close', text: 'Close…' });
    c = { button, armedUntil: undefined };
    const disarm = () => {
      clearTimeout(c.armedUntil);
      c.armedUntil = undefined;
      button.classList.remove('armed');
      setText(button, 'Close…');
    };
    const send = async (dryRun) => {
      button.disabled = true;
      setText(result, `${dryRun ? 'Asking what closing' : 'Closing'} maintenance ${schedule}${dryRun ? ' would do' : ''}…`);
      result.className = 'outcome';
      try {
        const r = await api('POST', `/api/v1/maintenance/${encodeURIComponent(schedule)}/close`, { dryRun });
        if (stopped) return;
        setText(result, dryRun ? `${closeSummary(r)}. Press "Confirm close" within ${confirmMs / 1000} s to close it.` : closeSummary(r));
        result.className = dryRun ? 'outcome' : 'outcome ok';
        if (dryRun) {
          button.classList.add('armed');
          setText(button, 'Confirm close');
          c.armedUntil = setTimeout(disarm, confirmMs);
        }
      } catch (err) {
        if (err instanceof Unauthenticated || stopped) return;
        setText(result, `maintenance ${schedule}: ${err.message}`);
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
    controls.set(schedule, c);
    return c;
  };

  return {
    interval: 5_000,
    async refresh() {
      const { windows } = await api('GET', '/api/v1/maintenance/windows');
      if (stopped) return;
      const schedules = new Set(windows.map((w) => w.schedule));
      for (const s of controls.keys()) if (!schedules.has(s)) controls.delete(s);
      // A close acts on every run of the schedule: one button, on its first row that ended.
      const placed = new Set();
      keyedRows(
        t.tbody,
        windows,
        (w) => JSON.stringify([w.schedule, w.holder]),
        () => el('tr', { class: 'window' }),
        (tr, w) => {
          tr.setAttribute('data-schedule', w.schedule);
          const [schedule, targets, until, run, status, close] = cells(tr, 6);
          setText(schedule, w.schedule);
          setText(targets, w.targets.join(', '));
          setText(until, time(w.until));
          until.className = 'time';
          if (!run.firstChild || run.firstChild.getAttribute('href') !== incidentHref(w.holder))
            run.replaceChildren(el('a', { href: incidentHref(w.holder), text: w.holder }));
          const running = w.status === 'running';
          setText(status, running ? 'running' : `${w.status}: ended without closing its window`);
          status.className = running ? '' : 'outcome-failed';
          if (running) close.replaceChildren(el('span', { class: 'hint', text: 'cancel the run to end it early' }));
          else if (may('admin') && placed.has(w.schedule))
            close.replaceChildren(el('span', { class: 'hint', text: 'closed with the row above' }));
          else if (may('admin')) {
            placed.add(w.schedule);
            const { button } = control(w.schedule);
            if (close.firstChild !== button) close.replaceChildren(button);
          } else close.replaceChildren(el('span', { class: 'hint', text: 'an admin can close it' }));
        },
      );
    },
    stop() {
      stopped = true;
      for (const c of controls.values()) clearTimeout(c.armedUntil);
    },
  };
}
