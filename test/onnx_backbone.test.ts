// Frozen-feature mode: an ONNX image model run with onnxruntime-node, the on-disk feature cache,
// and the identity backbone the embedding head trains on. The tiny model and its expected
// features come from PyTorch (scripts/backbones/make_fixtures.py → test/fixtures/backbones/tiny.*).
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { InMemorySplit } from '../src/data/dataset.ts';
import { CachedFeatureSplit, cachedFeatureImageSplit, cachedSplitFeatures, type FeatureCacheOptions } from '../src/data/feature_cache.ts';
import { toNumbers } from '../src/io/host_tensor.ts';
import { readNpy } from '../src/io/npy.ts';
import { embeddingHead } from '../src/models/embedding_head.ts';
import { initEmbeddingHead } from '../src/models/init.ts';
import { featureIdentityBackbone, type ImageFeatureModel, nhwcToNchw, OnnxImageModel, OnnxModelError } from '../src/models/onnx_backbone.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { Random } from '../src/engine/random.ts';
import { relativeL2 } from './helpers/close.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'backbones');
const MODEL = join(FIXTURES, 'tiny.onnx');
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

function tinySplit(): InMemorySplit {
  const images = readNpy(join(FIXTURES, 'tiny.images.npy'));
  assert.deepEqual(images.shape, [10, 32, 32, 3]);
  return new InMemorySplit({
    name: 'train',
    classNames: ['a', 'b', 'c', 'd', 'e'],
    labels: Int32Array.from([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]),
    pixels: images.data as Uint8Array,
    imageShape: [32, 32, 3],
    normalization: IMAGENET,
  });
}

const expected = () => Float64Array.from(toNumbers(readNpy(join(FIXTURES, 'tiny.expected.npy'))));

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hardneg-features-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('nhwcToNchw moves channels in front of the rows', () => {
  const x = Float32Array.from({ length: 2 * 2 * 3 * 2 }, (_, i) => i); // [n=2, h=2, w=3, c=2]
  const y = nhwcToNchw(x, [2, 2, 3, 2]);
  // y[n, c, h, w] = x[n, h, w, c]
  for (let n = 0; n < 2; n++)
    for (let c = 0; c < 2; c++)
      for (let h = 0; h < 2; h++)
        for (let w = 0; w < 3; w++) {
          assert.equal(y[((n * 2 + c) * 2 + h) * 3 + w], x[((n * 2 + h) * 3 + w) * 2 + c]);
        }
});

test("the tiny ONNX model gives PyTorch's features (NHWC batches fed as NCHW, dynamic batch size)", async (t) => {
  const model = await OnnxImageModel.open(MODEL);
  assert.equal(model.inputName, 'images');
  assert.equal(model.outputName, 'features');
  const split = tinySplit();
  const all = await model.run(await split.load(Array.from({ length: 10 }, (_, i) => i)));
  assert.equal(all.n, 10);
  assert.equal(all.width, 16);
  const err = relativeL2(all.features, expected());
  t.diagnostic(`relative L2 error vs PyTorch: ${err.toExponential(2)}`);
  assert.ok(err < 1e-5, `features differ from PyTorch's: ${err}`);
  const three = await model.run(await split.load([7, 8, 9]));
  assert.ok(relativeL2(three.features, expected().subarray(7 * 16)) < 1e-5);
  await assert.rejects(model.run(await tinySplitAt(16)), /expects input \[n, 3, 32, 32\] \(NCHW\); got a batch of 1 images 3×16×16/);
  await model.close();
});

async function tinySplitAt(size: number) {
  return { pixels: new Float32Array(size * size * 3), shape: [1, size, size, 3] as [number, number, number, number] };
}

test('features are extracted once, cached atomically with a manifest, and reused without running the model', async (t) => {
  const cacheDir = tempDir(t);
  let opened = 0;
  let batches = 0;
  const openModel = async (path: string): Promise<ImageFeatureModel> => {
    opened++;
    const m = await OnnxImageModel.open(path);
    return {
      path,
      run: (b) => {
        batches++;
        return m.run(b);
      },
      close: () => m.close(),
    };
  };
  const progress: number[] = [];
  const opts: FeatureCacheOptions = {
    cacheDir,
    modelPath: MODEL,
    dataset: { name: 'tiny', root: FIXTURES },
    split: tinySplit(),
    transform: 'identity-32px-imagenet-norm',
    batchSize: 4,
    onProgress: (done) => progress.push(done),
    openModel,
  };
  const first = await cachedSplitFeatures(opts);
  assert.equal(first.fromCache, false);
  assert.deepEqual([opened, batches], [1, 3]);
  assert.deepEqual(progress, [4, 8, 10]);
  assert.equal(first.width, 16);
  assert.ok(relativeL2(first.features, expected()) < 1e-5);
  const files = readdirSync(first.dir).sort();
  assert.deepEqual(files, ['features.npy', 'labels.npy', 'manifest.json'], 'no temporary files are left behind');
  const manifest = JSON.parse(readFileSync(join(first.dir, 'manifest.json'), 'utf8'));
  assert.equal(manifest.format, 'hardneg-feature-cache/2');
  assert.equal(manifest.dataset.name, 'tiny');
  assert.equal(manifest.dataset.split, 'train');
  assert.equal(manifest.transform, 'identity-32px-imagenet-norm');
  assert.match(manifest.model.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(manifest.features.shape, [10, 16]);

  const second = await cachedSplitFeatures({ ...opts, onProgress: () => assert.fail('the model ran again') });
  assert.equal(second.fromCache, true);
  assert.deepEqual([opened, batches], [1, 3], 'the second call must not open or run the model');
  assert.deepEqual(Array.from(second.features), Array.from(first.features));
  assert.deepEqual(Array.from(second.labels), Array.from(tinySplit().labels));
  assert.equal(second.dir, first.dir);

  // Another transform is another cache entry; an interrupted extraction (no manifest) is redone.
  const other = await cachedSplitFeatures({ ...opts, transform: 'other' });
  assert.equal(other.fromCache, false);
  assert.notEqual(other.dir, first.dir);
  unlinkSync(join(first.dir, 'manifest.json'));
  const redone = await cachedSplitFeatures(opts);
  assert.equal(redone.fromCache, false);
  assert.equal(opened, 3);
  assert.ok(existsSync(join(first.dir, 'manifest.json')));
});

test('mirrored-image features are cached too, and the training split serves them for flipped samples', async (t) => {
  const cacheDir = tempDir(t);
  const split = tinySplit();
  const cache = await cachedSplitFeatures({ cacheDir, modelPath: MODEL, dataset: { name: 'tiny', root: FIXTURES }, split, transform: 't', flips: true });
  assert.ok(cache.flipped);
  // Reference: the model on explicitly mirrored images.
  const model = await OnnxImageModel.open(MODEL);
  const b = await split.load([3]);
  const m = new Float32Array(b.pixels.length);
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) m[(y * 32 + (31 - x)) * 3 + c] = b.pixels[(y * 32 + x) * 3 + c] as number;
  const want = (await model.run({ pixels: m, shape: b.shape })).features;
  await model.close();
  assert.ok(relativeL2(cache.flipped.subarray(3 * 16, 4 * 16), want) < 1e-6);
  const imageSplit = cachedFeatureImageSplit(cache);
  assert.equal(imageSplit.numClasses, 5);
  const x = await imageSplit.images([3, 3], [0, 1]); // an odd seed selects the mirrored features
  assert.deepEqual(x.shape, [2, 1, 1, 16]);
  const rows = await x.data();
  assert.ok(relativeL2(rows.subarray(0, 16), cache.features.subarray(48, 64)) === 0);
  assert.ok(relativeL2(rows.subarray(16, 32), want) < 1e-6);
  x.dispose();
});

test('a missing or corrupt .onnx file gives an error naming the file', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'missing.onnx');
  await assert.rejects(OnnxImageModel.open(missing), (err: Error) => err instanceof OnnxModelError && err.message.includes(`'${missing}' does not exist`));
  const corrupt = join(dir, 'corrupt.onnx');
  writeFileSync(corrupt, 'this is not a protobuf');
  await assert.rejects(
    OnnxImageModel.open(corrupt),
    (err: Error) => err instanceof OnnxModelError && err.message.includes(`ONNX model '${corrupt}' could not be loaded`),
  );
  const base = { cacheDir: join(dir, 'cache'), dataset: { name: 'tiny', root: FIXTURES }, split: tinySplit(), transform: 't' };
  await assert.rejects(
    cachedSplitFeatures({ ...base, modelPath: missing }),
    new RegExp(`ONNX model '${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' does not exist`),
  );
  await assert.rejects(cachedSplitFeatures({ ...base, modelPath: corrupt }), /corrupt\.onnx' could not be loaded/);
  assert.ok(!existsSync(join(dir, 'cache')) || readdirSync(join(dir, 'cache')).length === 0, 'nothing is cached for a failed extraction');
});

test('the embedding head trains on cached features through the identity backbone', async (t) => {
  const cache = await cachedSplitFeatures({
    cacheDir: tempDir(t),
    modelPath: MODEL,
    dataset: { name: 'tiny', root: FIXTURES },
    split: tinySplit(),
    transform: 't',
  });
  const split = new CachedFeatureSplit(cache);
  assert.deepEqual(split.imageShape, [1, 1, 16]);
  const backbone = featureIdentityBackbone(cache.width);
  const sd = new StateDict();
  backbone.init(sd, new Random(1));
  initEmbeddingHead(sd, backbone.features, 8, new Random(2));
  const batch = await split.load([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const x = tf.tensor4d(batch.pixels, batch.shape);
  const feats = backbone.forward(sd, x, true);
  assert.deepEqual(feats.shape, [10, 16]);
  assert.deepEqual(Array.from(await feats.data()), Array.from(cache.features));
  // Pull the two images of each class together: the loss falls as the head trains.
  const names = sd.trainable(['feature_extractor.']);
  const loss = () =>
    tf.tidy(() => {
      const z = embeddingHead(sd, backbone.forward(sd, x, true), true);
      const pairs = tf.reshape(z, [5, 2, 8]); // rows 2k and 2k + 1 share a class (no tf.gather: its gradient has no wasm kernel)
      const even = tf.slice(pairs, [0, 0, 0], [5, 1, 8]);
      const odd = tf.slice(pairs, [0, 1, 0], [5, 1, 8]);
      return tf.div(tf.sum(tf.square(tf.sub(even, odd))), tf.sum(tf.square(z))) as tf.Scalar;
    });
  const first = (await loss().data())[0] as number;
  const opt = tf.train.adam(0.05);
  for (let i = 0; i < 20; i++)
    opt.minimize(
      loss,
      false,
      names.map((n) => sd.get(n)),
    );
  const last = (await loss().data())[0] as number;
  t.diagnostic(`head-only training on cached features: loss ${first.toFixed(4)} → ${last.toFixed(4)}`);
  assert.ok(last < first * 0.5, `${first} → ${last}`);
  tf.dispose([x, feats]);
  opt.dispose();
  sd.dispose();
});
