// The compare grid: cells as run directories, refused combinations with reasons, mean ± std tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { hardneg } from './helpers/cli.ts';
import { summaryTable } from '../src/cli/commands/compare.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-compare-'));

async function folder(dir: string): Promise<void> {
  for (const [split, classes] of [
    ['train', ['a', 'b', 'c', 'd']],
    ['test', ['e', 'f', 'g']],
  ] as const) {
    for (const [c, name] of classes.entries()) {
      mkdirSync(join(dir, split, name), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const px = Buffer.alloc(8 * 8 * 3, 20 * i);
        px[(c * 9) % px.length] = 255;
        await sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
          .png()
          .toFile(join(dir, split, name, `${i}.png`));
      }
    }
  }
}

test('compare runs the grid, refuses nonsense with a reason before anything runs, and resumes finished cells', async () => {
  const data = join(tmp, 'data');
  await folder(data);
  const out = join(tmp, 'grid');
  const common = [
    '--dataset',
    'folder',
    '--data-root',
    data,
    '--seeds',
    '2',
    '--epochs',
    '1',
    '--out',
    out,
    '--quiet',
    '--set',
    'dataset.imageSize=8',
    '--set',
    'model.embeddingSize=8',
    '--set',
    'train.classesPerBatch=2',
    '--set',
    'train.samplesPerClass=2',
    '--set',
    'eval.ks=[1,2]',
  ];
  const nonsense = hardneg(['compare', '--methods', 'none,ps', '--losses', 'npair,pa', ...common]);
  assert.equal(nonsense.code, 2, nonsense.stderr);
  assert.match(nonsense.stderr, /^hardneg compare: refused \(nothing was run\): ps × npair: .*proxy-based loss/);
  assert.ok(!existsSync(out), 'nothing written');
  const typo = hardneg(['compare', '--methods', 'nnoe', ...common]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^hardneg compare: --methods: unknown 'nnoe'; expected names from /);
  assert.ok(!existsSync(out), 'nothing written');
  const r = hardneg(['compare', '--methods', 'none', '--losses', 'npair,pa', ...common]);
  assert.equal(r.code, 0, r.stderr);
  const ps = hardneg(['compare', '--methods', 'ps', '--losses', 'pa', ...common]);
  assert.equal(ps.code, 0, ps.stderr);
  const { results } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  assert.deepEqual(
    results.map((c: { method: string; loss: string; seed: number }) => `${c.method}/${c.loss}/${c.seed}`),
    ['ps/proxy-anchor/0', 'ps/proxy-anchor/1'],
  );
  const all = hardneg(['compare', '--methods', 'none,ps', '--losses', 'pa', ...common]);
  assert.equal(all.code, 0, all.stderr);
  const grid = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results;
  assert.deepEqual(
    grid.map((c: { method: string; loss: string; seed: number }) => `${c.method}/${c.loss}/${c.seed}`),
    ['none/proxy-anchor/0', 'none/proxy-anchor/1', 'ps/proxy-anchor/0', 'ps/proxy-anchor/1'],
  );
  assert.deepEqual(grid.slice(2), results, 'the ps cells are reused, not retrained');
  for (const c of results) {
    assert.ok(existsSync(join(out, 'cells', `${c.method}__${c.loss}__seed${c.seed}`, 'metrics.json')), 'each cell is a run directory');
    assert.ok(c.metrics.recall['1'] >= 0 && c.wall_s > 0, 'cell metrics and wall time');
  }
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  assert.match(md, /\| none \| proxy-anchor \| 2 \| \d+\.\d\d ± \d+\.\d\d/);
  assert.match(readFileSync(join(out, 'results.csv'), 'utf8'), /^method,loss,seeds,R@1_mean,R@1_std/);
  const again = hardneg(['compare', '--methods', 'none,ps', '--losses', 'pa', ...common]);
  assert.equal(again.code, 0);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results, grid, 'finished cells are not retrained');
  // A changed request never gets the old cells: other epochs is refused, naming what differs.
  const changed = hardneg(['compare', '--methods', 'none,ps', '--losses', 'pa', ...common.map((a) => (a === '1' ? '2' : a))]);
  assert.equal(changed.code, 2, changed.stderr);
  assert.match(changed.stderr, /holds a run of another configuration \(train\.epochs: 1 there, 2 asked\)/);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results, grid, 'the results are left as they were');
});

test('summary table: mean ± sample std over seeds, in percent', () => {
  const rec = (r1: number) => ({ epoch: 1, recall: { 1: r1 }, map_at_r: 0.5, r_precision: 0.5, nmi: null });
  const t = summaryTable(
    [
      { method: 'm', loss: 'l', seed: 0, metrics: rec(0.5), wall_s: 1 },
      { method: 'm', loss: 'l', seed: 1, metrics: rec(0.7), wall_s: 1 },
    ],
    [1],
  );
  assert.match(t.markdown, /\| m \| l \| 2 \| 60\.00 ± 14\.14 \| 50\.00 ± 0\.00 \| 50\.00 ± 0\.00 \| - \|/);
});
