// Embedding matrices and class labels as the metrics take them.

/** Row-major [rows, dim] embeddings. */
export interface Embeddings {
  rows: number;
  dim: number;
  data: Float32Array | Float64Array;
}

export function embeddings(data: ArrayLike<number>, rows: number, dim: number): Embeddings {
  if (data.length !== rows * dim) throw new Error(`embeddings: ${data.length} values do not fill [${rows}, ${dim}]`);
  return { rows, dim, data: data instanceof Float32Array || data instanceof Float64Array ? data : Float64Array.from(data) };
}

/**
 * Rows scaled to unit length in float64, x / max(‖x‖, 1e-12) as F.normalize, so that inner
 * products are cosine similarities. The official code normalises a second time with
 * x / √(Σx² + 1e-12); on unit rows that changes nothing at float32 precision. Float64 keeps the
 * neighbour order of near ties (1e-9 apart) the same as an exact computation's.
 */
export function normalizeRows(x: Embeddings): Embeddings {
  const { rows, dim, data } = x;
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += (data[o + d] as number) ** 2;
    const scale = 1 / Math.max(Math.sqrt(sq), 1e-12);
    for (let d = 0; d < dim; d++) out[o + d] = (data[o + d] as number) * scale;
  }
  return { rows, dim, data: out };
}

/** Labels as dense class ids 0..classCount-1 (in order of first appearance) with class sizes. */
export interface ClassIds {
  ids: Int32Array;
  classCount: number;
  sizes: Int32Array;
  /** The original label of each class id. */
  labels: number[];
}

export function classIds(labels: ArrayLike<number>, known: Map<number, number> = new Map()): ClassIds {
  const ids = new Int32Array(labels.length);
  const originals = [...known.keys()];
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    let id = known.get(label);
    if (id === undefined) {
      id = known.size;
      known.set(label, id);
      originals.push(label);
    }
    ids[i] = id;
  }
  const sizes = new Int32Array(known.size);
  for (const id of ids) sizes[id] = (sizes[id] as number) + 1;
  return { ids, classCount: known.size, sizes, labels: originals };
}

/** Query and gallery labels coded with one shared id per label. */
export function jointClassIds(queryLabels: ArrayLike<number>, galleryLabels: ArrayLike<number>): { query: ClassIds; gallery: ClassIds } {
  const known = new Map<number, number>();
  const gallery = classIds(galleryLabels, known);
  const query = classIds(queryLabels, known);
  // Gallery sizes must cover labels seen only among the queries (count 0).
  const sizes = new Int32Array(known.size);
  sizes.set(gallery.sizes);
  return { query, gallery: { ...gallery, classCount: known.size, sizes, labels: query.labels } };
}
