// A search index on disk (or in an object store): a LanceDB table `vectors` with the columns
//   id      int32, the row number in the input order (also the row's offset in the table),
//   label   utf8, nullable,
//   path    utf8, nullable,
//   vector  fixed_size_list<float32>[dim],
// and the manifest (IndexManifest) beside it.
//
// Local folders: the table and index.json are built in a hidden sibling folder,
// `.OUT.building-<pid>-<time>`, which is renamed to OUT only when everything, index.json last, is
// written; a failure or Ctrl-C removes the temporary folder and a hard kill leaves only that hidden
// folder, never an OUT that looks complete. Object stores (s3://, gs://, az://, any scheme://) have
// no rename, so there the manifest is a second one-row table `manifest` (JSON text), created as the
// build's last write: openIndex refuses a location without it as an incomplete build.
//
// Exact or ANN: below AUTO_EXACT_MAX_ROWS rows a brute-force scan is cheap enough for an
// interactive service (about 1 µs per row and query on one core, measured with LanceDB 0.31 at 128
// dimensions); above it 'auto' builds IVF-PQ and searches it with nprobes and a refine step that
// re-ranks refineFactor × k candidates by their exact distances, which kept recall@10 vs exact at
// 0.99 on 100,000 × 128 clustered vectors (bench/search.ts).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Connection, Table, VectorQuery } from '@lancedb/lancedb';
import type { RecordBatch } from 'apache-arrow';
import { firstLine, UserError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { VERSION } from '../version.ts';
import { type Arrow, type LanceModules, loadLanceDB } from './lancedb.ts';
import { RESIDENT_MAX_BYTES, ResidentVectors } from './resident.ts';
import type { AnnSettings, IndexManifest, IndexModelInfo, SearchEngine, SearchHit, SearchIndex, SearchItem, SearchMetric, SearchOptions } from './types.ts';

export const INDEX_FORMAT = 'hardneg-index/1';
export const MANIFEST_FILE = 'index.json';
const VECTORS_TABLE = 'vectors';
const MANIFEST_TABLE = 'manifest';

/** 'auto' builds an exact index up to this many rows, IVF-PQ above. */
export const AUTO_EXACT_MAX_ROWS = 20_000;
/** ANN indexes train k-means and quantisers: fewer rows than this give nothing to train on. */
export const ANN_MIN_ROWS = 256;

export type IndexKind = IndexManifest['kind'];
export type IndexKindChoice = IndexKind | 'auto';
export const INDEX_KINDS: readonly IndexKindChoice[] = ['auto', 'exact', 'ivf-pq', 'ivf-hnsw-sq'];

/** 's3://bucket/x', 'gs://…', 'az://…', 'memory://…': handed to LanceDB as is. */
export function isUri(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(location);
}

export interface BuildIndexOptions {
  /** A local folder (must not exist) or an object-store URI (must hold no index). */
  out: string;
  /** Row-major [count × dim]. */
  vectors: Float32Array;
  dim: number;
  labels?: readonly (string | null)[] | null;
  paths?: readonly (string | null)[] | null;
  /** Default 'l2' (the CLI passes the run's metric when the vectors come from a run). */
  metric?: SearchMetric;
  kind?: IndexKindChoice;
  model?: IndexModelInfo | null;
  imagesRoot?: string | null;
  /** Object-store options for LanceDB (credentials, region, …); LanceDB also reads the usual environment variables. */
  storageOptions?: Record<string, string>;
  onStage?: (stage: 'table' | 'ann' | 'commit') => void;
  /** Called after everything is written, just before the build is made visible (tests interrupt builds here). */
  beforeCommit?: () => void | Promise<void>;
}

export interface BuildIndexResult {
  dir: string;
  manifest: IndexManifest;
  seconds: { table: number; ann: number; total: number };
}

/** The kind 'auto' resolves to for this many rows. */
export function resolveKind(kind: IndexKindChoice, rows: number): IndexKind {
  return kind === 'auto' ? (rows <= AUTO_EXACT_MAX_ROWS ? 'exact' : 'ivf-pq') : kind;
}

/** Index parameters for `rows` vectors of width `dim`. */
export function annSettings(kind: Exclude<IndexKind, 'exact'>, rows: number, dim: number): AnnSettings {
  if (kind === 'ivf-hnsw-sq') {
    // One HNSW graph per IVF partition; one partition up to a million rows keeps recall high
    // (measured 1.0 at ef 64 on 100k × 128) without probing several graphs.
    const numPartitions = Math.max(1, Math.round(rows / 1_000_000));
    return { numPartitions, ef: 96, refineFactor: 5 };
  }
  // √rows partitions (LanceDB's own default), but at least ~64 rows per partition for k-means.
  const numPartitions = Math.max(1, Math.min(Math.round(Math.sqrt(rows)), Math.floor(rows / 64)));
  // Sub-vectors of 8 dimensions where the width allows (LanceDB's advice), else 4, 2, 1.
  const sub = [8, 4, 2, 1].find((s) => dim % s === 0 && dim / s >= 1) as number;
  // An eighth of the partitions (≥ 16) plus a refine of 20 × k: recall@10 0.99 on clustered
  // 100k × 128 at 316 partitions (nprobes 40); 20 probes and refine 10 gave 0.94.
  const nprobes = Math.min(numPartitions, Math.max(16, Math.ceil(numPartitions / 8)));
  return { numPartitions, numSubVectors: dim / sub, nprobes, refineFactor: 20 };
}

/** Refuses an output that exists (a local path) or holds tables (a URI); checked before any work. */
export async function checkIndexOut(out: string, storageOptions?: Record<string, string>): Promise<void> {
  if (isUri(out)) {
    const { lancedb } = await loadLanceDB();
    let names: string[];
    try {
      const db = await lancedb.connect(out, { storageOptions });
      names = await db.tableNames();
      db.close();
    } catch (err) {
      throw new UserError(`--out ${out}: cannot open that location (${firstLine(err)})`);
    }
    if (names.length > 0) throw new UserError(`--out ${out}: already holds tables (${names.join(', ')}); choose an empty location`);
    return;
  }
  if (existsSync(out)) throw new UserError(`--out ${out}: already exists; choose a new folder name (an index is never overwritten)`);
  const parent = dirname(resolve(out));
  // A missing parent is made at build time (as train --out does); a file in its place is a mistake.
  for (let p = parent; ; p = dirname(p)) {
    if (existsSync(p)) {
      if (!statSync(p).isDirectory()) throw new UserError(`--out ${out}: ${p} is a file, not a folder`);
      break;
    }
    if (dirname(p) === p) break;
  }
}

function checkInputs(o: BuildIndexOptions): number {
  const { dim, vectors } = o;
  if (!Number.isInteger(dim) || dim < 1) throw new UserError(`index: dim must be a positive integer, got ${dim}`);
  if (vectors.length === 0 || vectors.length % dim !== 0) throw new UserError(`index: ${vectors.length} values are not rows of width ${dim}`);
  const rows = vectors.length / dim;
  if (rows > 2 ** 31 - 1) throw new UserError(`index: ${rows} rows; at most 2³¹ − 1 are supported (int32 ids)`);
  for (let i = 0; i < vectors.length; i++)
    if (!Number.isFinite(vectors[i] as number)) throw new UserError(`index: row ${Math.floor(i / dim)} holds a non-finite value (NaN or ±Infinity)`);
  for (const [name, col] of [
    ['labels', o.labels],
    ['paths', o.paths],
  ] as const)
    if (col && col.length !== rows) throw new UserError(`index: ${col.length} ${name} for ${rows} rows`);
  const kind = resolveKind(o.kind ?? 'auto', rows);
  if (kind !== 'exact' && rows < ANN_MIN_ROWS)
    throw new UserError(`--kind ${kind}: needs at least ${ANN_MIN_ROWS} rows to train on, got ${rows}; use --kind exact`);
  return rows;
}

const BATCH_ROWS = 65_536;

function recordBatches(arrow: Arrow, o: BuildIndexOptions, rows: number): { schema: InstanceType<Arrow['Schema']>; batches: RecordBatch[] } {
  const { Field, FixedSizeList, Float32, Int32, Schema, Struct, Utf8, makeData, vectorFromArray } = arrow;
  const vectorType = new FixedSizeList(o.dim, new Field('item', new Float32(), true));
  const schema = new Schema([
    new Field('id', new Int32(), false),
    new Field('label', new Utf8(), true),
    new Field('path', new Utf8(), true),
    new Field('vector', vectorType, false),
  ]);
  const text = (col: readonly (string | null)[] | null | undefined, start: number, n: number) =>
    vectorFromArray(col ? col.slice(start, start + n) : new Array<null>(n).fill(null), new Utf8()).data[0] as InstanceType<Arrow['Data']>;
  const batches: RecordBatch[] = [];
  for (let start = 0; start < rows; start += BATCH_ROWS) {
    const n = Math.min(BATCH_ROWS, rows - start);
    const id = makeData({ type: new Int32(), length: n, data: Int32Array.from({ length: n }, (_, i) => start + i) });
    const values = makeData({ type: new Float32(), length: n * o.dim, data: o.vectors.subarray(start * o.dim, (start + n) * o.dim) });
    const vector = makeData({ type: vectorType, length: n, nullCount: 0, child: values });
    const data = makeData({
      type: new Struct(schema.fields),
      length: n,
      nullCount: 0,
      children: [id, text(o.labels, start, n), text(o.paths, start, n), vector],
    });
    batches.push(new arrow.RecordBatch(schema, data));
  }
  return { schema, batches };
}

async function writeTables(mods: LanceModules, db: Connection, o: BuildIndexOptions, rows: number, kind: IndexKind, metric: SearchMetric) {
  const t0 = performance.now();
  o.onStage?.('table');
  const { schema, batches } = recordBatches(mods.arrow, o, rows);
  const table = await db.createTable(VECTORS_TABLE, new mods.arrow.Table(schema, batches));
  const tTable = (performance.now() - t0) / 1000;
  let ann: AnnSettings | undefined;
  try {
    if (kind !== 'exact') {
      o.onStage?.('ann');
      ann = annSettings(kind, rows, o.dim);
      const { Index } = mods.lancedb;
      const config =
        kind === 'ivf-pq'
          ? Index.ivfPq({ distanceType: metric, numPartitions: ann.numPartitions, numSubVectors: ann.numSubVectors })
          : Index.hnswSq({ distanceType: metric, numPartitions: ann.numPartitions });
      await table.createIndex('vector', { config });
    }
  } finally {
    table.close();
  }
  return { ann, tTable, tAnn: (performance.now() - t0) / 1000 - tTable };
}

/** Builds an index (see the header for the layout and the atomicity). */
export async function buildIndex(o: BuildIndexOptions): Promise<BuildIndexResult> {
  const rows = checkInputs(o);
  await checkIndexOut(o.out, o.storageOptions);
  const mods = await loadLanceDB();
  const metric = o.metric ?? 'l2';
  const kind = resolveKind(o.kind ?? 'auto', rows);
  const t0 = performance.now();
  const manifestOf = (ann: AnnSettings | undefined): IndexManifest => ({
    format: INDEX_FORMAT,
    dim: o.dim,
    count: rows,
    metric,
    kind,
    imagesRoot: o.imagesRoot ?? null,
    model: o.model ?? null,
    createdAt: new Date().toISOString(),
    software: { hardneg: VERSION, lancedb: mods.version },
    ...(ann ? { ann } : {}),
  });

  if (isUri(o.out)) {
    const db = await mods.lancedb.connect(o.out, { storageOptions: o.storageOptions });
    try {
      const { ann, tTable, tAnn } = await writeTables(mods, db, o, rows, kind, metric);
      const manifest = manifestOf(ann);
      await o.beforeCommit?.();
      o.onStage?.('commit');
      // The last write: its presence is what makes the location an index.
      (await db.createTable(MANIFEST_TABLE, [{ json: JSON.stringify(manifest) }])).close();
      return { dir: o.out, manifest, seconds: { table: tTable, ann: tAnn, total: (performance.now() - t0) / 1000 } };
    } catch (err) {
      await db.dropTable(VECTORS_TABLE).catch(() => undefined);
      throw err;
    } finally {
      db.close();
    }
  }

  const out = resolve(o.out);
  const tmp = join(dirname(out), `.${basename(out)}.building-${process.pid}-${Date.now()}`);
  // Ctrl-C ends the CLI with process.exit (src/cli/main.ts), which skips `finally`; 'exit' still runs.
  const cleanup = (): void => rmSync(tmp, { recursive: true, force: true });
  process.on('exit', cleanup);
  try {
    mkdirSync(dirname(tmp), { recursive: true });
    mkdirSync(tmp);
    const db = await mods.lancedb.connect(tmp);
    let written;
    try {
      written = await writeTables(mods, db, o, rows, kind, metric);
    } finally {
      db.close();
    }
    const manifest = manifestOf(written.ann);
    writeFileAtomic(join(tmp, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await o.beforeCommit?.();
    o.onStage?.('commit');
    // rename() would silently replace an empty folder made meanwhile; the refusal must hold.
    if (existsSync(out)) throw new UserError(`--out ${o.out}: was created by someone else during the build; the index was not written`);
    renameSync(tmp, out);
    return { dir: out, manifest, seconds: { table: written.tTable, ann: written.tAnn, total: (performance.now() - t0) / 1000 } };
  } finally {
    cleanup();
    process.off('exit', cleanup);
  }
}

function parseManifest(text: string, where: string): IndexManifest {
  let m: Partial<IndexManifest>;
  try {
    m = JSON.parse(text) as Partial<IndexManifest>;
  } catch {
    throw new UserError(`${where}: the index manifest is not valid JSON`);
  }
  if (m.format !== INDEX_FORMAT) throw new UserError(`${where}: not a hardneg index (format ${JSON.stringify(m.format)}, expected ${INDEX_FORMAT})`);
  if (!Number.isInteger(m.dim) || !Number.isInteger(m.count) || (m.metric !== 'l2' && m.metric !== 'cosine'))
    throw new UserError(`${where}: the index manifest lacks dim, count or metric`);
  return m as IndexManifest;
}

export interface OpenIndexOptions {
  storageOptions?: Record<string, string>;
  /**
   * Who answers unfiltered searches (filtered ones always go to LanceDB):
   * 'lancedb' (default) queries the table as built; 'memory' holds the vectors in memory and
   * answers with an exact batched scan (src/search/resident.ts); 'auto' is 'memory' for a local
   * index of at most RESIDENT_MAX_BYTES of vectors, else 'lancedb'. A long-lived service wants
   * 'auto'; a one-shot query is quicker without loading every vector first.
   */
  engine?: SearchEngine;
}

/** All rows of the table, placed by id (the row offset). */
async function loadResident(table: Table, m: IndexManifest, where: string): Promise<ResidentVectors> {
  const vectors = new Float32Array(m.count * m.dim);
  const labels = new Array<string | null>(m.count).fill(null);
  const paths = new Array<string | null>(m.count).fill(null);
  const t = await table.query().select(['id', 'vector', 'label', 'path']).toArrow();
  const ids = t.getChild('id') as Column;
  const vec = t.getChild('vector') as Column;
  const lab = t.getChild('label') as Column;
  const pat = t.getChild('path') as Column;
  if (t.numRows !== m.count) throw new UserError(`${where}: the table holds ${t.numRows} rows, its index.json ${m.count}; rebuild the index`);
  for (let i = 0; i < t.numRows; i++) {
    const id = Number(ids.get(i));
    if (!Number.isInteger(id) || id < 0 || id >= m.count)
      throw new UserError(`${where}: row ${i} has id ${id}, outside 0 to ${m.count - 1}; rebuild the index`);
    const v = vec.get(i) as { toArray(): ArrayLike<number> } | null;
    if (v) vectors.set(v.toArray(), id * m.dim);
    labels[id] = (lab.get(i) as string | null) ?? null;
    paths[id] = (pat.get(i) as string | null) ?? null;
  }
  return new ResidentVectors(vectors, m.dim, m.metric, labels, paths);
}

/** Opens an index built by buildIndex: a local folder or an object-store URI. */
export async function openIndex(dirOrUri: string, opts: OpenIndexOptions = {}): Promise<SearchIndex> {
  const uri = isUri(dirOrUri);
  let manifest: IndexManifest | null = null;
  if (!uri) {
    if (!existsSync(dirOrUri) || !statSync(dirOrUri).isDirectory()) throw new UserError(`${dirOrUri}: index folder not found`);
    const file = join(dirOrUri, MANIFEST_FILE);
    if (!existsSync(file)) throw new UserError(`${dirOrUri}: not a hardneg index (no ${MANIFEST_FILE}; an interrupted build leaves none)`);
    manifest = parseManifest(readFileSync(file, 'utf8'), dirOrUri);
  }
  const { lancedb } = await loadLanceDB();
  let db: Connection;
  try {
    db = await lancedb.connect(uri ? dirOrUri : resolve(dirOrUri), { storageOptions: opts.storageOptions });
  } catch (err) {
    throw new UserError(`${dirOrUri}: cannot open the index (${firstLine(err)})`);
  }
  try {
    const names = await db.tableNames();
    if (uri) {
      if (!names.includes(MANIFEST_TABLE)) throw new UserError(`${dirOrUri}: not a complete hardneg index (no manifest table: the build did not finish)`);
      const mt = await db.openTable(MANIFEST_TABLE);
      const row = (await mt.query().limit(1).toArray()) as { json?: unknown }[];
      mt.close();
      manifest = parseManifest(typeof row[0]?.json === 'string' ? row[0].json : '', dirOrUri);
    }
    if (!names.includes(VECTORS_TABLE)) throw new UserError(`${dirOrUri}: the index has no '${VECTORS_TABLE}' table`);
    const table = await db.openTable(VECTORS_TABLE);
    const m = manifest as IndexManifest;
    const engine = opts.engine ?? 'lancedb';
    const inMemory = engine === 'memory' || (engine === 'auto' && !uri && m.count * m.dim * 4 <= RESIDENT_MAX_BYTES);
    const resident = inMemory ? await loadResident(table, m, dirOrUri) : null;
    return new LanceSearchIndex(dirOrUri, m, db, table, resident);
  } catch (err) {
    db.close();
    throw err;
  }
}

const HIT_COLUMNS = ['id', 'label', 'path', '_distance'];
/** Query rows searched at once by one search() call with several rows. */
const QUERY_CONCURRENCY = 4;
/** Filters already checked, so a service's repeated filter costs one check only. */
const MAX_CHECKED_FILTERS = 256;

/** LanceDB's errors carry Rust source locations and a 'Caused by' chain: the first clause is the message. */
function lanceMessage(err: unknown): string {
  return firstLine(err)
    .replace(/\s+Caused by:.*$/, '')
    .replace(/, \/\S+\.rs:\d+:\d+/g, '')
    .slice(0, 240);
}

interface Column {
  get(i: number): unknown;
}

class LanceSearchIndex implements SearchIndex {
  private readonly checkedFilters = new Set<string>();
  private closed = false;

  constructor(
    readonly dir: string,
    readonly manifest: IndexManifest,
    private readonly db: Connection,
    private readonly table: Table,
    private readonly resident: ResidentVectors | null,
  ) {}

  get engine(): Exclude<SearchEngine, 'auto'> {
    return this.resident ? 'memory' : 'lancedb';
  }

  async search(queries: Float32Array, opts: SearchOptions): Promise<SearchHit[][]> {
    this.live();
    const { dim } = this.manifest;
    const { k, where } = opts;
    if (!Number.isInteger(k) || k < 1) throw new UserError(`k must be a positive integer, got ${k}`);
    if (queries.length === 0 || queries.length % dim !== 0)
      throw new UserError(`query width: the index holds ${dim}-dimensional vectors, got ${queries.length} values (not rows of ${dim})`);
    for (let i = 0; i < queries.length; i++)
      if (!Number.isFinite(queries[i] as number)) throw new UserError(`query row ${Math.floor(i / dim)} holds a non-finite value`);
    if (where !== undefined) await this.checkFilter(where);
    const n = queries.length / dim;
    const out = new Array<SearchHit[]>(n);
    let next = 0;
    const { resident } = this;
    if (resident && where === undefined) return Promise.all(Array.from({ length: n }, (_, q) => resident.search(queries.subarray(q * dim, (q + 1) * dim), k)));
    const worker = async (): Promise<void> => {
      for (let q; (q = next++) < n;) out[q] = await this.searchOne(queries.subarray(q * dim, (q + 1) * dim), k, where);
    };
    await Promise.all(Array.from({ length: Math.min(n, QUERY_CONCURRENCY) }, worker));
    return out;
  }

  private async searchOne(q: Float32Array, k: number, where: string | undefined): Promise<SearchHit[]> {
    const { metric, ann } = this.manifest;
    let query: VectorQuery = this.table.vectorSearch(q).distanceType(metric).limit(k).select(HIT_COLUMNS);
    if (ann) {
      if (ann.nprobes !== undefined) query = query.nprobes(ann.nprobes);
      if (ann.ef !== undefined) query = query.ef(Math.max(ann.ef, k));
      query = query.refineFactor(ann.refineFactor);
    }
    if (where !== undefined) query = query.where(where);
    let result;
    try {
      result = await query.toArrow();
    } catch (err) {
      if (where !== undefined) throw new UserError(`--where ${JSON.stringify(where)}: the search failed (${lanceMessage(err)})`);
      throw err;
    }
    const ids = result.getChild('id') as Column;
    const dist = result.getChild('_distance') as Column;
    const labels = result.getChild('label') as Column;
    const paths = result.getChild('path') as Column;
    const hits: SearchHit[] = [];
    for (let i = 0; i < result.numRows; i++) {
      const d = Number(dist.get(i));
      hits.push({
        id: Number(ids.get(i)),
        // LanceDB's 'l2' is the squared distance; rounding can make a self-match's squared or
        // cosine distance slightly negative (−1e-7 seen).
        distance: metric === 'l2' ? Math.sqrt(Math.max(d, 0)) : Math.max(d, 0),
        label: (labels.get(i) as string | null) ?? null,
        path: (paths.get(i) as string | null) ?? null,
      });
    }
    // Nearest first, ties by id, so equal distances come back in one order every time.
    return hits.sort((a, b) => a.distance - b.distance || a.id - b.id);
  }

  /** A bad filter becomes one line naming it, instead of a DataFusion error from inside a search. */
  private async checkFilter(where: string): Promise<void> {
    if (this.checkedFilters.has(where)) return;
    try {
      await this.table.query().where(where).select(['id']).limit(1).toArrow();
    } catch (err) {
      throw new UserError(`--where ${JSON.stringify(where)}: not a valid filter over id, label, path (${lanceMessage(err)})`);
    }
    if (this.checkedFilters.size >= MAX_CHECKED_FILTERS) this.checkedFilters.clear();
    this.checkedFilters.add(where);
  }

  private inRange(id: number): boolean {
    this.live();
    return Number.isInteger(id) && id >= 0 && id < this.manifest.count;
  }

  private async row(id: number, columns: string[]): Promise<Record<string, unknown> | null> {
    if (!this.inRange(id)) return null;
    // ids are row offsets (the table is written once, in input order, and never changed).
    const t = await this.table.takeOffsets([id]).select(columns).toArrow();
    if (t.numRows !== 1 || Number((t.getChild('id') as Column).get(0)) !== id) return null;
    const row: Record<string, unknown> = {};
    for (const c of columns) row[c] = (t.getChild(c) as Column).get(0);
    return row;
  }

  async item(id: number): Promise<SearchItem | null> {
    if (this.resident && this.inRange(id)) {
      const { label, path } = this.resident.item(id);
      return { id, label, path };
    }
    const r = await this.row(id, ['id', 'label', 'path']);
    return r && { id, label: (r.label as string | null) ?? null, path: (r.path as string | null) ?? null };
  }

  async vector(id: number): Promise<Float32Array | null> {
    if (this.resident && this.inRange(id)) return this.resident.item(id).vector;
    const r = await this.row(id, ['id', 'vector']);
    if (!r) return null;
    const v = r.vector as { toArray(): ArrayLike<number> } | null;
    return v ? Float32Array.from(v.toArray()) : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.table.close();
    this.db.close();
  }

  private live(): void {
    if (this.closed) throw new Error('search index: used after close()');
  }
}
