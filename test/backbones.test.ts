// Pretrained backbones (ResNet-50, GoogLeNet) against PyTorch/torchvision on the same weights, and
// the layers they are built from (strided convolution, ceil-mode max-pooling, BatchNorm2d).
//
// The fixtures (test/fixtures/backbones/, written by scripts/backbones/make_fixtures.py) store no
// weights: every tensor is a function of its name and element index, regenerated here bit for bit
// (detTensor below mirrors det_tensor in the script).
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { type HostTensor, toNumbers } from '../src/io/host_tensor.ts';
import { readNpy } from '../src/io/npy.ts';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { loadTorchvisionWeights } from '../src/models/torchvision.ts';
import { Random } from '../src/engine/random.ts';
import { batchNorm2d } from '../src/nn/batch_norm2d.ts';
import { conv2d } from '../src/nn/conv2d_general.ts';
import { maxPool2d, poolOutputSize } from '../src/nn/pooling.ts';
import { relativeL2 } from './helpers/close.ts';
import { detProbe, detStateDict, detTensor } from './helpers/det_weights.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'backbones');
const TOLERANCE = 1e-4;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

interface Meta {
  state_dict: Array<{ name: string; shape: number[]; dtype: string }>;
  weight_sums: Record<string, number>;
  gradients: Record<string, { norm: number; dot: number }>;
  running_after_train_forward: Record<string, { running_mean: number; running_var: number; num_batches_tracked: number }>;
  official_prefix: string;
  torch_float32_rel_error: { eval: number; train_bn: number };
}

function meta(model: string): Meta {
  return JSON.parse(readFileSync(join(FIXTURES, `${model}.json`), 'utf8')) as Meta;
}

/** An NCHW .npy batch as an NHWC tensor. */
function nhwcInput(model: string): tf.Tensor4D {
  const t = readNpy(join(FIXTURES, `${model}.input.npy`));
  return tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [0, 2, 3, 1]));
}

function expected(file: string): Float64Array {
  return Float64Array.from(toNumbers(readNpy(join(FIXTURES, file))));
}

function officialInventory(model: string): Array<[string, number[]]> {
  // torchvision's state dict minus the classifier (unused by the backbone forward, not kept).
  return meta(model)
    .state_dict.filter((e) => !e.name.startsWith('fc.'))
    .map((e) => [e.name, e.shape]);
}

// ---------------------------------------------------------------------------------------------
// The building blocks
// ---------------------------------------------------------------------------------------------

async function onCpu<T>(fn: () => Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    return await fn();
  } finally {
    await tf.setBackend(previous);
  }
}

test('strided, padded conv2d: value and both gradients equal tf.conv2d on the cpu backend', async () => {
  const cases: Array<[number, number, number, number, number, number, number]> = [
    // h, w, k, stride, padding, cin, cout
    [9, 11, 3, 2, 1, 3, 4],
    [8, 8, 1, 2, 0, 5, 6],
    [13, 10, 7, 2, 3, 3, 8],
    [7, 9, 3, 1, 1, 4, 4],
    [10, 7, 3, 2, 0, 2, 3],
    [7, 7, 1, 2, 0, 4, 3],
    [12, 11, 5, 3, 2, 3, 2],
    [6, 5, 1, 1, 0, 3, 2],
  ];
  for (const [h, w, k, s, p, cin, cout] of cases) {
    const rng = new Random(h * 100 + k);
    const xv = Float32Array.from({ length: 2 * h * w * cin }, () => rng.normal());
    const wv = Float32Array.from({ length: cout * cin * k * k }, () => rng.normal());
    const oh = Math.floor((h + 2 * p - k) / s) + 1;
    const ow = Math.floor((w + 2 * p - k) / s) + 1;
    const rv = Float32Array.from({ length: 2 * oh * ow * cout }, () => rng.normal());
    const run = async (ours: boolean) => {
      const x = tf.tensor4d(xv, [2, h, w, cin]);
      const wt = tf.tensor4d(wv, [cout, cin, k, k]);
      const r = tf.tensor(rv, [2, oh, ow, cout]);
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.mul(
            ours
              ? conv2d(a as tf.Tensor4D, b, null, { stride: s, padding: p })
              : tf.conv2d(
                  a as tf.Tensor4D,
                  tf.transpose(b, [2, 3, 1, 0]) as tf.Tensor4D,
                  s,
                  p === 0
                    ? 'valid'
                    : [
                        [0, 0],
                        [p, p],
                        [p, p],
                        [0, 0],
                      ],
                ),
            r,
          ),
        );
      const value = ours ? conv2d(x, wt, null, { stride: s, padding: p }) : null;
      if (value) assert.deepEqual(value.shape, [2, oh, ow, cout]);
      const [gx, gw] = tf.grads(f)([x, wt]);
      const out = [await f(x, wt).data(), await (gx as tf.Tensor).data(), await (gw as tf.Tensor).data()];
      tf.dispose([x, wt, r, gx as tf.Tensor, gw as tf.Tensor, ...(value ? [value] : [])]);
      return out;
    };
    const ours = await run(true);
    const ref = await onCpu(() => run(false));
    ours.forEach((v, i) =>
      assert.ok(relativeL2(v, ref[i] as Float32Array) < 1e-5, `case ${[h, w, k, s, p]}, output ${i}: ${relativeL2(v, ref[i] as Float32Array)}`),
    );
  }
});

test('maxPool2d: torch output sizes (ceil_mode), values, and gradients to the first maximum of each window', async () => {
  // torch.nn.functional pooling_output_shape, e.g. GoogLeNet's pools and ResNet's stem pool.
  assert.equal(poolOutputSize(38, 3, 2, 0, true), 19);
  assert.equal(poolOutputSize(31, 3, 2, 0, true), 15);
  assert.equal(poolOutputSize(3, 2, 2, 0, true), 2);
  assert.equal(poolOutputSize(5, 2, 2, 1, true), 3); // (3−1)·2 = 4 < 5 + 1
  assert.equal(poolOutputSize(4, 2, 2, 1, true), 3);
  assert.equal(poolOutputSize(32, 3, 2, 1, false), 16);
  for (const [h, w, k, s, p, ceil] of [
    [7, 9, 3, 2, 1, true],
    [8, 8, 2, 2, 0, false],
    [6, 7, 3, 1, 1, true],
    [9, 10, 3, 2, 0, true],
  ] as const) {
    const rng = new Random(h + w);
    const c = 2;
    // Quantised values force ties, which must go to the first maximum in row-major order.
    const xv = Float32Array.from({ length: h * w * c }, () => Math.round(rng.normal() * 2) / 2 + 0); // + 0: no −0
    const x = tf.tensor4d(xv, [1, h, w, c]);
    const y = maxPool2d(x, k, { stride: s, padding: p, ceilMode: ceil });
    const dyv = Float32Array.from({ length: y.size }, () => rng.normal());
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(maxPool2d(a as tf.Tensor4D, k, { stride: s, padding: p, ceilMode: ceil }), tf.tensor(dyv, y.shape))))(x);
    const oh = poolOutputSize(h, k, s, p, ceil);
    const ow = poolOutputSize(w, k, s, p, ceil);
    assert.deepEqual(y.shape, [1, oh, ow, c]);
    const want = new Float32Array(oh * ow * c);
    const wantGrad = new Float64Array(h * w * c);
    for (let ch = 0; ch < c; ch++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let best = -Infinity;
          let at = -1;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const yy = oy * s - p + i;
              const xx = ox * s - p + j;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              const v = xv[(yy * w + xx) * c + ch] as number;
              if (v > best) {
                best = v;
                at = (yy * w + xx) * c + ch;
              }
            }
          const o = (oy * ow + ox) * c + ch;
          want[o] = best;
          wantGrad[at] = (wantGrad[at] as number) + (dyv[o] as number);
        }
    assert.deepEqual(Array.from(await y.data()), Array.from(want), `values ${[h, w, k, s, p, ceil]}`);
    assert.ok(relativeL2(await g.data(), wantGrad) < 1e-6, `gradient ${[h, w, k, s, p, ceil]}`);
    tf.dispose([x, y, g]);
  }
});

test('batchNorm2d: eval uses running statistics; training uses batch statistics and updates them (unbiased variance)', async () => {
  const rng = new Random(9);
  const [n, h, w, c] = [2, 3, 4, 5];
  const xv = Float32Array.from({ length: n * h * w * c }, () => rng.normal() * 2 + 1);
  const x = tf.tensor4d(xv, [n, h, w, c]);
  const s = {
    weight: tf.variable(tf.tensor1d([1, 2, 0.5, 1.5, 1])),
    bias: tf.variable(tf.tensor1d([0, 1, -1, 0.5, 0])),
    runningMean: tf.variable(tf.tensor1d([0.1, 0.2, 0.3, 0.4, 0.5]), false),
    runningVar: tf.variable(tf.tensor1d([1, 2, 3, 4, 5]), false),
  };
  let tracked = 0;
  const evalOut = await batchNorm2d(x, s, false, { eps: 1e-3 }).data();
  const trainOut = await batchNorm2d(
    x,
    {
      ...s,
      onTrack: () => {
        tracked++;
      },
    },
    true,
    { eps: 1e-3 },
  ).data();
  const W = [1, 2, 0.5, 1.5, 1];
  const B = [0, 1, -1, 0.5, 0];
  const rm = [0.1, 0.2, 0.3, 0.4, 0.5];
  const rv = [1, 2, 3, 4, 5];
  const newMean = await s.runningMean.data();
  const newVar = await s.runningVar.data();
  for (let ch = 0; ch < c; ch++) {
    const vals = Array.from({ length: n * h * w }, (_, i) => xv[i * c + ch] as number);
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    const biased = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length;
    vals.forEach((v, i) => {
      const ev = ((v - (rm[ch] as number)) / Math.sqrt((rv[ch] as number) + 1e-3)) * (W[ch] as number) + (B[ch] as number);
      const tv = ((v - mean) / Math.sqrt(biased + 1e-3)) * (W[ch] as number) + (B[ch] as number);
      assert.ok(Math.abs((evalOut[i * c + ch] as number) - ev) < 1e-5);
      assert.ok(Math.abs((trainOut[i * c + ch] as number) - tv) < 1e-5);
    });
    assert.ok(Math.abs((newMean[ch] as number) - (0.9 * (rm[ch] as number) + 0.1 * mean)) < 1e-6);
    assert.ok(Math.abs((newVar[ch] as number) - (0.9 * (rv[ch] as number) + (0.1 * biased * 24) / 23)) < 1e-5);
  }
  assert.equal(tracked, 1);
  tf.dispose([x, s.weight, s.bias, s.runningMean, s.runningVar]);
});

// ---------------------------------------------------------------------------------------------
// ResNet-50 and GoogLeNet against torchvision
// ---------------------------------------------------------------------------------------------

for (const model of ['resnet50', 'googlenet'] as const) {
  const build = (bnFreeze = true) => (model === 'resnet50' ? resnet50({ bnFreeze }) : googlenet({ bnFreeze }));

  test(`${model}: state-dict names, shapes and order are torchvision's, under the official prefix`, () => {
    const b = build();
    const m = meta(model);
    assert.equal(b.prefix, m.official_prefix);
    assert.deepEqual(b.parameterShapes(), officialInventory(model));
    const sd = new StateDict();
    b.init(sd, new Random(1));
    assert.deepEqual(
      sd.names().sort(),
      officialInventory(model)
        .map(([n]) => b.prefix + n)
        .sort(),
    );
    assert.equal(sd.counter(`${b.prefix}${model === 'resnet50' ? 'bn1' : 'conv1.bn'}.num_batches_tracked`), 0);
    const bn = b.batchNormAffineNames();
    assert.equal(bn.length, officialInventory(model).filter(([n]) => n.endsWith('.running_mean')).length * 2);
    assert.ok(bn.every((n) => sd.has(n) && sd.get(n).shape.length === 1));
    sd.dispose();
  });

  test(`${model}: forward (eval, BN-frozen training gradients, training-mode BN) matches PyTorch on the same weights`, async (t) => {
    const m = meta(model);
    const b = build();
    const weights = detStateDict(b);
    // 1. The generator reproduces the script's weights (float64 sums of every tensor).
    for (const [name, want] of Object.entries(m.weight_sums)) {
      if (name.startsWith('fc.')) continue;
      const data = (weights.get(name) as HostTensor).data as Float32Array;
      let sum = 0;
      let abs = 0;
      for (const v of data) {
        sum += v;
        abs += Math.abs(v);
      }
      assert.ok(Math.abs(sum - want) <= 1e-9 * abs + 1e-12, `weights of '${name}' differ from the fixture script's: sum ${sum} vs ${want}`);
    }
    // 2. Load (through the safetensors format, official names) and run in eval mode.
    const sd = new StateDict();
    const official = new Map([...weights].map(([n, v]) => [b.prefix + n, v]));
    const report = loadTorchvisionWeights(sd, b, parseSafetensors(serializeSafetensors(official)).tensors, 'fixture');
    assert.equal(report.loaded.length, weights.size);
    const x = nhwcInput(model);
    const evalOut = b.forward(sd, x, false);
    const errEval = relativeL2(await evalOut.data(), expected(`${model}.expected.npy`));
    t.diagnostic(
      `eval forward: relative L2 error ${errEval.toExponential(2)} (PyTorch float32: ${m.torch_float32_rel_error.eval.toExponential(2)}; features [${evalOut.shape.join(', ')}])`,
    );
    assert.deepEqual(evalOut.shape, [2, b.features]);
    assert.ok(errEval <= TOLERANCE, `eval forward: relative error ${errEval}`);
    // 3. Training mode with BN frozen: gradients of L = Σ features ⊙ R for every parameter.
    const R = tf.tensor2d(Float32Array.from(detProbe('probe.R', evalOut.size)), evalOut.shape);
    const names = sd.trainable([b.prefix]);
    const loss = () => tf.sum(tf.mul(b.forward(sd, x, true), R)) as tf.Scalar;
    const { value, grads } = tf.variableGrads(
      loss,
      names.map((n) => sd.get(n)),
    );
    let worstNorm = 0;
    let worstDot = 0;
    for (const name of names) {
      const bare = name.slice(b.prefix.length);
      const want = m.gradients[bare];
      assert.ok(want, `PyTorch has no gradient for '${bare}'`);
      const g = await (grads[sd.get(name).name] as tf.Tensor).data();
      const P = detProbe(`probe.${bare}`, g.length);
      let norm = 0;
      let dot = 0;
      let pnorm = 0;
      g.forEach((v, i) => {
        norm += v * v;
        dot += v * (P[i] as number);
        pnorm += (P[i] as number) ** 2;
      });
      norm = Math.sqrt(norm);
      const eNorm = Math.abs(norm - want.norm) / want.norm;
      // ⟨g, P⟩ error relative to its scale ‖g‖·‖P‖/√numel (the size of ⟨g, P⟩ for an unrelated P).
      const eDot = Math.abs(dot - want.dot) / (want.norm * Math.sqrt(pnorm / g.length));
      worstNorm = Math.max(worstNorm, eNorm);
      worstDot = Math.max(worstDot, eDot);
      assert.ok(eNorm <= TOLERANCE && eDot <= TOLERANCE, `gradient of '${bare}': norm error ${eNorm}, projection error ${eDot}`);
    }
    assert.equal(names.length, Object.keys(m.gradients).length);
    t.diagnostic(
      `BN-frozen gradients of ${names.length} tensors: worst relative norm error ${worstNorm.toExponential(2)}, worst projection error ${worstDot.toExponential(2)}`,
    );
    // Frozen BN keeps its running statistics.
    const bn1 = `${b.prefix}${model === 'resnet50' ? 'bn1' : 'conv1.bn'}`;
    assert.deepEqual(Array.from(await sd.get(`${bn1}.running_mean`).data()), Array.from(detTensor(`${bn1.slice(b.prefix.length)}.running_mean`, [64])));
    assert.equal(sd.counter(`${bn1}.num_batches_tracked`), 0);
    // One SGD step along the gradient lowers the loss.
    const lr = 1e-3 / Math.max(...(await Promise.all(names.map(async (n) => (await tf.norm(grads[sd.get(n).name] as tf.Tensor).data())[0] as number))));
    for (const n of names) {
      const v = sd.get(n);
      v.assign(tf.tidy(() => tf.sub(v, tf.mul(grads[v.name] as tf.Tensor, lr))));
    }
    const after = tf.tidy(() => tf.sum(tf.mul(b.forward(sd, x, true), R)));
    const [before, now] = [(await value.data())[0] as number, (await after.data())[0] as number];
    t.diagnostic(`one SGD step: loss ${before.toPrecision(8)} → ${now.toPrecision(8)}`);
    assert.ok(now < before, `loss did not decrease: ${before} → ${now}`);
    tf.dispose([value, after, ...Object.values(grads)]);
    // 4. BatchNorm2d in training mode (BN_FREEZE False): batch statistics, running statistics move.
    sd.dispose();
    const sd2 = StateDict.fromHost(official);
    const bt = build(false);
    const trainOut = bt.forward(sd2, x, true);
    const errTrain = relativeL2(await trainOut.data(), expected(`${model}.train_bn.npy`));
    // Batch statistics over 2 small images are ill-conditioned (8–12 values per channel in the last
    // blocks): PyTorch's own float32 forward is ~5e-5 off the float64 reference here, so the bound
    // is a few times PyTorch's float32 error rather than 1e-4.
    const torch32 = m.torch_float32_rel_error.train_bn;
    t.diagnostic(`training-mode BatchNorm forward: relative L2 error ${errTrain.toExponential(2)} (PyTorch float32: ${torch32.toExponential(2)})`);
    assert.ok(errTrain <= Math.max(TOLERANCE, 4 * torch32), `training-mode BN forward: relative error ${errTrain}`);
    for (const [layer, want] of Object.entries(m.running_after_train_forward)) {
      const full = bt.prefix + layer;
      assert.equal(sd2.counter(`${full}.num_batches_tracked`), want.num_batches_tracked, layer);
      for (const stat of ['running_mean', 'running_var'] as const) {
        const got = (await tf.sum(sd2.get(`${full}.${stat}`)).data())[0] as number;
        assert.ok(Math.abs(got - want[stat]) <= 1e-4 * Math.max(1, Math.abs(want[stat])), `${layer}.${stat}: sum ${got} vs ${want[stat]}`);
      }
    }
    tf.dispose([x, evalOut, R, trainOut]);
    sd2.dispose();
  });
}

test('loading torchvision weights: bare and official names, fc and aux heads skipped, clear errors', () => {
  const b = googlenet();
  const weights = detStateDict(b);
  const bare = new Map(weights);
  bare.set('fc.weight', { dtype: 'F32', shape: [2, 1024], data: new Float32Array(2048) });
  bare.set('aux1.conv.conv.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
  const sd = new StateDict();
  const r = loadTorchvisionWeights(sd, b, bare, 'googlenet.safetensors');
  assert.deepEqual(r.ignored.sort(), ['aux1.conv.conv.weight', 'fc.weight']);
  assert.equal(r.loaded.length, weights.size);
  assert.ok(sd.has('feature_extractor.backbone.inception5b.branch4.1.bn.running_var'));
  // An official checkpoint: head, GNN and classifier entries are not the backbone's business.
  const ckpt = new Map([...weights].map(([n, v]) => [`feature_extractor.backbone.${n}`, v]));
  ckpt.set('feature_extractor.fc.1.bias', { dtype: 'F32', shape: [4], data: new Float32Array(4) });
  ckpt.set('gnn.fc.0.bias', { dtype: 'F32', shape: [4], data: new Float32Array(4) });
  assert.equal(loadTorchvisionWeights(sd, b, ckpt).ignored.length, 2);
  const missing = new Map(weights);
  missing.delete('conv3.bn.running_var');
  assert.throws(
    () => loadTorchvisionWeights(sd, b, missing, 'g.safetensors'),
    /g\.safetensors: 1 googlenet tensor\(s\) missing, e\.g\. 'conv3\.bn\.running_var'/,
  );
  const wrong = new Map(weights);
  wrong.set('conv1.conv.weight', { dtype: 'F32', shape: [64, 3, 3, 3], data: new Float32Array(64 * 27) });
  assert.throws(
    () => loadTorchvisionWeights(sd, b, wrong, 'g.safetensors'),
    /'conv1\.conv\.weight' has shape \[64, 3, 3, 3\], googlenet expects \[64, 3, 7, 7\]/,
  );
  const resnetInGoogLeNet = new Map(weights);
  resnetInGoogLeNet.set('layer1.0.conv1.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
  assert.throws(() => loadTorchvisionWeights(sd, b, resnetInGoogLeNet, 'r.safetensors'), /'layer1\.0\.conv1\.weight' is not a googlenet parameter/);
  sd.dispose();
});

test('forward and backward passes leave no tensors behind (eval, BN-frozen and training-mode BN)', () => {
  const sd = new StateDict();
  const frozen = googlenet();
  frozen.init(sd, new Random(4));
  const x = tf.randomNormal([2, 40, 44, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  const names = sd.trainable([frozen.prefix]);
  for (const b of [frozen, googlenet({ bnFreeze: false })]) {
    const before = tf.memory().numTensors;
    tf.dispose(b.forward(sd, x, false));
    const { value, grads } = tf.variableGrads(
      () => tf.sum(b.forward(sd, x, true)) as tf.Scalar,
      names.map((n) => sd.get(n)),
    );
    assert.equal(Object.keys(grads).length, names.length);
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, `${b.bnFreeze ? 'BN-frozen' : 'training-mode BN'}: tensors leaked`);
  }
  assert.equal(sd.counter('feature_extractor.backbone.conv1.bn.num_batches_tracked'), 1, 'only the training-mode BN pass counts a batch');
  x.dispose();
  sd.dispose();
});
