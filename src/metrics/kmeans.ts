// Seeded, deterministic k-means (k-means++ initialisation, then Lloyd iterations) for NMI.
// The assignment step is a 1-nearest-neighbour search: argmin ‖x − c‖² = argmax x·c − ‖c‖²/2,
// so large inputs get the same blocked (and, when large, multi-threaded) search as retrieval.
import type { Embeddings } from './embeddings.ts';
import { nearestNeighbours, type KnnEngine } from './knn.ts';

export interface KMeansOptions {
  seed?: number;
  /** Default 100. */
  maxIterations?: number;
  /** Stop when the centres move less than tolerance × mean feature variance in total (squared), as sklearn. Default 1e-4. */
  tolerance?: number;
  engine?: KnnEngine;
  threads?: number;
}

export interface KMeansResult {
  assignments: Int32Array;
  /** Row-major [clusters, dim]. */
  centroids: Float64Array;
  iterations: number;
  /** Sum of squared distances of the points to their centres. */
  inertia: number;
}

/** Small seeded generator (mulberry32): the same seed gives the same clustering everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function squaredDistance(x: Embeddings['data'], xo: number, c: Float64Array, co: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) {
    const diff = (x[xo + d] as number) - (c[co + d] as number);
    s += diff * diff;
  }
  return s;
}

/** k-means++: each next centre is a point drawn with probability ∝ squared distance to the nearest centre so far. */
function initialCentroids(x: Embeddings, clusters: number, random: () => number): Float64Array {
  const { rows, dim, data } = x;
  const centroids = new Float64Array(clusters * dim);
  const nearest = new Float64Array(rows).fill(Infinity);
  let pick = Math.floor(random() * rows);
  for (let c = 0; c < clusters; c++) {
    for (let d = 0; d < dim; d++) centroids[c * dim + d] = data[pick * dim + d] as number;
    let total = 0;
    for (let i = 0; i < rows; i++) {
      const dist = Math.min(nearest[i] as number, squaredDistance(data, i * dim, centroids, c * dim, dim));
      nearest[i] = dist;
      total += dist;
    }
    if (c + 1 === clusters) break;
    // All points already on a centre (duplicates): take the next index, deterministic.
    if (total === 0) {
      pick = (pick + 1) % rows;
      continue;
    }
    let target = random() * total;
    pick = rows - 1;
    for (let i = 0; i < rows; i++) {
      target -= nearest[i] as number;
      if (target < 0) {
        pick = i;
        break;
      }
    }
  }
  return centroids;
}

function meanFeatureVariance(x: Embeddings): number {
  const { rows, dim, data } = x;
  let total = 0;
  for (let d = 0; d < dim; d++) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < rows; i++) {
      const v = data[i * dim + d] as number;
      sum += v;
      sq += v * v;
    }
    total += sq / rows - (sum / rows) ** 2;
  }
  return total / dim;
}

export async function kMeans(x: Embeddings, clusters: number, options: KMeansOptions = {}): Promise<KMeansResult> {
  const { rows, dim, data } = x;
  if (!Number.isInteger(clusters) || clusters < 1 || clusters > rows) throw new Error(`k-means: need 1 ≤ clusters ≤ ${rows}, got ${clusters}`);
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = (options.tolerance ?? 1e-4) * meanFeatureVariance(x);
  let centroids = initialCentroids(x, clusters, seededRandom(options.seed ?? 0));
  const assignments = new Int32Array(rows).fill(-1);
  const distances = new Float64Array(rows);

  /** Assigns every point to its nearest centre (ties: lower centre index); returns how many moved. */
  const assign = async (): Promise<number> => {
    const bias = new Float64Array(clusters);
    for (let c = 0; c < clusters; c++) {
      let sq = 0;
      for (let d = 0; d < dim; d++) sq += (centroids[c * dim + d] as number) ** 2;
      bias[c] = -0.5 * sq;
    }
    const centres = { rows: clusters, dim, data: centroids };
    const nearest = await nearestNeighbours(x, centres, { k: 1, bias, engine: options.engine, threads: options.threads });
    let moved = 0;
    for (let i = 0; i < rows; i++) {
      const c = nearest.indices[i] as number;
      if (c !== assignments[i]) moved++;
      assignments[i] = c;
      distances[i] = squaredDistance(data, i * dim, centroids, c * dim, dim);
    }
    return moved;
  };

  let iterations = 0;
  while ((await assign()) > 0 && iterations < maxIterations) {
    const next = updateCentroids(x, assignments, distances, clusters);
    const shift = squaredDistance(next, 0, centroids, 0, clusters * dim);
    centroids = next;
    iterations++;
    if (shift <= tolerance) {
      await assign(); // labels that match the final centres
      break;
    }
  }
  let inertia = 0;
  for (const d of distances) inertia += d;
  return { assignments, centroids, iterations, inertia };
}

/** Means of the assigned points; an empty cluster takes the point farthest from its centre. */
function updateCentroids(x: Embeddings, assignments: Int32Array, distances: Float64Array, clusters: number): Float64Array {
  const { rows, dim, data } = x;
  const sums = new Float64Array(clusters * dim);
  const counts = new Int32Array(clusters);
  for (let i = 0; i < rows; i++) {
    const c = assignments[i] as number;
    counts[c] = (counts[c] as number) + 1;
    for (let d = 0; d < dim; d++) sums[c * dim + d] = (sums[c * dim + d] as number) + (data[i * dim + d] as number);
  }
  const taken = new Uint8Array(rows);
  for (let c = 0; c < clusters; c++) {
    if ((counts[c] as number) > 0) {
      for (let d = 0; d < dim; d++) sums[c * dim + d] = (sums[c * dim + d] as number) / (counts[c] as number);
      continue;
    }
    let far = -1;
    for (let i = 0; i < rows; i++) if (!taken[i] && (far < 0 || (distances[i] as number) > (distances[far] as number))) far = i;
    taken[far] = 1;
    for (let d = 0; d < dim; d++) sums[c * dim + d] = data[far * dim + d] as number;
  }
  return sums;
}
