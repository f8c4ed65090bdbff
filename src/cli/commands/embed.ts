// `hardneg embed`: a trained run's embeddings of a folder of images or of an already transformed
// NCHW batch (src/inference/embed_job.ts over src/inference/embedder.ts).
import { existsSync, statSync } from 'node:fs';
import { parseFlags, readNpyFlag } from '../args.ts';
import type { Command } from '../command.ts';
import { helpOption } from '../format.ts';
import { ProgressBar } from '../progress.ts';
import { UserError } from '../../errors.ts';
import { sameFile } from '../../io/paths.ts';
import { numberFlag } from '../../values.ts';
import { isRunDir } from '../../train/run_dir.ts';
import { loadEmbedder } from '../../inference/embedder.ts';
import { type EmbedSource, type Shard, listImages, outputFolder, partialDir, runEmbedJob, sidecarPath } from '../../inference/embed_job.ts';
import { IMAGE_EXTENSIONS } from '../../data/image_folder.ts';

const HELP = `usage: hardneg embed RUN_DIR (--images DIR | --input X.npy) --out E.npy [--weights final|best]
                     [--shard i/n] [--batch N] [--json] [--quiet]

The run's embeddings (backbone + head in evaluation mode, the run's evaluation transform), as
float32 [N, D] .npy. Interrupted jobs resume: rows are committed per batch to E.npy.partial/ and a
rerun with the same arguments continues there (other arguments are refused until it is removed).
E.npy (and E.json) are written atomically at the end, replacing earlier files of that name.

${[
  helpOption('RUN_DIR', 'a run directory of hardneg train'),
  helpOption(
    '--images DIR',
    `every image under DIR (extensions ${IMAGE_EXTENSIONS.join(', ')}, any depth, hidden files skipped); rows in the code-unit order of the paths relative to DIR; also writes E.json with the paths, labels (parent folder names) and the model reference`,
  ),
  helpOption('--input X.npy', 'float32 [N, C, H, W] NCHW, already transformed as the run evaluates (what the exported ONNX model takes)'),
  helpOption('--out E.npy', 'the embeddings [N, D]; with --images also E.json next to it'),
  helpOption('--weights W', 'final (model.safetensors, default) or best (best.safetensors, the best Recall@1)'),
  helpOption('--shard i/n', 'embed rows i, i+n, i+2n, … of the sorted list (0 ≤ i < n), for n machines sharing a collection; E.json records which'),
  helpOption('--batch N', 'images per forward pass and per committed chunk (default 32)'),
  helpOption('--backend NAME', "the compute backend (default: the run's)"),
  helpOption('--json', 'print one JSON summary line'),
  helpOption('--quiet', 'no progress bar'),
].join('\n')}`;

const OPTIONS = {
  images: { type: 'string' },
  input: { type: 'string' },
  out: { type: 'string' },
  weights: { type: 'string', default: 'final' },
  shard: { type: 'string' },
  batch: { type: 'string', default: '32' },
  backend: { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
} as const;

export function parseShard(text: string | undefined): Shard | null {
  if (text === undefined) return null;
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) throw new UserError(`--shard ${text}: expected i/n with 0 ≤ i < n, e.g. 0/4`);
  return { index, count };
}

function readInput(path: string, shape: [number, number, number]): { data: Float32Array; n: number } {
  const t = readNpyFlag('input', path);
  const [C, H, W] = shape;
  const want = `float32 [N, ${C}, ${H}, ${W}] (NCHW, the run's evaluation transform)`;
  if (t.dtype !== 'F32' || t.shape.length !== 4 || t.shape[1] !== C || t.shape[2] !== H || t.shape[3] !== W)
    throw new UserError(`--input ${path}: expected ${want}, got ${t.dtype} [${t.shape.join(', ')}]`);
  return { data: t.data as Float32Array, n: t.shape[0] as number };
}

export const command: Command = {
  summary: "a run's embeddings of a folder of images or a transformed batch (resumable)",
  help: HELP,
  async run(argv) {
    const { values: v, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
    if (positionals.length !== 1)
      throw new UserError(positionals.length === 0 ? 'needs RUN_DIR (a run directory of hardneg train)' : `unexpected argument '${positionals[1]}'`);
    const runDir = positionals[0] as string;
    if (!isRunDir(runDir)) throw new UserError(`${runDir}: not a run directory (expected config.json and the files of hardneg train)`);
    if ((v.images === undefined) === (v.input === undefined)) throw new UserError('needs exactly one of --images DIR and --input X.npy');
    if (v.out === undefined) throw new UserError('--out E.npy is required');
    const out = v.out;
    if (v.weights !== 'final' && v.weights !== 'best') throw new UserError(`--weights ${v.weights}: expected final or best`);
    const shard = parseShard(v.shard);
    const batchSize = numberFlag('batch', v.batch, { integer: true, min: 1 });
    // Inputs and outputs are checked before anything is written.
    if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`--out ${out}: is a folder, expected a file name`);
    if (!existsSync(outputFolder(out))) throw new UserError(`--out ${out}: folder ${outputFolder(out)} does not exist`);
    if (v.input !== undefined && existsSync(v.input) && (sameFile(v.input, out) || sameFile(v.input, partialDir(out))))
      throw new UserError(`--out ${out}: that is the --input file; write the embeddings elsewhere`);
    let listing = null;
    if (v.images !== undefined) {
      if (!existsSync(v.images) || !statSync(v.images).isDirectory()) throw new UserError(`--images ${v.images}: folder not found`);
      listing = listImages(v.images);
      if (listing.paths.length === 0) throw new UserError(`--images ${v.images}: no image files (extensions ${IMAGE_EXTENSIONS.join(', ')})`);
      const side = sidecarPath(out);
      if (existsSync(side) && statSync(side).isDirectory()) throw new UserError(`--out ${out}: ${side} is a folder, expected room for the paths file`);
    }
    const embedder = await loadEmbedder(runDir, { weights: v.weights, backend: v.backend });
    try {
      const source: EmbedSource = listing
        ? { kind: 'images', root: v.images as string, listing }
        : { kind: 'tensor', path: v.input as string, ...readInput(v.input as string, embedder.inputShape) };
      const bar = new ProgressBar('embed', v.quiet || v.json);
      const t0 = Date.now();
      const r = await runEmbedJob({
        embedder,
        source,
        out,
        shard,
        batchSize,
        onProgress: (done, total) => bar.update(done, total, `${((done / Math.max(Date.now() - t0, 1)) * 1000).toFixed(1)} rows/s`),
      });
      bar.done();
      const summary = { out: r.out, paths: r.sidecar, rows: r.rows, dim: r.dim, metric: embedder.metric, resumed: r.resumed, shard, model: embedder.model };
      if (v.json) console.log(JSON.stringify(summary));
      else
        console.log(
          `wrote ${r.rows} embeddings [${r.rows}, ${r.dim}] to ${r.out}${r.sidecar ? ` (paths and labels in ${r.sidecar})` : ''}${r.resumed ? `, ${r.resumed} resumed from an interrupted run` : ''}`,
        );
      if (listing && listing.ignored > 0 && !v.json)
        process.stderr.write(`note: ${listing.ignored} file(s) under ${v.images} are not images and were left out\n`);
      return 0;
    } finally {
      embedder.dispose();
    }
  },
};
