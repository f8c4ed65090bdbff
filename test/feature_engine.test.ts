// The two engines of frozen-feature extraction (src/models/features.ts): onnxruntime (the default,
// the backbone written as ONNX in memory) and tfjs (Backbone.forward) give the same features for
// ResNet-50 (avg and avg+max pooling) and GoogLeNet, through extractFeatures (NCHW, batches of 2
// over 3 images: a dynamic batch axis and a batch that starts mid-buffer) and through run() (the
// NHWC batches of the feature cache), and both refuse an image too small for the backbone;
// `hardneg features --engine` picks one and refuses others;
// model.featureEngine is validated. Deterministic weights (test/helpers/det_weights.ts), 64-px images.
import './helpers/backend.ts';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../src/io/host_tensor.ts';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { BackboneFeatureModel, extractFeatures, type FeatureEngine, type Pooling } from '../src/models/features.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { ConfigError, applyOverrides, parseConfig } from '../src/train/config.ts';
import { hardneg } from './helpers/cli.ts';
import { relativeL2 } from './helpers/close.ts';
import { detInput, detStateDict } from './helpers/det_weights.ts';

const TOLERANCE = 1e-4;
const SIDE = 64;
const N = 3;
const tmp = mkdtempSync(join(tmpdir(), 'hardneg-feature-engine-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const images: HostTensor = { dtype: 'F32', shape: [N, 3, SIDE, SIDE], data: detInput('feature-engine', N * 3 * SIDE * SIDE) };

/** The deterministic weights of `name` as a .safetensors file (written once). */
function weightsFile(name: 'resnet50' | 'googlenet'): string {
  const file = join(tmp, `${name}.safetensors`);
  if (!existsSync(file)) writeSafetensors(file, detStateDict(name === 'resnet50' ? resnet50() : googlenet()), {});
  return file;
}

/** [n, c, h, w] → [n, h, w, c], for run()'s NHWC batches. */
function nchwToNhwc(x: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < (n as number); b++)
    for (let ch = 0; ch < (c as number); ch++)
      for (let p = 0; p < (h as number) * (w as number); p++)
        out[(b * (h as number) * (w as number) + p) * (c as number) + ch] = x[(b * (c as number) + ch) * (h as number) * (w as number) + p] as number;
  return out;
}

for (const [backbone, pooling] of [
  ['resnet50', 'avg'],
  ['resnet50', 'avg+max'],
  ['googlenet', 'avg'],
] as const satisfies ReadonlyArray<readonly ['resnet50' | 'googlenet', Pooling]>) {
  test(`feature engines: ${backbone} (${pooling}) gives the same features on onnxruntime and tfjs`, async (t) => {
    const weights = weightsFile(backbone);
    const features: Partial<Record<FeatureEngine, Float32Array>> = {};
    for (const engine of ['tfjs', 'onnxruntime'] as const) {
      const before = tf.memory().numTensors;
      let used: FeatureEngine | null = null;
      const f = await extractFeatures(backbone, images, { weights, pooling, engine, batchSize: 2, onEngine: (e) => (used = e) });
      assert.equal(used, engine, `${engine} runs where onnxruntime-node is installed (no fallback here)`);
      assert.deepEqual(f.shape, [N, backbone === 'resnet50' ? 2048 : 1024]);
      // The tfjs path leaves no tensor behind (weights, inputs and intermediates all disposed on close).
      assert.equal(tf.memory().numTensors, before, `${engine}: tensors leaked`);
      features[engine] = f.data as Float32Array;
    }
    const err = relativeL2(features.onnxruntime as Float32Array, features.tfjs as Float32Array);
    t.diagnostic(`${backbone} (${pooling}): relative L2 onnxruntime vs tfjs ${err.toExponential(2)}`);
    assert.ok(err <= TOLERANCE, `relative L2 ${err}`);
    // Not a vacuous agreement: the features vary across images.
    const width = (features.tfjs as Float32Array).length / N;
    assert.ok(relativeL2((features.tfjs as Float32Array).subarray(0, width), (features.tfjs as Float32Array).subarray(width, 2 * width)) > 1e-2);

    // run() on NHWC batches (the feature cache's path), default engine: onnxruntime, same features
    // (once per backbone, with its richest pooling: a third open of ResNet-50 costs seconds).
    if (backbone === 'resnet50' && pooling === 'avg') return;
    const model = await BackboneFeatureModel.open(backbone, { weights, pooling });
    try {
      assert.equal(model.engine, 'onnxruntime', 'onnxruntime is the default');
      const r = await model.run({ pixels: nchwToNhwc(images.data as Float32Array, [N, 3, SIDE, SIDE]), shape: [N, SIDE, SIDE, 3] });
      assert.equal(r.n, N);
      assert.ok(relativeL2(r.features, features.tfjs as Float32Array) <= TOLERANCE);
    } finally {
      await model.close();
    }
  });
}

test('feature engines: an image too small for GoogLeNet is refused on onnxruntime as on tfjs (onnxruntime alone would kill the process)', async () => {
  const tiny: HostTensor = { dtype: 'F32', shape: [1, 3, 8, 8], data: detInput('tiny', 3 * 8 * 8) };
  for (const engine of ['onnxruntime', 'tfjs'] as const) {
    const before = tf.memory().numTensors;
    await assert.rejects(extractFeatures('googlenet', tiny, { weights: weightsFile('googlenet'), engine }), /too small/, engine);
    assert.equal(tf.memory().numTensors, before, `${engine}: tensors leaked on the refusal`);
  }
});

test('hardneg features --engine: the default (onnxruntime) and tfjs write the same features; a bad value is one line, exit 2', () => {
  const input = join(tmp, 'images.npy');
  writeNpy(input, images);
  const weights = weightsFile('googlenet');
  const run = (extra: string[], out: string) =>
    hardneg(['features', '--backbone', 'googlenet', '--weights', weights, '--input', input, '--out', out, '--json', ...extra]);
  const engines: Record<string, string> = {};
  const written: Record<string, Float32Array> = {};
  // (--engine onnxruntime is the default's path; one process fewer keeps the file under a minute.)
  for (const [name, extra] of [
    ['default', []],
    ['tfjs', ['--engine', 'tfjs']],
  ] as const) {
    const out = join(tmp, `cli-${name}.npy`);
    const r = run([...extra], out);
    assert.equal(r.code, 0, r.stderr);
    engines[name] = (JSON.parse(r.stdout) as { engine: string }).engine;
    written[name] = readNpy(out).data as Float32Array;
  }
  assert.deepEqual(engines, { default: 'onnxruntime', tfjs: 'tfjs' });
  assert.ok(relativeL2(written.default as Float32Array, written.tfjs as Float32Array) <= TOLERANCE);

  const bad = join(tmp, 'cli-bad.npy');
  const r = run(['--engine', 'tensorrt'], bad);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--engine tensorrt: expected .*onnxruntime.*tfjs/);
  assert.ok(!existsSync(bad), '--out untouched');
});

test('model.featureEngine: onnxruntime by default, tfjs accepted, anything else refused naming the key', () => {
  const parse = (overrides: string[]) => parseConfig(applyOverrides({}, overrides), 'test');
  assert.equal(parse([]).model.featureEngine, 'onnxruntime');
  assert.equal(parse(['model.featureEngine=tfjs']).model.featureEngine, 'tfjs');
  assert.throws(
    () => parse(['model.featureEngine=gpu']),
    (e: unknown) => e instanceof ConfigError && /model\.featureEngine/.test(e.message),
  );
});
