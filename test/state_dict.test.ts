// State dicts under the official names: inventory, initialisation, and a safetensors round trip.
import './helpers/backend.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensors, parseSafetensors, serializeSafetensors } from '../src/io/safetensors.ts';
import { toNumbers } from '../src/io/host_tensor.ts';
import { gnnParameterShapes } from '../src/gca_hng/gnn/names.ts';
import { newGeneratorState } from '../src/models/init.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { generatorDims } from '../src/models/checkpoint_shape.ts';
import { Random } from '../src/engine/random.ts';
import { GOLDEN } from './helpers/golden.ts';

test('the GNN inventory has exactly the official names, shapes and key order', () => {
  const state = readSafetensors(`${GOLDEN}/pub_p3k3_d32_l2.state.safetensors`).tensors;
  const official = [...state.entries()].filter(([n]) => n.startsWith('gnn.')).map(([n, t]) => [n, t.shape]);
  assert.deepEqual(gnnParameterShapes(32, 2, 8), official);
  assert.deepEqual(generatorDims(state, 'fixture'), { D: 32, L: 2, C: 8 });
});

test('fresh initialisation: official statistics of each parameter kind', async () => {
  const sd = newGeneratorState({ P: 3, K: 2, D: 64, L: 1, H: 2, C: 5 }, new Random(3));
  const host = await sd.toHost();
  const values = (n: string) => toNumbers(host.get(n)!);
  assert.ok(values('gnn.gnn.0.edge_model.norm.1.weight').every((v) => v === 1));
  assert.ok(values('gnn.bottleneck1.0.running_var').every((v) => v === 1));
  assert.ok(values('gnn.gnn.0.node_model.layers.0.att.q_linear.bias').every((v) => v === 0));
  const xavier = values('gnn.gnn.0.node_model.layers.0.att.q_linear.weight');
  assert.ok(Math.max(...xavier.map(Math.abs)) <= Math.sqrt(3 / 64) && Math.max(...xavier.map(Math.abs)) > 0.9 * Math.sqrt(3 / 64));
  const dflt = values('gnn.gnn.0.edge_model.linear.3.weight'); // fan-in 256
  assert.ok(Math.max(...dflt.map(Math.abs)) <= 1 / 16 && Math.max(...dflt.map(Math.abs)) > 0.9 / 16);
  assert.equal(toNumbers(host.get('gnn.bottleneck2.0.num_batches_tracked')!)[0], 0);
  assert.ok(!sd.trainable(['gnn.']).includes('gnn.bottleneck1.0.bias'), 'frozen bias is not trainable');
  sd.dispose();
});

test('save → load keeps every tensor and counter (checkpoints travel both ways)', async () => {
  const state = readSafetensors(`${GOLDEN}/pub_p4k2_d16_l1.state.safetensors`).tensors;
  const sd = StateDict.fromHost(state);
  const back = parseSafetensors(serializeSafetensors(await sd.toHost())).tensors;
  assert.deepEqual([...back.keys()].sort(), [...state.keys()].sort());
  for (const [name, t] of state) {
    assert.equal(back.get(name)!.dtype, t.dtype, name);
    assert.deepEqual(toNumbers(back.get(name)!), toNumbers(t), name);
  }
  sd.dispose();
});

test('loading a tensor of the wrong shape names it', () => {
  const sd = StateDict.fromHost(readSafetensors(`${GOLDEN}/pub_p4k2_d16_l1.state.safetensors`).tensors);
  assert.throws(() => sd.load('gnn.fc.0.bias', { dtype: 'F32', shape: [3], data: new Float32Array(3) }), /gnn\.fc\.0\.bias.*\[3\].*\[16\]/);
  sd.dispose();
});
