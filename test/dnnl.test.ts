// The oneDNN convolution kernels and the native MaxPoolGrad (native/src/dnnl_conv.cc, kernels.cc)
// against the stock path, computed both ways in one process: conv2d and maxPool2d of src/nn on
// random shapes (values and both gradients), and tf.conv2d with 'same' padding against a direct
// loop (the stock wasm backend has no Conv2DBackpropFilter to compare with). Without oneDNN in
// the addon the convolution tests are skipped; the MaxPoolGrad tests need only the addon. Last,
// ResNet-50's recomputed blocks (the large-batch memory mode) against the plain forward.
import './helpers/backend.ts';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { disableNativeKernels, dnnlKernelsActive, enableNativeKernels, loadNativeAddon, nativeStatus } from '../src/engine/native_kernels.ts';
import { Random } from '../src/engine/random.ts';
import { conv2d } from '../src/nn/conv2d_general.ts';
import { maxPool2d } from '../src/nn/pooling.ts';
import { resnet50 } from '../src/models/resnet50.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { relativeL2 } from './helpers/close.ts';
import { ROOT } from './helpers/cli.ts';

const rng = new Random(7, 3);
const int = (lo: number, hi: number) => lo + Math.floor(rng.random() * (hi - lo + 1));
let seed = 500;
const rand = (shape: number[]) => tf.randomNormal(shape, 0, 1, 'float32', seed++);

const native = nativeStatus();
const withDnnl = native.active && native.dnnl.built !== '';
const dnnlOn = withDnnl && process.env.HARDNEG_DNNL !== '0';
const TOLERANCE = 1e-5;

/** f's outputs with the native kernels, then with the stock path. */
function bothWays(f: () => tf.Tensor[]): [Float32Array[], Float32Array[]] {
  // Read after the tidy: tidy walks what its callback returns, a typed array element by element.
  const read = () => {
    const outs = tf.tidy(f);
    const data = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
    return data;
  };
  const fast = read();
  disableNativeKernels();
  try {
    return [fast, read()];
  } finally {
    enableNativeKernels();
  }
}

function assertClose(fast: Float32Array[], slow: Float32Array[], what: string, tolerance = TOLERANCE): void {
  assert.equal(fast.length, slow.length, what);
  fast.forEach((a, i) => {
    const err = relativeL2(a, slow[i] as Float32Array);
    assert.ok(err < tolerance, `${what}: output ${i} relative L2 ${err}`);
  });
}

test('the addon reports whether it has oneDNN, and its convolutions are registered when it does', { skip: !native.active && 'no native addon' }, () => {
  assert.equal(typeof native.dnnl.built, 'string');
  assert.equal(dnnlKernelsActive(), dnnlOn);
  if (!dnnlKernelsActive()) return;
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'Conv2DBackpropFilter is registered');
  // A real (JIT) implementation, not oneDNN's slow reference loops.
  const addon = loadNativeAddon();
  const params = Float64Array.from([0, 0, 0, 0, 2, 56, 56, 64, 64, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1]);
  for (const kind of [0, 1, 2]) {
    params[0] = kind;
    const impl = addon?.convImpl?.(new Uint8Array(0), params) ?? '';
    assert.ok(impl.length > 0 && !impl.startsWith('ref'), `kind ${kind}: ${impl}`);
  }
});

test(
  'conv2d on oneDNN equals the stock path on random shapes (values, input and weight gradients)',
  { skip: !dnnlOn && 'oneDNN convolutions not in use (addon built without oneDNN, or HARDNEG_DNNL=0)' },
  () => {
    assert.ok(dnnlKernelsActive());
    for (let trial = 0; trial < 24; trial++) {
      const k = [1, 1, 3, 3, 5, 7][int(0, 5)] as number;
      const s = int(1, 3);
      const p = int(0, k - 1);
      const n = int(1, 3),
        cin = int(1, 9),
        cout = int(1, 9);
      const h = int(Math.max(1, k - 2 * p), 15),
        w = int(Math.max(1, k - 2 * p), 15);
      const x = rand([n, h, w, cin]) as tf.Tensor4D;
      const weight = rand([cout, cin, k, k]);
      const f = (a: tf.Tensor, b: tf.Tensor) => conv2d(a as tf.Tensor4D, b, null, { stride: s, padding: p });
      const dy = tf.tidy(() => rand(f(x, weight).shape));
      const [fast, slow] = bothWays(() => [f(x, weight), ...tf.grads(f)([x, weight], dy)]);
      assertClose(fast, slow, `x [${x.shape}] k ${k} s ${s} p ${p} cout ${cout}`);
      tf.dispose([x, weight, dy]);
    }
  },
);

/** dw[kh, kw, ci, co] = Σ x[n, oh·s + kh − top, ow·s + kw − left, ci]·dy[n, oh, ow, co] and y likewise, by direct loops. */
function directConv(x: tf.Tensor4D, filter: tf.Tensor4D, dy: tf.Tensor4D, s: number, top: number, left: number): { y: Float32Array; dw: Float32Array } {
  const [n, H, W, C] = x.shape;
  const [KH, KW, , O] = filter.shape;
  const [, OH, OW] = dy.shape;
  const xv = x.dataSync(),
    fv = filter.dataSync(),
    gv = dy.dataSync();
  const y = new Float32Array(n * OH * OW * O);
  const dw = new Float32Array(KH * KW * C * O);
  for (let b = 0; b < n; b++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++)
        for (let kh = 0; kh < KH; kh++)
          for (let kw = 0; kw < KW; kw++) {
            const ih = oh * s + kh - top,
              iw = ow * s + kw - left;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            for (let c = 0; c < C; c++) {
              const xval = xv[((b * H + ih) * W + iw) * C + c] as number;
              for (let o = 0; o < O; o++) {
                const at = ((b * OH + oh) * OW + ow) * O + o;
                y[at] = (y[at] as number) + xval * (fv[((kh * KW + kw) * C + c) * O + o] as number);
                const wt = ((kh * KW + kw) * C + c) * O + o;
                dw[wt] = (dw[wt] as number) + xval * (gv[at] as number);
              }
            }
          }
  return { y, dw };
}

test(
  "tf.conv2d with 'same' padding on oneDNN: values and filter gradient against direct loops, input gradient against the stock kernel",
  { skip: !dnnlOn && 'oneDNN convolutions not in use (addon built without oneDNN, or HARDNEG_DNNL=0)' },
  () => {
    for (let trial = 0; trial < 8; trial++) {
      const k = int(1, 4);
      const s = int(1, 2);
      const x = rand([int(1, 2), int(4, 10), int(4, 10), int(1, 5)]) as tf.Tensor4D;
      const filter = rand([k, k, x.shape[3], int(1, 5)]) as tf.Tensor4D;
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, 'same');
      const y = f(x, filter);
      const dy = rand(y.shape) as tf.Tensor4D;
      const [dx, dw] = tf.grads(f)([x, filter], dy);
      const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, s, 1, 'same');
      const ref = directConv(x, filter, dy, s, info.padInfo.top, info.padInfo.left);
      const what = `x [${x.shape}] filter [${filter.shape}] stride ${s}`;
      assert.ok(relativeL2(y.dataSync(), ref.y) < TOLERANCE, `${what}: value`);
      assert.ok(relativeL2((dw as tf.Tensor).dataSync(), ref.dw) < TOLERANCE, `${what}: filter gradient`);
      const [fast, slow] = bothWays(() => [tf.conv2dTranspose(dy, filter, x.shape, s, 'same')]);
      assertClose(fast, slow, `${what}: input gradient (Conv2DBackpropInput)`);
      assert.ok(relativeL2((dx as tf.Tensor).dataSync(), fast[0] as Float32Array) < 1e-6, `${what}: dx is Conv2DBackpropInput`);
      tf.dispose([x, filter, y, dy, dx, dw]);
    }
  },
);

test('maxPool2d with the native MaxPoolGrad equals the stock path, ties and ceil mode included', { skip: !native.active && 'no native addon' }, () => {
  const cases: Array<[number, number, number, boolean]> = [
    [3, 2, 1, false], // ResNet-50's stem
    [3, 1, 1, true], // GoogLeNet's inception branch
    [3, 2, 0, true], // GoogLeNet's downsampling
    [2, 2, 0, false],
    [2, 1, 0, true],
  ];
  for (const [k, s, p, ceilMode] of cases) {
    for (let trial = 0; trial < 3; trial++) {
      // Rounded values: many ties, where the first maximum in row-major order must win.
      const x = tf.tidy(() => tf.round(tf.mul(rand([int(1, 2), int(5, 12), int(5, 12), int(1, 20)]), 2))) as tf.Tensor4D;
      const f = (a: tf.Tensor) => maxPool2d(a as tf.Tensor4D, k, { stride: s, padding: p, ceilMode });
      const dy = tf.tidy(() => rand(f(x).shape));
      const [fast, slow] = bothWays(() => [f(x), ...tf.grads(f)([x], dy)]);
      assertClose(fast, slow, `x [${x.shape}] k ${k} s ${s} p ${p} ceil ${ceilMode}`, 1e-7);
      tf.dispose([x, dy]);
    }
  }
});

test('ResNet-50 with recomputed blocks (the large-batch memory mode) gives the same features and gradients', () => {
  const rngInit = new Random(3, 9);
  const plain = resnet50({ checkpoint: false });
  const sd = new StateDict();
  plain.init(sd, rngInit);
  const images = rand([2, 64, 64, 3]) as tf.Tensor4D;
  const names = sd.trainable([plain.prefix]);
  const vars = names.map((n) => sd.get(n));
  const run = (checkpoint: boolean) => {
    // The tensors are read after the tidy, which would otherwise walk 25 million returned numbers.
    const outs = tf.tidy(() => {
      const model = resnet50({ checkpoint });
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.forward(sd, images, true))) as tf.Scalar, vars);
      return [value, ...vars.map((v) => grads[v.name] as tf.Tensor)];
    });
    const data = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
    return data;
  };
  const before = tf.memory().numTensors;
  const [a, b] = [run(false), run(true)];
  assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
  a.forEach((x, i) =>
    assert.ok(relativeL2(b[i] as Float32Array, x) < 1e-5, `${i === 0 ? 'loss' : names[i - 1]}: relative L2 ${relativeL2(b[i] as Float32Array, x)}`),
  );
  tf.dispose([images]);
  sd.dispose();
});

// glibc's checking allocator (Debian: libc_malloc_debug.so.0) turns a heap overrun into an abort at
// the next free, so this fails every time on an addon without the 1x1 stride fix in dnnl_conv.cc.
const MALLOC_DEBUG = '/lib/x86_64-linux-gnu/libc_malloc_debug.so.0';
test(
  '1x1 stride-2 filter gradients with few channels on 2 threads leave the heap intact (checked by glibc)',
  { skip: (!dnnlOn && 'oneDNN convolutions not in use') || (!existsSync(MALLOC_DEBUG) && `${MALLOC_DEBUG} not found`) },
  () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'conv_1x1_strided_grad.ts')], {
      env: { ...process.env, HARDNEG_THREADS: '2', LD_PRELOAD: MALLOC_DEBUG, GLIBC_TUNABLES: 'glibc.malloc.check=3' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `exit ${r.status ?? r.signal}: ${r.stderr.slice(-400)}`);
    assert.match(r.stdout, /ok/);
  },
);
