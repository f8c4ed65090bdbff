// No tensors leak across a training iteration, a fixture computation or a command.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Random } from '../src/engine/random.ts';
import { embeddingHead } from '../src/models/embedding_head.ts';
import { initEmbeddingHead, newGeneratorState } from '../src/models/init.ts';
import { defaultLossConfig } from '../src/gca_hng/config.ts';
import { trainIteration } from '../src/gca_hng/iteration.ts';
import { createOptimizers } from '../src/train/optimizers.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { coreCaseFromTensors, computeCoreCase } from '../src/reference/core_case.ts';
import { GOLDEN } from './helpers/golden.ts';

test('a training iteration leaves the tensor count unchanged (after optimizer state exists)', () => {
  const shape = { P: 3, K: 3, D: 16, L: 2, H: 2, C: 5 };
  const rng = new Random(1);
  const sd = newGeneratorState(shape, rng);
  initEmbeddingHead(sd, 10, shape.D, rng);
  const opts = createOptimizers(sd, { baseLr: 1e-3, embeddingRatio: 1, gnnLr: 1e-3, classifierLr: 1e-3, weightDecay: 1e-4, classifierWeightDecay: 0.01 });
  const x = tf.randomNormal([9, 10], 0, 1, 'float32', 2);
  const run = () =>
    trainIteration(
      { sd, shape, loss: defaultLossConfig(), embed: (t) => embeddingHead(sd, t as tf.Tensor2D, true), ...opts, clip: 10 },
      {
        input: x,
        labels: [0, 1, 2, 0, 1, 2, 0, 1, 2],
        jAvg: 2,
        jGen: 10,
        mixingMetric: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        mixingGenerator: [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        dropout: { p: 0.1, random: () => rng.random() },
      },
    );
  run();
  run(); // buffers of the J_gen-only parameters appear in the second iteration's step #1
  const before = tf.memory().numTensors;
  const losses = run();
  assert.equal(tf.memory().numTensors, before);
  assert.ok(Object.values(losses).every(Number.isFinite));
  opts.optC.dispose();
  opts.optGnn.dispose();
  opts.optS.dispose();
  sd.dispose();
  x.dispose();
});

test('computing a whole golden case leaves no tensors behind', () => {
  const prefix = `${GOLDEN}/pub_p4k2_d16_l1`;
  const c = coreCaseFromTensors(readSafetensors(`${prefix}.inputs.safetensors`).tensors, readSafetensors(`${prefix}.state.safetensors`).tensors);
  computeCoreCase(c);
  const before = tf.memory().numTensors;
  computeCoreCase(c);
  assert.equal(tf.memory().numTensors, before);
});
