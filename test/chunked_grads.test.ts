// The chunked backbone gradient (src/nn/chunked_backbone.ts): the batch goes through a per-sample
// backbone in chunks and its gradient is summed over them. The expected gradients come from the
// plain full-batch forward on one tape (tf.variableGrads), not from the chunked code.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Random } from '../src/engine/random.ts';
import type { Backbone } from '../src/models/backbone.ts';
import { embeddingHead } from '../src/models/embedding_head.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { initEmbeddingHead } from '../src/models/init.ts';
import { type MetricModel, backboneChunked, embed } from '../src/models/metric_model.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { smallCnn } from '../src/models/small_cnn.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { DEFAULT_BACKBONE_CHUNK, chunkSizes, chunkedBackbone } from '../src/nn/chunked_backbone.ts';
import { conv2d } from '../src/nn/conv2d_general.ts';
import { BalancedBatchSampler } from '../src/samplers/balanced_batch_sampler.ts';
import { asBatchSampler } from '../src/train/datasets.ts';
import { parseConfig } from '../src/train/config.ts';
import type { ImageSplit } from '../src/train/image_split.ts';
import { runTraining } from '../src/train/trainer.ts';
import { prepareFinetune } from '../bench/finetune.ts';
import { relativeL2 } from './helpers/close.ts';

const TOLERANCE = 1e-5;

test('chunk sizes: as even as possible, at most the chunk, summing to the batch', () => {
  assert.deepEqual(chunkSizes(81, 16), [14, 14, 14, 13, 13, 13]);
  assert.deepEqual(chunkSizes(7, 3), [3, 2, 2]);
  assert.deepEqual(chunkSizes(5, 8), [5]);
  assert.deepEqual(chunkSizes(16, 16), [16]);
  assert.throws(() => chunkSizes(5, 0), /positive integer/);
});

/** A ResNet-50 with its embedding head, small images, and a loss through the head's batch-statistics BatchNorm1d. */
function resnetCase() {
  const backbone = resnet50({ bnFreeze: true });
  const sd = new StateDict();
  const rng = new Random(3);
  backbone.init(sd, rng);
  initEmbeddingHead(sd, backbone.features, 8, rng);
  const images = tf.randomNormal([7, 32, 32, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
  const target = tf.randomNormal([7, 8], 0, 1, 'float32', 5);
  const dy = tf.randomNormal([7, backbone.features], 0, 1, 'float32', 6);
  const backboneNames = (backbone.perSampleParameters?.() ?? []).filter((n) => sd.get(n).trainable);
  const headNames = sd.trainable(['feature_extractor.fc.']);
  const vars = [...backboneNames, ...headNames].map((n) => sd.get(n));
  // The head's BatchNorm1d uses the whole batch's statistics: the loss couples the images.
  const head = (features: tf.Tensor2D) => embeddingHead(sd, features, true);
  /** The loss's value and gradients, for the embeddings z() computes. */
  const grads = (z: () => tf.Tensor2D, which = vars) => {
    const { value, grads: g } = tf.variableGrads(() => tf.mean(tf.squaredDifference(z(), target)) as tf.Scalar, which);
    const out = { loss: value.dataSync()[0] as number, grads: which.map((v) => Float32Array.from((g[v.name] as tf.Tensor).dataSync())) };
    value.dispose();
    tf.dispose(Object.values(g));
    return out;
  };
  const dispose = () => {
    tf.dispose([images, target, dy]);
    sd.dispose();
  };
  /** Σ features·dy: its weight gradient is the backbone's vjp with dy itself, no head in between. */
  const vjp = (features: () => tf.Tensor2D) => {
    const bvars = backboneNames.map((n) => sd.get(n));
    const { value, grads: g } = tf.variableGrads(() => tf.sum(tf.mul(features(), dy)) as tf.Scalar, bvars);
    const out = bvars.map((v) => Float32Array.from((g[v.name] as tf.Tensor).dataSync()));
    value.dispose();
    tf.dispose(Object.values(g));
    return out;
  };
  return { backbone, sd, images, vars, backboneNames, head, grads, vjp, dispose };
}

test('ResNet-50 (BatchNorm frozen): gradients from uneven chunks equal the full batch’s, and no tensor leaks', () => {
  const c = resnetCase();
  const expected = c.vjp(() => c.backbone.forward(c.sd, c.images, true));
  const chunked = () =>
    c.vjp(() =>
      chunkedBackbone(
        (x) => c.backbone.forward(c.sd, x, true),
        c.images,
        c.backboneNames.map((n) => c.sd.get(n)),
        [3, 1, 3],
      ),
    );
  const actual = chunked();
  assert.equal(actual.length, c.backboneNames.length);
  c.backboneNames.forEach((name, i) => {
    const e = expected[i] as Float32Array;
    assert.ok(
      e.some((x) => x !== 0),
      `${name}: the expected gradient is not all zero`,
    );
    const r = relativeL2(actual[i] as Float32Array, e);
    assert.ok(r <= TOLERANCE, `${name}: relative L2 ${r}`);
  });
  // The backward pass's recomputation, its gradients and their sums are all freed.
  const before = tf.memory().numTensors;
  chunked();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked by a chunked step');
  c.dispose();
});

test('the chunked path is taken only for a per-sample backbone in training with a batch over the chunk; embed takes it', () => {
  const sd = new StateDict();
  const model = (backbone: Backbone, chunk?: number): MetricModel => ({
    sd,
    backbone,
    shape: { P: 1, K: 1, D: 8, L: 1, H: 1, C: 1 },
    normalize: false,
    ...(chunk ? { backboneChunk: chunk } : {}),
  });
  assert.equal(backboneChunked(model(resnet50({ bnFreeze: true })), DEFAULT_BACKBONE_CHUNK + 1, true), true);
  assert.equal(backboneChunked(model(resnet50({ bnFreeze: true })), DEFAULT_BACKBONE_CHUNK, true), false, 'batch within the chunk');
  assert.equal(backboneChunked(model(googlenet({ bnFreeze: true }), 4), 5, true), true);
  assert.equal(backboneChunked(model(googlenet({ bnFreeze: true }), 4), 5, false), false, 'evaluation: no tape, nothing to chunk');
  // Batch statistics make the forward a function of the whole batch: never split.
  assert.equal(backboneChunked(model(resnet50({ bnFreeze: false }), 4), 81, true), false);
  assert.equal(backboneChunked(model(googlenet({ bnFreeze: false }), 4), 81, true), false);
  assert.equal(backboneChunked(model(smallCnn(3), 4), 81, true), false, 'a backbone that does not declare itself per-sample');
  sd.dispose();

  // embed: the backbone sees the chunks (forward, then the recomputation in the backward pass).
  const c = resnetCase();
  const seen: number[] = [];
  const spy: Backbone = {
    ...c.backbone,
    forward: (s, x, training) => {
      seen.push(x.shape[0]);
      return c.backbone.forward(s, x, training);
    },
  };
  const m = { ...model(spy, 3), sd: c.sd };
  const expected = c.grads(() => c.head(c.backbone.forward(c.sd, c.images, true)));
  seen.length = 0;
  const viaEmbed = c.grads(() => embed(m, c.images, true));
  assert.deepEqual(seen, [3, 2, 2, 3, 2, 2]);
  // Looser than the vjp's 1e-5: a convolution's float rounding depends on its batch size (a
  // one-tape forward of the same chunks concatenated is as far from the full batch's), and the
  // head's BatchNorm1d over 7 images amplifies that ~1e-7 difference in the features.
  assert.ok(Math.abs(viaEmbed.loss - expected.loss) <= 1e-5 * Math.abs(expected.loss), `loss ${viaEmbed.loss} vs ${expected.loss}`);
  c.vars.forEach((v, i) => {
    const r = relativeL2(viaEmbed.grads[i] as Float32Array, expected.grads[i] as Float32Array);
    assert.ok(r <= 5e-4, `${c.sd.nameOf(v)} via embed: relative L2 ${r}`);
  });
  c.dispose();
});

test('bench/finetune.ts picks the chunked step for a batch over --chunk (GoogLeNet), not within it', () => {
  const big = prepareFinetune('googlenet', 20, 16);
  assert.equal(big.chunked, true);
  big.dispose();
  const small = prepareFinetune('googlenet', 16, 16);
  assert.equal(small.chunked, false);
  small.dispose();
});

// ---------------------------------------------------------------------------------------------
// The trainer: model.backboneChunk reaches the step, whose losses match the unchunked run's
// ---------------------------------------------------------------------------------------------

const PREFIX = 'feature_extractor.backbone.';

/** conv (3×3, 1 → 4 channels) → ReLU → global average pool: per sample; records each training forward's batch size. */
function tinyPerSample(seen: number[]): Backbone {
  return {
    name: 'tiny-per-sample',
    features: 4,
    perSampleParameters: () => [`${PREFIX}conv.weight`],
    init(sd: StateDict) {
      const w = tf.randomNormal([4, 1, 3, 3], 0, 0.5, 'float32', 7);
      sd.set(`${PREFIX}conv.weight`, w);
      w.dispose();
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      if (training) seen.push(images.shape[0]);
      return tf.tidy(() => tf.mean(tf.relu(conv2d(images, sd.get(`${PREFIX}conv.weight`), null, { padding: 1 })), [1, 2]) as tf.Tensor2D);
    },
  };
}

function imageSplit(classes: number, perClass: number, seed: number): ImageSplit {
  const n = classes * perClass;
  const pixels = tf.tidy(() => tf.randomNormal([n, 6, 6, 1], 0, 1, 'float32', seed).dataSync() as Float32Array);
  return {
    size: n,
    labels: Int32Array.from({ length: n }, (_, i) => Math.floor(i / perClass)),
    numClasses: classes,
    images: async (idx) => {
      const out = new Float32Array(idx.length * 36);
      idx.forEach((i, r) => out.set(pixels.subarray(i * 36, (i + 1) * 36), r * 36));
      return tf.tensor4d(out, [idx.length, 6, 6, 1]);
    },
  };
}

async function tinyRun(backboneChunk: number): Promise<{ seen: number[]; losses: number[] }> {
  const runDir = mkdtempSync(join(tmpdir(), 'hardneg-chunk-'));
  const config = parseConfig(
    {
      model: { embeddingSize: 4, gnnLayers: 1, attentionHeads: 1, backboneChunk },
      train: { method: 'none', classesPerBatch: 3, samplesPerClass: 2, epochs: 1, maxIterationsPerEpoch: 2, checkpointEvery: 1000 },
      loss: { base: 'npair' },
      eval: { ks: [1], nmi: false },
    },
    'test',
  );
  const seen: number[] = [];
  const train = imageSplit(4, 6, 1);
  await runTraining({
    config,
    runDir,
    train,
    test: imageSplit(3, 3, 2),
    backbone: tinyPerSample(seen),
    sampler: (seed) => asBatchSampler(new BalancedBatchSampler(train.labels, { P: 3, K: 2, seed })),
    resume: false,
  });
  const losses = readFileSync(join(runDir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string; J_m?: number })
    .filter((l) => l.type === 'iteration')
    .map((l) => l.J_m as number);
  return { seen, losses };
}

test('the trainer sends a batch over model.backboneChunk through the backbone in chunks, with the same losses', async () => {
  const whole = await tinyRun(6);
  const chunked = await tinyRun(4);
  assert.equal(parseConfig({}, 'test').model.backboneChunk, DEFAULT_BACKBONE_CHUNK);
  // Two iterations of 6 images: one forward each, or chunks of 3 forward and again in the backward pass.
  assert.deepEqual(whole.seen, [6, 6]);
  assert.deepEqual(chunked.seen, [3, 3, 3, 3, 3, 3, 3, 3]);
  assert.equal(chunked.losses.length, 2);
  // The second iteration's loss depends on the first step's (chunked) gradient.
  chunked.losses.forEach((l, i) => {
    const e = whole.losses[i] as number;
    assert.ok(Math.abs(l - e) <= 1e-5 * Math.max(1, Math.abs(e)), `iteration ${i}: J_m ${l} vs ${e}`);
  });
});
