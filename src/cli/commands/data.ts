// `hardneg data inspect`: what a benchmark folder holds — splits, image and class counts, problems,
// and with --list every image with its split and the dataset's own class identifier.
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { ProgressBar } from '../progress.ts';
import { BENCHMARK_NAMES, benchmarkSpec, type BenchmarkReport, type CheckLevel } from '../../data/benchmarks.ts';

const HELP = `usage: hardneg data inspect --dataset NAME --data-root DIR [--list] [--json] [options]

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
                         (the report is printed either way; status 0 otherwise)`;

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

export const command: Command = {
  summary: 'inspect a benchmark dataset folder (CUB-200-2011, Cars196, SOP, In-Shop, image folder)',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'inspect') return inspect(rest);
    if (sub === undefined) throw new UserError("expected a subcommand: inspect; see 'hardneg data --help'");
    throw new UserError(`unknown subcommand '${sub}'; expected inspect (see 'hardneg data --help')`);
  },
};
