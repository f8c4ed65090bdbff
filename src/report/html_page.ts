// The report page: one self-contained HTML document (inline CSS and SVG, images as data URIs, no
// external fonts, scripts or requests). The static report has no script at all; the live page of
// `hardneg serve` adds a small inline one that polls the server's JSON endpoint and swaps in the
// sections whose content changed.
import { createHash } from 'node:crypto';
import { escapeXml } from './svg_chart.ts';
import type { Section } from './views.ts';

/** Marks a file as a report of ours (an existing --out is replaced only if it carries it). */
export const REPORT_MARKER = '<meta name="generator" content="hardneg report">';

/** Whether the start of a file's text is one of our reports. */
export function isReportHtml(head: string): boolean {
  return head.includes(REPORT_MARKER);
}

export function sectionHash(html: string): string {
  return createHash('sha1').update(html).digest('hex').slice(0, 16);
}

export interface PageOptions {
  title: string;
  sections: readonly Section[];
  /** Shown under the title (e.g. when and from what it was made). */
  subtitle?: string;
  /** The live page: poll `api/sections` every intervalMs, starting from `version`. */
  live?: { intervalMs: number; version: string };
}

const CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f6f7f9; --card: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 18px 28px 10px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 2px; font-size: 21px; }
header .subtitle { color: var(--muted); margin: 0; }
nav { position: sticky; top: 0; z-index: 2; background: var(--card); border-bottom: 1px solid var(--line); padding: 6px 28px; display: flex; gap: 18px; flex-wrap: wrap; align-items: center; }
nav a { color: #2b5d9b; text-decoration: none; font-weight: 500; }
nav a:hover { text-decoration: underline; }
.live { margin-left: auto; font-size: 12px; color: var(--muted); }
.live.ok::before { content: "●"; color: #2ca02c; margin-right: 4px; }
.live.err::before { content: "●"; color: #d62728; margin-right: 4px; }
main { padding: 8px 28px 40px; }
section.report-section { margin: 18px 0 26px; }
section.report-section > h2 { font-size: 18px; margin: 0 0 6px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 14px 0 6px; }
h4 { font-size: 13px; margin: 10px 0 2px; }
.note { color: var(--muted); margin: 4px 0 10px; max-width: 1100px; }
.stats { color: var(--muted); font-size: 12px; margin: 0 0 4px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart-box { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 4px; }
svg.chart { display: block; max-width: 100%; height: auto; font-size: 11px; }
svg.chart text { fill: var(--fg); }
svg.chart .chart-title { font-size: 12.5px; font-weight: 600; }
svg.chart .tick, svg.chart .axis-label { fill: var(--muted); }
svg.chart .grid { stroke: #eceff4; }
svg.chart .tick-mark { stroke: #9aa3b2; }
svg.chart .plot-frame { fill: none; stroke: #c3cad6; }
svg.chart .no-data { fill: var(--muted); font-style: italic; }
svg.chart circle.pt { fill-opacity: 0.78; }
table.overview { border-collapse: collapse; background: var(--card); font-variant-numeric: tabular-nums; }
table.overview th, table.overview td { border: 1px solid var(--line); padding: 4px 9px; text-align: right; white-space: nowrap; }
table.overview th:nth-child(-n+4), table.overview td:nth-child(-n+4), table.overview td:last-child { text-align: left; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
ul.problems { color: #9a3412; font-size: 12.5px; }
details.run-detail { margin: 8px 0 14px; }
details.run-detail > summary { cursor: pointer; font-weight: 600; font-size: 14.5px; margin-bottom: 4px; }
.eval-row { margin-bottom: 10px; }
ol.queries { list-style: none; padding: 0; margin: 0; }
li.query { display: flex; align-items: flex-start; gap: 10px; padding: 8px; margin-bottom: 8px; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
.q-info { width: 150px; flex: none; font-size: 12px; color: var(--muted); }
.q-info b { color: var(--fg); }
.results { display: flex; flex-wrap: wrap; gap: 6px; padding-left: 10px; border-left: 2px solid var(--line); }
figure.thumb { margin: 0; width: 72px; text-align: center; }
figure.thumb img, figure.thumb .no-image { width: 64px; height: 64px; display: block; margin: 0 auto; image-rendering: pixelated; border: 3px solid transparent; border-radius: 3px; background: #000; }
figure.thumb .no-image { background: #eef0f4; color: var(--muted); font-size: 11px; line-height: 58px; }
figure.thumb figcaption { font-size: 10.5px; line-height: 1.2; margin-top: 2px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
figure.query-thumb img, figure.query-thumb .no-image { border-color: #4e79a7; }
figure.hit img, figure.hit .no-image { border-color: #2ca02c; }
figure.miss img, figure.miss .no-image { border-color: #d62728; }
figure.hit figcaption { color: #1f7a1f; }
figure.miss figcaption { color: #b91c1c; font-weight: 600; }
`;

const LIVE_SCRIPT = `
(() => {
  const body = document.body;
  const interval = Number(body.dataset.interval) || 2000;
  const status = document.getElementById('live-status');
  let version = body.dataset.version;
  const show = (text, cls) => { status.textContent = text; status.className = 'live ' + cls; };
  async function tick() {
    try {
      const r = await fetch('api/sections?since=' + encodeURIComponent(version), { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const j = await r.json();
      if (j.version !== version) {
        for (const s of j.sections) {
          const el = document.getElementById('section-' + s.id);
          if (!el || el.dataset.hash === s.hash) continue;
          const open = new Map();
          el.querySelectorAll('details').forEach((d) => open.set(d.querySelector('summary')?.textContent, d.open));
          el.querySelector('.section-body').innerHTML = s.html;
          el.querySelectorAll('details').forEach((d) => { const o = open.get(d.querySelector('summary')?.textContent); if (o !== undefined) d.open = o; });
          el.dataset.hash = s.hash;
        }
        version = j.version;
        body.dataset.version = version;
        body.dataset.updates = String(Number(body.dataset.updates || 0) + 1);
      }
      show('live · checked ' + new Date().toLocaleTimeString(), 'ok');
    } catch (e) {
      show('live · server unreachable, retrying', 'err');
    }
    setTimeout(tick, interval);
  }
  setTimeout(tick, interval);
})();
`;

function renderSection(s: Section): string {
  return `<section class="report-section" id="section-${s.id}" data-hash="${s.hash ?? sectionHash(s.html)}"><h2>${escapeXml(s.title)}</h2><div class="section-body">${s.html}</div></section>`;
}

export function renderPage(o: PageOptions): string {
  const nav = o.sections.map((s) => `<a href="#section-${s.id}">${escapeXml(s.title)}</a>`).join('');
  const live = o.live ? `<span id="live-status" class="live ok">live</span>` : '';
  const bodyAttrs = o.live ? ` data-version="${escapeXml(o.live.version)}" data-interval="${o.live.intervalMs}" data-updates="0"` : '';
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    `${REPORT_MARKER}<meta name="viewport" content="width=device-width, initial-scale=1">` +
    // Nothing may be fetched but the inline data: images (and, on the live page, its own JSON).
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; ${o.live ? "script-src 'unsafe-inline'; connect-src 'self'" : "script-src 'none'"}">` +
    `<title>${escapeXml(o.title)}</title><style>${CSS}</style></head>` +
    `<body${bodyAttrs}><header><h1>${escapeXml(o.title)}</h1>${o.subtitle ? `<p class="subtitle">${escapeXml(o.subtitle)}</p>` : ''}</header>` +
    `<nav>${nav}${live}</nav><main>${o.sections.map(renderSection).join('\n')}</main>` +
    (o.live ? `<script>${LIVE_SCRIPT}</script>` : '') +
    '</body></html>\n'
  );
}
