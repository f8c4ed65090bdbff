// The cheap part of the GPU run (scripts/gpu/run.sh --check): it unpacks the carried Node and
// packages, looks for NVIDIA's Vulkan driver and writes gpu-summary.json, recording what it did not
// find. No GPU here, so on webgpu the summary must say that no ICD was found. The pack itself
// (scripts/gpu/pack.sh) needs the registries the first time: without one the test is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pack = join(root, '.gpu-pack', 'pack.tar.xz');
const hasGpu = existsSync('/usr/share/vulkan/icd.d/nvidia_icd.json') || existsSync('/etc/vulkan/icd.d/nvidia_icd.json');

interface Summary {
  backend: string;
  mode: string;
  ok: boolean;
  problems: string[];
  node: string;
  node_path: string;
  vulkan_icd: string | null;
  nvidia_smi: string;
  steps: unknown[];
}

test(
  'run.sh --check writes a summary that records the missing NVIDIA driver',
  { skip: existsSync(pack) ? false : `no ${pack} (bash scripts/gpu/pack.sh)`, timeout: 30_000 },
  () => {
    const out = mkdtempSync(join(tmpdir(), 'hardneg-gpu-'));
    try {
      const r = spawnSync('bash', [join(root, 'scripts/gpu/run.sh'), '--check'], { env: { ...process.env, OUT: out }, encoding: 'utf8', timeout: 30_000 });
      const summary = JSON.parse(readFileSync(join(out, 'gpu-summary.json'), 'utf8')) as Summary;
      assert.equal(summary.backend, 'webgpu');
      assert.equal(summary.mode, 'check');
      assert.deepEqual(summary.steps, []);
      assert.match(summary.node, /^v20\./);
      // The carried node, not the system one.
      assert.ok(!summary.node_path.startsWith('/usr/'), summary.node_path);
      assert.equal(typeof summary.nvidia_smi, 'string');
      if (hasGpu) {
        assert.equal(r.status, 0, r.stderr);
        assert.ok(summary.ok);
      } else {
        assert.equal(r.status, 1);
        assert.equal(summary.ok, false);
        assert.equal(summary.vulkan_icd, null);
        assert.match(summary.problems.join('\n'), /no NVIDIA Vulkan ICD/);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
);

test('run.sh without a pack records that in the summary', () => {
  const out = mkdtempSync(join(tmpdir(), 'hardneg-gpu-'));
  try {
    const r = spawnSync('bash', [join(root, 'scripts/gpu/run.sh'), '--check', '--pack', join(out, 'absent.tar.xz')], {
      env: { ...process.env, OUT: out },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    const summary = JSON.parse(readFileSync(join(out, 'gpu-summary.json'), 'utf8')) as { ok: boolean; error: string; steps: unknown[] };
    assert.equal(summary.ok, false);
    assert.match(summary.error, /not found: run scripts\/gpu\/pack\.sh/);
    assert.deepEqual(summary.steps, []);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
