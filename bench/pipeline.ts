// Training-pipeline throughput: images/s of the paper's train transform (RandomResizedCrop 224,
// flip, ImageNet normalisation) through FileSplit.loadTrain and the worker pool, a batch at a time as the trainer asks for them, on a generated set of
// JPEGs (256 images of 500×375, about CUB's size, with textured content so decoding costs what a
// photograph costs). One run = one epoch of shuffled batches of 64.
//
//   node --import tsx bench/pipeline.ts [--workers N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { Random, STREAMS } from '../src/engine/random.ts';
import { defaultWorkerCount, FileSplit, ImagePool } from '../src/data/pipeline.ts';
import { timeRuns, type BenchResult } from './timing.ts';

export interface PipelineBenchOptions {
  images?: number;
  width?: number;
  height?: number;
  batch?: number;
  runs?: number;
  /** Worker threads (default: min(8, available parallelism)). */
  workers?: number;
}

export type PipelineBenchResult = BenchResult & { images_per_s: number; workers: number };

async function makeImages(dir: string, n: number, width: number, height: number): Promise<string[]> {
  const rng = new Random(1, STREAMS.benchImages);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const raw = Buffer.alloc(width * height * 3);
    for (let j = 0; j < raw.length; j++) raw[j] = rng.nextUint32() & 0xff;
    const path = join(dir, `${String(i).padStart(4, '0')}.jpg`);
    await sharp(raw, { raw: { width, height, channels: 3 } })
      .blur(1.2)
      .jpeg({ quality: 90 })
      .toFile(path);
    files.push(path);
  }
  return files;
}

export async function benchPipeline(o: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const n = o.images ?? 256;
  const batch = o.batch ?? 64;
  const workers = o.workers ?? defaultWorkerCount();
  const dir = mkdtempSync(join(tmpdir(), 'hardneg-bench-pipeline-'));
  const pool = new ImagePool({ workers });
  try {
    const files = await makeImages(dir, n, o.width ?? 500, o.height ?? 375);
    const split = new FileSplit({ name: 'bench', files, labels: new Int32Array(n), classNames: ['all'], pool });
    let epoch = 0;
    const r = await timeRuns(`pipeline-train-224`, o.runs ?? 3, async () => {
      const order = new Random(epoch, STREAMS.benchOrder).shuffle(Array.from({ length: n }, (_, i) => i));
      let at = 0;
      // As the trainer loads its batches: one seed per image from a seeded stream, a batch at a time.
      const seeds = new Random(epoch++, STREAMS.augmentationSeeds);
      while (at < n) {
        const indices = order.slice(at, (at += batch));
        await split.loadTrain(
          indices,
          indices.map(() => seeds.nextUint32()),
        );
      }
    });
    return { ...r, images_per_s: Math.round((n / r.median_ms) * 1000 * 10) / 10, workers };
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--workers');
  const r = await benchPipeline(at > 0 ? { workers: Number(process.argv[at + 1]) } : {});
  console.log(JSON.stringify(r));
}
