// The incident console's page: polls the operator API with the session cookie and draws the view
// the address names (#/open, #/incident/<id>, #/closed, #/report, #/guardrails). The views are in
// incidentViews.js, reportView.js and guardrailsView.js; text from the engine goes into the page as text only (dom.js).
import { api, session, Unauthenticated } from './api.js';
import { onDecided } from './decisions.js';
import { setText, time } from './dom.js';
import { closedView, incidentView, openView } from './incidentViews.js';
import { guardrailsView } from './guardrailsView.js';
import { reportView } from './reportView.js';

const view = document.getElementById('view');
const statusLine = document.getElementById('status');
let current = { generation: 0, timer: undefined, inFlight: false, refresh: async () => undefined, interval: 2_000 };
const refreshNow = () => void tick(current.generation, true);

async function tick(generation, now) {
  if (generation !== current.generation) return;
  const polling = current;
  clearTimeout(polling.timer);
  // One refresh at a time per view; a hidden tab is not polled (nobody is looking at it).
  if (!polling.inFlight && (now || !document.hidden)) {
    polling.inFlight = true;
    try {
      await current.refresh();
      setText(statusLine, `updated ${time(new Date().toISOString())}`);
      statusLine.className = '';
    } catch (err) {
      if (err instanceof Unauthenticated) return;
      setText(statusLine, `could not update: ${err.message}`);
      statusLine.className = 'error';
    } finally {
      polling.inFlight = false;
    }
  }
  if (generation !== current.generation) return;
  // A refresh asked for while another ran left a timer too: one chain of polls only.
  clearTimeout(polling.timer);
  polling.timer = setTimeout(() => void tick(generation), polling.interval);
}

function route() {
  clearTimeout(current.timer);
  if (current.stop) current.stop();
  const hash = location.hash || '#/open';
  let made;
  let nav = 'open';
  if (hash.startsWith('#/incident/')) {
    let id;
    try {
      id = decodeURIComponent(hash.slice('#/incident/'.length));
    } catch {
      id = '';
    }
    made = incidentView(view, id);
    nav = '';
  } else if (hash === '#/closed') {
    made = closedView(view);
    nav = 'closed';
  } else if (hash === '#/report') {
    made = reportView(view, refreshNow);
    nav = 'report';
  } else if (hash === '#/guardrails') {
    made = guardrailsView(view, refreshNow);
    nav = 'guardrails';
  } else made = openView(view);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.dataset.nav === nav);
  current = { generation: current.generation + 1, timer: undefined, inFlight: false, stop: undefined, ...made };
  void tick(current.generation, true);
}

async function start() {
  let me;
  try {
    me = await api('GET', '/console/session');
  } catch (err) {
    if (!(err instanceof Unauthenticated)) setText(statusLine, `could not reach the engine: ${err.message}`);
    return;
  }
  session.operator = me.operator;
  session.role = me.role;
  session.csrf = me.csrfToken;
  setText(document.getElementById('who'), `${me.operator} (${me.role})`);
  document.getElementById('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/console/logout');
    } catch {
      // gone already: the login page either way
    }
    location.replace('/console/login');
  });
  onDecided(refreshNow);
  window.addEventListener('hashchange', route);
  route();
}

void start();
