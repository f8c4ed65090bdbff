// Worker thread of the image pipeline (src/data/pipeline.ts): decodes, crops, resizes, flips and
// normalises images with sharp and writes them straight into the batch's shared float32 buffer.
// Jobs are taken in arrival order; the images of one job are shared out between all workers
// through an atomic counter, and each worker works on `lanes` images at a time.
import { parentPort } from 'node:worker_threads';
import { firstLine } from '../errors.ts';
import { loadSharp, transformInto, type AppliedTransform } from './transforms.ts';
import type { PipelineJob, PipelineReply } from './pipeline.ts';

interface Running {
  job: PipelineJob;
  pending: number;
  exhausted: boolean;
  replied: boolean;
  results: { index: number; applied: AppliedTransform }[];
  errors: { index: number; message: string }[];
}

const port = parentPort;
if (!port) throw new Error('pipeline_worker.ts must run in a worker thread');
const queue: Running[] = [];
let lanes = 0;

function finish(r: Running): void {
  if (r.replied || !r.exhausted || r.pending > 0) return;
  r.replied = true;
  const reply: PipelineReply = { kind: 'done', id: r.job.id, results: r.results, errors: r.errors };
  port?.postMessage(reply);
}

async function lane(): Promise<void> {
  const sharp = await loadSharp();
  for (;;) {
    const r = queue[0];
    if (!r) return;
    const { job } = r;
    const i = Atomics.add(job.counter, 0, 1);
    if (i >= job.paths.length) {
      if (queue[0] === r) queue.shift();
      r.exhausted = true;
      finish(r);
      continue;
    }
    r.pending++;
    try {
      const applied = await transformInto(sharp, job.paths[i] as string, job.transform, job.seeds[i] ?? 0, job.out, i * job.imageSize, job.norm);
      r.results.push({ index: i, applied });
    } catch (err) {
      r.errors.push({ index: i, message: firstLine(err) });
    } finally {
      r.pending--;
    }
    finish(r);
  }
}

port.on('message', (job: PipelineJob) => {
  queue.push({ job, pending: 0, exhausted: false, replied: false, results: [], errors: [] });
  while (lanes < job.lanes) {
    lanes++;
    lane()
      .catch((err: unknown) => port.postMessage({ kind: 'error', message: firstLine(err) } satisfies PipelineReply))
      .finally(() => {
        lanes--;
      });
  }
});

await loadSharp();
port.postMessage({ kind: 'ready' } satisfies PipelineReply);
