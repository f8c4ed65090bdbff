// A lazily started pool of k-nearest-neighbour worker threads, kept for later searches (k-means
// calls the search once per iteration) but unref'd while idle, so it never keeps the process alive.
import type { Worker } from 'node:worker_threads';
import { allocTopK } from './topk_store.ts';
import type { KnnOutput, KnnPlan } from './knn_tasks.ts';
import { COUNTER_SLOTS, type WorkerJob, type WorkerReply } from './knn_protocol.ts';
import { siblingModule, startModuleWorker } from '../engine/worker.ts';

function spawn(): Worker {
  return startModuleWorker(siblingModule(import.meta.url, 'knn_worker'));
}

function nextReply(worker: Worker): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (reply: WorkerReply): void => {
      cleanup();
      resolve(reply);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`knn worker exited with code ${code}`));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

async function expectReply(worker: Worker, kind: 'ready' | 'done'): Promise<void> {
  worker.ref();
  try {
    const reply = await nextReply(worker);
    if (reply.kind === 'error') throw new Error(`knn worker: ${reply.message}`);
    if (reply.kind !== kind) throw new Error(`knn worker: expected '${kind}', got '${reply.kind}'`);
  } finally {
    worker.unref();
  }
}

export class KnnWorkerPool {
  private queue: Promise<unknown> = Promise.resolve();
  dead = false;

  private constructor(readonly workers: Worker[]) {}

  static async start(size: number): Promise<KnnWorkerPool> {
    const workers = Array.from({ length: size }, spawn);
    const pool = new KnnWorkerPool(workers);
    try {
      await Promise.all(workers.map((w) => expectReply(w, 'ready')));
    } catch (err) {
      await pool.terminate();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs one search on every worker (one search at a time) and returns its sorted lists. */
  search(plan: KnnPlan, dim: number, queries: Float32Array, galleryT: Float32Array): Promise<KnnOutput> {
    const run = this.queue.then(() => this.runSearch(plan, dim, queries, galleryT));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async runSearch(plan: KnnPlan, dim: number, queries: Float32Array, galleryT: Float32Array): Promise<KnnOutput> {
    const out: KnnOutput = {
      indices: new Int32Array(new SharedArrayBuffer(plan.queryCount * plan.k * 4)),
      scores: new Float64Array(new SharedArrayBuffer(plan.queryCount * plan.k * 8)),
    };
    const counters = new Int32Array(new SharedArrayBuffer(COUNTER_SLOTS * 4));
    const stores = plan.symmetric ? this.workers.map(() => allocTopK(plan.queryCount, plan.k, true)) : [];
    const replies = this.workers.map((worker, slot) => {
      const job: WorkerJob = { plan, dim, queries, galleryT, counters, workers: this.size, slot, out, stores };
      const reply = expectReply(worker, 'done');
      worker.postMessage(job);
      return reply;
    });
    try {
      await Promise.all(replies);
    } catch (err) {
      // A failed worker may leave the others waiting at the merge barrier: start afresh next time.
      await this.terminate();
      throw err;
    }
    return out;
  }

  async terminate(): Promise<void> {
    this.dead = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

let current: { size: number; pool: Promise<KnnWorkerPool> } | null = null;

/** The shared pool, started on first use with `size` workers (restarted if the size changes). */
export async function knnWorkerPool(size: number): Promise<KnnWorkerPool> {
  if (current) {
    const pool = await current.pool.catch(() => null);
    if (pool && !pool.dead && pool.size === size) return pool;
    if (pool && !pool.dead) await pool.terminate();
  }
  const pool = KnnWorkerPool.start(size);
  current = { size, pool };
  return pool;
}

/** A float32 copy in a SharedArrayBuffer, which workers read without copying it again. */
export function sharedCopy(data: Float32Array | Float64Array): Float32Array {
  const copy = new Float32Array(new SharedArrayBuffer(data.length * 4));
  copy.set(data);
  return copy;
}

/** Gallery rows [count, dim] as consecutive transposed blocks of `block` items (see WorkerJob). */
export function blockTransposed(gallery: Float32Array | Float64Array, count: number, dim: number, block: number): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(count * dim * 4));
  for (let g0 = 0; g0 < count; g0 += block) {
    const cols = Math.min(block, count - g0);
    const base = g0 * dim;
    for (let c = 0; c < cols; c++) {
      const row = (g0 + c) * dim;
      for (let d = 0; d < dim; d++) out[base + d * cols + c] = gallery[row + d] as number;
    }
  }
  return out;
}
