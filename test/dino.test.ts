// DINO's ViT-S/16 (src/models/dino_vit.ts) against the PyTorch model of scripts/backbones/vit_s16.py on
// the same generated weights (test/fixtures/backbones/dino-vits16.*, written by
// scripts/backbones/make_fixtures.py): the inventory, eval-mode CLS features at 224 px and at a size
// that resizes the position embedding, the gradients of both training-memory modes, loading from a
// .pth, and the official head's orthogonal initialisation.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { type HostTensor, toNumbers } from '../src/io/host_tensor.ts';
import { readNpy } from '../src/io/npy.ts';
import { readStateDict } from '../src/io/state_dict_file.ts';
import { Random } from '../src/engine/random.ts';
import { bicubicMatrix, DINO_PREFIX, dinoVitS16, type BlockMemory } from '../src/models/dino_vit.ts';
import { HEAD_LINEAR } from '../src/models/embedding_head.ts';
import { createMetricModel } from '../src/models/metric_model.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { loadTorchvisionWeights } from '../src/models/torchvision.ts';
import { hardneg } from './helpers/cli.ts';
import { relativeL2 } from './helpers/close.ts';
import { detInput, detProbe, detTensor } from './helpers/det_weights.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'backbones');
const FORWARD_TOLERANCE = 1e-4;
const GRADIENT_TOLERANCE = 1e-3;

interface Case {
  input: { name: string; shape: [number, number, number, number] };
  expected: string;
  gradients: Record<string, { norm: number; dot: number }>;
}
interface Meta {
  official_prefix: string;
  cases: Record<'224' | 'small', Case>;
  torch_float32_rel_error: Record<string, number>;
  views: { file: string; expected: string; input: { name: string; shape: [number, number, number, number] } };
  state_dict: Array<{ name: string; shape: number[] }>;
  weight_sums: Record<string, number>;
}

const meta = JSON.parse(readFileSync(join(FIXTURES, 'dino-vits16.json'), 'utf8')) as Meta;
const expected = (file: string) => Float64Array.from(toNumbers(readNpy(join(FIXTURES, file))));

/** A generated NCHW batch as NHWC. */
function input(spec: { name: string; shape: [number, number, number, number] }): tf.Tensor4D {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  return tf.tidy(() => tf.transpose(tf.tensor4d(detInput(spec.name, n), spec.shape), [0, 2, 3, 1]));
}

function generatedWeights(): Map<string, HostTensor> {
  return new Map(
    dinoVitS16()
      .parameterShapes()
      .map(([name, shape]) => [name, { dtype: 'F32', shape, data: detTensor(name, shape) }]),
  );
}

test('dino-vits16: DINO key layout, 150 tensors, 21,665,664 parameters, under the official prefix', () => {
  const b = dinoVitS16();
  assert.equal(b.prefix, meta.official_prefix);
  assert.deepEqual(
    b.parameterShapes(),
    meta.state_dict.map((e) => [e.name, e.shape]),
  );
  assert.equal(b.parameterShapes().length, 150);
  const sd = new StateDict();
  b.init(sd, new Random(1));
  assert.equal(sd.numParameters(DINO_PREFIX), 21_665_664);
  assert.deepEqual(
    sd.names(),
    meta.state_dict.map((e) => DINO_PREFIX + e.name),
  );
  assert.deepEqual(b.batchNormAffineNames(), []);
  sd.dispose();
});

test('bicubic position resize: an identity at scale 1, rows of weights summing to 1, torch border clamping', () => {
  const id = bicubicMatrix(14, 14, 1);
  id.forEach((v, k) => assert.ok(Math.abs(v - (k % 15 === 0 ? 1 : 0)) < 1e-15));
  const m = bicubicMatrix(14, 10, 10.1 / 14);
  for (let i = 0; i < 10; i++) {
    const row = m.slice(i * 14, (i + 1) * 14).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(row - 1) < 1e-12, `row ${i} sums to ${row}`);
  }
});

test('dino-vits16: eval features and the gradients of both memory modes match PyTorch (224 px, and 168 × 100 px with a resized position grid)', async (t) => {
  const weights = generatedWeights();
  for (const [name, want] of Object.entries(meta.weight_sums)) {
    let sum = 0;
    let abs = 0;
    for (const v of (weights.get(name) as HostTensor).data as Float32Array) {
      sum += v;
      abs += Math.abs(v);
    }
    assert.ok(Math.abs(sum - want) <= 1e-9 * abs + 1e-12, `weights of '${name}' differ from the fixture script's: sum ${sum} vs ${want}`);
  }
  const sd = new StateDict();
  const cases: Array<['224' | 'small', BlockMemory]> = [
    ['224', 'segment'],
    ['small', 'checkpoint'],
  ];
  for (const [caseName, blockMemory] of cases) {
    const b = dinoVitS16({ blockMemory });
    loadTorchvisionWeights(sd, b, weights, 'generated');
    const c = meta.cases[caseName];
    const x = input(c.input);
    const before = tf.memory().numTensors;
    const features = b.forward(sd, x, false);
    const err = relativeL2(await features.data(), expected(c.expected));
    t.diagnostic(
      `${caseName}: eval features [${features.shape.join(', ')}], relative L2 error ${err.toExponential(2)} (PyTorch float32: ${meta.torch_float32_rel_error[caseName]?.toExponential(2)})`,
    );
    assert.deepEqual(features.shape, [c.input.shape[0], 384]);
    assert.ok(err <= FORWARD_TOLERANCE, `${caseName}: relative error ${err}`);
    // Gradients of L = Σ features ⊙ R through the training forward (per-block segments or checkpoints).
    const R = tf.tensor2d(Float32Array.from(detProbe('probe.R', features.size)), features.shape);
    const names = sd.trainable([DINO_PREFIX]);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(b.forward(sd, x, true), R)) as tf.Scalar,
      names.map((n) => sd.get(n)),
    );
    let worst = 0;
    for (const name of names) {
      const bare = name.slice(DINO_PREFIX.length);
      const want = c.gradients[bare];
      assert.ok(want, `PyTorch has no gradient for '${bare}'`);
      const g = await (grads[sd.get(name).name] as tf.Tensor).data();
      const P = detProbe(`probe.${bare}`, g.length);
      let [norm, dot, pnorm] = [0, 0, 0];
      g.forEach((v, i) => {
        norm += v * v;
        dot += v * (P[i] as number);
        pnorm += (P[i] as number) ** 2;
      });
      norm = Math.sqrt(norm);
      const eNorm = Math.abs(norm - want.norm) / want.norm;
      // ⟨g, P⟩ error relative to its scale ‖g‖·‖P‖/√numel (the size of ⟨g, P⟩ for an unrelated P).
      const eDot = Math.abs(dot - want.dot) / (want.norm * Math.sqrt(pnorm / g.length));
      worst = Math.max(worst, eNorm, eDot);
      assert.ok(eNorm <= GRADIENT_TOLERANCE && eDot <= GRADIENT_TOLERANCE, `${caseName}: gradient of '${bare}': norm error ${eNorm}, projection error ${eDot}`);
    }
    assert.equal(names.length, 150);
    t.diagnostic(`${caseName} (${blockMemory}): gradients of 150 tensors, worst relative error ${worst.toExponential(2)}`);
    tf.dispose([value, R, features, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, `${caseName}: tensors leaked`);
    x.dispose();
  }
  sd.dispose();
});

test('dino-vits16: read from a .pth (bare DINO names, strided views of one storage) and from teacher-style names', async () => {
  const b = dinoVitS16();
  const path = join(FIXTURES, meta.views.file);
  const tensors = readStateDict(path).tensors;
  const sd = new StateDict();
  const report = loadTorchvisionWeights(sd, b, tensors, path);
  assert.equal(report.loaded.length, 150);
  const x = input(meta.views.input);
  const features = b.forward(sd, x, false);
  const err = relativeL2(await features.data(), expected(meta.views.expected));
  assert.ok(err <= FORWARD_TOLERANCE, `features of the .pth weights: relative error ${err}`);
  // DINO's full checkpoints: the ViT under 'backbone.' and a projection head beside it.
  const teacher = new Map([...tensors].map(([n, v]) => [`backbone.${n}`, v]));
  teacher.set('head.last_layer.weight_g', { dtype: 'F32', shape: [1, 1], data: new Float32Array(1) });
  assert.deepEqual(loadTorchvisionWeights(sd, b, teacher).ignored, ['head.last_layer.weight_g']);
  const resnetNames = new Map([['layer1.0.conv1.weight', { dtype: 'F32' as const, shape: [1], data: new Float32Array(1) }]]);
  assert.throws(() => loadTorchvisionWeights(sd, b, resnetNames, 'r.pth'), /'layer1\.0\.conv1\.weight' is not a dino-vits16 parameter/);
  tf.dispose([x, features]);
  sd.dispose();
});

test('the official DINO head: feature_extractor.fc.1 orthogonal (W·Wᵀ = I) with a zero bias', async () => {
  const m = createMetricModel(dinoVitS16(), { D: 384, L: 1, C: 2, H: 2 } as never, 3, false, false);
  const w = m.sd.get(`${HEAD_LINEAR}.weight`);
  assert.deepEqual(w.shape, [384, 384]);
  const gram = tf.tidy(() => tf.matMul(w, w, false, true));
  const eye = tf.eye(384);
  assert.ok(relativeL2(await gram.data(), await eye.data()) < 1e-5);
  assert.deepEqual(Array.from(await m.sd.get(`${HEAD_LINEAR}.bias`).data()), new Array(384).fill(0));
  tf.dispose([gram, eye]);
  m.sd.dispose();
});

/** A miniature CUB_200_2011: classes 1–3 (train, the first 100 classes) and 101–102 (test), 2 images each. */
async function makeMiniatureCub(root: string): Promise<void> {
  const classes = [1, 2, 3, 101, 102];
  const folder = (c: number) => `${String(c).padStart(3, '0')}.Bird_${c}`;
  const lines: string[] = [];
  const labels: string[] = [];
  let id = 0;
  for (const c of classes)
    for (let i = 0; i < 2; i++) {
      id++;
      const rel = `${folder(c)}/Bird_${c}_${i}.jpg`;
      mkdirSync(join(root, 'images', folder(c)), { recursive: true });
      await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: (c * 53) % 256, g: (i * 97) % 256, b: (id * 31) % 256 } } })
        .jpeg()
        .toFile(join(root, 'images', rel));
      lines.push(`${id} ${rel}`);
      labels.push(`${id} ${c}`);
    }
  writeFileSync(join(root, 'classes.txt'), Array.from({ length: 200 }, (_, i) => `${i + 1} ${folder(i + 1)}\n`).join(''));
  writeFileSync(join(root, 'images.txt'), `${lines.join('\n')}\n`);
  writeFileSync(join(root, 'image_class_labels.txt'), `${labels.join('\n')}\n`);
  writeFileSync(join(root, 'train_test_split.txt'), lines.map((_, i) => `${i + 1} ${i % 2}`).join('\n') + '\n');
}

test('hardneg train --preset dino-cub200 runs on a miniature CUB (random weights, one fine-tuning step)', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hardneg-dino-'));
  try {
    const data = join(tmp, 'CUB_200_2011');
    await makeMiniatureCub(data);
    const out = join(tmp, 'run');
    // No warm-up, so the step fine-tunes the ViT too (the preset's 2 warm-up epochs train only the head).
    const tiny = ['train.classesPerBatch=2', 'train.samplesPerClass=2', 'train.maxIterationsPerEpoch=1', 'eval.ks=[1]', 'solver.warmUpEpochs=0'];
    const r = hardneg([
      'train',
      '--preset',
      'dino-cub200',
      '--data-root',
      data,
      '--out',
      out,
      '--epochs',
      '1',
      '--quiet',
      '--json',
      ...tiny.flatMap((s) => ['--set', s]),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model: { backbone: string; embeddingSize: number } };
    assert.deepEqual([config.model.backbone, config.model.embeddingSize], ['dino-vits16', 384]);
    const result = JSON.parse(r.stdout) as { final: { epoch: number; recall: Record<string, number> } };
    assert.equal(result.final.epoch, 1);
    const saved = readStateDict(join(out, 'model.safetensors')).tensors;
    assert.equal([...saved.keys()].filter((n) => n.startsWith(DINO_PREFIX)).length, 150);
    assert.deepEqual(saved.get(`${HEAD_LINEAR}.weight`)?.shape, [384, 384]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
