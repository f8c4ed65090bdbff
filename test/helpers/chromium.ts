// Debian's Chromium as the browser tests and the docs' screenshot scripts start it: headless, and
// without the background connections this machine's closed network would refuse by the dozen.
import { existsSync } from 'node:fs';

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
