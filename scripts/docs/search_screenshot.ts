// The screenshot of the search page in docs/search.png: serves an index (or uses a running
// service), opens the page in headless Chromium, runs one query and saves a PNG.
//
//   node --import tsx scripts/docs/search_screenshot.ts --index INDEX_DIR [--image FILE | --id N]
//        [--images DIR] [--k 12] [--out docs/search.png] [--width 1280] [--height 900]
//   node --import tsx scripts/docs/search_screenshot.ts --url http://127.0.0.1:8080/ [--image FILE | --id N] …
//
// With --image (and an index that has a model) the image is uploaded through the page's file
// input; otherwise the page searches from item --id (default 0).
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS as ARGS } from '../../test/helpers/chromium.ts';
import { openIndexService, type OpenedIndex } from '../../src/cli/commands/serve.ts';
import { createSearchService, type SearchService } from '../../src/search/service.ts';

const { values: v } = parseArgs({
  options: {
    index: { type: 'string' },
    url: { type: 'string' },
    images: { type: 'string' },
    image: { type: 'string' },
    id: { type: 'string' },
    k: { type: 'string' },
    out: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
  },
  strict: true,
});
if ((v.index === undefined) === (v.url === undefined)) {
  console.error('search_screenshot: give exactly one of --index INDEX_DIR and --url URL');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`search_screenshot: ${CHROMIUM} not found (apt-get install -y chromium, or set CHROMIUM)`);
  process.exit(2);
}
const out = resolve(v.out ?? 'docs/search.png');
const width = Number(v.width ?? 1280);
const height = Number(v.height ?? 900);

let opened: OpenedIndex | null = null;
let service: SearchService | null = null;
let url = v.url ?? '';
if (v.index !== undefined) {
  opened = await openIndexService(v.index, { images: v.images ?? null, noModel: v.image === undefined });
  service = createSearchService({ index: opened.index, imagesRoot: opened.imagesRoot, ...(opened.embedImage ? { embedImage: opened.embedImage } : {}) });
  const addr = await service.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${addr.port}/`;
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
try {
  const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  if (v.k !== undefined) await page.fill('#k', v.k);
  if (v.image !== undefined && (await page.isVisible('#drop'))) {
    await page.setInputFiles('#file', resolve(v.image));
  } else {
    if (v.image !== undefined) console.error('search_screenshot: this index cannot embed images; searching by --id instead');
    await page.fill('#qid', v.id ?? '0');
    await page.click('#idform button');
  }
  await page.waitForSelector('#results .hit, #error:not([hidden])');
  // Thumbnails load lazily after the grid appears; the screenshot waits for them.
  await page.waitForFunction(() => [...document.querySelectorAll('img')].every((i) => i.complete));
  const error = await page.$('#error:not([hidden])');
  if (error) throw new Error(`the page shows an error: ${await error.textContent()}`);
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await service?.close();
  opened?.close();
}
