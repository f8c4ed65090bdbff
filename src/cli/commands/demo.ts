// `hardneg demo`: trains the GCA-HNG core — embedding head, GNN and classifier with the official
// iteration — on synthetic class-structured features for a few iterations, then shows where the
// generated negatives sit. No dataset and no backbone, a quick look at the method (`npm start`
// runs `hardneg start`, which trains on the embedded dataset).
import { parseFlags } from '../args.ts';
import * as tf from '@tensorflow/tfjs';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { BACKEND_NAMES, initBackend, type BackendName } from '../../engine/backend.ts';
import { Random, STREAMS } from '../../engine/random.ts';
import { embeddingHead } from '../../models/embedding_head.ts';
import { initEmbeddingHead, newGeneratorState } from '../../models/init.ts';
import { defaultLossConfig } from '../../gca_hng/config.ts';
import { trainIteration } from '../../gca_hng/iteration.ts';
import { createOptimizers } from '../../train/optimizers.ts';
import { hardnessFactor } from '../../gca_hng/hard_negatives.ts';
import { runGenerator } from '../../gca_hng/generator.ts';

const HELP = `usage: hardneg demo [--iterations N] [--seed S] [--backend NAME] [--json]

Runs the official GCA-HNG training iteration (both GNN passes, every loss, three AdamW optimizers)
on synthetic class-structured features (P=8 classes × K=3 samples, 96 → 64 dimensions), printing
the loss terms, then reports the distances of generated negatives to their anchors.
Defaults: 30 iterations, seed 0, --backend auto (one of ${BACKEND_NAMES.join(', ')}).`;

function meanDistances(z: Float32Array, neg: Float32Array, P: number, K: number, D: number) {
  const dist = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += ((a[i * D + d] as number) - (b[j * D + d] as number)) ** 2;
    return Math.sqrt(s);
  };
  let pos = 0,
    real = 0,
    gen = 0,
    n = 0,
    m = 0;
  for (let k = 0; k < K; k++)
    for (let a = 0; a < P; a++) {
      pos += dist(z, k * P + a, z, ((k + 1) % K) * P + a);
      m++;
      for (let c = 0; c < P; c++) {
        if (c === a) continue;
        real += dist(z, k * P + a, z, k * P + c);
        gen += dist(z, k * P + a, neg, k * P * P + a * P + c);
        n++;
      }
    }
  return { positive: pos / m, realNegative: real / n, generatedNegative: gen / n };
}

export const command: Command = {
  summary: 'train the GCA-HNG core on synthetic features for a few iterations (no dataset needed)',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({
      args: argv,
      options: {
        iterations: { type: 'string', default: '30' },
        seed: { type: 'string', default: '0' },
        json: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'auto' },
      },
      strict: true,
    });
    const iterations = Number(values.iterations);
    const seed = Number(values.seed);
    if (!Number.isInteger(iterations) || iterations < 1) throw new UserError(`--iterations: expected a positive integer, got '${values.iterations}'`);
    if (!Number.isInteger(seed) || seed < 0) throw new UserError(`--seed: expected a non-negative integer, got '${values.seed}'`);
    const backend = await initBackend(values.backend as BackendName);
    const shape = { P: 8, K: 3, D: 64, L: 1, H: 2, C: 16 };
    const nMid = 96;
    const rng = new Random(seed, STREAMS.demo);
    const sd = newGeneratorState(shape, rng);
    initEmbeddingHead(sd, nMid, shape.D, rng);
    const opts = createOptimizers(sd, { baseLr: 1e-3, embeddingRatio: 1, gnnLr: 3e-4, classifierLr: 1e-3, weightDecay: 1e-4, classifierWeightDecay: 0.01 });
    const prototypes = Array.from({ length: shape.C }, () => Array.from({ length: nMid }, () => rng.normal()));
    const batch = () => {
      const classes = rng.shuffle(Array.from({ length: shape.C }, (_, c) => c)).slice(0, shape.P);
      const labels: number[] = [];
      const x = new Float32Array(shape.P * shape.K * nMid);
      for (let k = 0; k < shape.K; k++)
        for (let p = 0; p < shape.P; p++) {
          const c = classes[p] as number;
          labels.push(c);
          for (let d = 0; d < nMid; d++) x[(k * shape.P + p) * nMid + d] = (prototypes[c]?.[d] as number) + 1.5 * rng.normal();
        }
      return { x, labels };
    };
    const mixing = () => Array.from({ length: shape.K * (shape.K - 1) }, () => rng.random());
    const dropoutRng = new Random(seed, STREAMS.demoDropout);
    const started = Date.now();
    const log: Array<Record<string, number>> = [];
    // J_avg and J_gen follow the official schedule at a small scale: 1e6 for the first block, then running means.
    let jAvg = 1e6,
      jGen = 1e6,
      sumM = 0,
      sumGen = 0;
    const block = 10;
    for (let it = 0; it < iterations; it++) {
      const { x, labels } = batch();
      const input = tf.tensor2d(x, [shape.P * shape.K, nMid]);
      const losses = trainIteration(
        { sd, shape, loss: defaultLossConfig(), embed: (t) => embeddingHead(sd, t as tf.Tensor2D, true), ...opts, clip: 10 },
        { input, labels, jAvg, jGen, mixingMetric: mixing(), mixingGenerator: mixing(), dropout: { p: 0.1, random: () => dropoutRng.random() } },
      );
      input.dispose();
      sumM += Math.max(losses.J_m, 1e-6);
      sumGen += Math.max(losses.J_gen, 1e-6);
      if ((it + 1) % block === 0) {
        jAvg = sumM / block;
        jGen = sumGen / block;
        sumM = sumGen = 0;
      }
      log.push({ iteration: it + 1, ...losses });
      if (!values.json) {
        console.log(
          `iter ${String(it + 1).padStart(3)}  J_metric ${losses.J_metric.toFixed(4)}  J_m ${losses.J_m.toFixed(4)}  J_syn ${losses.J_syn.toFixed(4)}  J_gce ${losses.J_gnnce.toFixed(4)}  J_gen ${losses.J_gen.toFixed(4)}  φ ${losses.para_scale.toFixed(3)}`,
        );
      }
    }
    const { x } = batch();
    const stats = tf.tidy(() => {
      const z = embeddingHead(sd, tf.tensor2d(x, [shape.P * shape.K, nMid]), false);
      const neg = runGenerator({ sd, shape, nodes: z, phi: hardnessFactor(defaultLossConfig().alpha, jAvg), mixing: mixing() }).negatives;
      return meanDistances(z.dataSync() as Float32Array, neg.dataSync() as Float32Array, shape.P, shape.K, shape.D);
    });
    const seconds = (Date.now() - started) / 1000;
    opts.optC.dispose();
    opts.optGnn.dispose();
    opts.optS.dispose();
    sd.dispose();
    if (values.json) {
      console.log(JSON.stringify({ backend, seconds, iterations: log, distances: stats }));
    } else {
      console.log(
        `\nmean distance from an anchor to: its positive ${stats.positive.toFixed(3)}, real negatives ${stats.realNegative.toFixed(3)}, generated hard negatives ${stats.generatedNegative.toFixed(3)}`,
      );
      console.log(`(${iterations} iterations in ${seconds.toFixed(1)} s on the ${backend} backend)`);
    }
    return 0;
  },
};
