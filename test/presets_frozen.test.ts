// The 12 official configurations as presets, and frozen-feature training end to end on a tiny
// ONNX model and a miniature image folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { hardneg } from './helpers/cli.ts';
import { GOLDEN } from './helpers/golden.ts';
import { presetNames, resolveConfig } from '../src/train/setup.ts';

test('presets: the 12 official configurations with their values', () => {
  assert.deepEqual(presetNames(), [
    'dino-cars196',
    'dino-cub200',
    'dino-inshop',
    'dino-sop',
    'g-cars196',
    'g-cub200',
    'g-inshop',
    'g-sop',
    'res-cars196',
    'res-cub200',
    'res-inshop',
    'res-sop',
  ]);
  const g = resolveConfig({ preset: 'g-cub200', dataRoot: '/data/CUB_200_2011' });
  assert.equal(g.model.backbone, 'googlenet');
  assert.deepEqual([g.train.classesPerBatch, g.train.samplesPerClass, g.model.gnnLayers, g.model.attentionHeads, g.train.epochs], [27, 3, 2, 4, 150]);
  assert.deepEqual(
    [g.loss.alpha, g.loss.beta, g.loss.dotWeight, g.loss.divWeight, g.solver.baseLr, g.solver.metricDecaySteps, g.solver.bnFreeze],
    [4, 30, 10, 10, 1e-4, 30, true],
  );
  const r = resolveConfig({ preset: 'res-sop', set: ['train.epochs=3'] });
  assert.deepEqual(
    [r.model.backbone, r.model.pooling, r.train.classesPerBatch, r.loss.divWeight, r.solver.baseLr, r.train.epochs],
    ['resnet50', true, 40, 60, 2e-4, 3],
  );
  assert.deepEqual(r.eval.ks, [1, 10, 100, 1000]);
  const d = resolveConfig({ preset: 'dino-cub200', dataRoot: '/data/CUB_200_2011' });
  assert.deepEqual(
    [d.model.backbone, d.model.embeddingSize, d.model.pooling, d.solver.baseLr, d.solver.warmUpEpochs, d.solver.bnFreeze, d.train.epochs],
    ['dino-vits16', 384, false, 1e-5, 2, false, 50],
  );
});

test('frozen-feature mode trains end to end on a tiny ONNX model, extracting features once', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hardneg-frozen-'));
  const data = join(tmp, 'data');
  for (const [split, classes] of [
    ['train', ['a', 'b', 'c', 'd']],
    ['test', ['e', 'f', 'g']],
  ] as const) {
    for (const [c, name] of classes.entries()) {
      mkdirSync(join(data, split, name), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const px = Buffer.alloc(40 * 30 * 3, 30 * i);
        for (let p = 0; p < 60; p++) px[(c * 97 + p * 7) % px.length] = 255;
        await sharp(px, { raw: { width: 40, height: 30, channels: 3 } })
          .jpeg()
          .toFile(join(data, split, name, `${i}.jpg`));
      }
    }
  }
  const cache = join(tmp, 'cache');
  const args = (out: string) => [
    'train',
    '--dataset',
    'folder',
    '--data-root',
    data,
    '--out',
    out,
    '--epochs',
    '2',
    '--quiet',
    '--json',
    '--set',
    'model.backbone=onnx',
    '--set',
    `model.onnx=${join(GOLDEN, '..', 'backbones', 'tiny.onnx')}`,
    '--set',
    'model.onnxInputSize=32',
    '--set',
    `model.featureCache=${cache}`,
    '--set',
    'model.embeddingSize=8',
    '--set',
    'train.classesPerBatch=2',
    '--set',
    'train.samplesPerClass=2',
    '--set',
    'eval.ks=[1,2]',
  ];
  const first = hardneg(args(join(tmp, 'run1')));
  assert.equal(first.code, 0, first.stderr);
  const m = JSON.parse(first.stdout);
  assert.equal(m.final.epoch, 2);
  const entries = readdirSync(cache).sort();
  assert.equal(entries.length, 2, 'train and test features cached');
  const stamps = entries.map((e) => statSync(join(cache, e, 'manifest.json')).mtimeMs);
  const second = hardneg(args(join(tmp, 'run2')));
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(
    entries.map((e) => statSync(join(cache, e, 'manifest.json')).mtimeMs),
    stamps,
    'the cache is reused, not rewritten',
  );
  assert.deepEqual(JSON.parse(second.stdout).final, m.final, 'same seed, same result');
  const manifest = JSON.parse(readFileSync(join(cache, entries[0] as string, 'manifest.json'), 'utf8'));
  assert.ok(manifest.model.sha256, 'keyed by the model file');
});
