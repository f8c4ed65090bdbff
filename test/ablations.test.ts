// Each ablation changes exactly what it claims, and the adaptive hardness schedule keeps φ in range.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Random } from '../src/engine/random.ts';
import { newGeneratorState, initPairMlp } from '../src/models/init.ts';
import { defaultLossConfig } from '../src/gca_hng/config.ts';
import { metricObjective, type PassContext } from '../src/gca_hng/objectives.ts';
import { generationWeights } from '../src/gca_hng/generator.ts';
import { variantOf } from '../src/gca_hng/variants.ts';
import { correlationGraph } from '../src/gca_hng/correlation_graph.ts';
import { gnnForward } from '../src/gca_hng/gnn/gnn_decoder.ts';
import { effectiveAlpha, epochPhi } from '../src/gca_hng/hardness_schedule.ts';
import { relativeL2 } from './helpers/close.ts';

const shape = { P: 3, K: 2, D: 8, L: 1, H: 2, C: 4 };
const labels = [0, 1, 2, 0, 1, 2];

function context(sd: ReturnType<typeof newGeneratorState>, method: Parameters<typeof variantOf>[0]): PassContext {
  return { sd, shape, loss: defaultLossConfig(), labels, jAvg: 2, jGen: 10, mixing: [0.3, 0.6], training: true, variant: variantOf(method) };
}

/** Gradient of a scalar built from metricObjective's parts with respect to z and to the GNN's parameters. */
function gradients(ctx: PassContext, pick: (r: ReturnType<typeof metricObjective>) => tf.Scalar) {
  const z = tf.variable(tf.randomNormal([6, 8], 0, 1, 'float32', 5));
  const gnnVars = ctx.sd.trainable(['gnn.']).map((n) => ctx.sd.get(n));
  const { grads } = tf.variableGrads(() => pick(metricObjective(ctx, z as unknown as tf.Tensor2D)), [z, ...gnnVars]);
  const gz = (grads[z.name] as tf.Tensor).dataSync().slice();
  const gGnn = gnnVars.map((v) => (grads[v.name] ? Array.from(grads[v.name]!.dataSync()) : null));
  z.dispose();
  return { gz, gGnn };
}

test('gca-hng-nosyn: the embedding gradient is that of J_m + J_gce, without J_syn', () => {
  const sd = newGeneratorState(shape, new Random(1));
  const ablated = gradients(context(sd, 'gca-hng-nosyn'), (r) => r.jMetric);
  const reference = gradients(context(sd, 'gca-hng'), (r) => tf.add(r.jM, r.jGce) as tf.Scalar);
  const official = gradients(context(sd, 'gca-hng'), (r) => r.jMetric);
  assert.ok(relativeL2(ablated.gz, reference.gz) < 1e-6);
  assert.ok(relativeL2(official.gz, reference.gz) > 1e-3, 'J_syn does change the official gradient');
  sd.dispose();
});

test('gca-hng-nogce: J_gce trains the GNN as before but no longer reaches the embedding', () => {
  const sd = newGeneratorState(shape, new Random(2));
  const ablated = gradients(context(sd, 'gca-hng-nogce'), (r) => r.jMetric);
  const reference = gradients(context(sd, 'gca-hng'), (r) => tf.add(r.jM, r.jSyn) as tf.Scalar);
  const official = gradients(context(sd, 'gca-hng'), (r) => r.jMetric);
  assert.ok(relativeL2(ablated.gz, reference.gz) < 1e-6);
  official.gGnn.forEach((g, i) => {
    const a = ablated.gGnn[i];
    assert.equal(a === null, g === null);
    if (g && a) assert.ok(relativeL2(a, g) < 1e-5, `GNN parameter ${i}`);
  });
  sd.dispose();
});

test('gca-hng-flat: every channel of a pair gets the same weight, the pair mean', () => {
  const para = tf.tensor2d([
    [0.1, 0.5, 0.9],
    [0.2, 0.2, 0.8],
  ]);
  const flat = generationWeights(para, variantOf('gca-hng-flat')).arraySync();
  assert.deepEqual(
    flat.map((row) => row.map((v) => Number(v.toFixed(6)))),
    [
      [0.5, 0.5, 0.5],
      [0.4, 0.4, 0.4],
    ],
  );
  assert.equal(generationWeights(para, variantOf('gca-hng')), para, 'the official method uses the per-channel weights');
});

test('gca-hng-noglobal: a pair’s weights depend only on that pair (no message passing)', () => {
  const sd = newGeneratorState({ ...shape, L: 0 }, new Random(3));
  initPairMlp(sd, 8, new Random(4));
  assert.ok(!sd.names().some((n) => n.startsWith('gnn.gnn.')), 'no GNN layers');
  const weights = (z: tf.Tensor2D, pairMlp: boolean, s = sd, sh = { ...shape, L: 0 }) =>
    gnnForward(s, sh, z, correlationGraph(z).edges, { training: false, pairMlp }).edgePara.arraySync()[1] as number[]; // edge (0, 1)
  const z1 = tf.randomNormal([6, 8], 0, 1, 'float32', 6) as tf.Tensor2D;
  const z2 = tf.concat([tf.slice(z1, [0, 0], [5, 8]), tf.randomNormal([1, 8], 0, 1, 'float32', 7)]) as tf.Tensor2D; // node 5 changed
  assert.ok(relativeL2(weights(z2, true), weights(z1, true)) < 1e-7);
  const official = newGeneratorState(shape, new Random(3));
  assert.ok(relativeL2(weights(z2, false, official, shape), weights(z1, false, official, shape)) > 1e-5, 'message passing mixes other nodes in');
  sd.dispose();
  official.dispose();
});

test('adaptive hardness keeps φ in range and leaves an in-range official φ unchanged', () => {
  const s = { kind: 'adaptive', alpha: 4, phiRange: [0.3, 0.7] } as const;
  assert.ok(Math.abs(epochPhi(s, 0.2) - 0.3) < 1e-12, 'official φ = e^{−20} is raised to the lower bound');
  assert.ok(Math.abs(epochPhi(s, 1e6) - 0.7) < 1e-12, 'the first epoch’s φ ≈ 1 is lowered to the upper bound');
  assert.equal(effectiveAlpha(s, 8), 4, 'φ = e^{−0.5} ≈ 0.61 is inside: α unchanged');
  assert.equal(effectiveAlpha({ ...s, kind: 'official' }, 0.2), 4);
  assert.ok(Math.abs(epochPhi({ ...s, kind: 'official' }, 0.2) - Math.exp(-20)) < 1e-15);
});
