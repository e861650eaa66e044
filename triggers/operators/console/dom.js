// The console's DOM helpers. Untrusted text (everything the engine relays: alert data, reasons,
// timeline details) only ever goes in through textContent or setAttribute, never as markup.

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}
export function setText(e, text) {
  const t = text === undefined || text === null ? '' : String(text);
  if (e.textContent !== t) e.textContent = t;
}
export function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
export function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

// Keyed table rows, updated in place: a half-typed reason keeps its text and focus, and a row
// moves only when the order of the rows changes.

export function keyedRows(tbody, items, key, make, update) {
  const wanted = new Set(items.map(key));
  // Rows that go are removed first: placed while a closed row above was still there, every row
  // below it would be moved (insertBefore), and moving a row takes the focus from its reason box.
  for (const r of [...tbody.children]) if (r.dataset.key === undefined || !wanted.has(r.dataset.key)) r.remove();
  const existing = new Map([...tbody.children].map((r) => [r.dataset.key, r]));
  items.forEach((item, i) => {
    const k = key(item);
    let row = existing.get(k);
    if (!row) {
      row = make(item);
      row.dataset.key = k;
    }
    update(row, item);
    if (tbody.children[i] !== row) tbody.insertBefore(row, tbody.children[i] || null);
  });
  if (items.length === 0) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 20, text: 'None.' })));
}
export function table(name, headings) {
  const tbody = el('tbody');
  return { node: el('table', { class: name }, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', { text: h })))), tbody), tbody };
}
export function cells(row, n) {
  while (row.children.length < n) row.append(el('td'));
  return [...row.children];
}
