// The HTML report rendered in a real headless Chromium: it shows the numbers the JSON report has,
// draws its charts, loads nothing from anywhere, and shows hostile names as text.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, type ClosedIncident } from '../../triggers/reports/report.js';
import { reportHtml } from '../../triggers/reports/reportHtml.js';
import type { Outcome } from '../../workflows/messages.js';
import { launchChromium, openPage } from '../support/chromium.js';

const dir = mkdtempSync(join(tmpdir(), 'report-html-'));
let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

const since = new Date('2026-11-27T00:00:00Z');
const until = new Date('2026-12-04T00:00:00Z');
const hostile = '<img src=x onerror="document.title=\'pwned\'">';
function outage(target: string, outcome: Outcome, startMin: number, minutes: number, runbook = 'serviceDown'): ClosedIncident {
  const alertStartsAt = new Date(since.getTime() + startMin * 60_000);
  return {
    workflowId: `incident:${runbook}:${target}:${startMin}`,
    runbook,
    target,
    outcome,
    alertStartsAt,
    startedAt: new Date(alertStartsAt.getTime() + 4_000),
    endedAt: new Date(alertStartsAt.getTime() + minutes * 60_000),
  };
}

describe('the HTML report', () => {
  it('shows in Chromium the numbers the JSON report has, with its charts', async () => {
    const report = buildReport(
      [
        outage('api', 'recovered', 60, 2),
        outage('api', 'recovered', 2_000, 6),
        outage('api', 'escalated', 5_000, 30),
        outage('orders-db', 'recovered', 3_000, 1, 'databaseConnection'),
        outage('orders-db', 'false-alarm', 4_000, 3, 'databaseConnection'),
        outage(hostile, 'failed', 7_000, 90),
      ],
      { since, until, operators: ['alice'], objective: 0.999 },
    );
    const file = join(dir, 'report.html');
    writeFileSync(file, reportHtml(report, until));
    const { page, problems, context } = await openPage(browser);
    const requests: string[] = [];
    page.on('request', (r) => void requests.push(r.url()));
    await page.goto(`file://${file}`);
    await page.setViewport({ width: 1100, height: 1400 });
    const png = await page.screenshot({ fullPage: true, type: 'png' });
    writeFileSync(join(dir, 'report.png'), png);
    if (process.env.REPORT_SCREENSHOT) writeFileSync(process.env.REPORT_SCREENSHOT, png);
    expect(png.length).toBeGreaterThan(20_000);

    const cards = await page.$$eval('.card b', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-metric'), e.textContent])));
    expect(cards).toEqual({
      incidents: String(report.incidents),
      recovered: String(report.recovered),
      automaticRecoveryRate: `${(report.automaticRecoveryRate! * 100).toFixed(1)} %`,
      'timeToRecover.p50Ms': '2.0 min',
      'timeToRecover.p95Ms': '6.0 min',
    });
    expect(report.timeToRecover).toMatchObject({ p50Ms: 120_000, p95Ms: 360_000, fromAlert: 3 });

    const rows = await page.$$eval('tr[data-target]', (trs) =>
      trs.map((tr) => ({
        target: tr.getAttribute('data-target'),
        downtimeMs: Number(tr.querySelector('[data-metric="downtimeMs"]')!.getAttribute('data-value')),
        budgetLeftMs: Number(tr.querySelector('[data-metric="budgetLeftMs"]')!.getAttribute('data-value')),
        availability: tr.querySelector('[data-metric="availability"]')!.textContent,
      })),
    );
    expect(rows).toEqual(
      report.perTarget.map((t) => ({
        target: t.target,
        downtimeMs: Math.round(t.downtimeMs),
        budgetLeftMs: Math.round(t.budgetLeftMs),
        availability: `${(t.availability * 100).toFixed(3)} %`,
      })),
    );
    // api: 2 + 6 + 30 minutes down over 7 days.
    expect(report.perTarget.find((t) => t.target === 'api')!.downtimeMs).toBe(38 * 60_000);
    expect(await page.$$eval('svg', (s) => s.map((e) => e.getAttribute('aria-label')))).toEqual([
      'outcomes per day',
      'availability per target',
      'time to recover per target',
    ]);
    expect(await page.$$eval('svg[aria-label="outcomes per day"] rect', (r) => r.length)).toBeGreaterThanOrEqual(5);

    // The hostile target name is text, not markup: no image was requested, no script ran.
    expect(await page.title()).not.toBe('pwned');
    expect(await page.$$eval('img', (i) => i.length)).toBe(0);
    expect(rows.map((r) => r.target)).toContain(hostile);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);
});
