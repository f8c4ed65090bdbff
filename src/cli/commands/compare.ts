// `hardneg compare`: a grid of methods × base losses × seeds, each cell a normal (resumable) run
// directory, summarised as results.json and a mean ± std table in Markdown and CSV.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../args.ts';
import { numberFlag } from '../../values.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { writeFileAtomic } from '../../io/atomic_write.ts';
import { checkCompatibility } from '../../baselines/index.ts';
import { resolveLossName } from '../../losses/metric/index.ts';
import { BASE_LOSSES, TRAIN_METHODS, parseConfig, type TrainConfig } from '../../train/config.ts';
import { RUN_FILES, isRunDir, readRunConfig } from '../../train/run_dir.ts';
import { beginRun } from '../../train/run_start.ts';
import type { EvalRecord } from '../../train/evaluate_model.ts';
import { isGcaMethod } from '../../gca_hng/variants.ts';
import { resolveConfig } from '../../train/setup.ts';
import { helpOption } from '../format.ts';
import { nameList } from '../../text.ts';
import { configSources, trainWithProgress } from '../training.ts';

/** The grid when --methods / --losses are not given. */
const DEFAULT_METHODS = ['none', 'gca-hng'];
const DEFAULT_LOSSES = ['npair'];

const HELP = `usage: hardneg compare --out DIR [--dataset NAME] [--data-root DIR] [--preset NAME]
                       [--methods M1,M2,...] [--losses L1,L2,...] [--seeds N] [--epochs N]
                       [--backend NAME] [--config FILE.yaml] [--set key=value ...] [--json] [--quiet]

Trains every combination of method, base loss and seed (0..N−1) as its own run directory under
DIR/cells/, skipping finished cells and resuming interrupted ones, then writes DIR/results.json
(one entry per cell: method, loss, seed, its final and best evaluations from metrics.json, wall_s,
the commit that trained it), DIR/results.md (the command, commits and budget, then mean ± std per
metric over seeds after the last epoch and at the best epoch) and DIR/results.csv, each written atomically. Every cell is decided
before anything runs: an unknown name, a combination that makes no sense (e.g. Proxy Synthesis
with a pair loss, refused with the reason) or a cell folder holding a run of another configuration
(other --epochs or --set values) stops the request with exit 2 and nothing written. --dataset, --data-root, --preset,
--epochs, --backend, --config and --set set the base configuration as in 'hardneg train'.

options:
${[
  helpOption('--methods LIST', `comma-separated, default ${DEFAULT_METHODS.join(',')}; from ${nameList(TRAIN_METHODS, { conjunction: 'and' })}`),
  helpOption(
    '--losses LIST',
    `comma-separated, default ${DEFAULT_LOSSES.join(',')}; from ${nameList(BASE_LOSSES, { conjunction: 'and' })} (and their aliases, e.g. ms, pa)`,
  ),
  helpOption('--seeds N', 'seeds 0..N−1 per combination (default 1)'),
  helpOption('--out DIR', 'where the cells and the results go (finished cells are kept, interrupted ones resumed)'),
  helpOption('--json', "print results.json's content at the end"),
  helpOption('--quiet', 'no progress'),
].join('\n')}`;

export interface CellResult {
  method: string;
  loss: string;
  seed: number;
  /** The evaluation after the last epoch. */
  final: EvalRecord | null;
  /** The evaluation with the best Recall@1 (the official checkpoint choice). */
  best: EvalRecord | null;
  wall_s: number;
  /** The hardneg version and git commit that finished the cell (null for cells from before it was recorded). */
  software: CellSoftware | null;
}

interface CellSoftware {
  hardneg: string;
  commit: string | null;
  dirty: boolean | null;
}

/** Which evaluation of each cell a table summarises. */
export type TableEpoch = 'final' | 'best';

function list(flag: string, v: string | undefined, fallback: string[]): string[] {
  const items = (v ?? fallback.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UserError(`--${flag}: expected a comma-separated list`);
  return items;
}

interface Cell {
  method: string;
  loss: string;
  seed: number;
  config: TrainConfig;
  dir: string;
}

/** The dotted keys whose values differ between two configurations. */
export function configDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort().flatMap((k) => configDifferences(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${prefix}: ${JSON.stringify(a)} there, ${JSON.stringify(b)} asked`];
}

function meanStd(xs: number[]): string {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return '-';
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0;
  return `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
}

export function summaryTable(results: CellResult[], ks: number[], which: TableEpoch): { markdown: string; csv: string } {
  const columns = [...ks.map((k) => `R@${k}`), 'MAP@R', 'RP', 'NMI'];
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    const key = `${r.method}\u0000${r.loss}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows: string[][] = [];
  for (const [key, cells] of groups) {
    const [method, loss] = key.split('\u0000') as [string, string];
    const ms = cells.map((c) => c[which]).filter((m): m is EvalRecord => m !== null);
    rows.push([
      method,
      loss,
      String(ms.length),
      ms.map((m) => m.epoch).join(', '),
      ...ks.map((k) => meanStd(ms.map((m) => m.recall[String(k)] ?? NaN))),
      meanStd(ms.map((m) => m.map_at_r)),
      meanStd(ms.map((m) => m.r_precision)),
      meanStd(ms.map((m) => m.nmi ?? NaN)),
    ]);
  }
  const header = ['method', 'loss', 'seeds', 'epoch', ...columns];
  const markdown = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const csvRows = [['table', ...header.slice(0, 3), ...columns.flatMap((c) => [`${c}_mean`, `${c}_std`])]];
  for (const r of rows) {
    csvRows.push([which, ...r.slice(0, 3), ...r.slice(4).flatMap((cell) => (cell === '-' ? ['', ''] : cell.split(' ± ')))]);
  }
  return { markdown, csv: csvRows.map((r) => r.join(',')).join('\n') };
}

/**
 * What a reader needs to rerun the tables: the command, the code that trained the cells, and the
 * training budget. Percent values are mean ± sample standard deviation over the seeds.
 */
function provenance(argv: string[], c: TrainConfig, results: CellResult[]): string {
  const commits = [
    ...new Set(
      results.map((r) => (r.software?.commit ? `${r.software.commit.slice(0, 12)}${r.software.dirty ? ' (with uncommitted changes)' : ''}` : 'not recorded')),
    ),
  ];
  const t = c.train;
  const budget =
    `${t.epochs} epoch${t.epochs === 1 ? '' : 's'} × ${t.maxIterationsPerEpoch > 0 ? `at most ${t.maxIterationsPerEpoch} iterations` : 'a pass over the training split'}, ` +
    `batches of ${t.classesPerBatch} classes × ${t.samplesPerClass} images, evaluation every ${t.evalEvery} epoch${t.evalEvery === 1 ? '' : 's'}`;
  return [
    '# hardneg compare',
    '',
    `- command: \`hardneg compare ${argv.map(shellWord).join(' ')}\``,
    `- cells trained by hardneg at commit ${commits.join(', ')}`,
    `- budget per cell: ${budget}; the full configuration is each cell's config.json`,
    '- values: percent, mean ± sample standard deviation over the seeds; `epoch`: the evaluated epoch of each seed',
    '',
  ].join('\n');
}

function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`;
}

export const command: Command = {
  summary: 'train a grid of methods × losses × seeds and tabulate mean ± std',
  help: HELP,
  async run(argv) {
    const { values: v } = parseFlags({
      args: argv,
      options: {
        dataset: { type: 'string' },
        'data-root': { type: 'string' },
        methods: { type: 'string' },
        losses: { type: 'string' },
        seeds: { type: 'string', default: '1' },
        epochs: { type: 'string' },
        config: { type: 'string' },
        set: { type: 'string', multiple: true },
        preset: { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        backend: { type: 'string' },
      },
      strict: true,
    });
    if (!v.out) throw new UserError('--out DIR is required');
    const seeds = numberFlag('seeds', v.seeds, { integer: true, min: 1 });
    const methods = list('methods', v.methods, DEFAULT_METHODS);
    const unknownMethods = methods.filter((m) => !(TRAIN_METHODS as readonly string[]).includes(m));
    if (unknownMethods.length > 0)
      throw new UserError(
        `--methods: unknown ${unknownMethods.map((m) => `'${m}'`).join(', ')}; expected names from ${nameList(TRAIN_METHODS, { conjunction: 'and' })}`,
      );
    const losses = list('losses', v.losses, DEFAULT_LOSSES).map((name) => {
      try {
        return resolveLossName(name);
      } catch {
        throw new UserError(`--losses: unknown '${name}'; expected names from ${nameList(BASE_LOSSES, { conjunction: 'and' })}`);
      }
    });
    const base = resolveConfig(configSources(v));
    // Every cell is decided before anything is written: a refused combination, or a cell folder
    // that holds a run of another configuration, stops the whole request.
    const cells: Cell[] = [];
    const refused: string[] = [];
    for (const method of methods) {
      for (const loss of losses) {
        const compat = checkCompatibility(isGcaMethod(method) ? 'gca-hng' : method, loss, {
          samplesPerClass: base.train.samplesPerClass,
          classesPerBatch: base.train.classesPerBatch,
        });
        if (!compat.ok) {
          refused.push(`${method} × ${loss}: ${compat.reason}`);
          continue;
        }
        for (let seed = 0; seed < seeds; seed++) {
          const config = parseConfig({ ...base, train: { ...base.train, method, seed }, loss: { ...base.loss, base: loss } }, `cell ${method} × ${loss}`);
          cells.push({ method, loss, seed, config, dir: join(v.out, 'cells', `${method}__${loss}__seed${seed}`) });
        }
      }
    }
    if (refused.length > 0) throw new UserError(`refused (nothing was run): ${refused.join('; ')}; drop these combinations from --methods/--losses`);
    for (const cell of cells) {
      if (!existsSync(join(cell.dir, RUN_FILES.config))) continue;
      const differs = configDifferences(readRunConfig(cell.dir), cell.config);
      if (differs.length > 0) {
        throw new UserError(
          `${cell.dir} holds a run of another configuration (${differs.slice(0, 4).join(', ')}${differs.length > 4 ? ', …' : ''}); compare never answers a changed request with old cells: use another --out`,
        );
      }
    }
    mkdirSync(join(v.out, 'cells'), { recursive: true });
    const results: CellResult[] = [];
    for (const { method, loss, seed, config, dir } of cells) {
      const metricsPath = join(dir, RUN_FILES.metrics);
      if (!existsSync(metricsPath)) {
        const resume = isRunDir(dir) && existsSync(join(dir, RUN_FILES.checkpoint));
        const start = resume ? undefined : beginRun(dir, config, { overwrite: true, command: 'compare', flag: 'cell' });
        if (!v.quiet) process.stderr.write(`${resume ? 'resuming' : 'training'} ${method} × ${loss}, seed ${seed} → ${dir}\n`);
        await trainWithProgress(config, dir, resume, v.quiet || v.json, start);
      }
      const m = JSON.parse(readFileSync(metricsPath, 'utf8')) as { final: EvalRecord | null; best: EvalRecord | null; wall_s: number; software?: CellSoftware };
      results.push({ method, loss, seed, final: m.final, best: m.best, wall_s: m.wall_s, software: m.software ?? null });
    }
    const final = summaryTable(results, base.eval.ks, 'final');
    const best = summaryTable(results, base.eval.ks, 'best');
    const markdown = [
      provenance(argv, base, results),
      '## After the last epoch',
      '',
      final.markdown,
      '',
      '## At the best epoch (highest Recall@1 among the evaluations, the official checkpoint choice)',
      '',
      best.markdown,
    ].join('\n');
    writeFileAtomic(join(v.out, 'results.json'), `${JSON.stringify({ results }, null, 2)}\n`);
    writeFileAtomic(join(v.out, 'results.md'), `${markdown}\n`);
    writeFileAtomic(join(v.out, 'results.csv'), `${[final.csv, ...best.csv.split('\n').slice(1)].join('\n')}\n`);
    if (v.json) console.log(JSON.stringify({ results }));
    else console.log(markdown);
    return 0;
  },
};
