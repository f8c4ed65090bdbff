// `hardneg evaluate`: retrieval metrics (Recall@k, MAP@R, R-Precision, NMI) of saved embeddings.
import type { parseArgs } from 'node:util';
import { parseFlags, readNpyFlag } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { toNumbers } from '../../io/host_tensor.ts';
import { embeddings, type Embeddings } from '../../metrics/embeddings.ts';
import { evaluateRetrieval, type RetrievalMetrics, type Semantics } from '../../metrics/retrieval.ts';
import { evaluateInShop, INSHOP_KS } from '../../metrics/inshop.ts';
import { evaluateNmi } from '../../metrics/nmi.ts';

const HELP = `usage: hardneg evaluate --embeddings X.npy --labels T.npy [--k 1,2,4,8] [options]
       hardneg evaluate --query-embeddings Q.npy --query-labels QT.npy
                        --gallery-embeddings G.npy --gallery-labels GT.npy [--k 1,10,20,30,40,50] [options]

Retrieval metrics of embeddings ([n, D] float32/float64 .npy) with integer class labels ([n] .npy).
The first form searches the set against itself (CUB, Cars, SOP); the second is the In-Shop
query/gallery protocol. Rows are L2-normalised; similarity is the cosine.

options:
  --k LIST             recall cut-offs, comma-separated (default 1,2,4,8; In-Shop 1,10,20,30,40,50)
  --semantics NAME     textbook (default): self excluded by index, R = class size − 1, queries
                         whose class has no other item left out;
                       official: as the GCA-HNG code: rank 0 dropped, lists cut at 1000, singleton
                         classes give NaN MAP@R / R-Precision; In-Shop ties favour positives
  --nmi / --no-nmi     NMI of k-means with one cluster per class (default on for the first form;
                         k-means takes minutes on 100,000 embeddings)
  --seed N             k-means seed (default 0)
  --threads N          worker threads for large searches (default: all cores, at most 8)
  --json               print one JSON object: recall (k → fraction), map_at_r, r_precision
                         (fractions), nmi; NaN is written as null`;

const OPTIONS = {
  embeddings: { type: 'string' },
  labels: { type: 'string' },
  'query-embeddings': { type: 'string' },
  'query-labels': { type: 'string' },
  'gallery-embeddings': { type: 'string' },
  'gallery-labels': { type: 'string' },
  k: { type: 'string' },
  semantics: { type: 'string' },
  nmi: { type: 'boolean' },
  'no-nmi': { type: 'boolean' },
  seed: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function loadEmbeddings(flag: string, path: string): Embeddings {
  const t = readNpyFlag(flag, path);
  if (t.dtype !== 'F32' && t.dtype !== 'F64') throw new UserError(`--${flag} ${path}: expected float32 or float64 embeddings, got ${t.dtype}`);
  const [rows, dim] = t.shape;
  if (t.shape.length !== 2 || rows === undefined || dim === undefined || rows < 1 || dim < 1) {
    throw new UserError(`--${flag} ${path}: expected a 2-D array [n, D] of embeddings, got shape [${t.shape.join(', ')}]`);
  }
  const data = t.data as Float32Array | Float64Array;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new UserError(`--${flag} ${path}: value ${data[i]} at row ${Math.floor(i / dim)} is not finite`);
  }
  return embeddings(data, rows, dim);
}

function loadLabels(flag: string, path: string, rows: number, embeddingsFlag: string): number[] {
  const t = readNpyFlag(flag, path);
  if (t.shape.length !== 1 && !(t.shape.length === 2 && t.shape[1] === 1)) {
    throw new UserError(`--${flag} ${path}: expected a 1-D array of labels, got shape [${t.shape.join(', ')}]`);
  }
  if (t.dtype === 'BOOL') throw new UserError(`--${flag} ${path}: expected integer labels, got bool`);
  const labels = toNumbers(t);
  const bad = labels.findIndex((v) => !Number.isSafeInteger(v));
  if (bad >= 0) throw new UserError(`--${flag} ${path}: expected integer labels, got ${labels[bad]} at position ${bad}`);
  if (labels.length !== rows) throw new UserError(`--${flag} ${path}: ${labels.length} labels, but --${embeddingsFlag} has ${rows} rows`);
  return labels;
}

function parseKs(text: string): number[] {
  const ks = text.split(',').map((s) => s.trim());
  if (ks.some((s) => !/^[1-9][0-9]*$/.test(s))) throw new UserError(`--k: expected comma-separated positive integers like 1,2,4,8, got '${text}'`);
  return [...new Set(ks.map(Number))].sort((a, b) => a - b);
}

function parsePositive(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || Number(text) < min) throw new UserError(`--${flag}: expected an integer ≥ ${min}, got '${text}'`);
  return Number(text);
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

function formatTable(semantics: Semantics, m: RetrievalMetrics, nmi: number | undefined): string {
  const percent = (v: number): string => (Number.isNaN(v) ? 'NaN' : (100 * v).toFixed(2).padStart(7));
  const lines = [`semantics: ${semantics}, ${m.queries} queries`, ''];
  for (const [k, v] of Object.entries(m.recall)) lines.push(`Recall@${k}`.padEnd(14) + percent(v));
  lines.push('MAP@R'.padEnd(14) + percent(m.mapAtR), 'R-Precision'.padEnd(14) + percent(m.rPrecision));
  if (nmi !== undefined) lines.push('NMI'.padEnd(14) + percent(nmi));
  lines.push('', '(percent)');
  return lines.join('\n');
}

async function evaluate(values: Values): Promise<{ semantics: Semantics; metrics: RetrievalMetrics; nmi?: number }> {
  const semantics = values.semantics ?? 'textbook';
  if (semantics !== 'textbook' && semantics !== 'official') throw new UserError(`--semantics: expected textbook or official, got '${semantics}'`);
  if (values.nmi && values['no-nmi']) throw new UserError('--nmi and --no-nmi contradict each other');
  const threads = parsePositive('threads', values.threads, 1);
  const seed = parsePositive('seed', values.seed, 0);
  const inShopFlags = ['query-embeddings', 'query-labels', 'gallery-embeddings', 'gallery-labels'] as const;
  const given = inShopFlags.filter((f) => values[f] !== undefined);
  if (given.length > 0) {
    if (values.embeddings !== undefined || values.labels !== undefined)
      throw new UserError('use either --embeddings/--labels or the --query-*/--gallery-* flags, not both');
    const missing = inShopFlags.filter((f) => values[f] === undefined);
    if (missing.length > 0) throw new UserError(`the In-Shop form needs ${missing.map((f) => `--${f}`).join(', ')} as well`);
    if (values.nmi) throw new UserError('--nmi applies to the --embeddings form only');
    const ks = values.k === undefined ? INSHOP_KS : parseKs(values.k);
    const q = loadEmbeddings('query-embeddings', values['query-embeddings'] as string);
    const g = loadEmbeddings('gallery-embeddings', values['gallery-embeddings'] as string);
    if (q.dim !== g.dim) throw new UserError(`--query-embeddings has dimension ${q.dim} but --gallery-embeddings has ${g.dim}`);
    const qt = loadLabels('query-labels', values['query-labels'] as string, q.rows, 'query-embeddings');
    const gt = loadLabels('gallery-labels', values['gallery-labels'] as string, g.rows, 'gallery-embeddings');
    return { semantics, metrics: await evaluateInShop(q, qt, g, gt, { ks, semantics, threads }) };
  }
  if (values.embeddings === undefined || values.labels === undefined)
    throw new UserError("needs --embeddings X.npy and --labels T.npy (or the In-Shop --query-*/--gallery-* flags); see 'hardneg evaluate --help'");
  const ks = values.k === undefined ? [1, 2, 4, 8] : parseKs(values.k);
  const x = loadEmbeddings('embeddings', values.embeddings);
  const labels = loadLabels('labels', values.labels, x.rows, 'embeddings');
  const metrics = await evaluateRetrieval(x, labels, { ks, semantics, threads });
  const nmi = values['no-nmi'] ? undefined : await evaluateNmi(x, labels, { seed, threads });
  return { semantics, metrics, nmi };
}

export const command: Command = {
  summary: 'Recall@k, MAP@R, R-Precision and NMI of saved embeddings',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
    const { semantics, metrics, nmi } = await evaluate(values);
    if (metrics.queries === 0) {
      throw new UserError(
        'no usable query: every class has a single sample, so no query has a relevant item to retrieve and no metric is defined (check the labels)',
      );
    }
    if (values.json) {
      const out = {
        semantics,
        queries: metrics.queries,
        recall: metrics.recall,
        map_at_r: metrics.mapAtR,
        r_precision: metrics.rPrecision,
        ...(nmi === undefined ? {} : { nmi }),
      };
      console.log(JSON.stringify(out));
    } else {
      console.log(formatTable(semantics, metrics, nmi));
    }
    return 0;
  },
};
