// The training loop around the iteration (docs/algorithm.md §6.7, §6.8): evaluation inside
// training, the learning-rate schedules over epochs, the J_avg/J_gen epoch means, warm-up and
// BatchNorm freezing, and the evaluation cadence. Every expected value is worked out by hand from
// the formulas in the docs, never read from the code under test. Runs are tiny (a few 6×6 images,
// one iteration per epoch) so the file stays fast.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../src/engine/random.ts';
import { batchNorm2d } from '../src/nn/batch_norm2d.ts';
import { conv2d } from '../src/nn/conv2d_general.ts';
import { globalAvgPool } from '../src/nn/pooling.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import type { StateDict } from '../src/models/state_dict.ts';
import { batchNormShapes, batchNormState, initTorchvision, type TorchvisionBackbone } from '../src/models/torchvision.ts';
import { BalancedBatchSampler } from '../src/samplers/balanced_batch_sampler.ts';
import { asBatchSampler } from '../src/train/datasets.ts';
import { parseConfig } from '../src/train/config.ts';
import { type BnAffinePolicy, freezePlan, frozenAt } from '../src/train/freezing.ts';
import { runTraining } from '../src/train/trainer.ts';
import { featureIdentityBackbone } from '../src/models/onnx_backbone.ts';
import { createMetricModel } from '../src/models/metric_model.ts';
import { HEAD_LINEAR } from '../src/models/embedding_head.ts';
import { evaluateModel } from '../src/train/evaluate_model.ts';
import type { ImageSplit } from '../src/train/image_split.ts';

/** An in-memory split of feature vectors stored as [n, 1, 1, D] "images" (for featureIdentityBackbone). */
function featureSplit(rows: number[][], labels: number[], queryCount?: number): ImageSplit {
  const D = (rows[0] as number[]).length;
  return {
    size: rows.length,
    labels: Int32Array.from(labels),
    numClasses: new Set(labels).size,
    queryCount,
    images: async (idx) =>
      tf.tensor4d(
        idx.flatMap((i) => rows[i] as number[]),
        [idx.length, 1, 1, D],
      ),
  };
}

test('In-Shop evaluation inside training follows eval.semantics (official: ties go to the positives)', async () => {
  // One query (class 0) and a gallery whose first item is a negative (class 1) identical to the
  // positive (class 0) that follows it. The head is the identity (BN1d in eval mode with running
  // mean 0 and variance 1 only scales every row by the same factor), so the query ties with both.
  // textbook: ties by index, the negative ranks first: Recall@1 = 0.
  // official (§7.3): a hit iff fewer than 1 negative scores strictly above the best positive: 1.
  const D = 2;
  const m = createMetricModel(featureIdentityBackbone(D), { P: 2, K: 2, D, H: 1, L: 0, C: 2 }, 0, false, false);
  const eye = tf.tensor2d([
    [1, 0],
    [0, 1],
  ]);
  m.sd.set(`${HEAD_LINEAR}.weight`, eye);
  m.sd.set(`${HEAD_LINEAR}.bias`, tf.zeros([D]));
  const split = featureSplit(
    [
      [1, 0.5], // query, class 0
      [1, 0.5], // gallery 0, class 1
      [1, 0.5], // gallery 1, class 0
      [-1, 0.3], // gallery 2, class 1
    ],
    [0, 1, 0, 1],
    1,
  );
  const recall1 = async (semantics: 'textbook' | 'official') =>
    (await evaluateModel(m, split, 1, { ks: [1], semantics, nmi: false, seed: 0 })).record.recall['1'];
  assert.equal(await recall1('textbook'), 0);
  assert.equal(await recall1('official'), 1);
  eye.dispose();
  m.sd.dispose();
});

// ---------------------------------------------------------------------------------------------
// Which parameters each epoch freezes (QUIRK 6), on the real ResNet-50 and GoogLeNet inventories
// ---------------------------------------------------------------------------------------------

/** The trainable names of a torchvision backbone: weights and biases, not running statistics. */
function trainableNames(b: TorchvisionBackbone): string[] {
  return b
    .parameterShapes()
    .map(([n]) => n)
    .filter((n) => !/\.(running_mean|running_var|num_batches_tracked)$/.test(n))
    .map((n) => b.prefix + n);
}

test('frozen parameters per epoch: warm-up freezes the backbone; BN_FREEZE freezes ResNet-50 BN affine until warm-up ends (QUIRK 6)', () => {
  const rn = resnet50({ bnFreeze: true });
  const gn = googlenet({ bnFreeze: true });
  // ResNet-50: bn1, 3 BatchNorms in each of 3 + 4 + 6 + 3 = 16 bottlenecks, 4 downsample BNs: 53 layers,
  // a weight and a bias each. GoogLeNet: conv1–conv3 and 6 BasicConv2d in each of 9 inception blocks: 57.
  const rnAffine = 2 * (1 + 3 * 16 + 4);
  const gnAffine = 2 * (3 + 6 * 9);
  const frozen = (b: TorchvisionBackbone, warmUpEpochs: number, bnAffine: BnAffinePolicy, bnFreeze = true) => {
    const plan = freezePlan(b, trainableNames(b), { bnFreeze, warmUpEpochs, bnAffine });
    return [0, 1, 2, 3].map((e) => frozenAt(plan, e));
  };
  const isAffine = (n: string) => /(bn\d?|downsample\.1)\.(weight|bias)$/.test(n);
  const sizes = (sets: Set<string>[]) => sets.map((s) => s.size);
  const rnAll = trainableNames(rn).length;
  const gnAll = trainableNames(gn).length;
  // official, warm-up 2: everything frozen in epochs 0 and 1, nothing afterwards (the warm-up loop
  // sets requires_grad True on every backbone parameter, the BN affine ones included).
  assert.deepEqual(sizes(frozen(rn, 2, 'official')), [rnAll, rnAll, 0, 0]);
  assert.deepEqual(sizes(frozen(gn, 2, 'official')), [gnAll, gnAll, 0, 0]);
  // official, no warm-up: the loop never runs, so the constructor's freeze holds for the whole run
  // (ResNet-50 only; the GoogLeNet constructor freezes nothing).
  const noWarm = frozen(rn, 0, 'official');
  assert.deepEqual(sizes(noWarm), [rnAffine, rnAffine, rnAffine, rnAffine]);
  assert.ok([...(noWarm[0] as Set<string>)].every(isAffine), 'only BatchNorm weights and biases');
  assert.deepEqual(sizes(frozen(gn, 0, 'official')), [0, 0, 0, 0]);
  // 'frozen' (the correction): BN affine frozen for the whole run in both backbones.
  assert.deepEqual(sizes(frozen(rn, 1, 'frozen')), [rnAll, rnAffine, rnAffine, rnAffine]);
  assert.deepEqual(sizes(frozen(gn, 0, 'frozen')), [gnAffine, gnAffine, gnAffine, gnAffine]);
  // 'trained': they train whenever the backbone does.
  assert.deepEqual(sizes(frozen(rn, 0, 'trained')), [0, 0, 0, 0]);
  // Without BN_FREEZE nothing but the warm-up freezes anything.
  for (const policy of ['official', 'frozen', 'trained'] as const) assert.deepEqual(sizes(frozen(rn, 1, policy, false)), [rnAll, 0, 0, 0]);
});

// ---------------------------------------------------------------------------------------------
// The loop itself: tiny runs of runTraining
// ---------------------------------------------------------------------------------------------

const TINY_PREFIX = 'feature_extractor.backbone.model.';

interface Snapshot {
  conv: number[];
  bnWeight: number[];
  bnBias: number[];
  runningMean: number[];
  runningVar: number[];
}

/**
 * A torchvision-like backbone small enough for loop tests: conv1 (3×3, 1 → 4 channels) → bn1 →
 * ReLU → global average pool, under ResNet-50's prefix, declaring the ResNet constructor's BN
 * freeze. Every training-mode forward (one per iteration) records the backbone's tensors as they
 * are when the iteration starts.
 */
function tinyResNetLike(bnFreeze: boolean, snapshots: Snapshot[]): TorchvisionBackbone {
  const shapes: Array<[string, number[]]> = [['conv1.weight', [4, 1, 3, 3]], ...batchNormShapes('bn1', 4)];
  const read = (sd: StateDict, n: string) => Array.from(sd.get(TINY_PREFIX + n).dataSync());
  return {
    name: 'tiny-resnet-like',
    features: 4,
    prefix: TINY_PREFIX,
    bnFreeze,
    constructorFreezesBnAffine: true,
    parameterShapes: () => shapes.map(([n, s]) => [n, [...s]]),
    batchNormAffineNames: () => [`${TINY_PREFIX}bn1.weight`, `${TINY_PREFIX}bn1.bias`],
    init(sd: StateDict, rng: Random) {
      initTorchvision(sd, TINY_PREFIX, shapes, rng, 'kaiming-fan-out');
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      if (training) {
        snapshots.push({
          conv: read(sd, 'conv1.weight'),
          bnWeight: read(sd, 'bn1.weight'),
          bnBias: read(sd, 'bn1.bias'),
          runningMean: read(sd, 'bn1.running_mean'),
          runningVar: read(sd, 'bn1.running_var'),
        });
      }
      return tf.tidy(() => {
        const x = conv2d(images, sd.get(`${TINY_PREFIX}conv1.weight`), null, { padding: 1 });
        return globalAvgPool(tf.relu(batchNorm2d(x, batchNormState(sd, `${TINY_PREFIX}bn1`), training && !bnFreeze)) as tf.Tensor4D);
      });
    },
  };
}

/** n random 6×6 grey images per class, labels 0..classes−1 (seeded, so runs are repeatable). */
function imageSplit(classes: number, perClass: number, seed: number): ImageSplit {
  const n = classes * perClass;
  const pixels = tf.tidy(() => tf.randomNormal([n, 6, 6, 1], 0, 1, 'float32', seed).dataSync() as Float32Array);
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / perClass));
  return {
    size: n,
    labels,
    numClasses: classes,
    images: async (idx) => {
      const out = new Float32Array(idx.length * 36);
      idx.forEach((i, r) => out.set(pixels.subarray(i * 36, (i + 1) * 36), r * 36));
      return tf.tensor4d(out, [idx.length, 6, 6, 1]);
    },
  };
}

interface LogLine {
  type: string;
  epoch: number;
  [key: string]: unknown;
}

/** Trains a tiny model (P = 2, K = 2, one or two iterations per epoch) and returns its log and snapshots. */
async function tinyRun(
  settings: Record<string, Record<string, unknown>>,
  opts: { bnFreeze?: boolean } = {},
): Promise<{ log: LogLine[]; snapshots: Snapshot[]; evaluated: number[] }> {
  const runDir = mkdtempSync(join(tmpdir(), 'hardneg-loop-'));
  const config = parseConfig(
    {
      ...settings,
      model: { embeddingSize: 4, gnnLayers: 1, attentionHeads: 1, ...settings.model },
      train: { classesPerBatch: 2, samplesPerClass: 2, maxIterationsPerEpoch: 1, checkpointEvery: 1000, ...settings.train },
      eval: { ks: [1], nmi: false, ...settings.eval },
    },
    'test',
  );
  const snapshots: Snapshot[] = [];
  const evaluated: number[] = [];
  const train = imageSplit(4, 6, 1);
  await runTraining({
    config,
    runDir,
    train,
    test: imageSplit(3, 3, 2),
    backbone: tinyResNetLike(opts.bnFreeze ?? config.solver.bnFreeze, snapshots),
    sampler: (seed) => asBatchSampler(new BalancedBatchSampler(train.labels, { P: 2, K: 2, seed })),
    resume: false,
    onEvaluation: (r) => evaluated.push(r.epoch),
  });
  const log = readFileSync(join(runDir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LogLine);
  return { log, snapshots, evaluated };
}

const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

test('warm-up and BN freezing in the loop: backbone unchanged during warm-up; BN affine follows solver.bnAffine; running stats kept under BN_FREEZE', async () => {
  // Two iterations per epoch: snapshot 2e + i is taken as iteration i of epoch e starts.
  const run = (warmUpEpochs: number, bnAffine: BnAffinePolicy, bnFreeze = true) =>
    tinyRun({ train: { method: 'none', epochs: 3, maxIterationsPerEpoch: 2 }, solver: { warmUpEpochs, bnAffine, bnFreeze }, loss: { base: 'npair' } });
  const changedAt = (s: Snapshot[], key: keyof Snapshot) => s.slice(1).map((x, i) => !same(x[key], (s[i] as Snapshot)[key]));

  // official, one warm-up epoch: nothing of the backbone moves in epoch 0 (snapshots 0 → 1 → 2),
  // then the convolution and the BN affine parameters train (2 → 3, 3 → 4, …).
  const warm = await run(1, 'official');
  assert.equal(warm.snapshots.length, 6);
  assert.deepEqual(changedAt(warm.snapshots, 'conv'), [false, false, true, true, true]);
  assert.deepEqual(changedAt(warm.snapshots, 'bnWeight'), [false, false, true, true, true]);
  assert.deepEqual(changedAt(warm.snapshots, 'bnBias'), [false, false, true, true, true]);
  // BN_FREEZE: the running statistics never move, in warm-up or after.
  assert.deepEqual(changedAt(warm.snapshots, 'runningMean'), [false, false, false, false, false]);
  assert.deepEqual(changedAt(warm.snapshots, 'runningVar'), [false, false, false, false, false]);

  // official, no warm-up: the convolution trains from the first iteration, the BN affine never.
  const noWarm = await run(0, 'official');
  assert.deepEqual(changedAt(noWarm.snapshots, 'conv'), [true, true, true, true, true]);
  assert.deepEqual(changedAt(noWarm.snapshots, 'bnWeight'), [false, false, false, false, false]);
  assert.deepEqual(changedAt(noWarm.snapshots, 'bnBias'), [false, false, false, false, false]);

  // The correction keeps them frozen after a warm-up too; 'trained' trains them from the start.
  const frozen = await run(1, 'frozen');
  assert.deepEqual(changedAt(frozen.snapshots, 'conv'), [false, false, true, true, true]);
  assert.deepEqual(changedAt(frozen.snapshots, 'bnWeight'), [false, false, false, false, false]);
  const trained = await run(0, 'trained');
  assert.deepEqual(changedAt(trained.snapshots, 'bnWeight'), [true, true, true, true, true]);

  // Without BN_FREEZE the running statistics move at every training forward, warm-up included
  // (QUIRK 6: only frozen BatchNorms keep them), and the BN affine trains after the warm-up.
  const live = await run(1, 'official', false);
  assert.deepEqual(changedAt(live.snapshots, 'runningMean'), [true, true, true, true, true]);
  assert.deepEqual(changedAt(live.snapshots, 'conv'), [false, false, true, true, true]);
  assert.deepEqual(changedAt(live.snapshots, 'bnWeight'), [false, false, true, true, true]);
});

test('loss.options and method.options reach the loss and the generator the trainer builds', async () => {
  const iterations = (log: LogLine[]) => log.filter((l) => l.type === 'iteration');
  // Triplet on L2-normalised embeddings: every distance is in [0, 2], so each triplet's hinge
  // [d(a,p) − d(a,n) + m]_+ lies in [m − 2, m + 2]; with m = 100 every triplet counts and the mean
  // is in [98, 102]; with the default m = 0.05 it is at most 2.05.
  const run = (options: Record<string, unknown>) =>
    tinyRun({ train: { method: 'none', epochs: 1 }, loss: { base: 'triplet', options }, solver: { warmUpEpochs: 0 } });
  const big = iterations((await run({ margin: 100 })).log)[0]?.J_m as number;
  assert.ok(big >= 98 && big <= 102, `margin 100: J_m = ${big}`);
  const small = iterations((await run({})).log)[0]?.J_m as number;
  assert.ok(small <= 2.05, `default margin: J_m = ${small}`);
  // hdml-lite logs φ = exp(−α/J_avg); in the first epoch J_avg = 1e6, so α = 1e6 gives e^{−1}.
  const hdml = await tinyRun({ train: { method: 'hdml-lite', epochs: 1 }, loss: { base: 'npair' }, method: { options: { alpha: 1e6 } } });
  assert.ok(Math.abs((iterations(hdml.log)[0]?.phi as number) - Math.exp(-1)) < 1e-6, `φ = ${iterations(hdml.log)[0]?.phi}`);
});

/** The iteration lines of epoch e. */
const epochLines = (log: LogLine[], e: number) => log.filter((l) => l.type === 'iteration' && l.epoch === e);

test('GCA-HNG loop: step schedule and the GNN cosine per epoch, J_avg/J_gen epoch means fed to the next epoch (1e6 first), evaluation every train.evalEvery epochs and after the last', async () => {
  const { log, evaluated } = await tinyRun({
    train: { method: 'gca-hng', epochs: 5, maxIterationsPerEpoch: 2, evalEvery: 2 },
    solver: { baseLr: 1e-3, gnnLr: 3e-4, lrPolicy: 'step', metricGamma: 0.5, metricDecaySteps: 2, warmUpEpochs: 1 },
    loss: { alpha: 4, beta: 30 },
  });
  // opt_c (logged: the head group, BASE_LR·EMBEDDING_RATIO with ratio 1): base·γ^⌊e/2⌋, the
  // warm-up epoch included (the schedule steps every epoch whatever is frozen).
  const step = [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4];
  // opt_gnn: 3e-4·(1 + cos(πe/5))/2, cos(π/5) = 0.80901699…, cos(2π/5) = 0.30901699…
  const gnn = [3e-4, 2.713525491562421e-4, 1.963525491562421e-4, 1.036474508437579e-4, 2.86474508437579e-5];
  for (let e = 0; e < 5; e++) {
    const lines = epochLines(log, e);
    assert.equal(lines.length, 2, `epoch ${e}: two iterations`);
    for (const l of lines) {
      assert.ok(Math.abs((l.lr as number) - (step[e] as number)) < 1e-15, `epoch ${e}: lr ${l.lr}, expected ${step[e]}`);
      assert.ok(Math.abs((l.lr_gnn as number) - (gnn[e] as number)) < 1e-15, `epoch ${e}: lr_gnn ${l.lr_gnn}, expected ${gnn[e]}`);
    }
  }
  // Epoch 0 uses Ĵ = Ĵ_gen = 1e6: φ = exp(−4/1e6), e_bj = exp(−30/1e6). Every later epoch uses the
  // means of the previous epoch's max(J_m, 1e-6) and max(J_gen, 1e-6), fixed within the epoch.
  let jAvg = 1e6;
  let jGen = 1e6;
  for (let e = 0; e < 5; e++) {
    const lines = epochLines(log, e);
    for (const l of lines) {
      assert.ok(Math.abs((l.para_scale as number) - Math.exp(-4 / jAvg)) < 1e-12, `epoch ${e}: φ ${l.para_scale} vs exp(−4/${jAvg})`);
      assert.ok(Math.abs((l.e_bj as number) - Math.exp(-30 / jGen)) < 1e-12, `epoch ${e}: e_bj ${l.e_bj} vs exp(−30/${jGen})`);
    }
    jAvg = lines.reduce((s, l) => s + Math.max(l.J_m as number, 1e-6), 0) / lines.length;
    jGen = lines.reduce((s, l) => s + Math.max(l.J_gen as number, 1e-6), 0) / lines.length;
  }
  // Evaluated after epochs 2 and 4 ((e + 1) mod 2 = 0) and after the last one, 5.
  assert.deepEqual(evaluated, [2, 4, 5]);
  assert.deepEqual(
    log.filter((l) => l.type === 'evaluation').map((l) => l.epoch),
    [2, 4, 5],
  );
});

test('learning-rate policies cos and exp over the epochs, with a warm-up epoch', async () => {
  const lrs = async (lrPolicy: string, metricDecaySteps: number) => {
    const { log } = await tinyRun({
      train: { method: 'none', epochs: 5, evalEvery: 5 },
      loss: { base: 'npair' },
      solver: { baseLr: 1e-3, lrPolicy, metricDecaySteps, warmUpEpochs: 1 },
    });
    return [0, 1, 2, 3, 4].map((e) => epochLines(log, e)[0]?.lr as number);
  };
  // cos, T_max = 4: 1e-3·(1 + cos(πe/4))/2 with cos(π/4) = 0.70710678…; at e = 4 the rate is 0.
  const cos = [1e-3, 8.535533905932737e-4, 5e-4, 1.464466094067262e-4, 0];
  // exp: 1e-3·0.9^e.
  const exp = [1e-3, 9e-4, 8.1e-4, 7.29e-4, 6.561e-4];
  for (const [got, want, name] of [
    [await lrs('cos', 4), cos, 'cos'],
    [await lrs('exp', 4), exp, 'exp'],
  ] as const)
    got.forEach((v, e) => assert.ok(Math.abs(v - (want[e] as number)) < 1e-15, `${name} epoch ${e}: ${v}, expected ${want[e]}`));
});
