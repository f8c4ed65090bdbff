// What a search index is to its users (the `search` command, the HTTP service, library code):
// vectors with an integer id, a label and a path where known, searched by distance. The LanceDB
// table behind it lives in index_store.ts.
import type { EmbedderModelRef, EmbedderPreprocessing } from '../inference/embedder.ts';

/** 'l2': Euclidean distance; 'cosine': 1 − cosine similarity. */
export type SearchMetric = 'l2' | 'cosine';

/** One neighbour of a query. */
export interface SearchHit {
  /** The row number of the vector in the index's input order. */
  id: number;
  /** Euclidean distance (metric 'l2') or cosine distance (metric 'cosine'), not squared. */
  distance: number;
  label: string | null;
  /** The image's path relative to the folder the index was built from, or null. */
  path: string | null;
}

/** An indexed item without its vector. */
export interface SearchItem {
  id: number;
  label: string | null;
  path: string | null;
}

/** The model an index was built with, so a query image can be embedded the same way. */
export interface IndexModelInfo {
  model: EmbedderModelRef;
  preprocessing: EmbedderPreprocessing;
}

/** index.json beside the LanceDB table: what the index holds and how it was made. */
export interface IndexManifest {
  format: 'hardneg-index/1';
  dim: number;
  count: number;
  metric: SearchMetric;
  /** 'exact': brute-force scan; 'ivf-pq' / 'ivf-hnsw-sq': an ANN index, refined with exact distances. */
  kind: 'exact' | 'ivf-pq' | 'ivf-hnsw-sq';
  /** Where the image paths are relative to (absolute when built with --images), or null. */
  imagesRoot: string | null;
  /** The run the vectors came from, or null (built from --embeddings). */
  model: IndexModelInfo | null;
  createdAt: string;
  software: { hardneg: string; lancedb: string };
  /** The ANN index's parameters and the query settings chosen for it (absent for 'exact'). */
  ann?: AnnSettings;
}

/** How an ANN index was built and is searched (src/search/index_store.ts chooses them). */
export interface AnnSettings {
  /** IVF partitions (1 for a single HNSW graph). */
  numPartitions: number;
  /** PQ sub-vectors (ivf-pq only). */
  numSubVectors?: number;
  /** Partitions probed per query (ivf-pq). */
  nprobes?: number;
  /** HNSW search breadth per query (ivf-hnsw-sq). */
  ef?: number;
  /** Candidates re-ranked with exact distances: refineFactor × k. */
  refineFactor: number;
}

export interface SearchOptions {
  /** Neighbours per query (a positive integer). */
  k: number;
  /** A SQL filter over the columns id, label, path (LanceDB's dialect), e.g. "label = 'cat'". */
  where?: string;
}

/** Who answers unfiltered searches: see OpenIndexOptions.engine in index_store.ts. */
export type SearchEngine = 'auto' | 'memory' | 'lancedb';

export interface SearchIndex {
  readonly dir: string;
  readonly manifest: IndexManifest;
  /** Who answers unfiltered searches once opened ('memory': exact scan of vectors held in memory). */
  readonly engine: Exclude<SearchEngine, 'auto'>;
  /** queries: row-major [q × dim] → one list per query row, nearest first. */
  search(queries: Float32Array, opts: SearchOptions): Promise<SearchHit[][]>;
  /** The item with this id, or null when there is none. */
  item(id: number): Promise<SearchItem | null>;
  /** The stored vector of an item, or null. */
  vector(id: number): Promise<Float32Array | null>;
  close(): void;
}
