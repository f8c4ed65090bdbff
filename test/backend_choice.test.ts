// Which backend computes: `auto` takes only the verified ones (wasm + native kernels, wasm, cpu),
// even when a TensorFlow.js backend package such as @tensorflow/tfjs-node is installed; a backend
// outside those is used only when named, and then the engine line says no golden test covers it
// (until `hardneg doctor` has passed on it, which it records). `doctor` itself is checked here too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, TINY_RUN, hardneg } from './helpers/cli.ts';
import { makeImageFolder } from './helpers/image_folder.ts';
import { GOLDEN } from './helpers/golden.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { toNumbers, type HostTensor } from '../src/io/host_tensor.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-backend-'));
const data = join(tmp, 'data');
const cache = join(tmp, 'cache');
const STANDIN = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node');
// A real tfjs-node, if a developer installed one, serves the same purpose: leave it alone.
const ownStandIn = !existsSync(STANDIN);
const NATIVE_BUILT = existsSync(join(ROOT, 'native', 'build', 'Release', 'hardneg_native.node')) && process.env.HARDNEG_NATIVE !== '0';

// A package named @tensorflow/tfjs-node that registers a working backend named `tensorflow`
// (the cpu backend's kernels under that name), as the real one registers its own.
const STANDIN_INDEX = `'use strict';
const tf = require('@tensorflow/tfjs');
const cpu = require('@tensorflow/tfjs-backend-cpu');
tf.registerBackend('tensorflow', () => new cpu.MathBackendCPU(), 3);
for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'tensorflow' });
module.exports = tf;
`;

before(async () => {
  await makeImageFolder(data, 'train', ['a', 'b', 'c'], 4, 1);
  await makeImageFolder(data, 'test', ['d', 'e'], 3, 2);
  if (ownStandIn) {
    mkdirSync(STANDIN, { recursive: true });
    writeFileSync(join(STANDIN, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node', version: '0.0.0-standin', main: 'index.js' }));
    writeFileSync(join(STANDIN, 'index.js'), STANDIN_INDEX);
  }
});

after(() => {
  if (ownStandIn) rmSync(STANDIN, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

function train(out: string, extra: string[] = []): { code: number; stdout: string; stderr: string } {
  return hardneg(['train', '--dataset', 'folder', '--data-root', data, '--epochs', '1', '--out', join(tmp, out), ...TINY_RUN, ...extra], {
    XDG_CACHE_HOME: cache,
  });
}

const engineLine = (stderr: string): string => stderr.split('\n').find((l) => l.startsWith('backend ')) ?? `(no engine line in: ${stderr})`;

test('auto ignores an installed tfjs-node and computes on the verified backend', () => {
  const r = train('auto');
  assert.equal(r.code, 0, r.stderr);
  const line = engineLine(r.stderr);
  assert.match(line, NATIVE_BUILT ? /^backend wasm \+ native kernels/ : /^backend wasm/);
  assert.doesNotMatch(line, /tensorflow/);
});

test('--backend tensorflow uses it, and says no golden test covers it', () => {
  const r = train('named', ['--backend', 'tensorflow']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    engineLine(r.stderr),
    /^backend tensorflow \(asked for by name; not covered by the golden tests: 'hardneg doctor --backend tensorflow' checks it\)/,
  );
});

test('doctor: reports the install and passes every public golden case on the default backend', () => {
  const r = hardneg(['doctor', '--json'], { XDG_CACHE_HOME: cache });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    ok: boolean;
    cases: Array<{ name: string; kind: string; ok: boolean; compared: number }>;
    environment: { backend: { name: string; verified: boolean }; components: Record<string, { found: string | null }> };
    recorded: string | null;
  };
  assert.equal(report.ok, true);
  assert.equal(report.environment.backend.name, 'wasm');
  assert.equal(report.environment.backend.verified, true);
  assert.equal(report.recorded, null, 'a verified backend needs no record');
  assert.equal(report.environment.components['tfjs-node']?.found, ownStandIn ? '0.0.0-standin' : report.environment.components['tfjs-node']?.found);
  assert.deepEqual([...new Set(report.cases.map((c) => c.kind))], ['generator', 'trajectory', 'run', 'metrics']);
  assert.ok(report.cases.length >= 10, `${report.cases.length} cases`);
  for (const c of report.cases) assert.ok(c.ok && c.compared > 0, `${c.name}: ${JSON.stringify(c)}`);
});

test('doctor --backend tensorflow checks that backend, records the pass, and the engine line cites it', () => {
  const r = hardneg(['doctor', '--backend', 'tensorflow'], { XDG_CACHE_HOME: cache });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /doctor: all \d+ golden cases pass on tensorflow/);
  const records = JSON.parse(readFileSync(join(cache, 'hardneg', 'backend-checks.json'), 'utf8')) as Record<
    string,
    { versions: Record<string, string | null> }
  >;
  assert.equal(records.tensorflow?.versions['@tensorflow/tfjs-node'], ownStandIn ? '0.0.0-standin' : records.tensorflow?.versions['@tensorflow/tfjs-node']);
  const t = train('named-after-doctor', ['--backend', 'tensorflow']);
  assert.equal(t.code, 0, t.stderr);
  assert.match(
    engineLine(t.stderr),
    /^backend tensorflow \(asked for by name; not covered by the golden tests, but 'hardneg doctor' passed its \d+ public golden cases on it on \d{4}-\d\d-\d\d/,
  );
});

test('doctor: a case out of tolerance fails the doctor (exit 1) and names the tensor', () => {
  // One official case copied with one expected value moved by 1%: the same code path must catch it.
  const dir = join(tmp, 'fixtures');
  mkdirSync(dir);
  const name = 'pub_p4k2_d16_l1';
  for (const suffix of ['inputs.safetensors', 'state.safetensors', 'json']) copyFileSync(join(GOLDEN, `${name}.${suffix}`), join(dir, `${name}.${suffix}`));
  const expected = readSafetensors(join(GOLDEN, `${name}.expected.safetensors`)).tensors;
  const loss = expected.get('eval/loss/J_metric') as HostTensor;
  const moved = Float32Array.from(toNumbers(loss), (x) => x * 1.01);
  expected.set('eval/loss/J_metric', { ...loss, data: moved });
  writeSafetensors(join(dir, `${name}.expected.safetensors`), expected);
  const r = hardneg(['doctor', '--fixtures', dir]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /FAIL {2}generator {3}pub_p4k2_d16_l1/);
  assert.match(r.stdout, /eval\/loss\/J_metric: rel 9\.90e-3 > /);
  assert.match(r.stdout, /doctor: 1 of 1 golden cases FAIL on backend wasm/);
});

test('doctor: an unknown backend or an empty fixture folder is one line, exit 2', () => {
  const r = hardneg(['doctor', '--backend', 'nope']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'hardneg doctor: --backend nope: expected one of auto, tensorflow, wasm, cpu, webgpu\n');
  const e = hardneg(['doctor', '--fixtures', tmp]);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /^hardneg doctor: --fixtures .*: no fixtures found \(expected /);
});
