// Where one training iteration's time goes: `node --import tsx bench/profile.ts [cub|sop|small]` runs
// one warm-up iteration, then profiles one (tf.profile) and prints the kernels by total time.
// `bench/profile.ts finetune-resnet50 [batch]` (or finetune-googlenet) does the same for one
// fine-tuning step (bench/finetune.ts).
// Nested scopes (fusedMatMul__op, unnamed scope) include the kernels inside them.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.ts';
import { FINETUNE_CASES, FINETUNE_DEFAULT_BATCH, prepareFinetune } from './finetune.ts';
import { ITERATION_SHAPES, prepareIteration } from './iteration.ts';

await initBackend('wasm');
const name = process.argv[2] ?? 'cub';
const shape = ITERATION_SHAPES[name];
if (!shape && !FINETUNE_CASES.includes(name)) {
  console.error(`unknown shape '${name}'; shapes: ${[...Object.keys(ITERATION_SHAPES), ...FINETUNE_CASES].join(', ')}`);
  process.exit(2);
}
const iteration = shape ? prepareIteration(shape) : prepareFinetune(name.replace(/^finetune-/, ''), Number(process.argv[3] ?? FINETUNE_DEFAULT_BATCH));
iteration.step(); // warm-up
const start = performance.now();
const profile = await tf.profile(() => iteration.step());
const wall = performance.now() - start;
const byKernel = new Map<string, { ms: number; calls: number }>();
let total = 0;
for (const k of profile.kernels) {
  const ms = Number(k.kernelTimeMs) || 0;
  total += ms;
  const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  entry.ms += ms;
  entry.calls++;
  byKernel.set(k.name, entry);
}
console.log(`kernels ${profile.kernels.length}, kernel time ${total.toFixed(0)} ms, wall (profiled) ${wall.toFixed(0)} ms`);
for (const [kernel, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
  console.log(`${kernel.padEnd(32)} ${ms.toFixed(0).padStart(6)} ms ${String(calls).padStart(5)}`);
}
iteration.dispose();
