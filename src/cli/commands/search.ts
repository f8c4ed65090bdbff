// `hardneg search`: the nearest neighbours in an index of 'hardneg index build' of query vectors,
// of an image (embedded with the index's model), or of an indexed item.
import { existsSync, statSync } from 'node:fs';
import { parseFlags, readNpyFlag } from '../args.ts';
import type { Command } from '../command.ts';
import { helpOption } from '../format.ts';
import { UserError } from '../../errors.ts';
import { numberFlag } from '../../values.ts';
import type { SearchHit, SearchIndex } from '../../search/types.ts';

const HELP = `usage: hardneg search INDEX_DIR (--vector Q.npy | --image FILE | --id N) [--k 10] [--where SQL] [--json]

The k nearest items of each query, nearest first: Euclidean distance for an l2 index, 1 − cosine
similarity for a cosine index.

${[
  helpOption('INDEX_DIR', "an index of 'hardneg index build' (a folder or an object-store URI)"),
  helpOption('--vector Q.npy', 'float32 [D] or [Q, D] query vectors (one result list per row)'),
  helpOption('--image FILE', "an image, embedded with the index's run (needs an index built from a run, with unchanged weights)"),
  helpOption('--id N', 'the stored vector of item N (the item itself comes back first, at distance 0)'),
  helpOption('--k K', 'neighbours per query (default 10)'),
  helpOption('--where SQL', "a filter over the columns id, label, path, e.g. \"label = 'cat'\" (LanceDB's SQL)"),
  helpOption('--json', 'print {"results": [[{"id", "distance", "label", "path"}, …], …]}, one list per query'),
].join('\n')}`;

const OPTIONS = {
  vector: { type: 'string' },
  image: { type: 'string' },
  id: { type: 'string' },
  k: { type: 'string', default: '10' },
  where: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function readQueries(path: string, dim: number): Float32Array {
  const t = readNpyFlag('vector', path);
  const width = t.shape[t.shape.length - 1];
  if ((t.dtype !== 'F32' && t.dtype !== 'F64') || t.shape.length < 1 || t.shape.length > 2 || width !== dim || t.data.length === 0)
    throw new UserError(`--vector ${path}: expected float32 [${dim}] or [Q, ${dim}] (the index's width), got ${t.dtype} [${t.shape.join(', ')}]`);
  return Float32Array.from(t.data as Float32Array | Float64Array);
}

async function imageQuery(index: SearchIndex, file: string): Promise<Float32Array> {
  const m = index.manifest.model;
  if (!m)
    throw new UserError(`--image: the index ${index.dir} was built from --embeddings without a run, so there is no model to embed an image with; use --vector`);
  const { loadEmbedder } = await import('../../inference/embedder.ts');
  const embedder = await loadEmbedder(m.model.runDir, { weights: m.model.weights });
  try {
    if (embedder.model.sha256 !== m.model.sha256)
      throw new UserError(`--image: the weights of ${m.model.runDir} (${m.model.file}) changed since the index was built; rebuild the index`);
    return await embedder.embedImageFiles([file]);
  } finally {
    embedder.dispose();
  }
}

function table(results: SearchHit[][]): string {
  const lines: string[] = [];
  for (const [q, hits] of results.entries()) {
    if (results.length > 1) lines.push(`query ${q + 1}:`);
    lines.push(`${'rank'.padStart(4)}  ${'id'.padStart(8)}  ${'distance'.padStart(10)}  ${'label'.padEnd(16)}  path`);
    for (const [i, h] of hits.entries())
      lines.push(
        `${String(i + 1).padStart(4)}  ${String(h.id).padStart(8)}  ${h.distance.toFixed(6).padStart(10)}  ${(h.label ?? '-').padEnd(16)}  ${h.path ?? '-'}`,
      );
    if (hits.length === 0) lines.push('  (no matches)');
  }
  return lines.join('\n');
}

export const command: Command = {
  summary: 'nearest neighbours in a search index of vectors, an image or an item',
  help: HELP,
  async run(argv) {
    const { values: v, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
    if (positionals.length !== 1)
      throw new UserError(positionals.length === 0 ? "needs INDEX_DIR (an index of 'hardneg index build')" : `unexpected argument '${positionals[1]}'`);
    const given = [v.vector, v.image, v.id].filter((x) => x !== undefined).length;
    if (given !== 1) throw new UserError('needs exactly one of --vector Q.npy, --image FILE and --id N');
    const k = numberFlag('k', v.k, { integer: true, min: 1 });
    const id = v.id === undefined ? undefined : numberFlag('id', v.id, { integer: true, min: 0 });
    if (v.image !== undefined && (!existsSync(v.image) || statSync(v.image).isDirectory())) throw new UserError(`--image ${v.image}: file not found`);
    const { openIndex } = await import('../../search/index_store.ts');
    const index = await openIndex(positionals[0] as string);
    try {
      let queries: Float32Array;
      if (v.vector !== undefined) queries = readQueries(v.vector, index.manifest.dim);
      else if (v.image !== undefined) queries = await imageQuery(index, v.image);
      else {
        const stored = await index.vector(id as number);
        if (!stored) throw new UserError(`--id ${id}: no such item (the index holds ids 0 to ${index.manifest.count - 1})`);
        queries = stored;
      }
      const results = await index.search(queries, { k, where: v.where });
      if (v.json) console.log(JSON.stringify({ results: results.map((hits) => hits.map(({ id, distance, label, path }) => ({ id, distance, label, path }))) }));
      else console.log(table(results));
      return 0;
    } finally {
      index.close();
    }
  },
};
