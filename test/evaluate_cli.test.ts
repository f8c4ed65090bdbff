import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeNpy } from '../src/io/npy.ts';
import { f32, f64, i64 } from '../src/io/host_tensor.ts';
import { GOLDEN } from './helpers/golden.ts';

const BIN = fileURLToPath(new URL('../bin/hardneg', import.meta.url));
const CASE = join(GOLDEN, 'metrics', 'pub_m_n300_d32_c20_dups');
const EXPECTED = JSON.parse(readFileSync(`${CASE}.expected.json`, 'utf8')) as {
  retrieval: Record<string, { recall: Record<string, number>; map_at_r: number; r_precision: number }>;
  retrieval_f64_textbook: { recall: Record<string, number>; map_at_r: number; r_precision: number };
  inshop: { recall: Record<string, number>; map_at_r: number; r_precision: number };
};
const TMP = mkdtempSync(join(tmpdir(), 'hardneg-evaluate-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hardneg(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'evaluate', ...args], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The metrics object printed by --json, next to a fixture entry (MAP@R and R-Precision in percent there). */
function assertJson(run: Run, expected: { recall: Record<string, number>; map_at_r: number; r_precision: number }): Record<string, unknown> {
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { recall: Record<string, number>; map_at_r: number; r_precision: number };
  assert.deepEqual(Object.keys(out.recall), Object.keys(expected.recall));
  for (const [k, v] of Object.entries(expected.recall)) assert.ok(Math.abs((out.recall[k] as number) - v) <= 1e-6, `Recall@${k}: ${out.recall[k]} vs ${v}`);
  assert.ok(Math.abs(out.map_at_r - expected.map_at_r / 100) <= 1e-6, `MAP@R ${out.map_at_r} vs ${expected.map_at_r}%`);
  assert.ok(Math.abs(out.r_precision - expected.r_precision / 100) <= 1e-6, `R-Precision ${out.r_precision} vs ${expected.r_precision}%`);
  return out;
}

/** An error run: exit 2, one line on stderr that mentions `needle`, no stack trace. */
function assertUserError(run: Run, needle: string): void {
  assert.equal(run.code, 2, `exit code; stderr: ${run.stderr}`);
  assert.ok(run.stderr.includes(needle), `stderr should mention ${needle}: ${run.stderr}`);
  assert.equal(run.stderr.trim().split('\n').length, 1, `one line expected: ${run.stderr}`);
  assert.ok(!/\n\s+at /.test(run.stderr), `no stack trace: ${run.stderr}`);
}

describe('hardneg evaluate', { concurrency: true }, () => {
  test('official semantics --json reproduces the fixture (1,2,4,8 and 1,10,100,1000)', async () => {
    for (const [key, ks] of [
      ['neighbours_1_2_4_8', '1,2,4,8'],
      ['neighbours_1_10_100_1000', '1,10,100,1000'],
    ] as const) {
      const run = await hardneg('--embeddings', `${CASE}.X.npy`, '--labels', `${CASE}.T.npy`, '--k', ks, '--semantics', 'official', '--no-nmi', '--json');
      const out = assertJson(run, EXPECTED.retrieval[key] as (typeof EXPECTED)['inshop']);
      assert.equal(out.nmi, undefined);
    }
  });

  test('textbook is the default and NMI is computed unless --no-nmi', async () => {
    const run = await hardneg('--embeddings', `${CASE}.X.npy`, '--labels', `${CASE}.T.npy`, '--k', '1,2,4,8,10,100,1000', '--json');
    const out = assertJson(run, EXPECTED.retrieval_f64_textbook);
    assert.equal(out.semantics, 'textbook');
    assert.equal(typeof out.nmi, 'number');
    assert.ok((out.nmi as number) > 0 && (out.nmi as number) <= 1, `nmi ${out.nmi}`);
  });

  test('the In-Shop form reproduces the fixture under official semantics', async () => {
    const run = await hardneg(
      '--query-embeddings',
      `${CASE}.query_X.npy`,
      '--query-labels',
      `${CASE}.query_T.npy`,
      '--gallery-embeddings',
      `${CASE}.gallery_X.npy`,
      '--gallery-labels',
      `${CASE}.gallery_T.npy`,
      '--semantics',
      'official',
      '--json',
    );
    assertJson(run, EXPECTED.inshop);
  });

  test('without --json a readable table', async () => {
    const run = await hardneg('--embeddings', `${CASE}.X.npy`, '--labels', `${CASE}.T.npy`, '--no-nmi');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Recall@1\s+48\.33/);
    assert.match(run.stdout, /MAP@R\s+12\.20/);
    assert.match(run.stdout, /R-Precision\s+20\.90/);
  });

  test('a missing file exits 2 naming the path', async () => {
    const missing = join(TMP, 'no-such-file.npy');
    assertUserError(await hardneg('--embeddings', missing, '--labels', `${CASE}.T.npy`), missing);
  });

  test('bad inputs exit 2 naming the flag and what was expected', async () => {
    const oneD = join(TMP, 'one_d.npy');
    writeNpy(oneD, f32([1, 2, 3], [3]));
    const fractional = join(TMP, 'fractional.npy');
    writeNpy(fractional, f64([0, 0.5, 1], [3]));
    const threeRows = join(TMP, 'three.npy');
    writeNpy(threeRows, f32([1, 0, 0, 1, 1, 1], [3, 2]));
    const twoLabels = join(TMP, 'two_labels.npy');
    writeNpy(twoLabels, i64([0, 1], [2]));
    const runs = await Promise.all([
      hardneg('--embeddings', oneD, '--labels', `${CASE}.T.npy`),
      hardneg('--embeddings', threeRows, '--labels', fractional),
      hardneg('--embeddings', threeRows, '--labels', twoLabels),
      hardneg('--embeddings', `${CASE}.X.npy`, '--labels', `${CASE}.T.npy`, '--k', '1,0'),
      hardneg('--embeddings', `${CASE}.X.npy`, '--labels', `${CASE}.T.npy`, '--semantics', 'paper'),
      hardneg('--embeddings', `${CASE}.X.npy`),
      hardneg('--query-embeddings', `${CASE}.query_X.npy`, '--query-labels', `${CASE}.query_T.npy`),
    ]);
    const [oneDRun, fractionalRun, mismatchRun, kRun, semanticsRun, noLabelsRun, halfInShopRun] = runs as Run[];
    assertUserError(oneDRun as Run, `--embeddings ${oneD}: expected a 2-D array`);
    assertUserError(fractionalRun as Run, `--labels ${fractional}: expected integer labels`);
    assertUserError(mismatchRun as Run, `--labels ${twoLabels}: 2 labels, but --embeddings has 3 rows`);
    assertUserError(kRun as Run, '--k');
    assertUserError(semanticsRun as Run, '--semantics');
    assertUserError(noLabelsRun as Run, '--labels');
    assertUserError(halfInShopRun as Run, '--gallery-embeddings');
  });
});
