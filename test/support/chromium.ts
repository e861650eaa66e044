// A real headless Chromium (Debian's `chromium`, installed by scripts/install.sh) driven over the
// DevTools protocol with puppeteer-core, which downloads no browser of its own. One browser per test
// file; each test opens its own context (cookies and storage of its own) in it.
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    throw new Error(`no Chromium at ${chromiumPath}: run scripts/install.sh (it installs Debian's chromium) or set CHROMIUM_PATH`);
  return puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    // The DevTools protocol over a pipe: no debugging port is opened.
    pipe: true,
    args: [
      // Tests run as root in a container, where Chromium's sandbox cannot start.
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-gpu',
      // Only 127.0.0.1 is used: nothing phones home.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-domain-reliability',
      '--no-first-run',
    ],
    timeout: 30_000,
  });
}

/**
 * A fresh context and page; the page's script errors and Content-Security-Policy violations are
 * collected, so a test can assert the console runs under its own policy.
 */
export async function openPage(browser: Browser): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${(err as Error).message ?? String(err)}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { context, page, problems };
}
