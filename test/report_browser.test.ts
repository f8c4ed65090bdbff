// The report and the live page in a real browser (Debian's headless Chromium through
// playwright-core): two tiny runs are trained on a generated image folder, the report opens from a
// file:// URL without a single network request, every chart holds data, the UMAP map has one
// point per test image, the gallery has thumbnails, nothing is logged to the console as an error;
// then `hardneg serve` shows the same views and picks up a line appended to a run's log.
//
// HARDNEG_SCREENSHOT=1 also saves docs/report.png (1280×2000, the top of the page) of the test's
// report, or of a report of the run directories in HARDNEG_SCREENSHOT_RUNS (separated by ':').
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS as ARGS, chromiumSkip, watchPage } from './helpers/chromium.ts';
import { ROOT, hardneg } from './helpers/cli.ts';
import { makeImageFolder } from './helpers/image_folder.ts';

const skip = chromiumSkip;

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-browser-'));
const data = join(tmp, 'data');
const runs = { gca: join(tmp, 'gca'), none: join(tmp, 'none') };
const report = join(tmp, 'report.html');
const TEST_IMAGES = 5 * 6;
let browser: Browser | undefined;

function train(out: string, method: string): void {
  const r = hardneg([
    'train',
    '--dataset',
    'folder',
    '--data-root',
    data,
    '--method',
    method,
    '--epochs',
    '2',
    '--seed',
    '7',
    '--out',
    out,
    '--quiet',
    '--set',
    'dataset.imageSize=8',
    '--set',
    'model.embeddingSize=16',
    '--set',
    'train.classesPerBatch=3',
    '--set',
    'train.samplesPerClass=2',
    '--set',
    'train.maxIterationsPerEpoch=4',
    '--set',
    'eval.ks=[1,2]',
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/** Every svg.chart on the page that does not hold data (by its label), and how many there are. */
async function chartsWithoutData(page: Page): Promise<{ total: number; empty: string[] }> {
  return page.evaluate(() => {
    const charts = [...document.querySelectorAll('svg.chart')];
    const empty = charts.filter((svg) => {
      if (svg.getAttribute('data-empty') !== 'false') return true;
      const paths = [...svg.querySelectorAll('path.series')].filter((p) => Number(p.getAttribute('data-points')) > 0 && /\d/.test(p.getAttribute('d') ?? ''));
      return paths.length === 0 && svg.querySelectorAll('circle.pt').length === 0;
    });
    return { total: charts.length, empty: empty.map((svg) => svg.getAttribute('aria-label') ?? '?') };
  });
}

async function screenshot(page: Page, path: string): Promise<void> {
  mkdirSync(join(ROOT, 'docs'), { recursive: true });
  await page.setViewportSize({ width: 1280, height: 2000 });
  await page.screenshot({ path, clip: { x: 0, y: 0, width: 1280, height: 2000 } });
}

before(async () => {
  if (skip) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('setup: a tiny image folder and two runs (gca-hng and none)', { skip }, async () => {
  await makeImageFolder(data, 'train', ['a', 'b', 'c', 'd', 'e', 'f'], 5, 1);
  await makeImageFolder(data, 'test', ['g', 'h', 'i', 'j', 'k'], 6, 2);
  train(runs.gca, 'gca-hng');
  train(runs.none, 'none');
  const r = hardneg(['report', runs.gca, runs.none, '--out', report, '--k', '7', '--queries', '6']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*report\.html/);
});

test('the report opens offline from a file, renders every view with data, and logs no error', { skip }, async () => {
  const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 2000 } });
  const w = watchPage(page);
  await page.goto(pathToFileURL(report).href, { waitUntil: 'load' });
  assert.deepEqual(
    w.requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')),
    [],
    'no network request',
  );
  assert.deepEqual(
    w.requests.filter((u) => u.startsWith('file:')),
    [pathToFileURL(report).href],
    'the page itself only',
  );
  const ids = await page.$$eval('section.report-section', (s) => s.map((e) => e.id));
  assert.deepEqual(
    ids,
    ['overview', 'losses', 'rates', 'metrics', 'hardness', 'umap', 'gallery'].map((s) => `section-${s}`),
  );
  const { total, empty } = await chartsWithoutData(page);
  assert.ok(total >= 20, `${total} charts`);
  assert.deepEqual(empty, [], 'every chart has data');
  // Runs overlaid: the loss and metric charts shared by both runs have one series per run, with a legend.
  const jm = await page.$$eval('#section-losses .charts > figure:first-child svg.chart path.series', (p) => p.map((e) => e.getAttribute('data-series')));
  assert.deepEqual(jm, ['gca', 'none']);
  const recall = await page.$$eval('#section-metrics svg.chart', (svgs) => svgs.map((s) => s.querySelectorAll('.legend-item').length));
  assert.ok(recall.length >= 5 && recall.every((n) => n === 2), `legends: ${recall}`);
  // Hardness: distance distributions and edge weights per evaluation of the gca-hng run.
  const hardness = await page.$$eval('#section-hardness svg.chart', (s) => s.map((e) => e.getAttribute('aria-label') ?? ''));
  assert.ok(hardness.filter((t) => /distances from the anchor/.test(t)).length === 2, 'one distance chart per evaluation');
  assert.ok(hardness.filter((t) => /edge weights per channel/.test(t)).length === 2);
  // UMAP: one point per test image, per run.
  const points = await page.$$eval('#section-umap svg.chart-scatter', (s) => s.map((e) => e.querySelectorAll('circle.pt').length));
  assert.deepEqual(points, [TEST_IMAGES, TEST_IMAGES]);
  // Gallery: 6 queries per run, the query and 7 results each (more than the 5 other images of its
  // class, so some are wrong), all decoded thumbnails, every result marked right or wrong.
  const gallery = await page.$$eval('#section-gallery li.query', (qs) =>
    qs.map((q) => ({
      images: [...q.querySelectorAll('img')].map((i) => (i as HTMLImageElement).naturalWidth),
      marked: q.querySelectorAll('.result.hit, .result.miss').length,
    })),
  );
  assert.equal(gallery.length, 12);
  for (const q of gallery) {
    assert.equal(q.images.length, 8);
    assert.ok(
      q.images.every((w) => w > 0),
      'thumbnails decode',
    );
    assert.equal(q.marked, 7);
  }
  assert.ok(await page.$('#section-gallery .result.miss'), 'some wrong results are marked');
  assert.deepEqual(w.errors, [], 'no console errors');
  if (process.env.HARDNEG_SCREENSHOT === '1') {
    const extra = process.env.HARDNEG_SCREENSHOT_RUNS;
    if (extra) {
      const shotReport = join(tmp, 'screenshot.html');
      const r = hardneg(['report', ...extra.split(':'), '--out', shotReport]);
      assert.equal(r.code, 0, r.stderr);
      await page.goto(pathToFileURL(shotReport).href, { waitUntil: 'load' });
    }
    await screenshot(page, join(ROOT, 'docs', 'report.png'));
  }
  await page.close();
});

function startServe(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'hardneg'), 'serve', runs.gca, runs.none, '--port', '0', '--interval', '0.5', '--k', '7', '--queries', '6'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '',
      err = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}${err}`)), 120_000);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, exited });
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
}

function getStatus(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test('serve shows the same views on localhost and picks up new log lines', { skip }, async () => {
  const { child, url, exited } = await startServe();
  try {
    assert.match(url, /^http:\/\/127\.0\.0\.1:/, 'bound to 127.0.0.1 by default');
    const port = new URL(url).port;
    assert.equal(await getStatus(url, `evil.example:${port}`), 403, 'requests for other host names are refused');
    assert.equal(await getStatus(`${url}nothing`, `127.0.0.1:${port}`), 404);
    const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 1600 } });
    const w = watchPage(page);
    await page.goto(url, { waitUntil: 'load' });
    // The maps and galleries are computed in the background; the page shows them when ready.
    await page.waitForFunction((n) => document.querySelectorAll('#section-umap circle.pt').length === n, 2 * TEST_IMAGES, { timeout: 60_000 });
    await page.waitForFunction(() => document.querySelectorAll('#section-gallery li.query').length === 12, undefined, { timeout: 60_000 });
    const { total, empty } = await chartsWithoutData(page);
    assert.ok(total >= 20, `${total} charts`);
    assert.deepEqual(empty, []);
    const selector = '#section-losses .charts > figure:first-child svg.chart path.series[data-series="gca"]';
    const before = Number(await page.getAttribute(selector, 'data-points'));
    const log = join(runs.gca, 'log.jsonl');
    const last = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'iteration')
      .pop();
    appendFileSync(log, `${JSON.stringify({ ...last, step: last.step + 1, iteration: last.iteration + 1, J_m: 0.5 })}\n`);
    await page.waitForFunction(
      ({ s, n }) => Number(document.querySelector(s)?.getAttribute('data-points')) === n,
      { s: selector, n: before + 1 },
      { timeout: 20_000 },
    );
    assert.ok(Number(await page.getAttribute('body', 'data-updates')) >= 1);
    assert.match((await page.textContent('#live-status')) ?? '', /live · checked/);
    const origin = new URL(url).origin;
    assert.deepEqual(
      w.requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:')),
      [],
      'requests to the server only',
    );
    assert.ok(
      w.requests.some((u) => u.startsWith(`${origin}/api/sections`)),
      'the page polls the server',
    );
    assert.deepEqual(w.errors, [], 'no console errors');
    await page.close();
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, 'serve stops cleanly on SIGTERM');
});
