// The pure parts of the report: SVG charts, reading run directories (malformed and growing logs),
// the UMAP map (seeded, and the same as umap-js's own graph construction), the gallery's ordering,
// the sections, and the report command's refusals.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UMAP } from 'umap-js';
import {
  axisExponent,
  binFractions,
  downsample,
  escapeXml,
  fitText,
  formatTick,
  histogramChart,
  lineChart,
  linearAxis,
  logAxis,
  niceStep,
  scatterChart,
} from '../src/report/svg_chart.ts';
import { RunDir, RunLog, checkRunDir, openRuns, parseLogLine } from '../src/report/run_data.ts';
import { umapProjection } from '../src/report/umap_projection.ts';
import { rankQueries } from '../src/report/gallery.ts';
import { sharedNeighbours } from '../src/report/neighbours.ts';
import { isReportHtml, renderPage } from '../src/report/html_page.ts';
import { allSections, gallerySection, hardnessSection, pickEvaluations, type RunSnapshot } from '../src/report/views.ts';
import { embeddings, nearestNeighbours, normalizeRows } from '../src/metrics/index.ts';
import { seededRandom } from '../src/metrics/kmeans.ts';
import { UserError } from '../src/errors.ts';
import { hardneg } from './helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-report-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Attribute values of every element matching `tag … class="cls"` in an SVG/HTML string. */
function attrs(html: string, cls: string, attr: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(new RegExp(`<[a-z]+ class="${cls}"[^>]*>`, 'g'))) {
    const a = new RegExp(` ${attr}="([^"]*)"`).exec(m[0]);
    if (a) out.push(a[1] as string);
  }
  return out;
}

test('axes: nice steps, widened ranges, tick labels with one precision per axis', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(0.9, 5), 0.2);
  assert.equal(niceStep(7, 5), 1);
  const a = linearAxis(0.13, 0.87, 4);
  assert.ok(a.lo <= 0.13 && a.hi >= 0.87);
  assert.deepEqual(
    a.ticks.map((t) => formatTick(t, a)),
    ['0', '0.2', '0.4', '0.6', '0.8', '1.0'],
  );
  const flat = linearAxis(3, 3);
  assert.ok(flat.lo < 3 && flat.hi > 3, 'a constant series still gets a range');
  const small = linearAxis(-1.2e-3, 2.1e-3, 5);
  assert.equal(axisExponent(small), -3);
  assert.deepEqual(
    small.ticks.map((t) => formatTick(t, small)),
    ['-1.5', '-1.0', '-0.5', '0', '0.5', '1.0', '1.5', '2.0', '2.5'],
  );
  const large = linearAxis(0, 250000, 5);
  assert.equal(axisExponent(large), 5);
  assert.deepEqual(
    large.ticks.map((t) => formatTick(t, large)),
    ['0', '0.5', '1.0', '1.5', '2.0', '2.5'],
  );
  assert.equal(axisExponent(a), 0);
  const log = logAxis(2e-5, 3);
  assert.equal(log.lo, 1e-5);
  assert.equal(log.hi, 10);
  assert.deepEqual(
    log.ticks.map((t) => formatTick(t, log)),
    ['1e-5', '1e-4', '0.001', '0.01', '0.1', '1', '10'],
  );
  assert.equal(fitText('abcdefghij', 6), 'abcde…');
  assert.equal(fitText('short', 6), 'short');
});

test('line chart: one path per series with its point count, gaps at non-finite values, a legend, escaped names', () => {
  const svg = lineChart({
    title: 'loss <J_m> & co',
    xLabel: 'iteration',
    yLabel: 'J',
    series: [
      {
        name: 'run<1>',
        color: '#111',
        points: [
          [1, 3],
          [2, 2],
          [3, NaN],
          [4, 1],
          [5, 0.5],
        ],
      },
      {
        name: 'run2',
        color: '#222',
        points: [
          [1, 4],
          [2, 3],
        ],
      },
      { name: 'empty', color: '#333', points: [[1, NaN]] },
    ],
  });
  assert.match(svg, /^<svg class="chart chart-line"/);
  assert.match(svg, /data-empty="false"/);
  assert.ok(!svg.includes('<J_m>') && svg.includes('loss &lt;J_m&gt; &amp; co'), 'the title is escaped');
  assert.deepEqual(attrs(svg, 'series', 'data-points'), ['4', '2'], 'the all-NaN series is left out');
  assert.deepEqual(attrs(svg, 'series', 'data-series'), ['run&lt;1&gt;', 'run2']);
  const d = attrs(svg, 'series', 'd')[0] as string;
  assert.equal((d.match(/M/g) ?? []).length, 2, 'the NaN breaks the line into two pieces');
  assert.equal((svg.match(/class="legend-item"/g) ?? []).length, 2);
  assert.equal((svg.match(/class="marker"/g) ?? []).length, 6, 'short series get markers with hover titles');
  for (const m of svg.matchAll(/ d="([^"]*)"/g)) assert.ok(!/NaN|Infinity/.test(m[1] as string), 'no NaN coordinates');
});

test('line chart: empty input gives a marked empty chart; wide positive ranges a log axis', () => {
  const empty = lineChart({ title: 'nothing', series: [] });
  assert.match(empty, /chart-empty/);
  assert.match(empty, /data-empty="true"/);
  assert.match(empty, /no data yet/);
  const wide = lineChart({
    title: 'J_syn',
    series: [
      {
        name: 'r',
        color: '#000',
        points: [
          [0, 1e-5],
          [1, 1e-3],
          [2, 1],
        ],
      },
    ],
    logY: 'auto',
  });
  assert.match(wide, /data-log-y="true"/);
  const narrow = lineChart({
    title: 'J_m',
    series: [
      {
        name: 'r',
        color: '#000',
        points: [
          [0, 1],
          [1, 3],
        ],
      },
    ],
    logY: 'auto',
  });
  assert.doesNotMatch(narrow, /data-log-y/);
  const lr = lineChart({
    title: 'lr',
    yLabel: 'lr',
    series: [
      {
        name: 'r',
        color: '#000',
        points: [
          [0, 1e-3],
          [1, 5e-4],
        ],
      },
    ],
  });
  assert.match(lr, />lr, ×1e-3</, 'small values: the power of ten is in the axis title');
  assert.match(lr, /class="tick"[^>]*>1\.0</);
});

test('histogram and scatter charts draw every series and every point', () => {
  const h = histogramChart({
    title: 'distances',
    series: [
      { name: 'a', color: '#f00', ...binFractions([0.1, 0.2, 0.2, 0.9], 0, 1, 4) },
      { name: 'b', color: '#00f', edges: [0, 1], heights: [0] },
    ],
  });
  assert.deepEqual(attrs(h, 'series', 'data-series'), ['a'], 'an all-zero histogram is not drawn');
  const f = binFractions([0.1, 0.2, 0.2, 0.9, NaN], 0, 1, 4);
  assert.deepEqual(f.heights, [0.75, 0, 0, 0.25]);
  const s = scatterChart({ title: 'map', x: [0, 1, 2, 3], y: [0, 1, 0, 1], classes: [0, 1, 1, 2], classNames: ['x', 'y', 'z'] });
  assert.match(s, /data-points="4"/);
  assert.deepEqual(attrs(s, 'pt', 'data-class'), ['0', '1', '1', '2']);
  assert.equal((s.match(/class="legend-item"/g) ?? []).length, 3);
});

test('downsampling keeps at most the asked points with a min–max band', () => {
  const pts = Array.from({ length: 1000 }, (_, i) => [i, i % 10] as const);
  const d = downsample(pts, 100);
  assert.equal(d.points.length, 100);
  assert.equal(d.band?.length, 100);
  assert.deepEqual(d.band?.[0], [4.5, 0, 9]);
  assert.equal(downsample(pts.slice(0, 50), 100).band, undefined);
  assert.deepEqual(pickEvaluations([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4), [1, 4, 7, 10]);
});

function iterLine(step: number, epoch = 0): string {
  return JSON.stringify({ type: 'iteration', step, epoch, iteration: step - 1, J_m: 1 / step, lr: 0.001 });
}

function makeRun(
  name: string,
  lines: string[],
  config: object = { dataset: { name: 'folder', root: '/nonexistent' }, train: { method: 'gca-hng', epochs: 2, seed: 3 } },
): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'log.jsonl'), lines.join(''));
  return dir;
}

test('log lines: each type parsed, malformed ones explained', () => {
  assert.equal(parseLogLine(iterLine(3)).kind, 'iteration');
  assert.equal(parseLogLine('{"type":"evaluation","step":1,"epoch":1,"recall":{"1":0.5},"map_at_r":0.1,"r_precision":0.2,"nmi":null}').kind, 'evaluation');
  assert.equal(parseLogLine('{"type":"checkpoint","step":1,"epoch":0}').kind, 'other');
  assert.deepEqual(parseLogLine('{"type":"iteration"'), { kind: 'error', message: 'not valid JSON' });
  assert.equal(parseLogLine('[1,2]').kind, 'error');
  assert.equal(parseLogLine('{"type":"evaluation","step":1,"epoch":1}').kind, 'error');
  assert.equal(parseLogLine('{"type":"diagnostics","step":1,"epoch":1,"phi":1}').kind, 'error');
});

test('a run directory with malformed lines: the good entries are read, the bad ones listed by line number', () => {
  const dir = makeRun('malformed', [
    `${iterLine(1)}\n`,
    'not json at all\n',
    `${iterLine(2)}\n`,
    '\n',
    '{"type":"evaluation","step":2,"epoch":1}\n',
    '{"type":"evaluation","step":2,"epoch":1,"recall":{"1":0.5,"2":0.7},"map_at_r":0.1,"r_precision":0.2,"nmi":0.3}\n',
    '{"type":"iteration","step":3,"ep',
  ]);
  const run = new RunDir(dir);
  run.refresh(true);
  assert.deepEqual(
    run.log.iterations.map((i) => i.step),
    [1, 2],
  );
  assert.deepEqual(run.log.iterations[0]?.values, { J_m: 1, lr: 0.001 });
  assert.equal(run.log.evaluations.length, 1);
  assert.deepEqual(
    run.log.problems.map((p) => p.line),
    [2, 5, 7],
  );
  assert.match(run.log.problems[2]?.message ?? '', /cut short/);
  assert.equal(run.config.method, 'gca-hng');
  assert.equal(run.config.dataset.name, 'folder');
  assert.deepEqual(run.testEmbeddings(), { missing: 'no test embeddings yet (they are written at the first evaluation)' });
});

test('the log is read incrementally: appended lines, a line completed later, a rewritten file', () => {
  const dir = makeRun('growing', [`${iterLine(1)}\n`]);
  const path = join(dir, 'log.jsonl');
  const log = new RunLog(path);
  assert.equal(log.poll(), true);
  assert.equal(log.iterations.length, 1);
  assert.equal(log.poll(), false, 'nothing new');
  const line = iterLine(2);
  appendFileSync(path, line.slice(0, 20));
  log.poll();
  assert.equal(log.iterations.length, 1, 'half a line waits for its end');
  assert.equal(log.problems.length, 0);
  appendFileSync(path, `${line.slice(20)}\n${iterLine(3)}\n`);
  assert.equal(log.poll(), true);
  assert.deepEqual(
    log.iterations.map((i) => i.step),
    [1, 2, 3],
  );
  // The trainer's resume rewrites the log atomically (a new file): it is read from the start.
  writeFileSync(`${path}.new`, `${iterLine(1)}\n${iterLine(2)}\n`);
  renameSync(`${path}.new`, path);
  assert.equal(log.poll(), true);
  assert.deepEqual(
    log.iterations.map((i) => i.step),
    [1, 2],
  );
});

test('not a run directory: a UserError naming the path', () => {
  const plain = join(tmp, 'plain');
  mkdirSync(plain, { recursive: true });
  assert.throws(
    () => checkRunDir(plain),
    (e: unknown) => e instanceof UserError && e.message.includes(plain) && /not a run directory/.test(e.message),
  );
  assert.throws(
    () => checkRunDir(join(tmp, 'nope')),
    (e: unknown) => e instanceof UserError && e.message.includes(join(tmp, 'nope')),
  );
  const file = join(tmp, 'file.txt');
  writeFileSync(file, 'x');
  assert.throws(() => checkRunDir(file), /not a directory/);
  const badConfig = makeRun('bad-config', []);
  writeFileSync(join(badConfig, 'config.json'), '{oops');
  assert.throws(
    () => new RunDir(badConfig),
    (e: unknown) => e instanceof UserError && e.message.includes('config.json') && /not valid JSON/.test(e.message),
  );
});

test('runs with the same folder name are told apart by their parent', () => {
  const a = makeRun(join('x', 'run'), []);
  const b = makeRun(join('y', 'run'), []);
  const c = makeRun('other', []);
  assert.deepEqual(
    openRuns([a, b, c]).map((r) => r.name),
    ['x/run', 'y/run', 'other'],
  );
});

/** Three well separated clusters of 20 points in 8-D. */
function clusters(seed: number): { data: Float64Array; labels: Int32Array } {
  const rand = seededRandom(seed);
  const n = 60,
    D = 8;
  const data = new Float64Array(n * D);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let d = 0; d < D; d++) data[i * D + d] = (d % 3 === c ? 3 : 0) + 0.3 * (rand() - 0.5);
  }
  return { data, labels };
}

async function selfLists(data: Float64Array, k: number) {
  return nearestNeighbours(normalizeRows(embeddings(data, data.length / 8, 8)), 'self', { k, excludeSelf: true });
}

test('UMAP: the same seed gives the same map, another seed another; clusters stay apart', async () => {
  const { data, labels } = clusters(1);
  const lists = await selfLists(data, 14);
  const a = await umapProjection(lists, { seed: 5, epochs: 100 });
  const b = await umapProjection(lists, { seed: 5, epochs: 100 });
  const c = await umapProjection(lists, { seed: 6, epochs: 100 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok([...a.x, ...a.y].every(Number.isFinite));
  // Mean distance to the own cluster's centroid is well below the distance between centroids.
  const cent = [0, 1, 2].map((k) => {
    const idx = [...labels.keys()].filter((i) => labels[i] === k);
    return [idx.reduce((s, i) => s + (a.x[i] as number), 0) / idx.length, idx.reduce((s, i) => s + (a.y[i] as number), 0) / idx.length] as const;
  });
  const spread =
    [...labels.keys()].reduce(
      (s, i) =>
        s +
        Math.hypot(
          (a.x[i] as number) - (cent[labels[i] as number] as readonly number[])[0]!,
          (a.y[i] as number) - (cent[labels[i] as number] as readonly number[])[1]!,
        ),
      0,
    ) / labels.length;
  const gap = Math.min(
    ...[
      [0, 1],
      [0, 2],
      [1, 2],
    ].map(([p, q]) => Math.hypot(cent[p!]![0] - cent[q!]![0], cent[p!]![1] - cent[q!]![1])),
  );
  assert.ok(gap > 3 * spread, `clusters apart: gap ${gap.toFixed(2)}, spread ${spread.toFixed(2)}`);
});

test('UMAP: the fast graph construction gives exactly umap-js’s own map', async () => {
  const { data } = clusters(2);
  const lists = await selfLists(data, 14);
  const ours = await umapProjection(lists, { seed: 9, epochs: 50 });
  const knnIndices: number[][] = [],
    knnDistances: number[][] = [];
  for (let i = 0; i < lists.rows; i++) {
    knnIndices.push([i, ...Array.from({ length: 14 }, (_, j) => lists.indices[i * lists.k + j] as number)]);
    knnDistances.push([0, ...Array.from({ length: 14 }, (_, j) => Math.sqrt(Math.max(0, 2 - 2 * (lists.scores[i * lists.k + j] as number))))]);
  }
  const umap = new UMAP({ nComponents: 2, nNeighbors: 15, minDist: 0.1, random: seededRandom(9), nEpochs: 50 });
  umap.setPrecomputedKNN(knnIndices, knnDistances);
  const theirs = umap.fit(Array.from({ length: lists.rows }, () => [0]));
  assert.deepEqual(
    Array.from(ours.x),
    theirs.map((p) => p[0]),
  );
  assert.deepEqual(
    Array.from(ours.y),
    theirs.map((p) => p[1]),
  );
});

test('the cooperative neighbour search (blocks, yielding) gives the self search’s lists', async () => {
  const rand = seededRandom(4);
  const rows = 600,
    dim = 6;
  const data = Float32Array.from({ length: rows * dim }, () => rand() - 0.5);
  const labels = Int32Array.from({ length: rows }, (_, i) => i % 7);
  const t = { rows, dim, data, labels, version: 'x' };
  const a = await sharedNeighbours(t, 14);
  const b = await sharedNeighbours(t, 14, { cooperative: true });
  assert.equal(a.lists.k, Math.ceil(rows / 7) - 1);
  assert.deepEqual(b.lists.indices, a.lists.indices);
  assert.deepEqual(b.lists.scores, a.lists.scores);
});

test('UMAP of fewer than four points: a fixed layout', async () => {
  const { data } = clusters(3);
  const lists = await selfLists(data.slice(0, 3 * 8), 2);
  const p = await umapProjection(lists);
  assert.equal(p.x.length, 3);
  assert.ok([...p.x, ...p.y].every(Number.isFinite));
});

test('gallery: AP@R and first correct rank per query, worst first', () => {
  // Items 0,1,2 of class 0 and 3,4 of class 1; lists of the 4 others by hand.
  const ids = Int32Array.from([0, 0, 0, 1, 1]);
  const rows = [
    [1, 2, 3, 4],
    [3, 0, 2, 4],
    [3, 4, 0, 1],
    [4, 0, 1, 2],
    [0, 1, 2, 3],
  ];
  const lists = { rows: 5, k: 4, indices: Int32Array.from(rows.flat()), scores: Float64Array.from(rows.flat().map((_, i) => 1 - (i % 4) / 10)) };
  const q = rankQueries({ lists, ids, classSizes: Int32Array.from([3, 2]) }, 3);
  // AP@R: q0 = 1, q1 = (0 + 1/2)/2 = 0.25, q2 = (0 + 0)/2 = 0, q3 = 1, q4 = 0 (first correct at 4).
  assert.deepEqual(
    q.map((x) => x.index),
    [4, 2, 1, 0, 3],
  );
  assert.deepEqual(
    q.map((x) => x.apAtR),
    [0, 0, 0.25, 1, 1],
  );
  assert.deepEqual(
    q.map((x) => x.firstCorrect),
    [4, 3, 2, 1, 1],
  );
  assert.deepEqual(
    q[0]?.results.map((r) => r.correct),
    [false, false, false],
  );
  assert.equal(q[0]?.results.length, 3);
});

function snapshot(name: string, over: Partial<RunSnapshot> = {}): RunSnapshot {
  return {
    name,
    dir: `/runs/${name}`,
    color: '#4e79a7',
    config: { method: 'gca-hng', dataset: { name: 'folder', root: null, imageSize: 8 }, epochs: 2, seed: 0, embeddingSize: 8, raw: {} },
    iterations: [1, 2, 3].map((s) => ({ step: s, epoch: 0, values: { J_m: 3 - s / 2, lr: 1e-3 } })),
    evaluations: [{ step: 3, epoch: 1, recall: { 1: 0.5, 2: 0.75 }, map_at_r: 0.3, r_precision: 0.4, nmi: 0.2 }],
    diagnostics: [],
    metrics: null,
    logProblems: [],
    problems: [],
    embedding: null,
    ...over,
  };
}

test('sections: one series per run with a legend; a note where a run has no diagnostics', () => {
  const sections = allSections([snapshot('alpha'), snapshot('beta', { color: '#f28e2b', config: { ...snapshot('x').config, method: 'none' } })]);
  assert.deepEqual(
    sections.map((s) => s.id),
    ['overview', 'losses', 'rates', 'metrics', 'hardness', 'umap', 'gallery'],
  );
  const losses = sections.find((s) => s.id === 'losses')?.html ?? '';
  assert.deepEqual(attrs(losses, 'series', 'data-series'), ['alpha', 'beta']);
  const metrics = sections.find((s) => s.id === 'metrics')?.html ?? '';
  assert.equal((metrics.match(/<svg class="chart/g) ?? []).length, 5, 'Recall@1, Recall@2, MAP@R, R-Precision, NMI');
  assert.match(hardnessSection([snapshot('alpha')]).html, /No diagnostics logged yet/);
  const page = renderPage({ title: 'r', sections });
  assert.ok(isReportHtml(page));
  assert.doesNotMatch(page, /<script/, 'the static report has no script');
  assert.doesNotMatch(page, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no URL other than the SVG namespace');
});

test('gallery section: wrong results marked, thumbnails inline', () => {
  const view = {
    epoch: 2,
    rows: 3,
    labels: Int32Array.from([0, 0, 1]),
    classNames: ['cat', 'dog'],
    projection: { x: new Float64Array(3), y: new Float64Array(3) },
    queries: [
      {
        index: 0,
        apAtR: 0,
        firstCorrect: 2,
        relevant: 1,
        results: [
          { index: 2, score: 0.9, correct: false },
          { index: 1, score: 0.8, correct: true },
        ],
      },
    ],
    scoredQueries: 2,
    k: 2,
    thumbnails: new Map([
      [0, 'data:image/png;base64,AA'],
      [1, 'data:image/png;base64,AB'],
      [2, 'data:image/png;base64,AC'],
    ]),
    thumbnailsMissing: null,
  };
  const html = gallerySection([snapshot('alpha', { embedding: view })]).html;
  assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 3);
  assert.match(html, /class="thumb result miss"[^>]*title="rank 1: dog \(wrong\)/);
  assert.match(html, /class="thumb result hit"/);
  assert.match(html, /✗ dog/);
  assert.equal(escapeXml('"<&>\''), '&quot;&lt;&amp;&gt;&#39;');
});

test('report command: bad input is refused naming the path; only our own reports are replaced', () => {
  const run = makeRun('cli-run', [`${iterLine(1)}\n`, `${iterLine(2)}\n`]);
  let r = hardneg(['report', join(tmp, 'plain'), '--out', join(tmp, 'a.html')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${join(tmp, 'plain')}: not a run directory`));
  r = hardneg(['report', run]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs --out/);
  const foreign = join(tmp, 'notes.html');
  writeFileSync(foreign, '<html><body>my notes</body></html>');
  r = hardneg(['report', run, '--out', foreign]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`--out ${foreign}: the file exists and is not a hardneg report`));
  assert.equal(readFileSync(foreign, 'utf8'), '<html><body>my notes</body></html>', 'left untouched');
  r = hardneg(['report', run, '--out', join(tmp, 'out.html'), '--k', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--k/);
  const out = join(tmp, 'out.html');
  r = hardneg(['report', run, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const first = readFileSync(out, 'utf8');
  assert.ok(isReportHtml(first));
  assert.match(first, /no test embeddings yet/);
  appendFileSync(join(run, 'log.jsonl'), `${iterLine(3)}\n`);
  r = hardneg(['report', run, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(readFileSync(out, 'utf8'), first, 'our own report is replaced');
});
