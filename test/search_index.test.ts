// `hardneg index build` and `hardneg search` against brute-force neighbours computed here, in
// float64, independently of LanceDB; filters, ids, bad inputs, builds from a run and from embed
// output, an interrupted build, and the recall of an ANN index.
import './helpers/backend.ts';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_RUN, hardneg as spawnHardneg } from './helpers/cli.ts';
import { main } from '../src/cli/main.ts';
import { makeImageFolder } from './helpers/image_folder.ts';
import { f32, i64 } from '../src/io/host_tensor.ts';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { UserError } from '../src/errors.ts';
import { closeImagePools } from '../src/data/pipeline.ts';
import { buildIndex, openIndex } from '../src/search/index_store.ts';
import { loadLanceDB } from '../src/search/lancedb.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-search-'));
const T = (...p: string[]): string => join(tmp, ...p);

/** A seeded LCG, independent of the library's generators. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const N = 300;
const D = 12;
const rand = rng(7);
const X = Float32Array.from({ length: N * D }, () => rand() * 2 - 1);
const LABELS = Array.from({ length: N }, (_, i) => i % 4);
const Q = Float32Array.from({ length: 3 * D }, () => rand() * 2 - 1);

/** The k nearest rows of x to q by brute force in float64. */
function bruteForce(x: Float32Array, dim: number, q: Float32Array, k: number, metric: 'l2' | 'cosine', keep: (i: number) => boolean = () => true) {
  const n = x.length / dim;
  const all: { id: number; distance: number }[] = [];
  for (let i = 0; i < n; i++) {
    if (!keep(i)) continue;
    let dot = 0;
    let xx = 0;
    let qq = 0;
    let sq = 0;
    for (let d = 0; d < dim; d++) {
      const a = x[i * dim + d] as number;
      const b = q[d] as number;
      dot += a * b;
      xx += a * a;
      qq += b * b;
      sq += (a - b) ** 2;
    }
    all.push({ id: i, distance: metric === 'l2' ? Math.sqrt(sq) : 1 - dot / Math.sqrt(xx * qq) });
  }
  return all.sort((a, b) => a.distance - b.distance).slice(0, k);
}

interface Hit {
  id: number;
  distance: number;
  label: string | null;
  path: string | null;
}

/**
 * The CLI in this process (a spawned one costs seconds of start-up on a loaded machine): main()
 * with console output captured; training still runs in a process of its own.
 */
async function hardneg(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function searchJson(args: string[]): Promise<Hit[][]> {
  const r = await hardneg(['search', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const parsed = JSON.parse(r.stdout) as { results: Hit[][] };
  assert.deepEqual(Object.keys(parsed), ['results']);
  return parsed.results;
}

function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, pattern);
}

before(() => {
  writeNpy(T('e.npy'), f32(X, [N, D]));
  writeNpy(T('labels.npy'), i64(LABELS, [N]));
  writeNpy(T('q.npy'), f32(Q, [3, D]));
  writeNpy(T('q_wrong.npy'), f32(Q.subarray(0, 2 * 5), [2, 5]));
});

after(async () => {
  await closeImagePools();
  rmSync(tmp, { recursive: true, force: true });
});

for (const metric of ['l2', 'cosine'] as const) {
  test(`search --json = brute-force neighbours (${metric})`, async () => {
    const b = await hardneg([
      'index',
      'build',
      '--embeddings',
      T('e.npy'),
      '--labels',
      T('labels.npy'),
      '--out',
      T(`idx-${metric}`),
      '--metric',
      metric,
      '--json',
    ]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((JSON.parse(b.stdout) as { kind: string }).kind, 'exact');
    const results = await searchJson([T(`idx-${metric}`), '--vector', T('q.npy'), '--k', '7']);
    assert.equal(results.length, 3);
    for (const [q, hits] of results.entries()) {
      const want = bruteForce(X, D, Q.subarray(q * D, (q + 1) * D), 7, metric);
      assert.deepEqual(
        hits.map((h) => h.id),
        want.map((w) => w.id),
      );
      for (const [i, h] of hits.entries()) {
        assert.ok(Math.abs(h.distance - (want[i] as { distance: number }).distance) < 1e-5, `${h.distance} vs ${want[i]?.distance}`);
        assert.equal(h.label, String(LABELS[h.id]));
        assert.equal(h.path, null);
      }
    }
  });
}

test("engine 'memory': concurrent queries of mixed k equal brute force exactly; ties by id; filters still go to LanceDB", async () => {
  // Rows 50–59 repeat rows 0–9, so a query at row 0 has two answers at distance 0.
  const x = Float32Array.from(X);
  x.copyWithin(50 * D, 0, 10 * D);
  const labels = LABELS.map(String);
  await buildIndex({ out: T('idx-ties'), vectors: x, dim: D, labels, metric: 'l2' });
  for (const [dir, metric, data] of [
    [T('idx-ties'), 'l2', x],
    [T('idx-cosine'), 'cosine', X],
  ] as const) {
    const idx = await openIndex(dir, { engine: 'memory' });
    try {
      assert.equal(idx.engine, 'memory');
      assert.deepEqual(await idx.item(3), { id: 3, label: String(LABELS[3]), path: null });
      assert.deepEqual(Array.from((await idx.vector(55)) as Float32Array), Array.from(data.subarray(55 * D, 56 * D)));
      assert.equal(await idx.item(N), null);
      assert.equal(await idx.vector(-1), null);
      const r = rng(3);
      const queries = Array.from({ length: 40 }, (_, i) => (i < 10 ? data.slice(i * D, (i + 1) * D) : Float32Array.from({ length: D }, () => r() * 2 - 1)));
      const ks = queries.map((_, i) => 1 + ((i * 7) % 25));
      ks[0] = 5; // sees both copies of row 0
      ks[39] = N; // every row
      // All at once: they queue behind one another and are answered by shared scans.
      const answers = await Promise.all(queries.map((q, i) => idx.search(q, { k: ks[i] as number })));
      for (const [i, [hits]] of answers.entries()) {
        const want = bruteForce(data, D, queries[i] as Float32Array, ks[i] as number, metric);
        assert.deepEqual(
          (hits as Hit[]).map((h) => h.id),
          want.map((w) => w.id),
          `query ${i}, k ${ks[i]}`,
        );
        for (const [j, h] of (hits as Hit[]).entries()) {
          assert.ok(Math.abs(h.distance - (want[j] as { distance: number }).distance) < 1e-9);
          assert.equal(h.label, String(LABELS[h.id]));
        }
      }
      if (metric === 'l2')
        assert.deepEqual(
          (answers[0]?.[0] as Hit[]).slice(0, 2).map((h) => [h.id, h.distance]),
          [
            [0, 0],
            [50, 0],
          ],
        );
      const [filtered] = await idx.search(queries[12] as Float32Array, { k: 5, where: "label = '2'" });
      assert.deepEqual(
        (filtered as Hit[]).map((h) => h.id),
        bruteForce(data, D, queries[12] as Float32Array, 5, metric, (i) => LABELS[i] === 2).map((w) => w.id),
      );
    } finally {
      idx.close();
    }
  }
  const lance = await openIndex(T('idx-ties'));
  assert.equal(lance.engine, 'lancedb', 'the library default asks LanceDB');
  lance.close();
});

test('--where filters, --id searches from a stored vector, the table output reads', async () => {
  const results = await searchJson([T('idx-l2'), '--vector', T('q.npy'), '--k', '5', '--where', "label = '2'"]);
  for (const [q, hits] of results.entries()) {
    const want = bruteForce(X, D, Q.subarray(q * D, (q + 1) * D), 5, 'l2', (i) => LABELS[i] === 2);
    assert.deepEqual(
      hits.map((h) => h.id),
      want.map((w) => w.id),
    );
  }
  const byId = await searchJson([T('idx-l2'), '--id', '42', '--k', '4']);
  const want = bruteForce(X, D, X.subarray(42 * D, 43 * D), 4, 'l2');
  assert.deepEqual(
    byId[0]?.map((h) => h.id),
    want.map((w) => w.id),
  );
  assert.equal(byId[0]?.[0]?.id, 42);
  const plain = await hardneg(['search', T('idx-l2'), '--id', '42', '--k', '2']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /rank\s+id\s+distance/);
});

test('--out in folders that do not exist yet: they are made, as train --out makes them', async () => {
  const r = await hardneg(['index', 'build', '--embeddings', T('e.npy'), '--out', T('new', 'nested', 'idx'), '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(T('new', 'nested', 'idx', 'index.json')));
});

test('bad inputs: one line, exit 2', async () => {
  assertOneLineError(await hardneg(['index', 'build', '--embeddings', T('missing.npy'), '--out', T('x1')]), /missing\.npy: file not found/);
  assertOneLineError(await hardneg(['index', 'build', '--embeddings', T('e.npy'), '--out', T('idx-l2')]), /already exists/);
  assertOneLineError(await hardneg(['index', 'build', '--embeddings', T('e.npy'), '--out', T('x2'), '--kind', 'magic']), /--kind magic/);
  assertOneLineError(await hardneg(['index', 'build', '--embeddings', T('e.npy'), '--out', T('e.npy', 'x3')]), /e\.npy is a file, not a folder/);
  assertOneLineError(await hardneg(['search', T('idx-l2'), '--vector', T('q_wrong.npy')]), /index's width/);
  assertOneLineError(await hardneg(['search', T('idx-l2'), '--vector', T('q.npy'), '--k', '0']), /--k 0/);
  assertOneLineError(await hardneg(['search', T('idx-l2'), '--vector', T('missing.npy')]), /file not found/);
  assertOneLineError(await hardneg(['search', T('idx-l2'), '--id', '300']), /no such item/);
  assertOneLineError(await hardneg(['search', T('idx-l2'), '--id', '1', '--where', 'label = = ']), /--where "label = = "/);
  assertOneLineError(await hardneg(['search', T('no-index'), '--id', '1']), /index folder not found/);
  assertOneLineError(await hardneg(['search', T('idx-l2'), '--image', T('e.npy')]), /no model/);
  assert.ok(!existsSync(T('x1')) && !existsSync(T('x2')));
  // The real process too: exit status 2 and one line on stderr.
  assertOneLineError(spawnHardneg(['search', T('idx-l2'), '--vector', T('q.npy'), '--k', '0']), /hardneg search: --k 0/);
});

test('width checks in the library; a missing LanceDB is one UserError', async () => {
  const idx = await openIndex(T('idx-l2'));
  try {
    await assert.rejects(idx.search(new Float32Array(D + 1), { k: 1 }), (e: Error) => e instanceof UserError && /12-dimensional/.test(e.message));
    assert.deepEqual(await idx.item(3), { id: 3, label: String(LABELS[3]), path: null });
    assert.deepEqual(Array.from((await idx.vector(3)) as Float32Array), Array.from(X.subarray(3 * D, 4 * D)));
    assert.equal(await idx.item(N), null);
  } finally {
    idx.close();
  }
  await assert.rejects(loadLanceDB('@lancedb/not-installed'), (e: Error) => e instanceof UserError && /native module could not be loaded/.test(e.message));
});

test('an interrupted build leaves no index and no temporary folder', async () => {
  await assert.rejects(
    buildIndex({
      out: T('interrupted'),
      vectors: X,
      dim: D,
      beforeCommit: () => {
        throw new Error('simulated crash');
      },
    }),
    /simulated crash/,
  );
  assert.ok(!existsSync(T('interrupted')));
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.includes('interrupted')),
    [],
  );
});

test('object-store URIs: the manifest table is the last write (file:// goes through the same path as s3://)', async () => {
  // LanceDB's object-store layer serves file:// URIs from the local disk, so the URI path
  // (no atomic rename; a one-row manifest table written last) is tested without a network.
  const uri = (name: string): string => `file://${T('store', name)}`;
  await assert.rejects(
    buildIndex({
      out: uri('crashed'),
      vectors: X,
      dim: D,
      beforeCommit: () => {
        throw new Error('simulated crash');
      },
    }),
    /simulated crash/,
  );
  await assert.rejects(openIndex(uri('crashed')), (e: Error) => e instanceof UserError && /the build did not finish/.test(e.message));
  const b = await hardneg(['index', 'build', '--embeddings', T('e.npy'), '--labels', T('labels.npy'), '--out', uri('idx'), '--json']);
  assert.equal(b.code, 0, b.stderr);
  assertOneLineError(await hardneg(['index', 'build', '--embeddings', T('e.npy'), '--out', uri('idx')]), /already holds tables/);
  const [hits] = await searchJson([uri('idx'), '--vector', T('q.npy'), '--k', '4']);
  assert.deepEqual(
    (hits as Hit[]).map((h) => h.id),
    bruteForce(X, D, Q.subarray(0, D), 4, 'l2').map((w) => w.id),
  );
  const idx = await openIndex(uri('idx'), { engine: 'auto' });
  assert.equal(idx.engine, 'lancedb', 'auto keeps a remote index in the store');
  assert.equal(idx.manifest.count, N);
  idx.close();
});

test('ANN (ivf-pq) recall@10 ≥ 0.95 vs exact on clustered vectors', async () => {
  const n = 3000;
  const dim = 32;
  const r = rng(11);
  const centres = Float32Array.from({ length: 30 * dim }, () => (r() - 0.5) * 4);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * 30);
    for (let d = 0; d < dim; d++) x[i * dim + d] = (centres[c * dim + d] as number) + (r() - 0.5);
  }
  const built = await buildIndex({ out: T('ann'), vectors: x, dim, kind: 'ivf-pq' });
  assert.equal(built.manifest.kind, 'ivf-pq');
  const idx = await openIndex(T('ann'));
  try {
    let found = 0;
    const queries = 40;
    for (let q = 0; q < queries; q++) {
      const query = Float32Array.from(x.subarray(((q * 71) % n) * dim, (((q * 71) % n) + 1) * dim), (v) => v + (r() - 0.5) * 0.2);
      const exact = new Set(bruteForce(x, dim, query, 10, 'l2').map((h) => h.id));
      const [hits] = await idx.search(query, { k: 10 });
      found += (hits as { id: number }[]).filter((h) => exact.has(h.id)).length;
    }
    assert.ok(found / (queries * 10) >= 0.95, `recall@10 ${found / (queries * 10)}`);
  } finally {
    idx.close();
  }
  // The same IVF-PQ index held in memory answers exactly.
  const mem = await openIndex(T('ann'), { engine: 'memory' });
  try {
    for (let q = 0; q < 10; q++) {
      const query = x.subarray(q * 97 * dim, (q * 97 + 1) * dim);
      const [hits] = await mem.search(query, { k: 10 });
      assert.deepEqual(
        (hits as { id: number }[]).map((h) => h.id),
        bruteForce(x, dim, query, 10, 'l2').map((h) => h.id),
      );
    }
  } finally {
    mem.close();
  }
});

test('from a run: embed --images then index build --embeddings (E.json labels); --run --images; search --image', async () => {
  await makeImageFolder(T('data'), 'train', ['a', 'b', 'c'], 4, 1);
  await makeImageFolder(T('data'), 'test', ['e', 'f'], 3, 2);
  const t = spawnHardneg(['train', '--dataset', 'folder', '--data-root', T('data'), '--epochs', '1', '--out', T('run'), '--quiet', ...TINY_RUN]);
  assert.equal(t.code, 0, t.stderr);
  const e = await hardneg(['embed', T('run'), '--images', T('data', 'test'), '--out', T('emb.npy'), '--quiet']);
  assert.equal(e.code, 0, e.stderr);
  const b = await hardneg(['index', 'build', '--embeddings', T('emb.npy'), '--out', T('idx-emb'), '--json']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal((JSON.parse(b.stdout) as { metric: string }).metric, 'cosine');
  const [hits] = await searchJson([T('idx-emb'), '--id', '4', '--k', '6']);
  assert.equal(hits?.length, 6);
  assert.equal(hits?.[0]?.id, 4);
  // Rows are e/0.png, e/1.png, e/2.png, f/0.png, …: row 4 is f/1.png.
  assert.equal(hits?.[0]?.path, 'f/1.png');
  assert.equal(hits?.[0]?.label, 'f');
  const emb = readNpy(T('emb.npy')).data as Float32Array;
  const want = bruteForce(emb, emb.length / 6, emb.subarray(4 * (emb.length / 6), 5 * (emb.length / 6)), 6, 'cosine');
  assert.deepEqual(
    hits?.map((h) => h.id),
    want.map((w) => w.id),
  );

  const r = await hardneg(['index', 'build', '--run', T('run'), '--images', T('data', 'test'), '--out', T('idx-run'), '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const [img] = await searchJson([T('idx-run'), '--image', T('data', 'test', 'f', '1.png'), '--k', '1']);
  assert.equal(img?.[0]?.path, 'f/1.png');
  assert.ok((img?.[0]?.distance as number) < 1e-5);
  // Changed weights are refused.
  writeFileSync(T('run', 'model.safetensors'), Buffer.from(readNpy(T('emb.npy')).data.buffer).subarray(0, 8));
  const changed = await hardneg(['search', T('idx-run'), '--image', T('data', 'test', 'f', '1.png')]);
  assert.equal(changed.code, 2, changed.stderr);
  assert.equal(changed.stderr.trim().split('\n').length, 1, changed.stderr);
});
