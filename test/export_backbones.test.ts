// hardneg export for the pretrained backbones (ResNet-50, GoogLeNet, DINO ViT-S/16): the exported
// image → embedding model run in onnxruntime equals hardneg's own evaluation-mode forward
// (src/models/metric_model.ts embed: an independent code path from the exporter) on the same
// images, at two batch sizes of one session (the batch axis is dynamic).
//
// The weights are deterministic functions of each tensor's name (test/helpers/det_weights.ts), the
// head's too, so nothing is downloaded; the images are small (64 px for the CNNs, 32 and 48 px for
// the ViT, whose position embedding is then resized) to keep each forward fast. One test goes
// through the command line on a run directory at the paper's 224 px.
import './helpers/backend.ts';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { exportMetricModel } from '../src/export/export_model.ts';
import { decodeModel } from '../src/export/onnx_proto.ts';
import { UserError } from '../src/errors.ts';
import { loadEmbedder } from '../src/inference/embedder.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import type { Backbone } from '../src/models/backbone.ts';
import { dinoVitS16 } from '../src/models/dino_vit.ts';
import { HEAD_BN, HEAD_LINEAR } from '../src/models/embedding_head.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { createMetricModel, embed, type MetricModel } from '../src/models/metric_model.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { smallCnn } from '../src/models/small_cnn.ts';
import { loadTorchvisionWeights, type TorchvisionBackbone } from '../src/models/torchvision.ts';
import { parseConfig } from '../src/train/config.ts';
import { RUN_FILES, startRunDir } from '../src/train/run_dir.ts';
import { hardneg } from './helpers/cli.ts';
import { relativeL2 } from './helpers/close.ts';
import { detInput, detStateDict, detTensor } from './helpers/det_weights.ts';

const TOLERANCE = 1e-4;
const D = 8;
const tmp = mkdtempSync(join(tmpdir(), 'hardneg-export-'));

after(() => rmSync(tmp, { recursive: true, force: true }));

/** The backbone → head model with deterministic weights everywhere (a BatchNorm1d that is not the identity). */
function detModel(backbone: TorchvisionBackbone): MetricModel {
  const m = createMetricModel(backbone, { P: 2, K: 2, D, H: 2, L: 1, C: 0 }, 0, false, false);
  loadTorchvisionWeights(m.sd, backbone, detStateDict(backbone));
  for (const name of ['weight', 'bias', 'running_mean', 'running_var'].map((p) => `${HEAD_BN}.${p}`).concat([`${HEAD_LINEAR}.weight`, `${HEAD_LINEAR}.bias`])) {
    const shape = [...m.sd.get(name).shape];
    m.sd.load(name, { dtype: 'F32', shape, data: detTensor(name, shape) });
  }
  return m;
}

/** hardneg's forward in evaluation mode on NCHW images (transposed to the model's NHWC). */
async function forward(m: MetricModel, x: Float32Array, n: number, side: number): Promise<Float32Array> {
  const z = tf.tidy(() => embed(m, tf.transpose(tf.tensor4d(x, [n, 3, side, side]), [0, 2, 3, 1]) as tf.Tensor4D, false));
  try {
    return Float32Array.from((await z.data()) as Float32Array);
  } finally {
    z.dispose();
  }
}

/** Exports `m` for `side`-px images, runs batches of 2 and 3 in onnxruntime; the relative L2 errors. */
async function parity(m: MetricModel, side: number, opset: number, seed: string): Promise<number[]> {
  const per = 3 * side * side;
  const x = detInput(seed, 3 * per);
  const expected = await forward(m, x, 3, side);
  const session = await ort.InferenceSession.create(exportMetricModel(m, [3, side, side], { opset }));
  try {
    const errors: number[] = [];
    for (const n of [2, 3]) {
      const out = await session.run({ images: new ort.Tensor('float32', x.subarray(0, n * per), [n, 3, side, side]) });
      const y = out.embeddings;
      assert.deepEqual(y?.dims, [n, D]);
      errors.push(relativeL2(y?.data as Float32Array, expected.subarray(0, n * D)));
    }
    return errors;
  } finally {
    await session.release();
  }
}

/** One model's weights, exported in variants: another backbone object over the same state dict (ResNet's pooling), model.normalize, opsets and image sides. */
const groups: Array<{
  make: () => TorchvisionBackbone;
  variants: Array<[what: string, side: number, opset: number, variant: (m: MetricModel) => MetricModel]>;
}> = [
  {
    make: () => resnet50(),
    variants: [
      ['resnet50 (avg + max pooling), 64 px, opset 17', 64, 17, (m) => m],
      ['resnet50 (average pooling only, model.normalize), 64 px, opset 13', 64, 13, (m) => ({ ...m, backbone: resnet50({ pooling: false }), normalize: true })],
    ],
  },
  { make: () => googlenet(), variants: [['googlenet (transform_input, ceil-mode pooling), 64 px, opset 17', 64, 17, (m) => m]] },
  {
    make: () => dinoVitS16(),
    variants: [
      ['dino-vits16, 48 px (position embedding resized to 3 × 3), opset 17 (LayerNormalization)', 48, 17, (m) => m],
      ['dino-vits16, 32 px, opset 13 (LayerNorm from primitives)', 32, 13, (m) => m],
    ],
  },
];

for (const { make, variants } of groups) {
  test(`exported ${variants.map(([what]) => what).join('; ')}: onnxruntime = hardneg's forward within relative L2 1e-4, batches 2 and 3`, async (t) => {
    const m = detModel(make());
    try {
      for (const [what, side, opset, variant] of variants) {
        const errors = await parity(variant(m), side, opset, `export.${what}`);
        t.diagnostic(`${what}: relative L2 (batch 2, batch 3) ${errors.map((e) => e.toExponential(2)).join(', ')}`);
        for (const e of errors) assert.ok(e < TOLERANCE, `${what}: relative L2 ${e}`);
      }
    } finally {
      m.sd.dispose();
    }
  });
}

test('a backbone without exportOnnx is refused with a UserError naming the exportable ones', () => {
  const { exportOnnx: _, ...rest } = smallCnn(3);
  const backbone: Backbone = rest;
  const m = createMetricModel(backbone, { P: 2, K: 2, D, H: 2, L: 1, C: 0 }, 0, false, false);
  try {
    assert.throws(
      () => exportMetricModel(m, [3, 8, 8]),
      (err: Error) =>
        err instanceof UserError && /small-cnn backbone cannot be exported/.test(err.message) && /resnet50, googlenet, dino-vits16/.test(err.message),
    );
  } finally {
    m.sd.dispose();
  }
});

test('hardneg export of a GoogLeNet run (224 px): the ONNX model in onnxruntime equals embedTensor within 1e-4', async (t) => {
  // A run directory as hardneg train leaves it (configuration, metrics, final weights), without the training.
  const run = join(tmp, 'run');
  const config = parseConfig({ model: { backbone: 'googlenet', embeddingSize: D } }, 'test configuration');
  startRunDir(run, config);
  writeFileSync(join(run, RUN_FILES.metrics), '{}\n');
  const m = detModel(googlenet({ bnFreeze: config.solver.bnFreeze }));
  try {
    writeSafetensors(join(run, RUN_FILES.final), await m.sd.toHost());
  } finally {
    m.sd.dispose();
  }
  const file = join(tmp, 'googlenet.onnx');
  const r = hardneg(['export', run, '--out', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { input: string; output: string; inputShape: Array<number | string>; dim: number; opset: number };
  assert.deepEqual(s.inputShape, ['n', 3, 224, 224]);
  assert.equal(s.dim, D);
  const per = 3 * 224 * 224;
  const x = detInput('export.cli', 2 * per);
  const e = await loadEmbedder(run);
  let expected: Float32Array;
  try {
    expected = await e.embedTensor(x, 2);
  } finally {
    e.dispose();
  }
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ [s.input]: new ort.Tensor('float32', x, [2, 3, 224, 224]) });
    const err = relativeL2(out[s.output]?.data as Float32Array, expected);
    t.diagnostic(`relative L2 (batch 2, 224 px): ${err.toExponential(2)}`);
    assert.ok(err < TOLERANCE, `relative L2 ${err}`);
  } finally {
    await session.release();
  }
  const props = new Map((decodeModel(readFileSync(file)).metadata_props ?? []).map((p) => [p.key, p.value]));
  assert.equal(props.get('hardneg.backbone'), 'googlenet');
  assert.equal(props.get('hardneg.input_size'), '224x224');
  assert.equal(props.get('hardneg.crop'), '224');
});
