// Worker thread of the parallel k-nearest-neighbour search: computes score tiles as matrix
// products on TensorFlow.js's WebAssembly backend (XNNPACK, SIMD; about ten times the plain loop)
// and takes tasks from a shared counter until none are left. Each worker has its own TensorFlow.js,
// so the main thread's backend is never touched.
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { TopKStore } from './topk_store.ts';
import { mergeRows, runRowTask, runSymmetricTask, taskCount, type TileScorer } from './knn_tasks.ts';
import type { TilePlace, TileScores } from './tile_scan.ts';
import { COUNTER, MERGE_CHUNK, type WorkerJob, type WorkerReply } from './knn_protocol.ts';

class WasmTileScorer implements TileScorer {
  private cachedQuery0 = -1;
  private cachedRows = 0;
  private queryTensor: tf.Tensor2D | null = null;

  constructor(private readonly job: WorkerJob) {}

  score(place: TilePlace): TileScores {
    const { dim, queries, galleryT } = this.job;
    if (this.cachedQuery0 !== place.query0 || this.cachedRows !== place.rows) {
      this.queryTensor?.dispose();
      this.queryTensor = tf.tensor2d(queries.subarray(place.query0 * dim, (place.query0 + place.rows) * dim), [place.rows, dim]);
      this.cachedQuery0 = place.query0;
      this.cachedRows = place.rows;
    }
    // Gallery blocks are stored transposed ([dim, cols] each), the layout XNNPACK multiplies fastest.
    const block = tf.tensor2d(galleryT.subarray(place.gallery0 * dim, (place.gallery0 + place.cols) * dim), [dim, place.cols]);
    const product = tf.matMul(this.queryTensor as tf.Tensor2D, block);
    const scores = product.dataSync() as Float32Array;
    block.dispose();
    product.dispose();
    return scores;
  }

  dispose(): void {
    this.queryTensor?.dispose();
  }
}

function waitForAll(counters: Int32Array, workers: number): void {
  Atomics.add(counters, COUNTER.finished, 1);
  Atomics.notify(counters, COUNTER.finished);
  for (let seen = Atomics.load(counters, COUNTER.finished); seen < workers; seen = Atomics.load(counters, COUNTER.finished)) {
    Atomics.wait(counters, COUNTER.finished, seen, 1000);
  }
}

function runJob(job: WorkerJob): void {
  const { plan, counters } = job;
  const scorer = new WasmTileScorer(job);
  const tasks = taskCount(plan);
  try {
    if (!plan.symmetric) {
      const scratch = new TopKStore(plan.queryBlock, plan.k);
      for (let t = Atomics.add(counters, COUNTER.task, 1); t < tasks; t = Atomics.add(counters, COUNTER.task, 1)) runRowTask(plan, t, scorer, scratch, job.out);
      return;
    }
    const stores = job.stores.map((buffers) => new TopKStore(plan.queryCount, plan.k, buffers));
    const own = stores[job.slot] as TopKStore;
    for (let t = Atomics.add(counters, COUNTER.task, 1); t < tasks; t = Atomics.add(counters, COUNTER.task, 1)) runSymmetricTask(plan, t, scorer, own);
    waitForAll(counters, job.workers);
    const chunks = Math.ceil(plan.queryCount / MERGE_CHUNK);
    for (let c = Atomics.add(counters, COUNTER.merge, 1); c < chunks; c = Atomics.add(counters, COUNTER.merge, 1)) {
      mergeRows(plan, stores, c * MERGE_CHUNK, Math.min(plan.queryCount, (c + 1) * MERGE_CHUNK), job.out);
    }
  } finally {
    scorer.dispose();
  }
}

const port = parentPort;
if (!port) throw new Error('knn_worker.ts must run as a worker thread');

const ready = (await tf.setBackend('wasm')) && tf.getBackend() === 'wasm';
await tf.ready();
port.postMessage(
  ready ? ({ kind: 'ready' } satisfies WorkerReply) : ({ kind: 'error', message: 'the TensorFlow.js wasm backend did not start' } satisfies WorkerReply),
);

port.on('message', (job: WorkerJob) => {
  try {
    runJob(job);
    port.postMessage({ kind: 'done' } satisfies WorkerReply);
  } catch (err) {
    port.postMessage({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerReply);
  }
});
