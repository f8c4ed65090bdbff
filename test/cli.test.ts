// The command line: reference-check and generate on golden data, and their error paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { f64, i64, toNumbers } from '../src/io/host_tensor.ts';
import { GOLDEN } from './helpers/golden.ts';
import { hardneg } from './helpers/cli.ts';
import { relativeL2 } from './helpers/close.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-cli-'));
const CASE = `${GOLDEN}/pub_p3k3_d32_l2`;

test('reference-check on a generator fixture: writes every expected tensor, exit 0', () => {
  const out = join(tmp, 'core.safetensors');
  const r = hardneg(['reference-check', '--fixture', CASE, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  const written = readSafetensors(out).tensors;
  const expected = readSafetensors(`${CASE}.expected.safetensors`).tensors;
  for (const name of expected.keys()) assert.ok(written.has(name), `wrote ${name}`);
  assert.deepEqual(written.get('grad/z')!.shape, [9, 32]);
});

test('reference-check on a trajectory fixture, exit 0', () => {
  const r = hardneg(['reference-check', '--fixture', `${GOLDEN}/train/trn_p3k2_d16`, '--out', join(tmp, 'trn.safetensors')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /0 out of tolerance/);
});

test('reference-check exits 1 when a tensor is out of tolerance', () => {
  // Same inputs and state, but an expected file from another case → comparisons fail.
  const prefix = join(tmp, 'mismatch');
  copyFileSync(`${CASE}.inputs.safetensors`, `${prefix}.inputs.safetensors`);
  copyFileSync(`${CASE}.state.safetensors`, `${prefix}.state.safetensors`);
  copyFileSync(`${GOLDEN}/pub_p6k2_d64_l2.expected.safetensors`, `${prefix}.expected.safetensors`);
  const r = hardneg(['reference-check', '--fixture', prefix, '--out', join(tmp, 'mm.safetensors')]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL/);
});

test('reference-check: a missing fixture is a one-line error, exit 2', () => {
  const r = hardneg(['reference-check', '--fixture', join(tmp, 'nope'), '--out', join(tmp, 'x.safetensors')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no fixture at .*nope/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
});

test('generate reproduces the fixture’s eval-mode negatives', () => {
  const inputs = readSafetensors(`${CASE}.inputs.safetensors`).tensors;
  const rnd = join(tmp, 'r.npy');
  writeNpy(rnd, f64(toNumbers(inputs.get('rand_seq')!), [6]));
  const out = join(tmp, 'neg.npy');
  const r = hardneg([
    'generate',
    '--checkpoint',
    `${CASE}.state.safetensors`,
    '--embeddings',
    `${CASE}.z.npy`,
    '--labels',
    `${CASE}.y.npy`,
    '--heads',
    '4',
    '--alpha',
    '5',
    '--j-avg',
    '2.5',
    '--random',
    rnd,
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const neg = readNpy(out);
  assert.deepEqual(neg.shape, [27, 32]);
  const expected = readSafetensors(`${CASE}.expected.safetensors`).tensors.get('eval/pulling/neg_hat')!;
  assert.ok(relativeL2(toNumbers(neg), toNumbers(expected)) < 1e-5);
});

test('generate refuses labels outside the chunk layout and mismatched shapes, exit 2', () => {
  const labels = join(tmp, 'bad_y.npy');
  writeNpy(labels, i64([0, 0, 0, 1, 1, 1, 2, 2, 2], [9]));
  const base = ['generate', '--checkpoint', `${CASE}.state.safetensors`, '--heads', '4', '--alpha', '5', '--j-avg', '2.5', '--out', join(tmp, 'n.npy')];
  let r = hardneg([...base, '--embeddings', `${CASE}.z.npy`, '--labels', labels]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad_y\.npy: labels are not in the P×K chunk layout/);
  r = hardneg([...base, '--embeddings', `${GOLDEN}/pub_p4k2_d16_l1.z.npy`, '--labels', `${GOLDEN}/pub_p4k2_d16_l1.y.npy`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /embedding width 16 does not match the checkpoint's D=32/);
  const notCkpt = join(tmp, 'not.safetensors');
  writeFileSync(notCkpt, 'hello');
  r = hardneg([...base.slice(0, 1), '--checkpoint', notCkpt, ...base.slice(3), '--embeddings', `${CASE}.z.npy`, '--labels', `${CASE}.y.npy`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not\.safetensors/);
  r = hardneg([...base, '--embeddings', `${CASE}.z.npy`, '--labels', `${CASE}.y.npy`, '--bogus']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bogus/);
});

test('help and unknown commands', () => {
  assert.equal(hardneg(['--help']).code, 0);
  assert.match(hardneg(['generate', '--help']).stdout, /--checkpoint/);
  const r = hardneg(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});

test('an unavailable or unknown --backend is a one-line error with what to install, exit 2', () => {
  const webgpu = hardneg(['demo', '--backend', 'webgpu']);
  assert.equal(webgpu.code, 2, webgpu.stderr);
  assert.match(webgpu.stderr, /backend 'webgpu' is not available.*npm install @tensorflow\/tfjs-backend-webgpu/);
  assert.doesNotMatch(webgpu.stderr, /\n\s+at /);
  const unknown = hardneg(['demo', '--backend', 'cuda']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown backend 'cuda': expected one of auto, tensorflow, wasm, cpu, webgpu/);
});
