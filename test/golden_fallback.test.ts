// The golden tests on both paths. When the native kernels are the default here (the addon is
// built), this file runs the golden and fused-op tests once more in a child process with
// HARDNEG_NATIVE=0, i.e. on the stock wasm kernels; the main run covers the native path. Without
// the addon the main run already is the fallback path, and this checks that it is. A third run on
// TensorFlow.js's cpu backend covers the backend-independent path (composed fused ops, tape
// segments) that the tensorflow and webgpu backends take, since no GPU is at hand in CI.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeStatus } from '../src/engine/native_kernels.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const GOLDEN = ['test/golden_core.test.ts', 'test/golden_trajectory.test.ts', 'test/fused.test.ts'];

/** Runs the golden test files in a child process with `env` added; asserts they all pass. */
function runGolden(env: Record<string, string>, files = GOLDEN): void {
  // A run of its own: without NODE_TEST_CONTEXT the child is not taken for a nested test file.
  const { NODE_TEST_CONTEXT: _, ...base } = process.env;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', ...files], {
    cwd: root,
    env: { ...base, ...env },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, output.slice(-4000));
  assert.match(output, /^# fail 0$/m);
  const passed = Number(/^# pass (\d+)$/m.exec(output)?.[1] ?? 0);
  assert.ok(passed >= 10, `${passed} golden tests ran`);
}

if (nativeStatus().active) {
  test('the golden tests pass on the fallback (pure wasm) path too', () => {
    runGolden({ HARDNEG_NATIVE: '0' });
  });
} else {
  test('without the native addon the golden tests of this run are the fallback path', () => {
    assert.equal(nativeStatus().active, false);
    assert.ok(nativeStatus().reason.length > 0);
  });
}

test('the golden tests pass on the cpu backend (the path of --backend tensorflow and webgpu)', () => {
  runGolden({ HARDNEG_TEST_BACKEND: 'cpu' }, ['test/golden_core.test.ts', 'test/golden_trajectory.test.ts']);
});
