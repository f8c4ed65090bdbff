// Debian's Chromium as the browser tests and the docs' screenshot scripts start it: headless, and
// without the background connections this machine's closed network would refuse by the dozen.
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** CI installs Chromium (.ci/run), so there a missing one fails; elsewhere a browser test is skipped, saying why. */
export const chromiumSkip: string | false = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `${CHROMIUM} not found (apt-get install -y chromium)` : false;

/** What a page requested and the errors it raised (console errors and uncaught exceptions). */
export interface PageWatch {
  requests: string[];
  errors: string[];
}

/** Starts recording a page's requests and errors. */
export function watchPage(page: Page): PageWatch {
  const w: PageWatch = { requests: [], errors: [] };
  page.on('request', (r) => w.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') w.errors.push(m.text());
  });
  page.on('pageerror', (e) => w.errors.push(e.message));
  return w;
}
