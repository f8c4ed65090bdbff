// `hardneg index build`: a search index (src/search/index_store.ts) of a run's embeddings of a
// folder of images, or of an embeddings .npy (with the labels and paths of its E.json sidecar).
// LanceDB is loaded only here and in `search`, so other commands work without its native module.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseFlags, readNpyFlag } from '../args.ts';
import type { Command } from '../command.ts';
import { helpOption } from '../format.ts';
import { ProgressBar } from '../progress.ts';
import { UserError } from '../../errors.ts';
import { IMAGE_EXTENSIONS } from '../../data/image_folder.ts';
import { EMBEDDINGS_FORMAT, type EmbeddingsSidecar, labelOf, listImages, sidecarPath } from '../../inference/embed_job.ts';
import { isRunDir } from '../../train/run_dir.ts';
import type { IndexModelInfo, SearchMetric } from '../../search/types.ts';
import { AUTO_EXACT_MAX_ROWS, INDEX_KINDS, type IndexKindChoice } from '../../search/index_store.ts';

const HELP = `usage: hardneg index build (--run RUN_DIR --images DIR | --embeddings E.npy [--labels L.npy] [--paths E.json])
                           --out INDEX_DIR [--metric l2|cosine] [--kind auto|exact|ivf-pq|ivf-hnsw-sq]
                           [--weights final|best] [--json] [--quiet]

A search index (LanceDB table + index.json) of embeddings, for 'hardneg search' and the search
service. Item ids are row numbers in the input order. The build is atomic: INDEX_DIR appears only
when complete, and an existing INDEX_DIR is refused. INDEX_DIR may be an object-store URI (s3://,
gs://, az://); credentials come from the usual environment variables (see docs/search.md).

${[
  helpOption('--run RUN_DIR', 'a run directory of hardneg train; with --images, embeds the images with it'),
  helpOption(
    '--images DIR',
    `every image under DIR (extensions ${IMAGE_EXTENSIONS.join(', ')}), sorted as 'hardneg embed' sorts them; labels are parent folder names`,
  ),
  helpOption('--embeddings E.npy', "float32 [N, D]; when E.json from 'hardneg embed --images' is beside it, its paths, labels, metric and model are used"),
  helpOption('--labels L.npy', '[N] integer labels (override those of E.json)'),
  helpOption('--paths E.json', "an E.json of 'hardneg embed' or a JSON array of N paths (default: E.json beside E.npy, if any)"),
  helpOption('--out INDEX_DIR', 'the index folder to create (must not exist) or an object-store URI'),
  helpOption('--metric M', "l2 (Euclidean) or cosine (default: the run's metric, cosine, for a run or E.json; l2 otherwise)"),
  helpOption(
    '--kind K',
    `auto (default: exact up to ${AUTO_EXACT_MAX_ROWS.toLocaleString('en')} rows, ivf-pq above), exact (brute force), ivf-pq or ivf-hnsw-sq (ANN with exact re-ranking)`,
  ),
  helpOption('--weights W', 'final (model.safetensors, default) or best (best.safetensors) of --run'),
  helpOption('--json', 'print one JSON summary line'),
  helpOption('--quiet', 'no progress bar'),
].join('\n')}`;

const OPTIONS = {
  run: { type: 'string' },
  images: { type: 'string' },
  embeddings: { type: 'string' },
  labels: { type: 'string' },
  paths: { type: 'string' },
  out: { type: 'string' },
  metric: { type: 'string' },
  kind: { type: 'string', default: 'auto' },
  weights: { type: 'string', default: 'final' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
} as const;

interface Input {
  vectors: Float32Array;
  dim: number;
  labels: (string | null)[] | null;
  paths: (string | null)[] | null;
  metric: SearchMetric | null;
  model: IndexModelInfo | null;
  imagesRoot: string | null;
}

function readJson(flag: string, path: string): unknown {
  if (!existsSync(path) || statSync(path).isDirectory()) throw new UserError(`--${flag} ${path}: file not found`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    throw new UserError(`--${flag} ${path}: not valid JSON`);
  }
}

const isSidecar = (x: unknown): x is EmbeddingsSidecar => typeof x === 'object' && x !== null && (x as { format?: unknown }).format === EMBEDDINGS_FORMAT;

/** --embeddings with its labels and paths, all checked before anything is written. */
function readEmbeddings(v: { embeddings: string; labels?: string; paths?: string }): Input {
  const t = readNpyFlag('embeddings', v.embeddings);
  if ((t.dtype !== 'F32' && t.dtype !== 'F64') || t.shape.length !== 2 || (t.shape[0] as number) < 1)
    throw new UserError(`--embeddings ${v.embeddings}: expected float32 [N, D] with N ≥ 1, got ${t.dtype} [${t.shape.join(', ')}]`);
  const [n, dim] = t.shape as [number, number];
  const input: Input = {
    vectors: Float32Array.from(t.data as Float32Array | Float64Array),
    dim,
    labels: null,
    paths: null,
    metric: null,
    model: null,
    imagesRoot: null,
  };
  const auto = v.paths === undefined && existsSync(sidecarPath(v.embeddings)) ? sidecarPath(v.embeddings) : undefined;
  const pathsFile = v.paths ?? auto;
  if (pathsFile !== undefined) {
    const j = readJson('paths', pathsFile);
    if (isSidecar(j)) {
      if (!Array.isArray(j.paths) || j.paths.length !== n) throw new UserError(`--paths ${pathsFile}: names ${j.paths?.length} rows, the embeddings have ${n}`);
      input.paths = j.paths;
      input.labels = Array.isArray(j.labels) && j.labels.length === n ? j.labels : j.paths.map(labelOf);
      input.metric = j.metric;
      input.model = { model: j.model, preprocessing: j.preprocessing };
      input.imagesRoot = resolve(j.root);
    } else if (Array.isArray(j) && j.every((p) => typeof p === 'string' || p === null)) {
      if (j.length !== n) throw new UserError(`--paths ${pathsFile}: ${j.length} paths for ${n} rows`);
      input.paths = j as (string | null)[];
    } else if (v.paths !== undefined) {
      throw new UserError(`--paths ${pathsFile}: expected an E.json of 'hardneg embed' or a JSON array of paths`);
    }
  }
  if (v.labels !== undefined) {
    const l = readNpyFlag('labels', v.labels);
    if (l.shape.length !== 1 || l.shape[0] !== n || !['I64', 'I32', 'U8', 'F32', 'F64'].includes(l.dtype))
      throw new UserError(`--labels ${v.labels}: expected [${n}] integers, got ${l.dtype} [${l.shape.join(', ')}]`);
    input.labels = Array.from(l.data as ArrayLike<number | bigint>, (x) => String(x));
  }
  return input;
}

async function build(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UserError(`unexpected argument '${positionals[0]}'`);
  const fromRun = v.run !== undefined || v.images !== undefined;
  if (fromRun === (v.embeddings !== undefined)) throw new UserError('needs either --run RUN_DIR --images DIR or --embeddings E.npy');
  if (fromRun && (v.run === undefined || v.images === undefined)) throw new UserError('--run and --images go together');
  if (fromRun && (v.labels !== undefined || v.paths !== undefined)) throw new UserError('--labels and --paths go with --embeddings, not --run/--images');
  if (v.out === undefined) throw new UserError('--out INDEX_DIR is required');
  if (v.metric !== undefined && v.metric !== 'l2' && v.metric !== 'cosine') throw new UserError(`--metric ${v.metric}: expected l2 or cosine`);
  if (!INDEX_KINDS.includes(v.kind as IndexKindChoice)) throw new UserError(`--kind ${v.kind}: expected ${INDEX_KINDS.join(', ')}`);
  if (v.weights !== 'final' && v.weights !== 'best') throw new UserError(`--weights ${v.weights}: expected final or best`);
  // LanceDB is loaded from here on: a platform without it fails in one line before any work.
  const { buildIndex, checkIndexOut } = await import('../../search/index_store.ts');
  const { loadLanceDB } = await import('../../search/lancedb.ts');
  await loadLanceDB();
  let input: Input;
  if (fromRun) {
    const runDir = v.run as string;
    const images = v.images as string;
    if (!isRunDir(runDir)) throw new UserError(`--run ${runDir}: not a run directory (expected config.json and the files of hardneg train)`);
    if (!existsSync(images) || !statSync(images).isDirectory()) throw new UserError(`--images ${images}: folder not found`);
    const listing = listImages(images);
    if (listing.paths.length === 0) throw new UserError(`--images ${images}: no image files (extensions ${IMAGE_EXTENSIONS.join(', ')})`);
    await checkIndexOut(v.out);
    const { loadEmbedder } = await import('../../inference/embedder.ts');
    const embedder = await loadEmbedder(runDir, { weights: v.weights });
    try {
      const bar = new ProgressBar('embed', v.quiet || v.json);
      const t0 = Date.now();
      const files = listing.paths.map((p) => resolve(images, p));
      const vectors = await embedder.embedImageFiles(files, {
        onProgress: (done, total) => bar.update(done, total, `${((done / Math.max(Date.now() - t0, 1)) * 1000).toFixed(1)} images/s`),
      });
      bar.done();
      input = {
        vectors,
        dim: embedder.dim,
        labels: listing.paths.map(labelOf),
        paths: listing.paths,
        metric: embedder.metric,
        model: { model: embedder.model, preprocessing: embedder.preprocessing },
        imagesRoot: resolve(images),
      };
    } finally {
      embedder.dispose();
    }
  } else {
    input = readEmbeddings({ embeddings: v.embeddings as string, labels: v.labels, paths: v.paths });
    await checkIndexOut(v.out);
  }
  const r = await buildIndex({
    out: v.out,
    vectors: input.vectors,
    dim: input.dim,
    labels: input.labels,
    paths: input.paths,
    metric: (v.metric as SearchMetric | undefined) ?? input.metric ?? 'l2',
    kind: v.kind as IndexKindChoice,
    model: input.model,
    imagesRoot: input.imagesRoot,
  });
  const m = r.manifest;
  if (v.json) console.log(JSON.stringify({ out: r.dir, count: m.count, dim: m.dim, metric: m.metric, kind: m.kind, seconds: r.seconds }));
  else console.log(`wrote an ${m.kind} index of ${m.count} vectors [${m.dim}] (${m.metric}) to ${r.dir} in ${r.seconds.total.toFixed(1)} s`);
  return 0;
}

export const command: Command = {
  summary: 'build a search index of embeddings (index build)',
  help: HELP,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'build') throw new UserError(sub === undefined ? "needs a subcommand: 'index build'" : `unknown subcommand '${sub}'; expected 'build'`);
    return build(rest);
  },
};
