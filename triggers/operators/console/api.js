// The operator API as the page calls it: the session cookie goes along by itself; a POST carries
// the session's CSRF token in a header. A 401 means the session ended: back to the login page.
export const roles = ['viewer', 'responder', 'operator', 'admin'];
/** Who is logged in, and the CSRF token of their session: set once by console.js. */
export const session = { operator: '', role: 'viewer', csrf: '' };
export const may = (least) => roles.indexOf(session.role) >= roles.indexOf(least);
export const incidentHref = (id) => `#/incident/${encodeURIComponent(id)}`;
export const incidentPath = (id) => `/api/v1/incidents/${encodeURIComponent(id)}`;

export class Unauthenticated extends Error {}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['X-CSRF-Token'] = session.csrf;
    headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers,
    ...(method !== 'GET' ? { body: JSON.stringify(body || {}) } : {}),
  });
  if (res.status === 401) {
    location.replace('/console/login');
    throw new Unauthenticated('the session has ended');
  }
  let json;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  if (!res.ok) throw new Error(json && typeof json.error === 'string' ? json.error : `${method} ${path}: HTTP ${res.status}`);
  return json;
}
