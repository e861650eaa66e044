// The console's login: the token goes to the engine once and is dropped from the page at once;
// the engine answers with an HttpOnly session cookie this script never sees.
'use strict';
(() => {
  const form = document.getElementById('login');
  const input = document.getElementById('token');
  const button = document.getElementById('submit');
  const error = document.getElementById('error');

  // Already logged in (a second tab, the back button): straight to the console.
  fetch('/console/session', { credentials: 'same-origin' }).then(
    (r) => {
      if (r.ok) location.replace('/console/');
    },
    () => undefined,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    input.value = '';
    error.textContent = '';
    if (!token) return;
    button.disabled = true;
    try {
      const res = await fetch('/console/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token }),
      });
      if (res.ok) {
        location.replace('/console/');
        return;
      }
      let message = `login refused (${res.status})`;
      try {
        const body = await res.json();
        if (body && typeof body.error === 'string') message = body.error;
      } catch {
        // not JSON: keep the status
      }
      error.textContent = message;
    } catch (err) {
      error.textContent = `the engine did not answer: ${err && err.message ? err.message : err}`;
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
})();
