// Charts as inline SVG strings, drawn here without a chart library: line charts (optionally with a
// min–max band and point markers), overlaid histograms and a class-coloured scatter plot. Every
// chart is an <svg class="chart"> with a <title>, axes with "nice" ticks, a legend, and one
// element of class "series" (a path) or "pt" (a point) per drawn series or point, carrying
// data-points / data-series attributes so that tests can check that a chart holds data. No
// external fonts, images or scripts: the text uses the browser's system font.

/** Escapes text for XML and HTML (element content and quoted attribute values). */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Series colours (Tableau 10): run i gets RUN_COLORS[i mod 10]. */
export const RUN_COLORS: readonly string[] = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Class colours for scatter plots (20 distinguishable hues; classes beyond 20 reuse them). */
const CLASS_COLORS: readonly string[] = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#aec7e8',
  '#ffbb78',
  '#98df8a',
  '#ff9896',
  '#c5b0d5',
  '#c49c94',
  '#f7b6d2',
  '#c7c7c7',
  '#dbdb8d',
  '#9edae5',
];

export type Point = readonly [x: number, y: number];

export interface LineSeries {
  name: string;
  color: string;
  points: readonly Point[];
  /** Optional shaded band [x, low, high] (e.g. the min–max of a downsampled bucket, or mean ± std). */
  band?: ReadonlyArray<readonly [number, number, number]>;
  /** Draw a marker (with a hover title) at every point; default: when there are at most 60 points. */
  markers?: boolean;
  /** stroke-dasharray of the line (e.g. '6 3'); solid when absent. */
  dash?: string;
}

export interface ChartFrame {
  title: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
}

export interface LineChartOptions extends ChartFrame {
  series: readonly LineSeries[];
  /** Logarithmic y axis: true, false, or 'auto' (positive data spanning at least three decades). */
  logY?: boolean | 'auto';
  /** Fixed y range ends (e.g. 0 and 1 for fractions); data outside widens it. */
  yMin?: number;
  yMax?: number;
  /** Integer x ticks only (epochs, steps). */
  integerX?: boolean;
}

export interface HistogramSeries {
  name: string;
  color: string;
  /** Bin edges (bins + 1 increasing values). */
  edges: readonly number[];
  /** Height of each bin (a count, fraction or density). */
  heights: readonly number[];
}

export interface HistogramChartOptions extends ChartFrame {
  series: readonly HistogramSeries[];
}

export interface ScatterChartOptions extends ChartFrame {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Class index of each point (colour CLASS_COLORS[c mod 20]). */
  classes: ArrayLike<number>;
  classNames: readonly string[];
  /** Hover text of point i (optional; adds a <title> per point). */
  pointTitle?: (i: number) => string;
}

const M = { left: 62, right: 14, top: 30, bottom: 42 };
const LEGEND_ROW = 16;
const CHAR_WIDTH = 6.4;
const TITLE_CHAR_WIDTH = 7.2;

/** Cuts text to at most `max` characters, ending with an ellipsis when cut. */
export function fitText(text: string, max: number): string {
  const m = Math.max(4, Math.floor(max));
  return text.length <= m ? text : `${text.slice(0, m - 1).trimEnd()}…`;
}

const finite = (v: number): boolean => Number.isFinite(v);
const r1 = (v: number): string => (Math.round(v * 10) / 10).toString();

/** A step of 1, 2 or 5 × 10^n giving about `count` intervals over `range`. */
export function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

export interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
  log: boolean;
  step: number;
}

/**
 * A linear axis covering [lo, hi], widened to multiples of a nice step; `tight` keeps the range
 * as given (an x axis ending at the last iteration) with the ticks inside it.
 */
export function linearAxis(lo: number, hi: number, count = 5, integer = false, tight = false): Axis {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  let step = niceStep(hi - lo, count);
  if (integer) step = Math.max(1, Math.round(step));
  const a = tight ? Math.ceil(lo / step - 1e-9) * step : Math.floor(lo / step + 1e-9) * step;
  const b = tight ? Math.floor(hi / step + 1e-9) * step : Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0, v = a; v <= b + step * 1e-6; i++, v = a + i * step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return tight ? { lo, hi, ticks, log: false, step } : { lo: a, hi: b, ticks, log: false, step };
}

/** A base-10 logarithmic axis covering [lo, hi] (both positive), from decade to decade. */
export function logAxis(lo: number, hi: number): Axis {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  let b = Math.ceil(Math.log10(hi) - 1e-9);
  if (b === a) b = a + 1;
  const every = Math.max(1, Math.ceil((b - a) / 6));
  // Number('1e-5') is exactly the double nearest 10⁻⁵; 10 ** -5 is not.
  const pow = (m: number, e: number) => Number(`${m}e${e}`);
  const ticks: number[] = [];
  for (let e = a; e <= b; e += every) ticks.push(pow(1, e));
  if (b - a === 1) ticks.splice(1, 0, pow(2, a), pow(5, a));
  return { lo: pow(1, a), hi: pow(1, b), ticks: ticks.sort((x, y) => x - y), log: true, step: 0 };
}

/**
 * The power of ten a linear axis's tick labels are divided by (shown once as "×1e-3" by the
 * axis), or 0 when they are written out (steps of 0.001 or more, values below 100,000).
 */
export function axisExponent(axis: Axis): number {
  if (axis.log) return 0;
  const big = Math.max(Math.abs(axis.lo), Math.abs(axis.hi));
  if (!(axis.step < 1e-3 || big >= 1e5) || !(big > 0)) return 0;
  return Math.floor(Math.log10(big) + 1e-9);
}

/** Tick label: decimals matching the step (after dividing by the axis's power of ten). */
export function formatTick(v: number, axis: Axis): string {
  if (v === 0) return '0';
  if (axis.log) {
    const e = Math.log10(v);
    if (Math.abs(e - Math.round(e)) > 1e-9) return String(Number(v.toPrecision(2)));
    const n = Math.round(e);
    return n >= -3 && n <= 4 ? String(Number(v.toPrecision(1))) : `1e${n}`;
  }
  const e = axisExponent(axis);
  const scale = Number(`1e${e}`);
  const decimals = Math.max(0, -Math.floor(Math.log10(axis.step / scale) + 1e-9));
  return (v / scale).toFixed(decimals);
}

interface Frame {
  width: number;
  height: number;
  plotW: number;
  plotH: number;
  legendRows: string[][];
  legendTop: number;
}

function legendLayout(names: readonly string[], width: number): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let used = 0;
  for (const n of names) {
    const w = 26 + n.length * CHAR_WIDTH;
    if (row.length > 0 && used + w > width - M.left - M.right) {
      rows.push(row);
      row = [];
      used = 0;
    }
    row.push(n);
    used += w;
  }
  if (row.length > 0) rows.push(row);
  return rows;
}

function frame(o: ChartFrame, legendNames: readonly string[]): Frame {
  const width = o.width ?? 384;
  const legendRows = legendLayout(legendNames, width);
  const base = o.height ?? 250;
  const height = base + legendRows.length * LEGEND_ROW;
  return { width, height, plotW: width - M.left - M.right, plotH: base - M.top - M.bottom, legendRows, legendTop: base };
}

function open(kind: string, o: ChartFrame, f: Frame, empty: boolean, extra = ''): string {
  const cls = `chart chart-${kind}${empty ? ' chart-empty' : ''}`;
  return (
    `<svg class="${cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" role="img" aria-label="${escapeXml(o.title)}" data-empty="${empty}"${extra}>` +
    `<title>${escapeXml(o.title)}</title>` +
    `<text class="chart-title" x="8" y="18">${escapeXml(fitText(o.title, (f.width - 16) / TITLE_CHAR_WIDTH))}</text>`
  );
}

/** The axis titles; a y axis whose ticks are divided by 10^e says so in its title ("lr, ×1e-3"). */
function axisLabels(o: ChartFrame, f: Frame, ya?: Axis): string {
  let s = '';
  if (o.xLabel) s += `<text class="axis-label" x="${r1(M.left + f.plotW / 2)}" y="${M.top + f.plotH + 34}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`;
  const e = ya ? axisExponent(ya) : 0;
  const yLabel = [o.yLabel, e !== 0 ? `×1e${e}` : ''].filter(Boolean).join(', ');
  if (yLabel) s += `<text class="axis-label" transform="translate(14 ${r1(M.top + f.plotH / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`;
  return s;
}

function legend(f: Frame, entries: ReadonlyArray<{ name: string; color: string; dash?: string; dot?: boolean }>): string {
  const byName = new Map(entries.map((e) => [e.name, e]));
  let s = '<g class="legend">';
  f.legendRows.forEach((row, ri) => {
    let x = M.left;
    const y = f.legendTop + ri * LEGEND_ROW + 4;
    for (const name of row) {
      const e = byName.get(name);
      if (!e) continue;
      const key = e.dot
        ? `<circle cx="${r1(x + 9)}" cy="${y}" r="4" fill="${e.color}"/>`
        : `<line x1="${r1(x)}" y1="${y}" x2="${r1(x + 18)}" y2="${y}" stroke="${e.color}" stroke-width="3"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`;
      s += `<g class="legend-item">${key}` + `<text x="${r1(x + 22)}" y="${y + 4}">${escapeXml(name)}</text></g>`;
      x += 26 + name.length * CHAR_WIDTH;
    }
  });
  return `${s}</g>`;
}

function project(axis: Axis, v: number, size: number, flip: boolean): number {
  const t = axis.log ? (Math.log10(v) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo)) : (v - axis.lo) / (axis.hi - axis.lo);
  return flip ? size * (1 - t) : size * t;
}

function gridAndTicks(xa: Axis, ya: Axis, f: Frame): string {
  let s = '<g class="axes">';
  for (const t of ya.ticks) {
    const y = M.top + project(ya, t, f.plotH, true);
    s +=
      `<line class="grid" x1="${M.left}" y1="${r1(y)}" x2="${M.left + f.plotW}" y2="${r1(y)}"/>` +
      `<text class="tick" x="${M.left - 6}" y="${r1(y + 4)}" text-anchor="end">${formatTick(t, ya)}</text>`;
  }
  const maxXTicks = Math.max(2, Math.floor(f.plotW / 48));
  const every = Math.ceil(xa.ticks.length / maxXTicks);
  xa.ticks.forEach((t, i) => {
    if (i % every !== 0) return;
    const x = M.left + project(xa, t, f.plotW, false);
    s +=
      `<line class="tick-mark" x1="${r1(x)}" y1="${M.top + f.plotH}" x2="${r1(x)}" y2="${M.top + f.plotH + 4}"/>` +
      `<text class="tick" x="${r1(x)}" y="${M.top + f.plotH + 16}" text-anchor="middle">${formatTick(t, xa)}</text>`;
  });
  s += `<rect class="plot-frame" x="${M.left}" y="${M.top}" width="${f.plotW}" height="${f.plotH}"/>`;
  return `${s}</g>`;
}

function emptyChart(kind: string, o: ChartFrame): string {
  const f = frame(o, []);
  return (
    `${open(kind, o, f, true)}<rect class="plot-frame" x="${M.left}" y="${M.top}" width="${f.plotW}" height="${f.plotH}"/>` +
    `<text class="no-data" x="${r1(M.left + f.plotW / 2)}" y="${r1(M.top + f.plotH / 2)}" text-anchor="middle">no data yet</text></svg>`
  );
}

function fmtValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

/** Line chart: one path per series (gaps at non-finite values), with optional bands and markers. */
export function lineChart(o: LineChartOptions): string {
  const drawn = o.series.filter((s) => s.points.some(([x, y]) => finite(x) && finite(y)));
  if (drawn.length === 0) return emptyChart('line', o);
  let xlo = Infinity,
    xhi = -Infinity,
    ylo = Infinity,
    yhi = -Infinity;
  for (const s of drawn) {
    for (const [x, y] of s.points) {
      if (!finite(x) || !finite(y)) continue;
      xlo = Math.min(xlo, x);
      xhi = Math.max(xhi, x);
      ylo = Math.min(ylo, y);
      yhi = Math.max(yhi, y);
    }
    for (const [x, lo, hi] of s.band ?? []) {
      if (!finite(x) || !finite(lo) || !finite(hi)) continue;
      ylo = Math.min(ylo, lo);
      yhi = Math.max(yhi, hi);
    }
  }
  const wantLog = o.logY === true || (o.logY === 'auto' && ylo > 0 && yhi / ylo >= 1e3);
  const useLog = wantLog && ylo > 0;
  if (!useLog) {
    if (o.yMin !== undefined) ylo = Math.min(ylo, o.yMin);
    if (o.yMax !== undefined) yhi = Math.max(yhi, o.yMax);
  }
  const f = frame(
    o,
    drawn.map((s) => s.name),
  );
  const xa = linearAxis(xlo, xhi, Math.max(2, Math.floor(f.plotW / 70)), o.integerX, xhi > xlo);
  const ya = useLog ? logAxis(ylo, yhi) : linearAxis(ylo, yhi, 5);
  const px = (x: number) => M.left + project(xa, x, f.plotW, false);
  const py = (y: number) => M.top + project(ya, y, f.plotH, true);
  let body = gridAndTicks(xa, ya, f);
  drawn.forEach((s, si) => {
    if (s.band && s.band.length > 0) {
      const ok = s.band.filter(([x, lo, hi]) => finite(x) && finite(lo) && finite(hi) && (!useLog || lo > 0));
      if (ok.length > 1) {
        const upper = ok.map(([x, , hi]) => `${r1(px(x))} ${r1(py(hi))}`);
        const lower = ok
          .slice()
          .reverse()
          .map(([x, lo]) => `${r1(px(x))} ${r1(py(lo))}`);
        body += `<path class="band" d="M${upper.join(' L')} L${lower.join(' L')} Z" fill="${s.color}" fill-opacity="0.16" stroke="none"/>`;
      }
    }
    let d = '';
    let pen = false;
    let n = 0;
    for (const [x, y] of s.points) {
      if (!finite(x) || !finite(y) || (useLog && y <= 0)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${r1(px(x))} ${r1(py(y))}`;
      pen = true;
      n++;
    }
    body += `<path class="series" data-series="${escapeXml(s.name)}" data-index="${si}" data-points="${n}" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${drawn.length > 1 ? ' stroke-opacity="0.85"' : ''}${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`;
    if (s.markers ?? s.points.length <= 60) {
      for (const [x, y] of s.points) {
        if (!finite(x) || !finite(y) || (useLog && y <= 0)) continue;
        body += `<circle class="marker" cx="${r1(px(x))}" cy="${r1(py(y))}" r="3" fill="${s.color}"><title>${escapeXml(`${s.name}: ${fmtValue(y)} at ${o.xLabel ?? 'x'} ${fmtValue(x)}`)}</title></circle>`;
      }
    }
  });
  return `${open('line', o, f, false, useLog ? ' data-log-y="true"' : '')}${body}${axisLabels(o, f, ya)}${legend(f, drawn)}</svg>`;
}

/** Overlaid histograms drawn as filled step outlines (one per series, each with its own bins). */
export function histogramChart(o: HistogramChartOptions): string {
  const drawn = o.series.filter((s) => s.heights.length > 0 && s.edges.length === s.heights.length + 1 && s.heights.some((h) => finite(h) && h > 0));
  if (drawn.length === 0) return emptyChart('histogram', o);
  let xlo = Infinity,
    xhi = -Infinity,
    yhi = 0;
  for (const s of drawn) {
    xlo = Math.min(xlo, s.edges[0] as number);
    xhi = Math.max(xhi, s.edges[s.edges.length - 1] as number);
    for (const h of s.heights) if (finite(h)) yhi = Math.max(yhi, h);
  }
  const f = frame(
    o,
    drawn.map((s) => s.name),
  );
  const xa = linearAxis(xlo, xhi, Math.max(2, Math.floor(f.plotW / 70)));
  const ya = linearAxis(0, yhi, 4);
  const px = (x: number) => M.left + project(xa, x, f.plotW, false);
  const py = (y: number) => M.top + project(ya, y, f.plotH, true);
  let body = gridAndTicks(xa, ya, f);
  drawn.forEach((s, si) => {
    const base = r1(py(0));
    let d = `M${r1(px(s.edges[0] as number))} ${base}`;
    s.heights.forEach((h, i) => {
      const y = r1(py(finite(h) ? h : 0));
      d += ` L${r1(px(s.edges[i] as number))} ${y} L${r1(px(s.edges[i + 1] as number))} ${y}`;
    });
    d += ` L${r1(px(s.edges[s.edges.length - 1] as number))} ${base} Z`;
    body += `<path class="series" data-series="${escapeXml(s.name)}" data-index="${si}" data-points="${s.heights.length}" d="${d}" fill="${s.color}" fill-opacity="0.18" stroke="${s.color}" stroke-width="1.6"/>`;
  });
  return `${open('histogram', o, f, false)}${body}${axisLabels(o, f, ya)}${legend(f, drawn)}</svg>`;
}

/** Scatter plot of 2-D points coloured by class, without axis ticks (a map's axes have no units). */
export function scatterChart(o: ScatterChartOptions): string {
  const n = o.x.length;
  if (n === 0) return emptyChart('scatter', o);
  const present = [...new Set(Array.from(o.classes))].sort((a, b) => a - b);
  const names = present.map((c) => o.classNames[c] ?? `class ${c}`);
  const f = frame({ ...o, height: o.height ?? o.width ?? 480 }, names);
  let xlo = Infinity,
    xhi = -Infinity,
    ylo = Infinity,
    yhi = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = o.x[i] as number,
      y = o.y[i] as number;
    if (!finite(x) || !finite(y)) continue;
    xlo = Math.min(xlo, x);
    xhi = Math.max(xhi, x);
    ylo = Math.min(ylo, y);
    yhi = Math.max(yhi, y);
  }
  // Equal scales on both axes, centred, with a small margin.
  const span = Math.max(xhi - xlo, yhi - ylo, 1e-9) * 1.04;
  const cx = (xlo + xhi) / 2,
    cy = (ylo + yhi) / 2;
  const side = Math.min(f.plotW, f.plotH);
  const ox = M.left + (f.plotW - side) / 2,
    oy = M.top + (f.plotH - side) / 2;
  const px = (x: number) => ox + ((x - cx) / span + 0.5) * side;
  const py = (y: number) => oy + (0.5 - (y - cy) / span) * side;
  let body = `<rect class="plot-frame" x="${M.left}" y="${M.top}" width="${f.plotW}" height="${f.plotH}"/><g class="points">`;
  for (let i = 0; i < n; i++) {
    const x = o.x[i] as number,
      y = o.y[i] as number;
    if (!finite(x) || !finite(y)) continue;
    const c = o.classes[i] as number;
    const color = CLASS_COLORS[((c % CLASS_COLORS.length) + CLASS_COLORS.length) % CLASS_COLORS.length] as string;
    const title = o.pointTitle ? `<title>${escapeXml(o.pointTitle(i))}</title>` : '';
    body += `<circle class="pt" data-class="${c}" cx="${r1(px(x))}" cy="${r1(py(y))}" r="2.4" fill="${color}">${title}</circle>`;
  }
  body += '</g>';
  const entries = present.map((c, i) => ({ name: names[i] as string, color: CLASS_COLORS[c % CLASS_COLORS.length] as string, dot: true }));
  return `${open('scatter', o, f, false, ` data-points="${n}"`)}${body}${axisLabels(o, f)}${legend(f, entries)}</svg>`;
}

/** Bucket means of a long series (at most `max` points), with each bucket's min–max as a band. */
export function downsample(points: readonly Point[], max: number): { points: Point[]; band: Array<[number, number, number]> | undefined } {
  const ok = points.filter(([x, y]) => finite(x) && finite(y));
  if (ok.length <= max) return { points: ok.slice(), band: undefined };
  const out: Point[] = [];
  const band: Array<[number, number, number]> = [];
  const size = ok.length / max;
  for (let b = 0; b < max; b++) {
    const from = Math.floor(b * size),
      to = Math.floor((b + 1) * size);
    let sx = 0,
      sy = 0,
      lo = Infinity,
      hi = -Infinity;
    for (let i = from; i < to; i++) {
      const [x, y] = ok[i] as Point;
      sx += x;
      sy += y;
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
    const m = to - from;
    if (m === 0) continue;
    out.push([sx / m, sy / m]);
    band.push([sx / m, lo, hi]);
  }
  return { points: out, band };
}

/** Histogram of raw values over [lo, hi] in `bins` bins, as fractions of all values. */
export function binFractions(values: readonly number[], lo: number, hi: number, bins: number): { edges: number[]; heights: number[] } {
  const width = (hi - lo) / bins || 1;
  const counts = new Array<number>(bins).fill(0);
  let n = 0;
  for (const v of values) {
    if (!finite(v)) continue;
    const b = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)));
    counts[b] = (counts[b] as number) + 1;
    n++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * width), heights: counts.map((c) => (n ? c / n : 0)) };
}
