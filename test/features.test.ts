// Pretrained backbones' eval-mode features: `hardneg features` against PyTorch's outputs on the
// committed backbone fixtures (the same deterministic weights as test/backbones.test.ts, written
// here to a temporary .safetensors, and a committed .pth read directly), and frozen-feature
// training with hardneg's own backbone (model.frozen): features extracted once, cached, reused.
import './helpers/backend.ts';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { InMemorySplit } from '../src/data/dataset.ts';
import { featureCacheKey } from '../src/data/feature_cache.ts';
import { toNumbers } from '../src/io/host_tensor.ts';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { readStateDict } from '../src/io/state_dict_file.ts';
import { extractFeatures } from '../src/index.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { parseConfig } from '../src/train/config.ts';
import { ROOT, hardneg } from './helpers/cli.ts';
import { relativeL2 } from './helpers/close.ts';
import { detInput, detStateDict } from './helpers/det_weights.ts';
import { makeImageFolder } from './helpers/image_folder.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'backbones');
const GOOGLENET_PTH = join(ROOT, 'test', 'fixtures', 'pth', 'googlenet.pth');
const TOLERANCE = 1e-4;
const tmp = mkdtempSync(join(tmpdir(), 'hardneg-features-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const expected = (model: string): Float64Array => Float64Array.from(toNumbers(readNpy(join(FIXTURES, `${model}.expected.npy`))));

test("features: ResNet-50 (avg+max, as the fixture's official pooling) and GoogLeNet match PyTorch's eval-mode outputs", (t) => {
  // The fixture's ResNet-50 sums global average and max pooling (make_fixtures.py: POOLING True).
  for (const [model, weights, pooling] of [
    ['resnet50', detStateDict(resnet50()), 'avg+max'],
    ['googlenet', detStateDict(googlenet()), 'avg'],
  ] as const) {
    const file = join(tmp, `${model}.safetensors`);
    writeSafetensors(file, weights, {});
    const out = join(tmp, `${model}.features.npy`);
    const r = hardneg([
      'features',
      '--backbone',
      model,
      '--weights',
      file,
      '--input',
      join(FIXTURES, `${model}.input.npy`),
      '--out',
      out,
      '--pooling',
      pooling,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { shape: number[]; pooling: string };
    const f = readNpy(out);
    assert.equal(f.dtype, 'F32');
    assert.deepEqual(f.shape, [2, model === 'resnet50' ? 2048 : 1024]);
    assert.deepEqual(summary.shape, f.shape);
    assert.equal(summary.pooling, pooling);
    const err = relativeL2(f.data as Float32Array, expected(model));
    t.diagnostic(`${model} (${pooling}): relative L2 error ${err.toExponential(2)}`);
    assert.ok(err <= TOLERANCE, `${model}: relative L2 error ${err}`);
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary file left',
    );
  }
});

test("features: DINO ViT-S/16 from a .pth of DINO's names (strided views of one storage) matches PyTorch's CLS features", () => {
  const views = (
    JSON.parse(readFileSync(join(FIXTURES, 'dino-vits16.json'), 'utf8')) as {
      views: { file: string; expected: string; input: { name: string; shape: number[] } };
    }
  ).views;
  const count = views.input.shape.reduce((a, b) => a * b, 1);
  const input = join(tmp, 'dino.input.npy');
  writeNpy(input, { dtype: 'F32', shape: views.input.shape, data: detInput(views.input.name, count) });
  const out = join(tmp, 'dino.features.npy');
  const r = hardneg(['features', '--backbone', 'dino-vits16', '--weights', join(FIXTURES, views.file), '--input', input, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const f = readNpy(out);
  assert.deepEqual(f.shape, [views.input.shape[0], 384]);
  const err = relativeL2(f.data as Float32Array, Float64Array.from(toNumbers(readNpy(join(FIXTURES, views.expected)))));
  assert.ok(err <= TOLERANCE, `dino-vits16: relative L2 error ${err}`);
});

test('features: a .pth is read directly (the same features as its safetensors conversion); the library leaks no tensors', async () => {
  const input = join(FIXTURES, 'googlenet.input.npy');
  const out = join(tmp, 'pth.features.npy');
  const r = hardneg(['features', '--backbone', 'googlenet', '--weights', GOOGLENET_PTH, '--input', input, '--out', out, '--batch', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote googlenet features \[2, 1024\]/);
  assert.match(r.stderr, /googlenet features \[#+\] 2\/2 images/, 'a progress bar on stderr');
  const converted = join(tmp, 'googlenet-pth.safetensors');
  writeSafetensors(converted, readStateDict(GOOGLENET_PTH).tensors, {});
  const before = tf.memory().numTensors;
  const lib = await extractFeatures('googlenet', readNpy(input), { weights: converted, batchSize: 2 });
  assert.equal(tf.memory().numTensors, before, 'every tensor disposed');
  assert.deepEqual(lib.shape, [2, 1024]);
  assert.deepEqual(Array.from(readNpy(out).data as Float32Array), Array.from(lib.data as Float32Array), 'batch 1 from .pth = batch 2 from safetensors');
});

test('the feature cache key changes with the backbone, its pooling, the weights file, the transform and the dataset listing', () => {
  const weights = join(tmp, 'key.safetensors');
  writeFileSync(weights, 'weights A');
  const split = (files: string[]) =>
    new InMemorySplit({
      name: 'train',
      classNames: ['a', 'b'],
      labels: Int32Array.from([0, 1]),
      pixels: new Uint8Array(2 * 2 * 2 * 3),
      imageShape: [2, 2, 3],
      source: (i) => files[i] as string,
    });
  const base = {
    cacheDir: join(tmp, 'key-cache'),
    modelPath: weights,
    extractor: { name: 'resnet50', options: { pooling: 'avg' } },
    dataset: { name: 'folder', root: tmp },
    split: split(['a/0.png', 'b/0.png']),
    transform: 'resize256-centercrop224-imagenet',
  };
  const key = (o: Partial<typeof base>) => featureCacheKey({ ...base, ...o }).key;
  const keys = [
    key({}),
    key({ extractor: { name: 'googlenet', options: { pooling: 'avg' } } }),
    key({ extractor: { name: 'resnet50', options: { pooling: 'avg+max' } } }),
    key({ transform: 'resize146-centercrop128-imagenet' }),
    key({ split: split(['a/0.png', 'b/1.png']) }),
  ];
  writeFileSync(weights, 'weights B');
  keys.push(key({}));
  assert.equal(new Set(keys).size, keys.length, 'every change is another key');
  writeFileSync(weights, 'weights A');
  assert.equal(key({}), keys[0], 'the same inputs give the same key');
});

test('model.frozen is validated where the configuration enters', () => {
  assert.throws(() => parseConfig({ model: { frozen: true } }, 'c'), /'model\.frozen': small-cnn has no pretrained weights to freeze/);
  assert.throws(() => parseConfig({ model: { backbone: 'googlenet', frozen: true } }, 'c'), /'model\.frozen': .*set model\.weights/);
  assert.equal(parseConfig({ model: { backbone: 'resnet50', frozen: true, weights: 'resnet50' } }, 'c').model.frozen, true);
  assert.equal(parseConfig({ model: { backbone: 'onnx' } }, 'c').model.frozen, false, 'onnx is frozen whatever model.frozen says');
});

test("frozen-feature training with hardneg's own GoogLeNet: features extracted once, cached, reused by the next run", async () => {
  const data = join(tmp, 'data');
  await makeImageFolder(data, 'train', ['a', 'b', 'c'], 2, 1);
  await makeImageFolder(data, 'test', ['d', 'e'], 2, 2);
  const weights = join(tmp, 'googlenet.safetensors');
  writeSafetensors(weights, detStateDict(googlenet()), {});
  const cache = join(tmp, 'cache');
  const train = (out: string) =>
    hardneg([
      'train',
      '--dataset',
      'folder',
      '--data-root',
      data,
      '--out',
      out,
      '--epochs',
      '1',
      '--set',
      'model.backbone=googlenet',
      '--set',
      'model.frozen=true',
      '--set',
      `model.weights=${weights}`,
      '--set',
      `model.featureCache=${cache}`,
      '--set',
      'model.embeddingSize=8',
      '--set',
      'train.classesPerBatch=2',
      '--set',
      'train.samplesPerClass=2',
      '--set',
      'train.maxIterationsPerEpoch=2',
      '--set',
      'eval.ks=[1]',
    ]);
  const first = train(join(tmp, 'run1'));
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /extracting train features: 6\/6/);
  assert.match(first.stderr, /extracting test features: 4\/4/);
  const entries = readdirSync(cache).sort();
  assert.equal(entries.length, 2, 'train and test features cached');
  const manifests = entries.map((e) => join(cache, e, 'manifest.json'));
  const stamps = manifests.map((m) => statSync(m).mtimeMs);
  const manifest = JSON.parse(readFileSync(manifests.find((m) => m.includes('-train')) as string, 'utf8'));
  assert.deepEqual(manifest.model.extractor, { name: 'googlenet', options: { pooling: 'avg' } });
  assert.deepEqual(manifest.features.shape, [6, 1024]);
  assert.equal(manifest.features.flippedFile, 'features_flipped.npy', 'mirrored images cached for flips');
  assert.equal(manifest.transform, 'resize256-centercrop224-imagenet', 'the evaluation transform, for train and test alike');
  const iterations = readFileSync(join(tmp, 'run1', 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter((l) => (JSON.parse(l) as { type: string }).type === 'iteration');
  assert.ok(iterations.length >= 1, 'the head trained');

  const second = train(join(tmp, 'run2'));
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /extracting/, 'nothing extracted again');
  assert.deepEqual(
    manifests.map((m) => statSync(m).mtimeMs),
    stamps,
    'the cache is reused, not rewritten',
  );
  const metrics = (run: string) => {
    const { wall_s: _, ...m } = JSON.parse(readFileSync(join(tmp, run, 'metrics.json'), 'utf8')) as Record<string, unknown>;
    return m;
  };
  assert.deepEqual(metrics('run2'), metrics('run1'), 'same features, same run');
});
