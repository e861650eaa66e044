// The console's open-incidents view in a real headless Chromium, against a stand-in operator API
// whose answers the test sets: what an operator has half typed in a decision box keeps its text and
// its focus while the list changes under it and while the run's status query fails.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium, openPage } from '../support/chromium.js';

// What the page-side callbacks touch (the project compiles without the DOM's types).
interface PageNode {
  textContent: string | null;
  hasAttribute(name: string): boolean;
  getAttribute(name: string): string | null;
  closest(selector: string): PageNode | null;
}
declare const document: { querySelector(selector: string): PageNode | null; activeElement: PageNode | null };
declare const window: { view: { refresh(): Promise<void> }; viewReady?: boolean };

const consoleDir = join(import.meta.dirname, '../../triggers/operators/console');
const pending = { step: 'approve-restart', since: '2026-12-07T10:00:00Z', timeoutAt: '2026-12-07T10:30:00Z' };
const live = { step: 'approve-restart', pendingApproval: pending, timeline: [] };

/** What the stand-in API answers: the open list, and per run its detail. */
let listed: string[] = [];
let detail: Record<string, unknown> = {};
let server: Server;
let origin = '';
let browser: Browser;
let page: Page;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    const file = /^\/console\/([a-zA-Z]+\.js)$/.exec(url.pathname);
    if (file) return send(200, 'text/javascript', readFileSync(join(consoleDir, file[1] ?? ''), 'utf8'));
    if (url.pathname === '/') return send(200, 'text/html', '<!doctype html><main id="view"></main>');
    if (url.pathname === '/api/v1/incidents')
      return send(
        200,
        'application/json',
        JSON.stringify({
          incidents: listed.map((id) => ({ workflowId: id, target: id, runbook: 'serviceDown', startTime: '2026-12-07T10:00:00Z' })),
        }),
      );
    const one = /^\/api\/v1\/incidents\/([^/]+)$/.exec(url.pathname);
    if (one)
      return send(
        200,
        'application/json',
        JSON.stringify({ workflowId: decodeURIComponent(one[1] ?? ''), ...(detail[decodeURIComponent(one[1] ?? '')] ?? {}) }),
      );
    send(404, 'application/json', '{"error":"not found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

beforeEach(async () => {
  ({ page } = await openPage(browser));
  await page.goto(`${origin}/`);
  await page.addScriptTag({
    type: 'module',
    content: `
      import { session } from '/console/api.js';
      import { openView } from '/console/incidentViews.js';
      session.role = 'operator';
      window.view = openView(document.getElementById('view'));
      window.viewReady = true;`,
  });
  await page.waitForFunction(() => window.viewReady === true);
});

const refresh = (p: Page) => p.evaluate(() => window.view.refresh());
const rowOf = (id: string) => `table.open tr[data-incident="${id}"]`;
/** Waits until the row's step cell shows this text (its status was fetched and drawn). */
const stepShows = (p: Page, id: string, text: string) =>
  p.waitForFunction((sel, t) => document.querySelector(`${sel} td:nth-child(6)`)?.textContent === t, {}, rowOf(id), text);
const focusedReason = (p: Page) =>
  p.evaluate(() => {
    const a = document.activeElement;
    return a?.hasAttribute('data-reason') ? (a.closest('tr')?.getAttribute('data-incident') ?? '') : null;
  });

describe('the open view, while an operator types a reason', () => {
  it('keeps the focus and the text when an incident listed above it closes', async () => {
    listed = ['incident:a', 'incident:b'];
    detail = { 'incident:a': { live }, 'incident:b': { live } };
    await refresh(page);
    await stepShows(page, 'incident:b', 'approve-restart');
    await page.type(`${rowOf('incident:b')} input[data-reason]`, 'disk is ');

    listed = ['incident:b'];
    await refresh(page);
    expect(await page.$(rowOf('incident:a'))).toBeNull();
    expect(await focusedReason(page)).toBe('incident:b');
    await page.keyboard.type('full');
    expect(await page.$eval(`${rowOf('incident:b')} input[data-reason]`, (i) => (i as unknown as { value: string }).value)).toBe(
      'disk is full',
    );
  });

  it('keeps the box, the focus and the text when the run stops answering its status query', async () => {
    listed = ['incident:c'];
    detail = { 'incident:c': { live } };
    await refresh(page);
    await stepShows(page, 'incident:c', 'approve-restart');
    await page.type(`${rowOf('incident:c')} input[data-reason]`, 'restart ');

    detail = { 'incident:c': { liveError: 'status query failed (is an engine running?): timed out' } };
    await refresh(page);
    await stepShows(page, 'incident:c', '(no status)');
    expect(await page.$eval(`${rowOf('incident:c')} td:nth-child(6)`, (td) => td.getAttribute('title'))).toContain('timed out');
    expect(await focusedReason(page)).toBe('incident:c');
    await page.keyboard.type('it');
    expect(await page.$eval(`${rowOf('incident:c')} input[data-reason]`, (i) => (i as unknown as { value: string }).value)).toBe(
      'restart it',
    );

    // Answering again, it shows its step again at the next ask (2 s after one failure).
    detail = { 'incident:c': { live } };
    await page.waitForFunction(
      async (sel) => {
        await window.view.refresh();
        return document.querySelector(`${sel} td:nth-child(6)`)?.textContent === 'approve-restart';
      },
      { polling: 500, timeout: 10_000 },
      rowOf('incident:c'),
    );
  }, 30_000);
});
