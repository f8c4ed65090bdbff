// The native kernels (native/, src/engine/native_kernels.ts) give the results of the stock wasm
// kernels: every replaced kernel on random shapes (transposes, batches, broadcasts, axes) and
// every fused op with its gradient, computed both ways in one process. Without the addon the
// tests check that nothing native is registered and that the fused ops run on the fallback.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { BACKEND } from './helpers/backend.ts';
import { collapseDims, disableNativeKernels, enableNativeKernels, NATIVE_OPS, nativeKernelsActive, nativeStatus } from '../src/engine/native_kernels.ts';
import { edgeAttention, gelu, geluLayerNorm, geluSumOverTargets, layerNorm } from '../src/nn/fused.ts';
import { linear } from '../src/nn/linear.ts';
import { crossEntropy } from '../src/losses/cross_entropy.ts';
import { segment } from '../src/nn/checkpoint.ts';
import { Random } from '../src/engine/random.ts';
import { relativeL2 } from './helpers/close.ts';

const rng = new Random(5, 11);
const int = (lo: number, hi: number) => lo + Math.floor(rng.random() * (hi - lo + 1));
let seed = 100;
const rand = (shape: number[]) => tf.randomNormal(shape, 0, 1, 'float32', seed++);

type Out = tf.Tensor | tf.Tensor[];

/** f's outputs with the native kernels, then with the stock wasm ones. */
function bothWays(f: () => Out): [Float32Array[], Float32Array[]] {
  // The tensors are read after the tidy: tidy walks what its callback returns, element by element
  // for a typed array (a minute for this file's larger shapes).
  const read = () => {
    const outs = tf.tidy(() => {
      const o = f();
      return Array.isArray(o) ? o : [o];
    });
    const data = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
    return data;
  };
  assert.ok(nativeKernelsActive());
  const fast = read();
  disableNativeKernels();
  try {
    assert.ok(!nativeKernelsActive());
    return [fast, read()];
  } finally {
    enableNativeKernels();
  }
}

/** Equal outputs: bit for bit when tolerance is 0, else within a relative L2 error (non-finite values must match exactly). */
function assertSame(f: () => Out, what: string, tolerance: number): void {
  const [fast, slow] = bothWays(f);
  assert.equal(fast.length, slow.length, what);
  fast.forEach((a, i) => {
    const b = slow[i] as Float32Array;
    assert.equal(a.length, b.length, `${what}: output ${i} size`);
    const finite: number[] = [];
    for (let j = 0; j < a.length; j++) {
      if (tolerance === 0 || !Number.isFinite(b[j] as number)) {
        if (!Object.is(a[j], b[j])) assert.fail(`${what}: output ${i}[${j}] ${a[j]} vs ${b[j]}`);
      } else {
        finite.push(j);
      }
    }
    if (finite.length > 0) {
      const err = relativeL2(
        finite.map((j) => a[j] as number),
        finite.map((j) => b[j] as number),
      );
      assert.ok(err < tolerance, `${what}: output ${i} relative L2 ${err}`);
    }
  });
}

/** f's value and its gradients for a fixed upstream gradient. */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]): () => Out {
  const dy = rand(f(...xs).shape);
  return () => [f(...xs), ...tf.grads((...a: tf.Tensor[]) => f(...a))(xs, dy)];
}

const native = nativeStatus().active;

if (!native) {
  test('without the native kernels the stock kernels are in use', () => {
    assert.equal(nativeKernelsActive(), false);
    assert.ok(nativeStatus().reason.length > 0, 'a reason is given');
    for (const name of Object.values(NATIVE_OPS)) assert.equal(tf.getKernel(name, BACKEND), undefined, `${name} is not registered`);
    // The fused ops and Linear run on their composed fallback.
    const x = rand([4, 6]);
    const y = geluLayerNorm(linear(x, rand([6, 6]), rand([6])), tf.ones([6]), tf.zeros([6]));
    assert.deepEqual(y.shape, [4, 6]);
    assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  });
} else {
  test('the native kernels are registered for wasm', () => {
    assert.equal(BACKEND, 'wasm');
    assert.ok(nativeStatus().threads >= 1);
    for (const name of Object.values(NATIVE_OPS)) assert.ok(tf.getKernel(name, 'wasm'), `${name} registered`);
  });

  test('matrix products: transposes, batches, broadcast batches, bias', () => {
    for (let trial = 0; trial < 40; trial++) {
      const big = trial % 10 === 0;
      const [M, N, K] = big ? [int(100, 300), int(100, 600), int(50, 200)] : [int(1, 40), int(1, 40), int(1, 40)];
      const tA = rng.random() < 0.5,
        tB = rng.random() < 0.5;
      const batch = trial % 4 === 0 ? [] : trial % 4 === 1 ? [int(2, 3)] : [2, int(1, 3)];
      const broadcast = trial % 3;
      const aBatch = broadcast === 1 ? batch.map(() => 1) : batch,
        bBatch = broadcast === 2 ? [] : batch;
      const a = rand([...aBatch, ...(tA ? [K, M] : [M, K])]);
      const b = rand([...bBatch, ...(tB ? [N, K] : [K, N])]);
      assertSame(() => tf.matMul(a, b, tA, tB), `matMul ${a.shape}×${b.shape} ${tA}${tB}`, 1e-5);
      if (aBatch.length === 0 && bBatch.length === 0) {
        // The stock wasm _FusedMatMul is wrong with a transposed operand and a bias (tfjs 4.22), so
        // the fused product is compared with the plain product plus the bias.
        const bias = rand([N]);
        const fused = tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: tA, transposeB: tB, bias });
        const plain = tf.add(tf.matMul(a, b, tA, tB), bias);
        assert.ok(relativeL2(fused.dataSync(), plain.dataSync()) < 1e-6, `fused matMul ${M}×${K}×${N} ${tA}${tB}`);
        tf.dispose([fused, plain]);
      }
    }
  });

  test('element-wise binary ops with broadcasting are bit-identical', () => {
    const pairs: Array<[number[], number[]]> = [
      [
        [7, 5],
        [7, 5],
      ],
      [[7, 5], []],
      [[], [7, 5]],
      [[7, 5], [5]],
      [
        [7, 5],
        [7, 1],
      ],
      [
        [1, 5],
        [7, 1],
      ],
      [
        [4, 1, 6],
        [1, 5, 6],
      ],
      [
        [3, 4, 5, 6],
        [4, 1, 6],
      ],
      [
        [2, 3, 1, 5],
        [2, 1, 4, 1],
      ],
      [[300, 257], [257]],
      [
        [300, 257],
        [300, 1],
      ],
      [[40000], [40000]],
      [[2, 40000], [1]],
      [
        [81, 1, 512],
        [1, 81, 512],
      ],
    ];
    for (const [sa, sb] of pairs) {
      const a = rand(sa),
        b = tf.add(rand(sb), 3);
      for (const op of [tf.add, tf.sub, tf.mul, tf.div, tf.maximum, tf.minimum, tf.squaredDifference]) {
        assertSame(() => op(a, b), `${op.name} [${sa}] [${sb}]`, 0);
      }
    }
  });

  test('unary ops', () => {
    const x = tf.concat([rand([50000]), tf.tensor1d([0, -0, 1e-30, -1e-30, 30, -30, 90, -90, -110, Infinity, -Infinity])]);
    const positive = tf.add(tf.abs(x), 1e-3);
    for (const [name, f, tol] of [
      ['exp', tf.exp, 1e-6],
      ['erf', tf.erf, 1e-6],
      ['sigmoid', tf.sigmoid, 1e-6],
      ['square', tf.square, 0],
      ['neg', tf.neg, 0],
      ['abs', tf.abs, 0],
      ['relu', tf.relu, 0],
    ] as const) {
      assertSame(() => f(x), name, tol);
    }
    for (const [name, f, tol] of [
      ['sqrt', tf.sqrt, 0],
      ['rsqrt', tf.rsqrt, 1e-6],
      ['log', tf.log, 1e-6],
      ['reciprocal', tf.reciprocal, 0],
    ] as const) {
      assertSame(() => f(positive), name, tol);
    }
  });

  test('reductions over every kind of axis set', () => {
    const x = rand([3, 4, 5, 6]);
    const axes: Array<number | number[] | undefined> = [0, 1, 3, -1, [1, 2], [0, 1], [2, 3], [0, 1, 2, 3], undefined, [0, 2]];
    for (const axis of axes) {
      for (const keepDims of [false, true]) {
        for (const op of [tf.sum, tf.mean, tf.max, tf.min]) assertSame(() => op(x, axis, keepDims), `${op.name} axis ${axis} keepDims ${keepDims}`, 1e-5);
      }
    }
    for (const shape of [[100000], [2, 40000], [40000, 3], [6561, 512], [3, 27, 27, 512]]) {
      const y = rand(shape);
      for (const axis of [0, shape.length - 1, undefined]) {
        // Sums of many random terms cancel: the summation orders differ, so the tolerance is wider.
        for (const op of [tf.sum, tf.mean, tf.max, tf.min]) assertSame(() => op(y, axis), `${op.name} [${shape}] axis ${axis}`, 1e-4);
      }
    }
  });

  test('transposes, slices and identity are exact', () => {
    for (let trial = 0; trial < 30; trial++) {
      const rank = int(1, 5);
      const shape = Array.from({ length: rank }, () => int(1, trial % 5 === 0 && rank <= 3 ? 60 : 9));
      const x = rand(shape);
      const perm = shape.map((_, i) => i).sort(() => rng.random() - 0.5);
      assertSame(() => tf.transpose(x, perm), `transpose [${shape}] [${perm}]`, 0);
      const begin = shape.map((d) => int(0, d - 1));
      const size = shape.map((d, i) => int(1, d - (begin[i] as number)));
      assertSame(() => tf.slice(x, begin, size), `slice [${shape}] ${begin} ${size}`, 0);
      const ix = tf.cast(tf.mul(x, 100), 'int32');
      assertSame(() => tf.cast(tf.transpose(ix, perm), 'float32'), `int32 transpose [${shape}]`, 0);
    }
    const big = rand([700, 300]);
    assertSame(() => tf.transpose(big), 'transpose 700×300', 0);
    assertSame(() => tf.clone(big), 'identity', 0);
    assertSame(() => tf.cast(big, 'float32'), 'cast to the same dtype', 0);
    for (const [from, to] of [
      [
        [3, 1, 5],
        [3, 4, 5],
      ],
      [
        [1, 1],
        [300, 200],
      ],
      [
        [2, 1, 1, 3],
        [2, 4, 5, 3],
      ],
      [
        [4, 1],
        [4, 3],
      ],
    ]) {
      const x = rand(from as number[]);
      assertSame(() => tf.broadcastTo(x, to as number[]), `broadcast [${from}] to [${to}]`, 0);
    }
    const five = rand([3, 4, 3, 4, 5]);
    assertSame(() => tf.split(five, 3, 2), 'split rank 5', 0);
    assertSame(() => tf.split(five, [1, 3], 1), 'split by sizes', 0);
    const small = rand([2, 3]);
    assertSame(() => tf.tile(small, [2, 2]), 'tile of non-unit dimensions (stock kernel)', 0);
  });

  test('gradients of sums and means', () => {
    const x = rand([6, 7, 8]);
    for (const axis of [0, 1, 2, [0, 1], [1, 2], undefined]) {
      for (const op of [tf.sum, tf.mean]) {
        assertSame(
          withGrads((t) => tf.mul(op(tf.square(t), axis), 3), [x]),
          `${op.name} gradient axis ${axis}`,
          1e-6,
        );
      }
    }
  });

  test('fused ops and their gradients', () => {
    const grads = withGrads;
    for (const [rows, width] of [
      [5, 8],
      [300, 256],
      [64, 2048],
    ] as const) {
      const x = rand([rows, width]),
        gamma = rand([width]),
        beta = rand([width]);
      assertSame(
        grads((t) => gelu(t), [x]),
        `gelu ${rows}×${width}`,
        1e-5,
      );
      assertSame(
        grads((t, g, b) => layerNorm(t, g as tf.Tensor, b as tf.Tensor), [x, gamma, beta]),
        `layerNorm ${rows}×${width}`,
        1e-5,
      );
      assertSame(
        grads((t, g, b) => geluLayerNorm(t, g as tf.Tensor, b as tf.Tensor), [x, gamma, beta]),
        `geluLayerNorm ${rows}×${width}`,
        1e-5,
      );
    }
    for (const [B, D] of [
      [3, 5],
      [40, 96],
    ] as const) {
      assertSame(
        grads((t) => geluSumOverTargets(t as tf.Tensor3D), [rand([B, B, D])]),
        `geluSumOverTargets ${B}×${D}`,
        1e-5,
      );
      const mask = tf.tensor3d(
        Array.from({ length: B * B * 2 }, (_, i) => (i % 7 === 0 ? 0 : 1 / 0.9)),
        [B, B, 2],
      );
      assertSame(
        grads(
          (q, k, v) => edgeAttention(q as tf.Tensor3D, k as tf.Tensor2D, v as tf.Tensor2D, mask, 1 / Math.sqrt(D)),
          [rand([B, B, D]), rand([B, D]), rand([B, D])],
        ),
        `edgeAttention ${B}×${D}`,
        1e-5,
      );
    }
    const x = rand([50, 30]),
      w = rand([20, 30]),
      b = rand([20]);
    assertSame(
      grads((t, ww, bb) => linear(t, ww as tf.Tensor, bb as tf.Tensor), [x, w, b]),
      'linear',
      1e-5,
    );
    for (const [N, C] of [
      [4, 3],
      [37, 1000],
      [300, 200],
    ] as const) {
      const labels = Array.from({ length: N }, (_, i) => (i * 7919) % C);
      assertSame(
        grads((l) => crossEntropy(l as tf.Tensor2D, labels), [tf.mul(rand([N, C]), 4)]),
        `crossEntropy ${N}×${C}`,
        1e-5,
      );
    }
  });
}

test('dimension collapsing keeps every walk', () => {
  assert.deepEqual(
    collapseDims(
      [2, 3, 4],
      [
        [12, 4, 1],
        [0, 0, 1],
      ],
    ),
    {
      shape: [6, 4],
      strides: [
        [4, 1],
        [0, 1],
      ],
    },
  );
  assert.deepEqual(
    collapseDims(
      [1, 5, 1],
      [
        [5, 1, 1],
        [0, 0, 0],
      ],
    ),
    { shape: [5], strides: [[1], [0]] },
  );
  assert.deepEqual(collapseDims([], [[], []]), { shape: [1], strides: [[0], [0]] });
});

test('Linear computes only the gradients that are asked for', async () => {
  const x = rand([6, 4]),
    w = rand([3, 4]),
    b = rand([3]);
  const products = async (f: () => tf.TensorContainer) => (await tf.profile(f)).kernels.filter((k) => k.name === 'BatchMatMul').length;
  const forward = await products(() => linear(x, w, b));
  const backward = async (xs: tf.Tensor[]) =>
    (await products(() => tf.grads((...a: tf.Tensor[]) => tf.sum(linear(a[0] as tf.Tensor, (a[1] ?? w) as tf.Tensor, (a[2] ?? b) as tf.Tensor)))(xs))) -
    forward;
  assert.equal(await backward([x]), 1, 'input gradient only');
  assert.equal(await backward([x, w]), 2, 'input and weight gradients');
});

test('a tape segment gives the gradients of the plain function and leaks nothing', () => {
  const fn = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.mul(geluLayerNorm(linear(x, w, c), tf.ones([5]), tf.zeros([5])), x);
  const x = tf.variable(rand([4, 5])),
    w = tf.variable(rand([5, 5])),
    c = rand([5]);
  const viaSegment = () => tf.variableGrads(() => tf.sum(tf.square(segment((a, b, d) => fn(a, b as tf.Tensor, d as tf.Tensor), [x, w, c]))), [x, w]);
  const plain = () => tf.variableGrads(() => tf.sum(tf.square(fn(x, w, c))), [x, w]);
  const a = viaSegment(),
    p = plain();
  assert.ok(Math.abs((a.value.dataSync()[0] as number) - (p.value.dataSync()[0] as number)) < 1e-5);
  for (const v of [x, w]) assert.ok(relativeL2((a.grads[v.name] as tf.Tensor).dataSync(), (p.grads[v.name] as tf.Tensor).dataSync()) < 1e-6);
  tf.dispose([a.value, p.value, ...Object.values(a.grads), ...Object.values(p.grads)]);
  // A plain tensor (not a variable) as the differentiated input takes the late path.
  const g1 = tf.grads((t: tf.Tensor) => tf.sum(segment((a1, b1, d1) => fn(a1, b1 as tf.Tensor, d1 as tf.Tensor), [t, w, c])))([c.reshape([1, 5]).tile([4, 1])]);
  const g2 = tf.grads((t: tf.Tensor) => tf.sum(fn(t, w, c)))([c.reshape([1, 5]).tile([4, 1])]);
  assert.ok(relativeL2((g1[0] as tf.Tensor).dataSync(), (g2[0] as tf.Tensor).dataSync()) < 1e-6);
  tf.dispose([...g1, ...g2]);
  const before = tf.memory().numTensors;
  const again = viaSegment();
  tf.dispose([again.value, ...Object.values(again.grads)]);
  assert.equal(tf.memory().numTensors, before);
});
