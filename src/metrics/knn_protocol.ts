// Messages between the main thread and the k-nearest-neighbour workers. Every large array lives in
// a SharedArrayBuffer, so posting a job copies nothing.
import type { KnnOutput, KnnPlan } from './knn_tasks.ts';
import type { TopKBuffers } from './topk_store.ts';

/** Slots of the shared Int32Array `counters`. */
export const COUNTER = { task: 0, finished: 1, merge: 2 } as const;
export const COUNTER_SLOTS = 3;

/** Rows merged per task in the last step of the symmetric layout. */
export const MERGE_CHUNK = 512;

export interface WorkerJob {
  plan: KnnPlan;
  dim: number;
  /** Row-major [queryCount, dim]. */
  queries: Float32Array;
  /** Gallery block b (items b·galleryBlock..) stored as a row-major [dim, cols] matrix at offset b·galleryBlock·dim. */
  galleryT: Float32Array;
  counters: Int32Array;
  workers: number;
  slot: number;
  out: KnnOutput;
  /** symmetric layout: one store per worker, indexed by global row. */
  stores: TopKBuffers[];
}

export type WorkerReply = { kind: 'ready' } | { kind: 'done' } | { kind: 'error'; message: string };
