// The report's sections as HTML fragments, from plain snapshots of the runs: overview, loss terms,
// learning rates, retrieval metrics, the hardness of the generated negatives, the UMAP map and
// the retrieval gallery. Pure functions (no file access), shared by `hardneg report` (one static
// page) and `hardneg serve` (the same fragments, refreshed as the runs grow). Charts with several
// runs draw one series per run, in the run's colour, with a legend.
import { binFractions, downsample, escapeXml, histogramChart, lineChart, scatterChart, type LineSeries, type Point } from './svg_chart.ts';
import type { GalleryQuery } from './gallery.ts';
import type { Projection } from './umap_projection.ts';
import type { DiagnosticsEntry, EvaluationEntry, IterationEntry, LogProblem, RunConfigSummary, RunMetrics } from './run_data.ts';

/** The embedding views of one run (from its latest test embeddings). */
export interface EmbeddingView {
  /** Epoch of the evaluation that wrote the embeddings (null when the log does not say). */
  epoch: number | null;
  rows: number;
  labels: Int32Array;
  classNames: readonly string[];
  projection: Projection;
  /** The worst queries first, as many as the gallery shows. */
  queries: GalleryQuery[];
  /** Queries scored (those whose class has another item). */
  scoredQueries: number;
  k: number;
  /** Thumbnail data URI of each shown test image, or null with the reason. */
  thumbnails: Map<number, string> | null;
  thumbnailsMissing: string | null;
  /** Newer embeddings are being processed (these are the previous ones). */
  updating?: boolean;
}

export interface RunSnapshot {
  name: string;
  dir: string;
  color: string;
  config: RunConfigSummary;
  iterations: readonly IterationEntry[];
  evaluations: readonly EvaluationEntry[];
  diagnostics: readonly DiagnosticsEntry[];
  metrics: RunMetrics | null;
  logProblems: readonly LogProblem[];
  problems: readonly string[];
  embedding: EmbeddingView | { missing: string } | null;
}

export interface Section {
  id: string;
  title: string;
  html: string;
  /** sectionHash(html), where the caller has already computed it. */
  hash?: string;
}

/** Points drawn per series at most; longer series are bucket means with a min–max band. */
const MAX_POINTS = 600;

/** Loss terms and factors in the order the iteration computes them, with what each is. */
const ITERATION_TERMS: ReadonlyArray<readonly [string, string]> = [
  ['J_m', 'J_m: N-pair loss on the real negatives'],
  ['J_syn', 'J_syn: N-pair loss on generated negatives'],
  ['J_gnnce', 'J_gce: GNN node classifier cross-entropy'],
  ['J_metric', 'J_metric = J_m + J_syn + J_gce'],
  ['J_softce', 'J_ce: 10 × softmax classifier cross-entropy'],
  ['J_gence', 'J_gence: classifier CE on generated negatives'],
  ['J_div', 'J_div: diversity of generated negatives'],
  ['J_gen', 'J_gen: the generator objective'],
  ['e_bj', 'e_bj = exp(−β/J_gen); J_syn weight is 1 − e_bj'],
  ['para_scale', 'φ = exp(−α/J_avg): hardness factor in use'],
];
const RATE_TERMS: ReadonlyArray<readonly [string, string]> = [
  ['lr', 'metric model learning rate (embedding)'],
  ['lr_gnn', 'GNN learning rate'],
];

const KIND_DASH = { generated: undefined, real: '7 4', positive: '2 3' } as const;
const KIND_COLORS = { positive: '#59a14f', real: '#4e79a7', generated: '#e15759' } as const;

const fmt = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const pct = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : (100 * v).toFixed(2));

function charts(items: string[]): string {
  return `<div class="charts">${items.map((c) => `<figure class="chart-box">${c}</figure>`).join('')}</div>`;
}

function note(text: string): string {
  return `<p class="note">${escapeXml(text)}</p>`;
}

function recallKeys(runs: readonly RunSnapshot[]): string[] {
  const keys = new Set<string>();
  for (const r of runs) for (const e of r.evaluations) for (const k of Object.keys(e.recall)) keys.add(k);
  return [...keys].sort((a, b) => Number(a) - Number(b));
}

function lastEval(r: RunSnapshot): EvaluationEntry | null {
  return r.metrics?.final ?? r.evaluations[r.evaluations.length - 1] ?? null;
}

function bestEval(r: RunSnapshot): EvaluationEntry | null {
  if (r.metrics?.best) return r.metrics.best;
  let best: EvaluationEntry | null = null;
  for (const e of r.evaluations) if (!best || (e.recall['1'] ?? 0) > (best.recall['1'] ?? 0)) best = e;
  return best;
}

function overviewSection(runs: readonly RunSnapshot[]): Section {
  const rows = runs.map((r) => {
    const last = lastEval(r);
    const best = bestEval(r);
    const epoch = r.iterations.length ? (r.iterations[r.iterations.length - 1] as IterationEntry).epoch + 1 : 0;
    const status = r.metrics ? 'finished' : r.iterations.length ? 'training or stopped' : 'not started';
    return (
      `<tr><td><span class="swatch" style="background:${r.color}"></span>${escapeXml(r.name)}</td>` +
      `<td>${escapeXml(r.config.method)}</td><td>${escapeXml(r.config.dataset.name)}</td><td>${r.config.seed ?? '–'}</td>` +
      `<td>${epoch}/${r.config.epochs ?? '?'} · ${r.iterations.length ? (r.iterations[r.iterations.length - 1] as IterationEntry).step : 0}</td>` +
      `<td>${pct(last?.recall['1'])}</td><td>${pct(last?.map_at_r)}</td><td>${pct(last?.r_precision)}</td><td>${pct(last?.nmi)}</td>` +
      `<td>${pct(best?.recall['1'])}${best ? ` (${best.epoch})` : ''}</td>` +
      `<td>${r.metrics?.wall_s !== undefined && r.metrics?.wall_s !== null ? r.metrics.wall_s.toFixed(0) : '–'}</td><td>${status}</td></tr>`
    );
  });
  const problems: string[] = [];
  for (const r of runs) {
    for (const p of r.logProblems.slice(0, 20)) problems.push(`${r.name}: log.jsonl line ${p.line}: ${p.message} (skipped)`);
    if (r.logProblems.length > 20) problems.push(`${r.name}: ${r.logProblems.length - 20} more malformed log lines skipped`);
    for (const p of r.problems) problems.push(`${r.name}: ${p}`);
  }
  const html =
    '<table class="overview"><thead><tr><th>run</th><th>method</th><th>dataset</th><th>seed</th><th>epoch · step</th>' +
    '<th>R@1</th><th>MAP@R</th><th>RP</th><th>NMI</th><th>best R@1 (epoch)</th><th>wall s</th><th>status</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>` +
    '<p class="note">Metrics of the latest evaluation, in percent; the directories: ' +
    runs.map((r) => `<code>${escapeXml(r.dir)}</code>`).join(', ') +
    '.</p>' +
    (problems.length ? `<ul class="problems">${problems.map((p) => `<li>${escapeXml(p)}</li>`).join('')}</ul>` : '');
  return { id: 'overview', title: 'Runs', html };
}

function iterationSeries(r: RunSnapshot, key: string): LineSeries | null {
  const pts: Point[] = [];
  for (const it of r.iterations) {
    const v = it.values[key];
    if (v !== undefined) pts.push([it.step, v]);
  }
  if (pts.length === 0) return null;
  const d = downsample(pts, MAX_POINTS);
  return { name: r.name, color: r.color, points: d.points, ...(d.band ? { band: d.band } : {}), markers: false };
}

function iterationCharts(runs: readonly RunSnapshot[], terms: ReadonlyArray<readonly [string, string]>, extra: boolean, logY: boolean | 'auto'): string[] {
  const known = new Set(terms.map(([k]) => k));
  const keys = terms.map(([k]) => k);
  if (extra) {
    const others = new Set<string>();
    for (const r of runs)
      for (const it of r.iterations) for (const k of Object.keys(it.values)) if (!known.has(k) && !RATE_TERMS.some(([q]) => q === k)) others.add(k);
    keys.push(...[...others].sort());
  }
  const title = new Map(terms);
  const out: string[] = [];
  for (const key of keys) {
    const series = runs.map((r) => iterationSeries(r, key)).filter((s): s is LineSeries => s !== null);
    if (series.length === 0) continue;
    out.push(lineChart({ title: title.get(key) ?? key, xLabel: 'iteration', yLabel: key, series, logY, integerX: true }));
  }
  return out;
}

function lossSection(runs: readonly RunSnapshot[]): Section {
  const items = iterationCharts(runs, ITERATION_TERMS, true, 'auto');
  const html = items.length
    ? `${note('Every term logged at each iteration (x: global step). Long runs are drawn as bucket means with the bucket’s min–max shaded; a logarithmic y axis is used when a term spans three decades or more.')}${charts(items)}`
    : note('No iteration logged yet.');
  return { id: 'losses', title: 'Loss terms', html };
}

function rateSection(runs: readonly RunSnapshot[]): Section {
  const items = iterationCharts(runs, RATE_TERMS, false, false);
  return { id: 'rates', title: 'Learning rates', html: items.length ? charts(items) : note('No iteration logged yet.') };
}

function evalSeries(runs: readonly RunSnapshot[], value: (e: EvaluationEntry) => number | null | undefined): LineSeries[] {
  return runs
    .map((r) => ({ name: r.name, color: r.color, markers: true, points: r.evaluations.map((e): Point => [e.epoch, 100 * (value(e) ?? NaN)]) }))
    .filter((s) => s.points.some(([, y]) => Number.isFinite(y)));
}

function metricSection(runs: readonly RunSnapshot[]): Section {
  const items: string[] = [];
  const metric = (title: string, f: (e: EvaluationEntry) => number | null | undefined) => {
    const series = evalSeries(runs, f);
    if (series.length) items.push(lineChart({ title, xLabel: 'epoch', yLabel: 'percent', series, integerX: true }));
  };
  for (const k of recallKeys(runs)) metric(`Recall@${k}`, (e) => e.recall[k]);
  metric('MAP@R', (e) => e.map_at_r);
  metric('R-Precision', (e) => e.r_precision);
  metric('NMI', (e) => e.nmi);
  return {
    id: 'metrics',
    title: 'Retrieval metrics',
    html: items.length ? `${note('Test split, at each evaluation (percent).')}${charts(items)}` : note('No evaluation logged yet.'),
  };
}

const mean = (a: readonly number[]): number => {
  let s = 0,
    n = 0;
  for (const v of a)
    if (Number.isFinite(v)) {
      s += v;
      n++;
    }
  return n ? s / n : NaN;
};

function median(a: readonly number[]): number {
  const s = a.filter(Number.isFinite).sort((x, y) => x - y);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** At most `max` evaluations, evenly spread, always with the first and the last. */
export function pickEvaluations<T>(all: readonly T[], max: number): T[] {
  if (all.length <= max) return all.slice();
  const idx = new Set<number>();
  for (let i = 0; i < max; i++) idx.add(Math.round((i * (all.length - 1)) / (max - 1)));
  return [...idx].sort((a, b) => a - b).map((i) => all[i] as T);
}

function distanceChart(d: DiagnosticsEntry, title: string): string {
  const { anchor_positive: pos, anchor_real_negative: real, anchor_generated_negative: gen } = d.distances;
  let hi = 0;
  for (const a of [pos, real, gen]) for (const v of a) if (Number.isFinite(v)) hi = Math.max(hi, v);
  const bins = 30;
  const series = (
    [
      ['anchor → positive', pos, KIND_COLORS.positive],
      ['anchor → real negative', real, KIND_COLORS.real],
      ['anchor → generated negative', gen, KIND_COLORS.generated],
    ] as const
  ).map(([name, values, color]) => ({ name, color, ...binFractions(values, 0, hi > 0 ? hi * 1.0001 : 1, bins) }));
  return histogramChart({ title, xLabel: 'Euclidean distance in the embedding', yLabel: 'fraction of pairs', series });
}

function edgeHistogramChart(d: DiagnosticsEntry, title: string): string {
  const h = d.edge_weights.histogram;
  const total = h.counts.reduce((a, b) => a + b, 0) || 1;
  return histogramChart({
    title,
    xLabel: 'edge weight',
    yLabel: 'fraction of weights',
    series: [{ name: 'all channels of all pairs', color: '#b07aa1', edges: h.edges, heights: h.counts.map((c) => c / total) }],
  });
}

function channelChart(d: DiagnosticsEntry, title: string): string {
  const m = d.edge_weights.per_channel_mean;
  const s = d.edge_weights.per_channel_std;
  const order = m.map((_, i) => i).sort((a, b) => (m[a] as number) - (m[b] as number));
  const points: Point[] = order.map((c, rank) => [rank, m[c] as number]);
  const band = order.map((c, rank): [number, number, number] => [rank, (m[c] as number) - (s[c] as number), (m[c] as number) + (s[c] as number)]);
  return lineChart({
    title,
    xLabel: 'channel (sorted by mean weight)',
    yLabel: 'edge weight',
    series: [{ name: 'mean over pairs (± std shaded)', color: '#9c755f', points, band, markers: false }],
    integerX: true,
  });
}

export function hardnessSection(runs: readonly RunSnapshot[], maxEvaluations = 8): Section {
  const withDiag = runs.filter((r) => r.diagnostics.length > 0);
  const without = runs.filter((r) => r.diagnostics.length === 0);
  if (withDiag.length === 0) {
    return {
      id: 'hardness',
      title: 'Hardness of the generated negatives',
      html: note(
        runs.some((r) => r.config.method.startsWith('gca-hng'))
          ? 'No diagnostics logged yet (they are recorded at each evaluation of a gca-hng run).'
          : 'The trainer records these diagnostics for GCA-HNG runs; none of these runs is one.',
      ),
    };
  }
  const over = (title: string, yLabel: string, f: (d: DiagnosticsEntry) => number, fixed?: [number, number]) =>
    lineChart({
      title,
      xLabel: 'epoch',
      yLabel,
      integerX: true,
      ...(fixed ? { yMin: fixed[0], yMax: fixed[1] } : {}),
      series: withDiag.map((r) => ({ name: r.name, color: r.color, markers: true, points: r.diagnostics.map((d): Point => [d.epoch, f(d)]) })),
    });
  const multi = withDiag.length > 1;
  const distanceSeries: LineSeries[] = [];
  for (const r of withDiag) {
    for (const [kind, key] of [
      ['generated', 'anchor_generated_negative'],
      ['real', 'anchor_real_negative'],
      ['positive', 'anchor_positive'],
    ] as const) {
      distanceSeries.push({
        name: multi ? `${r.name} · ${kind}` : `anchor → ${kind === 'positive' ? 'positive' : `${kind} negative`}`,
        color: multi ? r.color : KIND_COLORS[kind],
        ...(multi && KIND_DASH[kind] ? { dash: KIND_DASH[kind] } : {}),
        markers: true,
        points: r.diagnostics.map((d): Point => [d.epoch, mean(d.distances[key])]),
      });
    }
  }
  const spreadSeries: LineSeries[] = [];
  for (const r of withDiag) {
    spreadSeries.push({
      name: multi ? `${r.name} · within a pair` : 'within a pair (across channels)',
      color: multi ? r.color : '#b07aa1',
      markers: true,
      points: r.diagnostics.map((d): Point => [d.epoch, d.edge_weights.within_pair_std]),
    });
    spreadSeries.push({
      name: multi ? `${r.name} · across pairs` : 'across pairs (of the pair mean)',
      color: multi ? r.color : '#9c755f',
      dash: '7 4',
      markers: true,
      points: r.diagnostics.map((d): Point => [d.epoch, d.edge_weights.across_pair_std]),
    });
  }
  const time = [
    lineChart({ title: 'Mean distance from the anchor', xLabel: 'epoch', yLabel: 'distance', integerX: true, series: distanceSeries }),
    over('Relative position of generated negatives', '0 = d(positive), 1 = d(real)', (d) => d.relative_position, [0, 1]),
    over('φ: hardness factor exp(−α/J_avg)', 'φ', (d) => d.phi, [0, 1]),
    over('J_syn weight 1 − exp(−β/J_gen)', 'weight', (d) => d.syn_weight, [0, 1]),
    over('Kept fraction (real negatives harder than d⁺)', 'fraction', (d) => d.kept_fraction, [0, 1]),
    lineChart({ title: 'Edge weight spread (std)', xLabel: 'epoch', yLabel: 'std', integerX: true, series: spreadSeries }),
  ];
  let html =
    note(
      'Measured at each evaluation on one fixed probe batch of the training split. Generated negatives sit between the positive and the real negatives: the closer their distances are to the anchor→positive distances, the harder they are. See docs/report.md for how to read these charts.',
    ) + `<h3>Over training</h3>${charts(time)}`;
  for (const r of withDiag) {
    const shown = pickEvaluations(r.diagnostics, maxEvaluations);
    html +=
      `<details class="run-detail" open><summary><span class="swatch" style="background:${r.color}"></span>${escapeXml(r.name)}: per evaluation` +
      `${shown.length < r.diagnostics.length ? ` (${shown.length} of ${r.diagnostics.length}, evenly spread)` : ''}</summary>`;
    for (const d of shown) {
      const { anchor_positive: pos, anchor_real_negative: real, anchor_generated_negative: gen } = d.distances;
      html +=
        `<div class="eval-row"><h4>epoch ${d.epoch} · step ${d.step}</h4>` +
        `<p class="stats">median distance: positive ${fmt(median(pos), 3)}, generated ${fmt(median(gen), 3)}, real ${fmt(median(real), 3)} · relative position ${fmt(d.relative_position, 3)} · φ ${fmt(d.phi, 4)} · J_syn weight ${fmt(d.syn_weight, 4)} · kept ${pct(d.kept_fraction)}%</p>` +
        charts([
          distanceChart(d, `${r.name}, epoch ${d.epoch}: distances from the anchor`),
          edgeHistogramChart(d, `${r.name}, epoch ${d.epoch}: learned edge weights`),
          channelChart(d, `${r.name}, epoch ${d.epoch}: edge weights per channel`),
        ]) +
        '</div>';
    }
    html += '</details>';
  }
  if (without.length)
    html += note(`No diagnostics in ${without.map((r) => `${r.name} (${r.config.method})`).join(', ')}: the trainer records them for GCA-HNG runs.`);
  return { id: 'hardness', title: 'Hardness of the generated negatives', html };
}

function missingEmbedding(r: RunSnapshot): string | null {
  if (!r.embedding) return 'not computed';
  return 'missing' in r.embedding ? r.embedding.missing : null;
}

function umapSection(runs: readonly RunSnapshot[]): Section {
  const items: string[] = [];
  const notes: string[] = [];
  for (const r of runs) {
    const e = r.embedding;
    if (!e || 'missing' in e) {
      notes.push(`${r.name}: ${missingEmbedding(r)}`);
      continue;
    }
    const names = e.classNames;
    if (e.updating) notes.push(`${r.name}: newer test embeddings are being processed; the map below is the previous one.`);
    items.push(
      scatterChart({
        title: `${r.name}: test embeddings${e.epoch !== null ? `, epoch ${e.epoch}` : ''} (${e.rows} images)`,
        x: e.projection.x,
        y: e.projection.y,
        classes: e.labels,
        classNames: names,
        width: 560,
        ...(e.rows <= 3000 ? { pointTitle: (i: number) => `#${i} ${names[e.labels[i] as number] ?? `class ${e.labels[i]}`}` } : {}),
      }),
    );
  }
  const html =
    note(
      'UMAP (15 neighbours by cosine similarity, seeded) of the test embeddings of the latest evaluation, one point per test image, coloured by class. Classes that form tight, separate islands retrieve well; mixed regions are where the gallery’s failures come from.',
    ) +
    (items.length ? charts(items) : '') +
    notes.map(note).join('');
  return { id: 'umap', title: 'Embedding map (UMAP)', html };
}

function thumb(e: EmbeddingView, index: number, caption: string, cls: string, title: string): string {
  const uri = e.thumbnails?.get(index);
  const body = uri ? `<img src="${uri}" alt="${escapeXml(`test image ${index}`)}">` : `<div class="no-image">#${index}</div>`;
  return `<figure class="thumb ${cls}" title="${escapeXml(title)}">${body}<figcaption>${escapeXml(caption)}</figcaption></figure>`;
}

export function gallerySection(runs: readonly RunSnapshot[]): Section {
  let html = note(
    'Each row is a query from the test split with its top results (cosine similarity, the query itself excluded). Wrong results (another class) are marked ✗ in red, correct ones ✓ in green. Queries are ordered worst first: lowest AP@R, then the latest first correct result.',
  );
  for (const r of runs) {
    const e = r.embedding;
    html += `<details class="run-detail" open><summary><span class="swatch" style="background:${r.color}"></span>${escapeXml(r.name)}</summary>`;
    if (!e || 'missing' in e) {
      html += `${note(missingEmbedding(r) ?? '')}</details>`;
      continue;
    }
    const cls = (i: number) => e.classNames[e.labels[i] as number] ?? `class ${e.labels[i]}`;
    html += note(
      `${e.queries.length} worst of ${e.scoredQueries} queries${e.epoch !== null ? `, embeddings of epoch ${e.epoch}` : ''}, top ${e.k}.${e.updating ? ' Newer embeddings are being processed.' : ''}`,
    );
    if (e.thumbnailsMissing) html += note(`No thumbnails: ${e.thumbnailsMissing}`);
    html += '<ol class="queries">';
    e.queries.forEach((q, rank) => {
      const first = Number.isFinite(q.firstCorrect) ? `first correct at rank ${q.firstCorrect}` : 'no correct result in the list';
      html +=
        `<li class="query" data-query="${q.index}" data-ap="${q.apAtR.toFixed(4)}">` +
        `<div class="q-info"><b>#${rank + 1}</b> · query ${q.index}<br><b>${escapeXml(cls(q.index))}</b><br>AP@R ${q.apAtR.toFixed(3)} (R = ${q.relevant})<br>${first}</div>` +
        thumb(e, q.index, cls(q.index), 'query-thumb', `query ${q.index}: ${cls(q.index)}`) +
        '<div class="results">' +
        q.results
          .map((x, i) =>
            thumb(
              e,
              x.index,
              `${x.correct ? '✓' : '✗'} ${cls(x.index)}`,
              x.correct ? 'result hit' : 'result miss',
              `rank ${i + 1}: ${cls(x.index)} (${x.correct ? 'correct' : 'wrong'}) · cosine ${x.score.toFixed(3)} · image ${x.index}`,
            ),
          )
          .join('') +
        '</div></li>';
    });
    html += '</ol></details>';
  }
  return { id: 'gallery', title: 'Retrieval gallery', html };
}

/** Every section, in page order. */
export function allSections(runs: readonly RunSnapshot[]): Section[] {
  return [overviewSection(runs), lossSection(runs), rateSection(runs), metricSection(runs), hardnessSection(runs), umapSection(runs), gallerySection(runs)];
}
