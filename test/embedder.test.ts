// The library embedder (src/inference/embedder.ts) against what the trainer saved at its last
// evaluation: the test split's embeddings (test_embeddings.npy), for a small CNN on an image folder
// and for frozen-feature mode on the tiny ONNX model. Files, encoded buffers and already-transformed
// NCHW tensors must all give those embeddings.
import './helpers/backend.ts';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { listImages, partialDir, runEmbedJob } from '../src/inference/embed_job.ts';
import { UserError } from '../src/errors.ts';
import { decodeModel } from '../src/export/onnx_proto.ts';

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

test('embed --input (preprocessed NCHW) and --images give the saved embeddings; --shard takes every n-th row', async () => {
  const saved = readNpy(T('run', 'test_embeddings.npy')).data as Float32Array;
  const e = await loadEmbedder(T('run'));
  const files = testFiles(T('data'));
  const x = await e.preprocessImageFiles(files);
  e.dispose();
  writeNpy(T('x.npy'), { dtype: 'F32', shape: [files.length, 3, 8, 8], data: x });
  const r = hardneg(['embed', T('run'), '--input', T('x.npy'), '--out', T('ex.npy'), '--json', '--batch', '4']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(relMaxDiff(readNpy(T('ex.npy')).data as Float32Array, saved) < 1e-5);
  assert.ok(!existsSync(T('ex.json')), 'no sidecar for --input');
  const s = hardneg(['embed', T('run'), '--images', T('data', 'test'), '--out', T('es.npy'), '--shard', '1/2', '--quiet']);
  assert.equal(s.code, 0, s.stderr);
  const side = JSON.parse(readFileSync(T('es.json'), 'utf8'));
  assert.deepEqual(side.paths, ['e/1.png', 'f/0.png', 'f/2.png', 'g/1.png']);
  assert.deepEqual(side.labels, ['e', 'f', 'f', 'g']);
  assert.deepEqual(side.shard, { index: 1, count: 2, of: 9, rows: [1, 3, 5, 7] });
  const es = readNpy(T('es.npy'));
  assert.deepEqual(es.shape, [4, 8]);
  const want = Float32Array.from([1, 3, 5, 7].flatMap((i) => Array.from(saved.subarray(i * 8, i * 8 + 8))));
  assert.ok(relMaxDiff(es.data as Float32Array, want) < 1e-5);
});

test('embed resumes an interrupted job from its committed rows, and refuses other arguments meanwhile', async () => {
  const saved = readNpy(T('run', 'test_embeddings.npy')).data as Float32Array;
  const out = T('er.npy');
  const e = await loadEmbedder(T('run'));
  // An interruption after the first committed batch of 2 rows, with half a row written after it.
  await assert.rejects(
    runEmbedJob({
      embedder: e,
      source: { kind: 'images', root: T('data', 'test'), listing: listImages(T('data', 'test')) },
      out,
      shard: null,
      batchSize: 2,
      onProgress: (done) => {
        if (done === 2) throw new Error('interrupted');
      },
    }),
    /interrupted/,
  );
  e.dispose();
  appendFileSync(join(partialDir(out), 'rows.f32'), Buffer.alloc(16));
  assert.ok(!existsSync(out), 'no output before the job finishes');
  const other = hardneg(['embed', T('run'), '--images', T('data', 'test'), '--out', out, '--shard', '0/2']);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /partial embedding made with other arguments/);
  const r = hardneg(['embed', T('run'), '--images', T('data', 'test'), '--out', out, '--json', '--batch', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).resumed, 2);
  assert.ok(relMaxDiff(readNpy(out).data as Float32Array, saved) < 1e-5);
  assert.ok(!existsSync(partialDir(out)), 'the side folder is removed');
});

/** ‖a − b‖ / ‖b‖. */
function relL2(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += ((a[i] as number) - (b[i] as number)) ** 2;
    n += (b[i] as number) ** 2;
  }
  return Math.sqrt(d / n);
}

for (const [what, run, data] of [
  ['small CNN', 'run', 'data'],
  ['frozen-feature mode', 'frun', 'fdata'],
] as const) {
  test(`hardneg export (${what}): the ONNX model in onnxruntime equals embed --input within 1e-4`, async () => {
    const e = await loadEmbedder(T(run));
    const files = testFiles(T(data));
    const x = await e.preprocessImageFiles(files);
    const [C, H, W] = e.inputShape;
    e.dispose();
    writeNpy(T(`${run}-x.npy`), { dtype: 'F32', shape: [files.length, C, H, W], data: x });
    const emb = hardneg(['embed', T(run), '--input', T(`${run}-x.npy`), '--out', T(`${run}-z.npy`), '--quiet']);
    assert.equal(emb.code, 0, emb.stderr);
    const r = hardneg(['export', T(run), '--out', T(`${run}.onnx`), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.ok(s.opset >= 13);
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(T(`${run}.onnx`));
    // Two batch sizes: the batch axis is dynamic.
    for (const n of [files.length, 2]) {
      const out = await session.run({ [s.input]: new ort.Tensor('float32', x.subarray(0, n * C * H * W), [n, C, H, W]) });
      const y = out[s.output];
      assert.deepEqual(y?.dims, [n, s.dim]);
      const z = readNpy(T(`${run}-z.npy`)).data as Float32Array;
      const err = relL2(y?.data as Float32Array, z.subarray(0, n * s.dim));
      assert.ok(err < 1e-4, `relative L2 ${err}`);
    }
    await session.release();
    const props = new Map((decodeModel(readFileSync(T(`${run}.onnx`))).metadata_props ?? []).map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(props.get('hardneg.preprocessing') as string).size, H, 'the preprocessing is in metadata_props');
    assert.deepEqual(JSON.parse(props.get('hardneg.mean') as string).length, C);
  });
}
