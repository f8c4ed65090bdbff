// `hardneg report`: one self-contained HTML report of one or more run directories (loss terms,
// learning rates, retrieval metrics, the hardness of the generated negatives, a UMAP map of the
// test embeddings and a retrieval gallery), the runs overlaid for comparison.
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { writeFileAtomic } from '../../io/atomic_write.ts';
import { isReportHtml, renderPage } from '../../report/html_page.ts';
import { ReportModel } from '../../report/report_model.ts';
import { VIEW_OPTIONS, viewOptions } from '../view_options.ts';

const HELP = `usage: hardneg report RUN_DIR [RUN_DIR ...] --out REPORT.html [--k 8] [--queries 24] [--seed 0]

Writes one self-contained HTML file (no network requests; opens offline in any browser) with:
  - every loss term and the learning rates over the iterations;
  - Recall@K, MAP@R, R-Precision and NMI over the evaluations;
  - the hardness of the generated negatives at each evaluation (gca-hng runs): distances of
    anchor→generated negatives against anchor→real negatives and anchor→positives, the
    distribution of the learned edge weights per channel, φ, the J_syn weight, the kept fraction;
  - a UMAP map of the latest test embeddings, coloured by class;
  - a retrieval gallery: the worst queries first, with their top-k results, wrong ones marked.
Several runs are overlaid in every chart, one series per run. See docs/report.md.

options:
  --out FILE      the HTML file to write (an existing file is replaced only if it is a report)
  --k N           results shown per gallery query (default 8)
  --queries N     gallery queries shown per run, worst first (default 24)
  --seed N        seed of the UMAP layout (default 0)`;

/** Refuses an --out that is a directory or a file other than one of our reports. */
function checkReportOut(out: string): void {
  if (!existsSync(out)) return;
  const st = statSync(out);
  if (st.isDirectory()) throw new UserError(`--out ${out}: is a directory (expected an HTML file path)`);
  const fd = openSync(out, 'r');
  const head = Buffer.alloc(4096);
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (!isReportHtml(head.subarray(0, n).toString('utf8'))) {
    throw new UserError(`--out ${out}: the file exists and is not a hardneg report; refusing to overwrite it (remove it or choose another path)`);
  }
}

export const command: Command = {
  summary: 'an HTML report of runs: losses, metrics, hardness of the negatives, UMAP, gallery',
  help: HELP,
  async run(argv) {
    const { values: v, positionals } = parseFlags({
      args: argv,
      options: { out: { type: 'string' }, ...VIEW_OPTIONS },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length === 0) throw new UserError("needs at least one RUN_DIR (a directory made by hardneg train --out); see 'hardneg report --help'");
    if (v.out === undefined || v.out === '') throw new UserError('needs --out REPORT.html (the file to write)');
    const options = viewOptions(v);
    checkReportOut(v.out);
    const model = new ReportModel(positionals, options);
    await model.refresh(true);
    for (const run of model.runs) {
      if (run.log.problems.length)
        process.stderr.write(
          `warning: ${run.log.path}: ${run.log.problems.length} malformed line(s) skipped (first: line ${run.log.problems[0]?.line}: ${run.log.problems[0]?.message})\n`,
        );
    }
    const names = model.runs.map((r) => r.name).join(', ');
    const html = renderPage({
      title: `hardneg report: ${names}`,
      subtitle: `${model.runs.map((r) => resolve(r.dir)).join(' · ')} · made ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC`,
      sections: model.sections(),
    });
    mkdirSync(dirname(resolve(v.out)), { recursive: true });
    writeFileAtomic(v.out, html);
    console.log(`wrote ${v.out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB): ${model.runs.length} run${model.runs.length > 1 ? 's' : ''} (${names})`);
    return 0;
  },
};
