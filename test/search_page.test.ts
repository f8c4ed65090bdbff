// The search page in a real browser (Debian's headless Chromium through playwright-core), served
// by the search service over a brute-force in-memory index of a generated image folder: an image
// uploaded through the file input brings back its neighbours (thumbnails, distances, labels, the
// image itself first), clicking a neighbour searches from it, API errors are shown in words, and
// an index without a model or images still searches by id. No request leaves the server, nothing
// is logged as an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createSearchService, type SearchService } from '../src/search/service.ts';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, chromiumSkip, watchPage } from './helpers/chromium.ts';
import { colourFolder, meanColour } from './helpers/colour_folder.ts';
import { MemoryIndex, distance } from './helpers/memory_index.ts';

const skip = chromiumSkip;

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-search-page-'));
const CLASSES = ['circle', 'square', 'star'];
const DIM = 3;
let paths: string[] = [];
let labels: string[] = [];
let vectors: Float32Array = new Float32Array(0);
let browser: Browser | undefined;
const services: SearchService[] = [];

const embedImage = meanColour;

/** Ids of the k nearest stored rows to row `of` (itself excluded when asked), by Euclidean distance. */
function nearest(query: Float32Array, k: number, exclude: number | null): number[] {
  return labels
    .map((_, id) => ({ id, d: distance('l2', query, vectors.subarray(id * DIM, (id + 1) * DIM)) }))
    .filter((h) => h.id !== exclude)
    .sort((a, b) => a.d - b.d || a.id - b.id)
    .slice(0, k)
    .map((h) => h.id);
}

async function serve(opts: Omit<Parameters<typeof createSearchService>[0], 'index'> & { index?: MemoryIndex }): Promise<string> {
  const svc = createSearchService({ index: opts.index ?? new MemoryIndex({ vectors, dim: DIM, labels, paths }), ...opts });
  services.push(svc);
  const addr = await svc.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${addr.port}/`;
}

/** The result cards as the page shows them. */
function cards(page: Page): Promise<Array<{ id: number; label: string; distance: string; thumbLoaded: boolean }>> {
  return page.$$eval('#results .hit', (els) =>
    els.map((el) => {
      const img = el.querySelector('img.thumb') as HTMLImageElement | null;
      return {
        id: Number((el as HTMLElement).dataset.id),
        label: el.querySelector('.label')?.textContent ?? '',
        distance: el.querySelector('.distance')?.textContent ?? '',
        thumbLoaded: img !== null && img.complete && img.naturalWidth > 0,
      };
    }),
  );
}

before(async () => {
  if (skip) return;
  ({ paths, labels, vectors } = await colourFolder(tmp, CLASSES, 5, 11));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
  await browser?.close();
  await Promise.all(services.map((s) => s.close()));
  rmSync(tmp, { recursive: true, force: true });
});

test('upload an image, see its neighbours, click one to search from it', { skip }, async () => {
  const url = await serve({ embedImage, imagesRoot: tmp });
  const page = await (browser as Browser).newPage();
  const w = watchPage(page);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  assert.match((await page.textContent('#info')) ?? '', /15 items · 3-d · l2 · exact/);
  assert.equal(await page.isVisible('#drop'), true, 'an index with a model offers the drop zone');

  const uploaded = 7;
  await page.setInputFiles('#file', join(tmp, paths[uploaded] as string));
  await page.waitForFunction(() => document.querySelectorAll('#results .hit').length === 10);
  await page.waitForFunction(() => [...document.querySelectorAll('#results img.thumb')].every((i) => (i as HTMLImageElement).complete));
  let shown = await cards(page);
  const query = vectors.subarray(uploaded * DIM, (uploaded + 1) * DIM);
  assert.deepEqual(
    shown.map((c) => c.id),
    nearest(query, 10, null),
  );
  assert.equal(shown[0]?.id, uploaded);
  assert.equal(shown[0]?.distance, 'd = 0');
  for (const c of shown) {
    assert.equal(c.label, labels[c.id]);
    assert.match(c.distance, /^d = [0-9.e-]+$/);
    assert.equal(c.thumbLoaded, true, `thumbnail of item ${c.id}`);
  }
  assert.match((await page.textContent('#query')) ?? '', /neighbours of /);

  const clicked = shown[3]?.id as number;
  await page.click(`#results .hit[data-id="${clicked}"]`);
  await page.waitForFunction((id) => (document.querySelector('#query')?.textContent ?? '').includes(`#${id}`), clicked);
  await page.waitForFunction(() => document.querySelectorAll('#results .hit').length === 10);
  shown = await cards(page);
  assert.deepEqual(
    shown.map((c) => c.id),
    nearest(vectors.subarray(clicked * DIM, (clicked + 1) * DIM), 10, clicked),
  );
  assert.ok(!shown.some((c) => c.id === clicked), 'the item searched from is not its own result');

  // A k the API refuses: its message is shown, the previous results stay.
  await page.fill('#k', '5000');
  await page.click(`#results .hit[data-id="${shown[0]?.id}"]`);
  await page.waitForSelector('#error:not([hidden])');
  assert.match((await page.textContent('#error')) ?? '', /k: expected an integer from 1 to 1000/);
  await page.fill('#k', '4');
  await page.fill('#where', "label = 'star'");
  await page.fill('#qid', '0');
  await page.click('#idform button');
  await page.waitForFunction(() => document.querySelectorAll('#results .hit').length === 4 && document.querySelector('#error')?.hasAttribute('hidden'));
  shown = await cards(page);
  assert.ok(
    shown.every((c) => c.label === 'star'),
    JSON.stringify(shown),
  );

  // The browser logs the refused k's 400 itself; nothing else may be an error.
  assert.deepEqual(
    w.errors.filter((e) => !/status of 400/.test(e)),
    [],
  );
  const foreign = w.requests.filter((r) => !r.startsWith(url) && !r.startsWith('blob:'));
  assert.deepEqual(foreign, [], 'every request goes to the service');
  await page.close();
});

test('an index without a model or images: no drop zone, search by id, cards without thumbnails', { skip }, async () => {
  const url = await serve({});
  const page = await (browser as Browser).newPage();
  const w = watchPage(page);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.isVisible('#drop'), false);
  assert.match((await page.textContent('#info')) ?? '', /no model: search by id/);
  await page.fill('#qid', '2');
  await page.fill('#k', '5');
  await page.click('#idform button');
  await page.waitForFunction(() => document.querySelectorAll('#results .hit').length === 5);
  const shown = await cards(page);
  assert.deepEqual(
    shown.map((c) => c.id),
    nearest(vectors.subarray(2 * DIM, 3 * DIM), 5, 2),
  );
  assert.equal(await page.$$eval('#results img', (imgs) => imgs.length), 0, 'no thumbnails are asked for');
  // An id that is not in the index: the API's words.
  await page.fill('#qid', '999');
  await page.click('#idform button');
  await page.waitForSelector('#error:not([hidden])');
  assert.match((await page.textContent('#error')) ?? '', /no item with id 999/);
  assert.deepEqual(
    w.errors.filter((e) => !/status of 404/.test(e)),
    [],
  );
  await page.close();
});
