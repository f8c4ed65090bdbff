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
    assert.ok(c.best.recall['1'] >= 0 && c.final.epoch === 1 && c.wall_s > 0, 'cell metrics and wall time');
    assert.match(c.software.hardneg, /^\d+\.\d+\.\d+/, 'the version that trained the cell');
  }
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  assert.match(md, /^- command: `hardneg compare --methods none,ps --losses pa .* --set 'eval\.ks=\[1,2\]'`$/m);
  assert.match(md, /^- cells trained by hardneg at commit ([0-9a-f]{12}( \(with uncommitted changes\))?|not recorded)$/m);
  assert.match(md, /^- budget per cell: 1 epoch × a pass over the training split, batches of 2 classes × 2 images, evaluation every 1 epoch;/m);
  const [finalPart, bestPart] = md.split('## At the best epoch');
  assert.match(finalPart!, /## After the last epoch[\s\S]*\| none \| proxy-anchor \| 2 \| 1, 1 \| \d+\.\d\d ± \d+\.\d\d/);
  assert.match(bestPart!, /\| none \| proxy-anchor \| 2 \| 1, 1 \| \d+\.\d\d ± \d+\.\d\d/);
  const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
  assert.match(csv[0]!, /^table,method,loss,seeds,R@1_mean,R@1_std/);
  assert.deepEqual(
    csv.slice(1).map((l) => l.split(',').slice(0, 3).join(',')),
    ['final,none,proxy-anchor', 'final,ps,proxy-anchor', 'best,none,proxy-anchor', 'best,ps,proxy-anchor'],
  );
  const again = hardneg(['compare', '--methods', 'none,ps', '--losses', 'pa', ...common]);
  assert.equal(again.code, 0);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results, grid, 'finished cells are not retrained');
  // A changed request never gets the old cells: other epochs is refused, naming what differs.
  const changed = hardneg(['compare', '--methods', 'none,ps', '--losses', 'pa', ...common.map((a) => (a === '1' ? '2' : a))]);
  assert.equal(changed.code, 2, changed.stderr);
  assert.match(changed.stderr, /holds a run of another configuration \(train\.epochs: 1 there, 2 asked\)/);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).results, grid, 'the results are left as they were');
});

test('summary tables: mean ± sample std over seeds, in percent, of the final or the best evaluation', () => {
  const rec = (epoch: number, r1: number) => ({ epoch, recall: { 1: r1 }, map_at_r: 0.5, r_precision: 0.5, nmi: null });
  const cells = [
    { method: 'm', loss: 'l', seed: 0, final: rec(3, 0.5), best: rec(2, 0.6), wall_s: 1, software: null },
    { method: 'm', loss: 'l', seed: 1, final: rec(3, 0.7), best: rec(3, 0.7), wall_s: 1, software: null },
  ];
  // final R@1 0.5, 0.7: mean 60, sample std √((0.1² + 0.1²)/1) = 14.14; best 0.6, 0.7: 65 ± 7.07.
  assert.match(summaryTable(cells, [1], 'final').markdown, /\| m \| l \| 2 \| 3, 3 \| 60\.00 ± 14\.14 \| 50\.00 ± 0\.00 \| 50\.00 ± 0\.00 \| - \|/);
  assert.match(summaryTable(cells, [1], 'best').markdown, /\| m \| l \| 2 \| 2, 3 \| 65\.00 ± 7\.07 \|/);
  assert.match(summaryTable(cells, [1], 'best').csv, /^best,m,l,2,65\.00,7\.07,/m);
});
