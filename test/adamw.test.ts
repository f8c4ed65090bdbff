// AdamW against a hand computation and PyTorch's gradient-buffer semantics.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { AdamW } from '../src/optim/adamw.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { assertClose } from './helpers/close.ts';

function adamwByHand(theta: number, grads: number[], lr: number, wd: number): number {
  let m = 0,
    v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    theta *= 1 - lr * wd;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    theta -= ((lr / (1 - 0.9 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
  });
  return theta;
}

test('two AdamW steps match the hand computation', () => {
  const sd = new StateDict();
  sd.set('w', tf.tensor1d([0.5, -1.5]));
  const opt = new AdamW(sd, [{ params: ['w'], lr: 0.01, weightDecay: 0.1 }]);
  opt.accumulate('w', tf.tensor1d([0.3, -2]));
  opt.step();
  opt.zeroGrad();
  opt.accumulate('w', tf.tensor1d([-0.1, 4]));
  opt.step();
  assertClose(sd.get('w').dataSync(), [adamwByHand(0.5, [0.3, -0.1], 0.01, 0.1), adamwByHand(-1.5, [-2, 4], 0.01, 0.1)], 1e-6, 'θ');
  assert.equal(opt.stepCount('w'), 2);
  opt.dispose();
  sd.dispose();
});

test('no gradient buffer: skipped (no decay, no state); zeroed buffer: stepped with g = 0', () => {
  const sd = new StateDict();
  sd.set('a', tf.tensor1d([1]));
  sd.set('b', tf.tensor1d([1]));
  const opt = new AdamW(sd, [{ params: ['a', 'b'], lr: 0.1, weightDecay: 0.5 }]);
  opt.accumulate('a', tf.tensor1d([1]));
  opt.step();
  assert.equal(opt.stepCount('b'), undefined);
  assertClose(sd.get('b').dataSync(), [1], 0, 'untouched b');
  opt.zeroGrad();
  assert.ok(opt.hasGrad('a') && !opt.hasGrad('b'));
  opt.step();
  assert.equal(opt.stepCount('a'), 2);
  assertClose(sd.get('a').dataSync(), [adamwByHand(1, [1, 0], 0.1, 0.5)], 1e-6, 'a after a zero-gradient step');
  opt.dispose();
  sd.dispose();
});

test('gradients accumulate until zeroed, and clipping is element-wise by value', () => {
  const sd = new StateDict();
  sd.set('w', tf.tensor1d([0, 0, 0]));
  const opt = new AdamW(sd, [{ params: ['w'], lr: 0.1, weightDecay: 0 }]);
  opt.accumulate('w', tf.tensor1d([0.2, -0.7, 3]));
  opt.accumulate('w', tf.tensor1d([0.1, 0.1, 0.1]));
  assertClose(opt.grad('w')!.dataSync(), [0.3, -0.6, 3.1], 1e-6, 'accumulated');
  opt.clipGradValue(0.5);
  assertClose(opt.grad('w')!.dataSync(), [0.3, -0.5, 0.5], 1e-7, 'clipped');
  opt.dispose();
  sd.dispose();
});

test('optimizer state round trip under the official parameter names', async () => {
  const sd = new StateDict();
  sd.set(
    'gnn.fc.0.weight',
    tf.tensor2d([
      [1, 2],
      [3, 4],
    ]),
  );
  const opt = new AdamW(sd, [{ params: ['gnn.fc.0.weight'], lr: 0.1, weightDecay: 0 }]);
  opt.accumulate('gnn.fc.0.weight', tf.ones([2, 2]));
  opt.step();
  const state = await opt.stateToHost();
  assert.deepEqual([...state.keys()].sort(), ['gnn.fc.0.weight/exp_avg', 'gnn.fc.0.weight/exp_avg_sq', 'gnn.fc.0.weight/step']);
  const other = new AdamW(sd, [{ params: ['gnn.fc.0.weight'], lr: 0.1, weightDecay: 0 }]);
  other.loadState(state, opt.gradBufferNames());
  assert.equal(other.stepCount('gnn.fc.0.weight'), 1);
  assert.ok(other.hasGrad('gnn.fc.0.weight'));
  assertClose((await other.stateToHost()).get('gnn.fc.0.weight/exp_avg')!.data as Float32Array, [0.1, 0.1, 0.1, 0.1], 1e-7, 'exp_avg');
  opt.dispose();
  other.dispose();
  sd.dispose();
});
