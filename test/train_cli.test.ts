// Training end to end through the command line on a tiny image folder: a run killed with SIGKILL
// mid-epoch and resumed ends exactly as the uninterrupted one; bad input is refused clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, hardneg } from './helpers/cli.ts';
import { makeImageFolder } from './helpers/image_folder.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-train-'));
const data = join(tmp, 'data');

const CONFIG = [
  '--set',
  'dataset.imageSize=8',
  '--set',
  'dataset.flip=true',
  '--set',
  'model.embeddingSize=16',
  '--set',
  'train.classesPerBatch=3',
  '--set',
  'train.samplesPerClass=2',
  '--set',
  'train.checkpointEvery=1',
  '--set',
  'solver.warmUpEpochs=1',
  '--set',
  'eval.ks=[1,2]',
];

function trainArgs(out: string): string[] {
  return ['train', '--dataset', 'folder', '--data-root', data, '--epochs', '3', '--seed', '7', '--out', out, '--quiet', ...CONFIG];
}

async function killAfterIterations(args: string[], logPath: string, iterations: number): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'hardneg'), ...args], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const lines = existsSync(logPath)
      ? readFileSync(logPath, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"iteration"')).length
      : 0;
    if (lines >= iterations) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
}

test('setup: a tiny image-folder dataset', async () => {
  // 20 images per class: 19 iterations per epoch, so the kill below lands well before the end
  // even on a loaded machine (the whole run takes a few seconds).
  await makeImageFolder(data, 'train', ['a', 'b', 'c', 'd', 'e', 'f'], 20, 1);
  await makeImageFolder(data, 'test', ['g', 'h', 'i', 'j'], 4, 2);
});

test('a run killed with SIGKILL mid-epoch and resumed ends with the same weights and metrics', async () => {
  const whole = join(tmp, 'whole');
  const r = hardneg(trainArgs(whole));
  assert.equal(r.code, 0, r.stderr);
  const interrupted = join(tmp, 'interrupted');
  // Stop inside the second epoch (after warm-up, backbone training).
  await killAfterIterations(trainArgs(interrupted), join(interrupted, 'log.jsonl'), 21);
  assert.ok(!existsSync(join(interrupted, 'metrics.json')), 'the run was interrupted before finishing');
  const resumed = hardneg(['train', '--resume', interrupted, '--quiet']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(readFileSync(join(interrupted, 'model.safetensors')), readFileSync(join(whole, 'model.safetensors')), 'final weights are identical');
  const a = JSON.parse(readFileSync(join(whole, 'metrics.json'), 'utf8'));
  const b = JSON.parse(readFileSync(join(interrupted, 'metrics.json'), 'utf8'));
  assert.deepEqual(b.final, a.final);
  assert.deepEqual(b.best, a.best);
  for (const key of ['epoch', 'recall', 'map_at_r', 'r_precision', 'nmi']) assert.ok(key in a.final, `metrics.json final has ${key}`);
  const iterLines = (p: string) =>
    readFileSync(join(p, 'log.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"iteration"'))
      .map((l) => JSON.parse(l));
  assert.deepEqual(
    iterLines(interrupted).map((l) => l.J_metric),
    iterLines(whole).map((l) => l.J_metric),
    'the log continues without gaps or repeats',
  );
});

test('the none baseline trains with the same model and reports the same metrics', () => {
  const r = hardneg([...trainArgs(join(tmp, 'none')), '--method', 'none', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.equal(m.final.epoch, 3);
  assert.ok(m.final.recall['1'] >= 0 && m.final.recall['1'] <= 1);
});

test('an --out directory that holds a run is refused unless --resume or --overwrite', () => {
  const out = join(tmp, 'whole');
  const r = hardneg(trainArgs(out));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /already holds a run; use --resume .* or --overwrite/);
});

test('configuration mistakes name the key or value', () => {
  let r = hardneg(['train', '--out', join(tmp, 'x1'), '--set', 'train.epochz=3']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown configuration key 'train\.epochz'/);
  r = hardneg(['train', '--out', join(tmp, 'x2'), '--set', 'loss.alpha="high"']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /'loss\.alpha'/);
  const yaml = join(tmp, 'c.yaml');
  writeFileSync(yaml, 'model:\n  depth: 3\n');
  r = hardneg(['train', '--out', join(tmp, 'x3'), '--config', yaml]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /c\.yaml: unknown configuration key 'model\.depth'/);
  r = hardneg(['train', '--out', join(tmp, 'x4'), '--dataset', 'folder']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--data-root/);
});

test('an unreadable image is reported with its path; a class with fewer than K images is warned about', async () => {
  const bad = join(tmp, 'bad');
  await makeImageFolder(bad, 'train', ['a', 'b', 'c', 'd'], 3, 3);
  await makeImageFolder(bad, 'test', ['e', 'f'], 3, 4);
  writeFileSync(join(bad, 'train', 'a', 'broken.png'), 'not an image');
  let r = hardneg(['train', '--dataset', 'folder', '--data-root', bad, '--out', join(tmp, 'bad-run'), '--quiet']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /train\/a\/broken\.png/);
  const small = join(tmp, 'small');
  await makeImageFolder(small, 'train', ['a', 'b', 'c', 'd'], 4, 5);
  await makeImageFolder(small, 'train', ['z'], 1, 6);
  await makeImageFolder(small, 'test', ['e', 'f'], 3, 7);
  r = hardneg(['train', '--dataset', 'folder', '--data-root', small, '--out', join(tmp, 'small-run'), '--epochs', '1', ...CONFIG]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: class .*z.* fewer than K = 2.*with replacement/);
  const empty = join(tmp, 'empty');
  mkdirSync(join(empty, 'train'), { recursive: true });
  mkdirSync(join(empty, 'test'), { recursive: true });
  r = hardneg(['train', '--dataset', 'folder', '--data-root', empty, '--out', join(tmp, 'empty-run')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /empty|no image/i);
});
