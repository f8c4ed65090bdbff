// The library embedder (src/inference/embedder.ts) against what the trainer saved at its last
// evaluation: the test split's embeddings (test_embeddings.npy), for a small CNN on an image folder
// and for frozen-feature mode on the tiny ONNX model. Files, encoded buffers and already-transformed
// NCHW tensors must all give those embeddings.
import './helpers/backend.ts';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { TINY_RUN, hardneg } from './helpers/cli.ts';
import { GOLDEN } from './helpers/golden.ts';
import { makeImageFolder } from './helpers/image_folder.ts';
import { listImageFiles } from '../src/data/image_folder.ts';
import { closeImagePools } from '../src/data/pipeline.ts';
import { loadEmbedder } from '../src/index.ts';
import { readNpy } from '../src/io/npy.ts';
import { UserError } from '../src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-embedder-'));
const T = (...p: string[]): string => join(tmp, ...p);
const TINY_ONNX = join(GOLDEN, '..', 'backbones', 'tiny.onnx');

/** max |a − b| / max |b|. */
function relMaxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    m = Math.max(m, Math.abs(b[i] as number));
  }
  return d / m;
}

/** The test split's files in the dataset's order (classes sorted, then files). */
const testFiles = (root: string): string[] => listImageFiles(join(root, 'test'), () => undefined);

before(async () => {
  await makeImageFolder(T('data'), 'train', ['a', 'b', 'c', 'd'], 6, 1);
  await makeImageFolder(T('data'), 'test', ['e', 'f', 'g'], 3, 2);
  const r = hardneg(['train', '--dataset', 'folder', '--data-root', T('data'), '--epochs', '1', '--out', T('run'), '--quiet', ...TINY_RUN]);
  assert.equal(r.code, 0, r.stderr);
  // Frozen-feature mode: JPEGs of another size than the model's input, so resize and crop matter.
  for (const [split, classes] of [
    ['train', ['a', 'b', 'c', 'd']],
    ['test', ['e', 'f', 'g']],
  ] as const) {
    for (const [c, name] of classes.entries()) {
      mkdirSync(T('fdata', split, name), { recursive: true });
      for (let i = 0; i < 3; i++) {
        const px = Buffer.alloc(40 * 30 * 3, 30 * i);
        for (let p = 0; p < 60; p++) px[(c * 97 + p * 7) % px.length] = 255;
        await sharp(px, { raw: { width: 40, height: 30, channels: 3 } })
          .jpeg()
          .toFile(T('fdata', split, name, `${i}.jpg`));
      }
    }
  }
  const f = hardneg([
    'train',
    '--dataset',
    'folder',
    '--data-root',
    T('fdata'),
    '--out',
    T('frun'),
    '--epochs',
    '1',
    '--quiet',
    ...['--set', 'model.backbone=onnx', '--set', `model.onnx=${TINY_ONNX}`, '--set', 'model.onnxInputSize=32'],
    ...['--set', `model.featureCache=${T('cache')}`, '--set', 'model.embeddingSize=8'],
    ...['--set', 'train.classesPerBatch=2', '--set', 'train.samplesPerClass=2', '--set', 'eval.ks=[1]'],
  ]);
  assert.equal(f.code, 0, f.stderr);
});

after(async () => {
  await closeImagePools();
  rmSync(tmp, { recursive: true, force: true });
});

for (const [what, run, data, width] of [
  ['small CNN on an image folder', 'run', 'data', 8],
  ['frozen-feature mode (tiny ONNX backbone)', 'frun', 'fdata', 32],
] as const) {
  test(`embedder = the trainer's saved test embeddings: ${what}`, async () => {
    const e = await loadEmbedder(T(run));
    try {
      const saved = readNpy(T(run, 'test_embeddings.npy'));
      const files = testFiles(T(data));
      assert.equal(saved.shape[0], files.length);
      assert.equal(e.dim, saved.shape[1]);
      assert.equal(e.metric, 'cosine');
      assert.deepEqual(e.inputShape, [3, width, width]);
      assert.equal(e.model.file, 'model.safetensors');
      assert.match(e.model.sha256, /^[0-9a-f]{64}$/);
      const before = tf.memory().numTensors;
      let progress = 0;
      const z = await e.embedImageFiles(files, { batchSize: 4, onProgress: (done) => (progress = done) });
      assert.equal(progress, files.length);
      assert.ok(relMaxDiff(z, saved.data as Float32Array) < 1e-5, `files: ${relMaxDiff(z, saved.data as Float32Array)}`);
      const b = await e.embedImageBuffers(files.map((p) => readFileSync(p)));
      assert.ok(relMaxDiff(b, saved.data as Float32Array) < 1e-5, 'buffers');
      assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
      await assert.rejects(e.embedImageBuffers([Buffer.from('not an image')]), (err: Error) => err instanceof UserError && /image 1 of 1/.test(err.message));
      await assert.rejects(e.embedTensor(new Float32Array(5), 1), UserError);
      assert.ok(relative(tmp, e.model.runDir) === run);
    } finally {
      e.dispose();
    }
  });
}
