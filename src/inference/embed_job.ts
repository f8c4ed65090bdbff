// A resumable embedding job (what `hardneg embed` runs): a folder of images or an already
// transformed NCHW .npy through a run's Embedder into one [N, D] float32 .npy, with, for images,
// a sidecar JSON naming the rows.
//
// Resuming: rows are committed per batch to a side folder next to the output, OUT.partial/:
//   rows.f32    the embeddings so far, raw float32 little-endian, row after row;
//   state.json  the job's key and the rows committed (written atomically after rows.f32 is fsynced).
// A crash between the two leaves extra bytes in rows.f32, cut back to `rows` on resume. The key is
// what decides the output — the model file's hash, the weights, the input (the listed paths, or the
// input file's size and modification time), the shard — so a rerun with other arguments is refused
// rather than mixing rows of two jobs. The final files are written atomically, then the side folder
// is removed.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { writeNpy } from '../io/npy.ts';
import { listImageFiles } from '../data/image_folder.ts';
import { UserError } from '../errors.ts';
import type { Embedder, EmbedderModelRef, EmbedderPreprocessing } from './embedder.ts';

export const EMBEDDINGS_FORMAT = 'hardneg-embeddings/1';
const PARTIAL_FORMAT = 'hardneg-embed-partial/1';

export interface Shard {
  /** 0..count−1 */
  index: number;
  count: number;
}

/** The rows of a folder of images: '/'-separated paths relative to the folder, in code-unit order. */
export interface ImageListing {
  root: string;
  paths: string[];
  /** Files that are not images (by extension), left out. */
  ignored: number;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Every image under `root` (the extensions of image folders, src/data/image_folder.ts), sorted. */
export function listImages(root: string): ImageListing {
  let ignored = 0;
  const files = listImageFiles(root, () => ignored++);
  const paths = files.map((f) => relative(root, f).split(sep).join('/')).sort(byCodeUnit);
  return { root, paths, ignored };
}

/** Every `count`-th item starting at `index`. */
export function shardRows<T>(items: readonly T[], shard: Shard | null): { items: T[]; rows: number[] } {
  const rows: number[] = [];
  for (let i = shard ? shard.index : 0; i < items.length; i += shard ? shard.count : 1) rows.push(i);
  return { items: rows.map((i) => items[i] as T), rows };
}

/** A row's label: its parent folder's name (null for files directly in the folder). */
export function labelOf(path: string): string | null {
  const parts = path.split('/');
  return parts.length > 1 ? (parts[parts.length - 2] as string) : null;
}

/** The sidecar JSON of an embeddings .npy ('E.npy' → 'E.json'). */
export function sidecarPath(out: string): string {
  return out.toLowerCase().endsWith('.npy') ? `${out.slice(0, -4)}.json` : `${out}.json`;
}

export function partialDir(out: string): string {
  return `${out}.partial`;
}

export interface EmbeddingsSidecar {
  format: typeof EMBEDDINGS_FORMAT;
  model: EmbedderModelRef;
  metric: 'l2' | 'cosine';
  dim: number;
  rows: number;
  preprocessing: EmbedderPreprocessing;
  /** The images folder as given on the command line. */
  root: string;
  /** Row i's image, relative to root ('/'-separated). */
  paths: string[];
  /** Row i's parent folder name (null for files directly in root). */
  labels: (string | null)[];
  /** The images of the whole sorted listing this file holds: every count-th from index. */
  shard: (Shard & { of: number; rows: number[] }) | null;
  created: string;
}

export type EmbedSource =
  | { kind: 'images'; root: string; listing: ImageListing }
  | {
      kind: 'tensor';
      path: string;
      /** [N, C, H, W] float32 NCHW. */
      data: Float32Array;
      n: number;
    };

export interface EmbedJobOptions {
  embedder: Embedder;
  source: EmbedSource;
  out: string;
  shard: Shard | null;
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EmbedJobResult {
  out: string;
  sidecar: string | null;
  rows: number;
  dim: number;
  /** Rows taken from an interrupted earlier run. */
  resumed: number;
}

function jobKey(o: EmbedJobOptions): string {
  const input =
    o.source.kind === 'images'
      ? { root: resolve(o.source.root), paths: createHash('sha256').update(o.source.listing.paths.join('\n')).digest('hex') }
      : (() => {
          const st = statSync(o.source.path);
          return { file: resolve(o.source.path), bytes: st.size, mtimeMs: st.mtimeMs };
        })();
  return createHash('sha256')
    .update(JSON.stringify({ model: o.embedder.model.sha256, weights: o.embedder.model.weights, input, shard: o.shard, dim: o.embedder.dim }))
    .digest('hex');
}

interface PartialState {
  format: string;
  key: string;
  rows: number;
}

/** Rows already committed by an earlier run with the same key; a UserError for another job's side folder. */
function resumeRows(dir: string, key: string, out: string, dim: number): number {
  const statePath = join(dir, 'state.json');
  if (!existsSync(dir)) return 0;
  let state: PartialState | null;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as PartialState;
  } catch {
    state = null;
  }
  if (!state || state.format !== PARTIAL_FORMAT || !Number.isInteger(state.rows)) {
    // A folder without a state was never committed to: nothing to keep.
    if (!existsSync(statePath)) return 0;
    throw new UserError(`--out ${out}: ${dir} is not a partial embedding hardneg can read; remove it to start over`);
  }
  if (state.key !== key)
    throw new UserError(
      `--out ${out}: ${dir} holds a partial embedding made with other arguments (model, weights, input or --shard); rerun with the same arguments to resume, or remove it to start over`,
    );
  const rowsFile = join(dir, 'rows.f32');
  const bytes = existsSync(rowsFile) ? statSync(rowsFile).size : 0;
  const want = state.rows * dim * 4;
  if (bytes < want) throw new UserError(`--out ${out}: ${rowsFile} is shorter than its state says (${bytes} < ${want} bytes); remove ${dir} to start over`);
  // Bytes appended after the last committed state (a crash mid-batch) are dropped.
  if (bytes > want) truncateSync(rowsFile, want);
  return state.rows;
}

/** Runs the job; see the header for resuming and atomicity. */
export async function runEmbedJob(o: EmbedJobOptions): Promise<EmbedJobResult> {
  const e = o.embedder;
  const D = e.dim;
  const source = o.source;
  const count = source.kind === 'images' ? source.listing.paths.length : source.n;
  const { rows } = shardRows(
    Array.from({ length: count }, (_, i) => i),
    o.shard,
  );
  const total = rows.length;
  const dir = partialDir(o.out);
  const key = jobKey(o);
  const done0 = resumeRows(dir, key, o.out, D);
  if (done0 > total) throw new UserError(`--out ${o.out}: ${dir} holds ${done0} rows, more than this job's ${total}; remove it to start over`);
  mkdirSync(dir, { recursive: true });
  const rowsFile = join(dir, 'rows.f32');
  const commit = (rowsDone: number): void =>
    writeFileAtomic(join(dir, 'state.json'), `${JSON.stringify({ format: PARTIAL_FORMAT, key, rows: rowsDone } satisfies PartialState)}\n`);
  if (done0 === 0) {
    writeFileAtomic(rowsFile, new Uint8Array(0));
    commit(0);
  }
  const [C, H, W] = e.inputShape;
  const perImage = C * H * W;
  const fd = openSync(rowsFile, 'a');
  try {
    o.onProgress?.(done0, total);
    for (let start = done0; start < total; start += o.batchSize) {
      const batch = rows.slice(start, start + o.batchSize);
      let z: Float32Array;
      if (source.kind === 'images') {
        z = await e.embedImageFiles(
          batch.map((r) => join(source.root, source.listing.paths[r] as string)),
          { batchSize: o.batchSize },
        );
      } else {
        const x = new Float32Array(batch.length * perImage);
        const src = source.data;
        batch.forEach((r, i) => x.set(src.subarray(r * perImage, (r + 1) * perImage), i * perImage));
        z = await e.embedTensor(x, batch.length);
      }
      const bytes = new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
      commit(start + batch.length);
      o.onProgress?.(start + batch.length, total);
    }
  } finally {
    closeSync(fd);
  }
  const raw = readFileSync(rowsFile);
  if (raw.byteLength !== total * D * 4) throw new Error(`${rowsFile}: ${raw.byteLength} bytes, expected ${total * D * 4}`);
  const data = new Float32Array(total * D);
  new Uint8Array(data.buffer).set(raw);
  let sidecar: string | null = null;
  if (source.kind === 'images') {
    const paths = rows.map((r) => source.listing.paths[r] as string);
    const meta: EmbeddingsSidecar = {
      format: EMBEDDINGS_FORMAT,
      model: e.model,
      metric: e.metric,
      dim: D,
      rows: total,
      preprocessing: e.preprocessing,
      root: source.root,
      paths,
      labels: paths.map(labelOf),
      shard: o.shard ? { ...o.shard, of: count, rows } : null,
      created: new Date().toISOString(),
    };
    sidecar = sidecarPath(o.out);
    // The sidecar first: an .npy next to a stale sidecar would name its rows wrongly.
    writeFileAtomic(sidecar, `${JSON.stringify(meta, null, 1)}\n`);
  }
  writeNpy(o.out, { dtype: 'F32', shape: [total, D], data });
  rmSync(dir, { recursive: true, force: true });
  return { out: o.out, sidecar, rows: total, dim: D, resumed: done0 };
}

/** The folder that must exist for `out` to be written. */
export function outputFolder(out: string): string {
  return dirname(resolve(out));
}
