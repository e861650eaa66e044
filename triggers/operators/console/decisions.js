// The decision box of an incident: a reason and Approve / Reject / Acknowledge, shown as the
// operator's role allows. One box per incident, kept across polls and views, so what is typed in it
// survives a refresh.
import { api, incidentPath, may, Unauthenticated } from './api.js';
import { el, setText } from './dom.js';

let refreshNow = () => undefined;
/** What to do once a decision was sent: refresh the view at once. */
export function onDecided(fn) {
  refreshNow = fn;
}

const boxes = new Map();
function decisionBox(id) {
  let box = boxes.get(id);
  if (box) return box;
  const reason = el('input', { type: 'text', maxlength: 500, placeholder: 'reason', 'data-reason': '', 'aria-label': 'reason' });
  const outcome = el('span', { class: 'outcome', 'data-result': '' });
  const buttons = {};
  const decide = async (verb) => {
    for (const b of Object.values(buttons)) b.disabled = true;
    setText(outcome, `${verb}…`);
    try {
      const r = await api('POST', `${incidentPath(id)}/${verb}`, { reason: reason.value });
      reason.value = '';
      setText(outcome, `${r.decision} sent as ${r.operator}`);
      outcome.className = 'outcome ok';
    } catch (err) {
      if (err instanceof Unauthenticated) return;
      setText(outcome, err.message);
      outcome.className = 'outcome error';
    } finally {
      for (const b of Object.values(buttons)) b.disabled = false;
    }
    refreshNow();
  };
  // Approve and reject act on production: the first click only arms the button ("Confirm
  // approve"), the second, within 5 s, sends. A row that moved under the pointer between two
  // clicks (a new incident listed above it) arms another button instead of deciding.
  const labels = { approve: 'Approve', reject: 'Reject', acknowledge: 'Acknowledge' };
  const disarm = (verb) => {
    const b = buttons[verb];
    clearTimeout(b.armedUntil);
    b.armedUntil = undefined;
    b.classList.remove('armed');
    setText(b, labels[verb]);
  };
  const press = (verb) => {
    const b = buttons[verb];
    if (verb === 'acknowledge' || b.armedUntil !== undefined) {
      if (verb !== 'acknowledge') disarm(verb);
      return decide(verb);
    }
    for (const other of ['approve', 'reject']) disarm(other);
    b.classList.add('armed');
    setText(b, `Confirm ${verb}`);
    b.armedUntil = setTimeout(() => disarm(verb), 5_000);
  };
  for (const verb of Object.keys(labels))
    buttons[verb] = el('button', { type: 'button', class: verb, 'data-action': verb, text: labels[verb], onclick: () => void press(verb) });
  box = { node: el('div', { class: 'decision' }, reason, buttons.approve, buttons.reject, buttons.acknowledge, outcome), buttons };
  boxes.set(id, box);
  return box;
}
/** Shows the buttons this operator may use on this incident now; null when none applies. */
export function decisionFor(id, live) {
  if (!live || live.outcome) return null;
  const pending = !!live.pendingApproval;
  const approve = pending && may('operator');
  const acknowledge = may('responder') && !live.acknowledgedBy;
  if (!approve && !acknowledge) return null;
  const box = decisionBox(id);
  box.buttons.approve.hidden = !approve;
  box.buttons.reject.hidden = !approve;
  box.buttons.acknowledge.hidden = !acknowledge;
  return box.node;
}

/** Drops the boxes of incidents no longer open. */
export function forgetDecisions(openIds) {
  for (const id of boxes.keys()) if (!openIds.has(id)) boxes.delete(id);
}
