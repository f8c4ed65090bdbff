// A 2-D UMAP map (McInnes et al. 2018; the umap-js port) of embeddings, from an exact
// k-nearest-neighbour graph given by the caller (cosine neighbours of normalised rows; Euclidean
// distance √(2 − 2·cos) between unit vectors), with every random draw from a seeded stream, so
// the same embeddings and seed always give the same map.
//
// umap-js builds its fuzzy graph with string-keyed sparse matrices (eight of them, ~10 s for 6,500
// points); the same fuzzy union a + aᵀ − a∘aᵀ is computed here with numeric keys and handed over
// as one matrix, which gives the same graph, and the search graph that only umap's transform()
// uses is skipped. Should a umap-js release rename those internals, its own code runs instead.
import { UMAP } from 'umap-js';
import { SparseMatrix } from 'umap-js/dist/matrix.js';
import { seededRandom } from '../metrics/kmeans.ts';
import type { NeighbourLists } from '../metrics/index.ts';

export interface UmapOptions {
  seed?: number;
  /** Neighbours per point including itself (umap's n_neighbors); clipped to n − 1. Default 15. */
  neighbours?: number;
  /** Optimisation epochs (default 500 up to 2,000 points, 200 above, as umap-learn). */
  epochs?: number;
  minDist?: number;
}

export interface Projection {
  x: Float64Array;
  y: Float64Array;
}

interface UmapInternals {
  smoothKNNDistance?: (distances: number[][], k: number, localConnectivity: number) => { sigmas: number[]; rhos: number[] };
  computeMembershipStrengths?: (
    indices: number[][],
    distances: number[][],
    sigmas: number[],
    rhos: number[],
  ) => { rows: number[]; cols: number[]; vals: number[] };
  fuzzySimplicialSet?: unknown;
  makeSearchGraph?: unknown;
  localConnectivity?: number;
}

/** Replaces umap-js's slow graph construction by an equivalent one (when its internals are as expected). */
function speedUp(umap: UMAP, n: number): void {
  const u = umap as unknown as UmapInternals;
  if (
    typeof u.smoothKNNDistance !== 'function' ||
    typeof u.computeMembershipStrengths !== 'function' ||
    typeof u.fuzzySimplicialSet !== 'function' ||
    typeof u.makeSearchGraph !== 'function'
  )
    return;
  const smooth = u.smoothKNNDistance.bind(umap);
  const strengths = u.computeMembershipStrengths.bind(umap);
  u.makeSearchGraph = () => new SparseMatrix([], [], [], [n, n]);
  u.fuzzySimplicialSet = (_x: unknown, nNeighbors: number, setOpMixRatio = 1.0) => {
    const self = umap as unknown as { knnIndices: number[][]; knnDistances: number[][]; localConnectivity: number };
    const { sigmas, rhos } = smooth(self.knnDistances, nNeighbors, self.localConnectivity);
    const { rows, cols, vals } = strengths(self.knnIndices, self.knnDistances, sigmas, rhos);
    // a[i, j] (later entries with the same key replace earlier ones, as umap's matrix does).
    const a = new Map<number, number>();
    for (let e = 0; e < rows.length; e++) a.set((rows[e] as number) * n + (cols[e] as number), vals[e] as number);
    const outRows: number[] = [],
      outCols: number[] = [],
      outVals: number[] = [];
    const done = new Set<number>();
    for (const [key, v] of a) {
      const i = Math.floor(key / n),
        j = key - i * n;
      for (const [r, c, x] of [
        [i, j, v],
        [j, i, a.get(j * n + i) ?? 0],
      ] as const) {
        const k = r * n + c;
        if (done.has(k)) continue;
        done.add(k);
        const t = a.get(c * n + r) ?? 0;
        const prod = x * t;
        outRows.push(r);
        outCols.push(c);
        outVals.push((x + t - prod) * setOpMixRatio + prod * (1.0 - setOpMixRatio));
      }
    }
    return new SparseMatrix(outRows, outCols, outVals, [n, n]);
  };
}

/**
 * Lays out `lists.rows` points in 2-D (deterministic for a given seed). `lists` must exclude each
 * point itself (it is added here at distance 0, as umap expects) and hold at least
 * `neighbours − 1` columns.
 */
export async function umapProjection(lists: NeighbourLists, options: UmapOptions = {}): Promise<Projection> {
  const n = lists.rows;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  if (n < 4) {
    // Too few points for a neighbour graph: place them on a circle.
    for (let i = 0; i < n; i++) {
      x[i] = Math.cos((2 * Math.PI * i) / Math.max(n, 1));
      y[i] = Math.sin((2 * Math.PI * i) / Math.max(n, 1));
    }
    return { x, y };
  }
  const nn = Math.max(2, Math.min(options.neighbours ?? 15, n - 1, lists.k + 1));
  const knnIndices: number[][] = [];
  const knnDistances: number[][] = [];
  for (let i = 0; i < n; i++) {
    const idx = [i];
    const dist = [0];
    for (let j = 0; j < nn - 1; j++) {
      idx.push(lists.indices[i * lists.k + j] as number);
      dist.push(Math.sqrt(Math.max(0, 2 - 2 * (lists.scores[i * lists.k + j] as number))));
    }
    knnIndices.push(idx);
    knnDistances.push(dist);
  }
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: nn,
    minDist: options.minDist ?? 0.1,
    random: seededRandom(options.seed ?? 0),
    nEpochs: options.epochs ?? (n <= 2000 ? 500 : 200),
  });
  umap.setPrecomputedKNN(knnIndices, knnDistances);
  speedUp(umap, n);
  // umap-js only counts the rows of X when the neighbours are given. fitAsync yields to the event
  // loop between epochs, so that a server stays responsive while a large map is laid out.
  const placeholder: number[][] = Array.from({ length: n }, () => [0]);
  const out = await umap.fitAsync(placeholder);
  out.forEach((p, i) => {
    x[i] = p[0] as number;
    y[i] = p[1] as number;
  });
  return { x, y };
}
