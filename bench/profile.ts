// Where one training iteration's time goes: `node --import tsx bench/profile.ts [cub|sop|small]` runs
// one warm-up iteration, then profiles one (tf.profile) and prints the kernels by total time.
// Nested scopes (fusedMatMul__op, unnamed scope) include the kernels inside them.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend.ts';
import { Random } from '../src/engine/random.ts';
import { embeddingHead } from '../src/models/embedding_head.ts';
import { initEmbeddingHead, newGeneratorState } from '../src/models/init.ts';
import { defaultLossConfig } from '../src/train/gca_hng_config.ts';
import { trainIteration } from '../src/train/iteration.ts';
import { createOptimizers } from '../src/train/optimizers.ts';
import { ITERATION_SHAPES } from './iteration.ts';
await initBackend('wasm');
const shape = ITERATION_SHAPES[process.argv[2] ?? 'cub']!;
const rng = new Random(0);
const sd = newGeneratorState(shape, rng);
initEmbeddingHead(sd, shape.D, shape.D, rng);
const opts = createOptimizers(sd, { baseLr: 1e-4, embeddingRatio: 1, gnnLr: 3e-4, classifierLr: 1e-3, weightDecay: 1e-4, classifierWeightDecay: 0.01 });
const B = shape.P * shape.K;
const x = tf.randomNormal([B, shape.D], 0, 1, 'float32', 1);
const labels = Array.from({ length: B }, (_, i) => i % shape.P);
const mixing = () => Array.from({ length: shape.K * (shape.K - 1) }, () => rng.random());
const dropoutRng = new Random(1, 7);
const it = () => trainIteration(
  { sd, shape, loss: defaultLossConfig(), embed: (input) => embeddingHead(sd, input as tf.Tensor2D, true), ...opts, clip: 10 },
  { input: x, labels, jAvg: 2, jGen: 20, mixingMetric: mixing(), mixingGenerator: mixing(), dropout: { p: 0.1, random: () => dropoutRng.random() } });
it();
const t0 = performance.now();
const prof = await tf.profile(() => { it(); });
const wall = performance.now() - t0;
const by = new Map<string, [number, number]>();
let total = 0;
for (const k of prof.kernels) { const t = Number(k.kernelTimeMs) || 0; total += t; const e = by.get(k.name) ?? [0, 0]; e[0] += t; e[1]++; by.set(k.name, e); }
console.log(`kernels ${prof.kernels.length}, kernel time ${total.toFixed(0)} ms, wall (profiled) ${wall.toFixed(0)} ms`);
for (const [n, [t, c]] of [...by].sort((a, b) => b[1][0] - a[1][0]).slice(0, 15)) console.log(n.padEnd(32), t.toFixed(0).padStart(6), 'ms', String(c).padStart(5));
process.exit(0);
