// `hardneg data inspect`: what a benchmark folder holds — splits, image and class counts, problems,
// and with --list every image with its split and the dataset's own class identifier.
// `hardneg data build-glyphs`: a many-class image folder rendered from the installed fonts
// (src/data/glyphs.ts).
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { ProgressBar } from '../progress.ts';
import { BENCHMARK_NAMES, benchmarkSpec, type BenchmarkReport, type CheckLevel } from '../../data/benchmarks.ts';
import { buildGlyphSet, GLYPH_DEFAULTS, type GlyphSetSummary } from '../../data/glyphs.ts';
import { GLYPH_SCRIPT_NAMES } from '../../data/glyph_scripts.ts';
import { numberFlag } from '../../values.ts';

const HELP = `usage: hardneg data inspect --dataset NAME --data-root DIR [--list] [--json] [options]
       hardneg data build-glyphs --out DIR [--classes N] [--fonts N] [--size PX] [--seed S] [--json]

inspect

Reads a retrieval benchmark as distributed and reports its splits (images and classes), the
problems found (missing or unreadable files, malformed lines, grayscale/CMYK images, which are
converted to RGB when loaded) and, with --list, every image.

datasets and what --data-root points at:
  cub200    the CUB_200_2011 folder (images.txt, classes.txt, image_class_labels.txt, images/);
              classes 1–100 train, 101–200 test
  cars196   a folder with cars_annos.mat and car_ims/; classes 1–98 train, 99–196 test
  sop       the Stanford_Online_Products folder (Ebay_train.txt, Ebay_test.txt, image folders)
  inshop    a folder with list_eval_partition.txt (or Eval/…) and img/; train, query, gallery
  folder    an image folder: train/<class>/<images>, test/<class>/<images>

options:
  --list               include every usable image: {path, label, split}, label being the
                         dataset's own class identifier (CUB/Cars class number, SOP class_id,
                         In-Shop item id, folder name); paths are relative to --data-root
                         (missing and unreadable images are left out and listed in problems)
  --json               print one JSON object: dataset, root, check, splits (name → images,
                         classes, listed), problems ({path, problem, severity}), remarks
                         (observations that are not faults, e.g. single-image test classes), ok,
                         [items];
                         images and classes count the usable images, listed all listed ones
  --check LEVEL        exists: only that each listed file exists; header (default): its image
                         header reads (colour model notes); decode: every image decodes fully
  --check-images       the same as --check decode
  --concurrency N      files checked at once (default 2 × cores, at most 16)
  --strict             also exit with status 1 when a problem of severity 'warning' was found
                       (a problem of severity 'error' always gives exit status 1)
                         (the report is printed either way; status 0 otherwise)

build-glyphs
Renders a many-class dataset for metric learning from the fonts installed on this machine (on
Debian: the font packages listed in the README, "Glyph dataset"): each class is one character
(Latin, Greek, Cyrillic, Hebrew, Arabic, Devanagari, Thai, Hangul, kana, Han), each image that
character drawn by another font, with a small seeded shift, scale, rotation and stroke. A font
counts for a character only if it draws it itself (no substitute font); identical outlines count
once. Half the characters train, the other half test (class-disjoint). Writes the folder layout
of --dataset folder, plus glyphs.json (classes, fonts, packages, licences) and README.md. The
same fonts and options give byte-identical files.

options:
  --out DIR            where to write: a new or empty folder, or a glyph set built before
                         (replaced); a folder holding anything else is refused
  --classes N          characters, half train, half test (default ${GLYPH_DEFAULTS.classes})
  --fonts N            images per class, each from a different font (default ${GLYPH_DEFAULTS.fontsPerClass}); only
                         characters drawn by at least N distinct fonts are used
  --size PX            image side, grey PNG (default ${GLYPH_DEFAULTS.size})
  --seed S             which characters, which fonts, the split and the variations (default 0)
  --scripts LIST       comma-separated, from ${GLYPH_SCRIPT_NAMES.slice(0, 5).join(', ')},
                         ${GLYPH_SCRIPT_NAMES.slice(5).join(', ')} (default all)
  --font-dir DIR       where to look for fonts, recursively; repeatable (default /usr/share/fonts)
  --json               print one JSON object: out, classes {train, test}, fontsPerClass, images,
                         size, seed, scripts (name → {train, test, eligible}), fonts {found, used,
                         packages}, bytes, seconds`;

const OPTIONS = {
  dataset: { type: 'string' },
  'data-root': { type: 'string' },
  list: { type: 'boolean' },
  json: { type: 'boolean' },
  check: { type: 'string' },
  'check-images': { type: 'boolean' },
  concurrency: { type: 'string' },
  strict: { type: 'boolean' },
} as const;

function formatReport(r: BenchmarkReport, title: string): string {
  const lines = [`${title}`, `at ${r.root} (--dataset ${r.dataset}, files checked: ${r.check})`, ''];
  lines.push(`  ${'split'.padEnd(10)}${'images'.padStart(9)}${'classes'.padStart(9)}`);
  for (const [name, s] of Object.entries(r.splits)) {
    const missing = s.listed !== s.images ? `   (${s.listed} listed)` : '';
    lines.push(`  ${name.padEnd(10)}${String(s.images).padStart(9)}${String(s.classes).padStart(9)}${missing}`);
  }
  lines.push('');
  if (r.problems.length === 0) {
    lines.push('problems: none');
  } else {
    const counts = (['error', 'warning', 'note'] as const)
      .map((sev) => [sev, r.problems.filter((p) => p.severity === sev).length] as const)
      .filter(([, n]) => n > 0);
    lines.push(`problems: ${counts.map(([sev, n]) => `${n} ${sev}${n > 1 ? 's' : ''}`).join(', ')}`);
    const shown = r.problems.slice(0, 50);
    for (const p of shown) lines.push(`  ${p.severity.padEnd(8)}${p.path}: ${p.problem}`);
    if (r.problems.length > shown.length) lines.push(`  … and ${r.problems.length - shown.length} more (--json lists them all)`);
  }
  for (const remark of r.remarks) lines.push(`remark: ${remark}`);
  if (r.items) {
    lines.push('', 'items (split, label, path):');
    for (const i of r.items) lines.push(`  ${i.split}\t${i.label}\t${i.path}`);
  }
  return lines.join('\n');
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  if (values.dataset === undefined) throw new UserError(`needs --dataset (one of ${BENCHMARK_NAMES.join(', ')})`);
  if (values['data-root'] === undefined) throw new UserError("needs --data-root DIR, the dataset's folder");
  const spec = benchmarkSpec(values.dataset);
  let check: CheckLevel = 'header';
  if (values.check !== undefined) {
    if (!['exists', 'header', 'decode'].includes(values.check)) throw new UserError(`--check: expected exists, header or decode, got '${values.check}'`);
    check = values.check as CheckLevel;
  }
  if (values['check-images']) {
    if (values.check !== undefined && values.check !== 'decode') throw new UserError(`--check-images contradicts --check ${values.check}`);
    check = 'decode';
  }
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values.concurrency)) throw new UserError(`--concurrency: expected a positive integer, got '${values.concurrency}'`);
    concurrency = Number(values.concurrency);
  }
  const bar = new ProgressBar(`checking ${spec.name}`, values.json === true && !process.stderr.isTTY);
  let lastUpdate = 0;
  const report = await spec.inspect(values['data-root'], {
    check,
    list: values.list === true,
    ...(concurrency ? { concurrency } : {}),
    onProgress: (done, total) => {
      if (total < 2000) return;
      const now = Date.now();
      if (done === total || now - lastUpdate > 200) {
        lastUpdate = now;
        bar.update(done, total, 'files');
        if (done === total) bar.done();
      }
    },
  });
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else console.log(formatReport(report, spec.title));
  const warnings = report.problems.some((p) => p.severity === 'warning');
  return !report.ok || (values.strict && warnings) ? 1 : 0;
}

const GLYPH_OPTIONS = {
  out: { type: 'string' },
  classes: { type: 'string' },
  fonts: { type: 'string' },
  size: { type: 'string' },
  seed: { type: 'string' },
  scripts: { type: 'string' },
  'font-dir': { type: 'string', multiple: true },
  json: { type: 'boolean' },
} as const;

function formatGlyphSet(r: GlyphSetSummary): string {
  const m = r.manifest;
  const c = m.counts;
  const n = (x: number) => x.toLocaleString('en-US');
  const scripts = Object.entries(c.scripts)
    .map(([name, s]) => `${name} ${s.train}+${s.test}`)
    .join(', ');
  const packages = new Set(m.fonts.map((f) => f.package ?? f.file)).size;
  return [
    `built ${n(c.train.classes + c.test.classes)} classes × ${m.options.fontsPerClass} fonts (${n(r.images)} images, ` +
      `${m.options.size}×${m.options.size}) in ${r.out} in ${r.seconds.toFixed(1)} s, ${(r.bytes / 1e6).toFixed(1)} MB`,
    `  train: ${n(c.train.classes)} classes, ${n(c.train.images)} images; test: ${n(c.test.classes)} other classes, ${n(c.test.images)} images`,
    `  classes per script (train+test): ${scripts}`,
    `  fonts: ${m.fonts.length} used of ${m.scan.faces} usable found, from ${packages} packages (licences: ${r.out}/README.md)`,
    `train on it: npx hardneg train --dataset folder --data-root ${r.out} --set dataset.imageSize=${m.options.size}`,
  ].join('\n');
}

async function buildGlyphs(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({ args: argv, options: GLYPH_OPTIONS, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  if (values.out === undefined) throw new UserError('needs --out DIR, the folder to write the dataset to');
  const int = (flag: string, text: string | undefined, min: number, max: number) =>
    text === undefined ? undefined : numberFlag(flag, text, { integer: true, min, max });
  const classes = int('classes', values.classes, 4, 100_000);
  const fontsPerClass = int('fonts', values.fonts, 2, 10_000);
  const size = int('size', values.size, 8, 1024);
  const seed = int('seed', values.seed, 0, Number.MAX_SAFE_INTEGER);
  let scripts: string[] | undefined;
  if (values.scripts !== undefined) {
    scripts = values.scripts
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    const unknown = scripts.find((s) => !GLYPH_SCRIPT_NAMES.includes(s));
    if (unknown !== undefined || scripts.length === 0)
      throw new UserError(`--scripts ${values.scripts}: expected a comma-separated list of ${GLYPH_SCRIPT_NAMES.join(', ')}`);
  }
  const quiet = values.json === true && !process.stderr.isTTY;
  const bars = { fonts: new ProgressBar('reading fonts', quiet), images: new ProgressBar('rendering', quiet) };
  let last = 0;
  const r = await buildGlyphSet({
    out: values.out,
    ...(classes !== undefined ? { classes } : {}),
    ...(fontsPerClass !== undefined ? { fontsPerClass } : {}),
    ...(size !== undefined ? { size } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(scripts ? { scripts } : {}),
    ...(values['font-dir'] ? { fontDirs: values['font-dir'] } : {}),
    onProgress: (phase, done, total) => {
      const now = Date.now();
      if (done === total || now - last > 200) {
        last = now;
        bars[phase].update(done, total, phase === 'fonts' ? 'font files' : 'images');
        if (done === total) bars[phase].done();
      }
    },
  });
  if (values.json) {
    const m = r.manifest;
    const out = {
      out: r.out,
      classes: { train: m.counts.train.classes, test: m.counts.test.classes },
      fontsPerClass: m.options.fontsPerClass,
      images: r.images,
      size: m.options.size,
      seed: m.options.seed,
      scripts: m.counts.scripts,
      fonts: { found: m.scan.faces, used: m.fonts.length, packages: m.packages.map((p) => p.name) },
      bytes: r.bytes,
      seconds: r.seconds,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    console.log(formatGlyphSet(r));
  }
  return 0;
}

export const command: Command = {
  summary: 'inspect a benchmark dataset folder; build a many-class glyph dataset from the installed fonts',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'inspect') return inspect(rest);
    if (sub === 'build-glyphs') return buildGlyphs(rest);
    if (sub === undefined) throw new UserError("expected a subcommand: inspect or build-glyphs; see 'hardneg data --help'");
    throw new UserError(`unknown subcommand '${sub}'; expected inspect or build-glyphs (see 'hardneg data --help')`);
  },
};
