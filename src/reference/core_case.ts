// Everything a generator golden fixture records (test/fixtures/golden/README.md), computed by our
// implementation: the graph, eval- and train-mode forward passes with intermediates, the
// generation, every loss, the gradients of J_metric, J_softce and J_gen, and the BatchNorm
// buffers after the two train-mode GNN passes.
import * as tf from '@tensorflow/tfjs';
import { correlationMatrix, edgeIndex } from '../gca_hng/correlation_graph.ts';
import type { GnnShape } from '../gca_hng/gnn/config.ts';
import { mapRecorder } from '../gca_hng/gnn/recorder.ts';
import { type HostTensor, f64, i64, scalarOf, toNumbers } from '../io/host_tensor.ts';
import { labelMix, simMask } from '../gca_hng/losses.ts';
import { StateDict } from '../models/state_dict.ts';
import type { GcaHngLossConfig } from '../gca_hng/config.ts';
import { type PassContext, generatorObjective, metricObjective, softmaxObjective, synWeightComplement } from '../gca_hng/objectives.ts';
import { hardnessFactor } from '../gca_hng/hard_negatives.ts';
import { fromHost, toHost } from './host_convert.ts';

export interface CoreCase {
  shape: GnnShape;
  loss: GcaHngLossConfig;
  z: HostTensor;
  labels: number[];
  jAvg: number;
  jGen: number;
  mixing: number[];
  state: Map<string, HostTensor>;
}

/** Reads a case from the tensors of `<prefix>.inputs.safetensors` and `<prefix>.state.safetensors`. */
export function coreCaseFromTensors(inputs: Map<string, HostTensor>, state: Map<string, HostTensor>): CoreCase {
  const need = (n: string): HostTensor => {
    const t = inputs.get(n);
    if (!t) throw new Error(`inputs: missing tensor '${n}'`);
    return t;
  };
  const int = (n: string) => scalarOf(need(n), n);
  return {
    shape: { P: int('P'), K: int('K'), D: int('D'), L: int('L'), H: int('H'), C: int('C') },
    loss: {
      alpha: int('alpha'),
      beta: int('beta'),
      softmaxFactor: int('softmax_factor'),
      dotWeight: int('DOT_WEIGHT'),
      divWeight: int('DIV_WEIGHT'),
      simMask: 'reference',
      edgeDropout: 0,
    },
    z: need('z'),
    labels: toNumbers(need('y')),
    jAvg: int('jm'),
    jGen: int('j_gen'),
    mixing: toNumbers(need('rand_seq')),
    state,
  };
}

function keepAll<T extends Record<string, unknown>>(o: T): T {
  for (const v of Object.values(o)) if (v instanceof tf.Tensor) tf.keep(v);
  return o;
}

export function computeCoreCase(c: CoreCase): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const put = (name: string, t: tf.Tensor) => out.set(name, toHost(t));
  const { P, K } = c.shape;
  const B = P * K;

  tf.tidy(() => {
    const z = fromHost(c.z) as tf.Tensor2D;
    out.set('graph/edge_index', i64(edgeIndex(B), [B * B, 2]));
    put('graph/W_to_A', correlationMatrix(z));
    out.set('const/label_mix', i64(labelMix(c.labels, P, K), [K * P * P]));
    out.set('const/sim_mask', { dtype: 'F32', shape: [K * P * P], data: simMask(P, K, c.loss.simMask) });
    out.set('const/e_bj', f64([synWeightComplement(c.loss.beta, c.jGen)], []));
    out.set('const/para_scale', f64([hardnessFactor(c.loss.alpha, c.jAvg)], []));
  });

  evalMode(c, out);
  trainMode(c, out);
  return out;
}

function context(c: CoreCase, sd: StateDict, training: boolean, rec?: PassContext['record']): PassContext {
  return { sd, shape: c.shape, loss: c.loss, labels: c.labels, jAvg: c.jAvg, jGen: c.jGen, mixing: c.mixing, training, record: rec, withAllNegatives: true };
}

function putLosses(
  out: Map<string, HostTensor>,
  mode: string,
  m: ReturnType<typeof metricObjective>,
  s: ReturnType<typeof softmaxObjective>,
  g: ReturnType<typeof generatorObjective>,
): void {
  const put = (name: string, t: tf.Tensor) => out.set(`${mode}/${name}`, toHost(t));
  put('node_pred', m.nodePred);
  put('edge_para', m.edgePara);
  put('loss/J_m', m.jM);
  put('loss/J_gce', m.jGce);
  put('loss/J_syn_raw', m.jSynRaw);
  put('loss/J_syn', m.jSyn);
  put('loss/J_metric', m.jMetric);
  put('loss/J_softce', s.jSoftce);
  put('logits_orig', s.logits);
  put('pulling/neg_hat', m.negatives);
  if (m.allNegatives) put('pulling/all_neg', m.allNegatives);
  put('logits_mix', g.logitsMix);
  put('loss/J_div_raw', g.jDivRaw);
  put('loss/J_div', g.jDiv);
  put('loss/J_gence', g.jGence);
  put('loss/J_sim_unmasked', g.sim.unmasked);
  put('loss/J_sim_vec', g.sim.vec);
  put('loss/J_sim_mean', g.sim.mean);
  put('loss/J_gen', g.jGen);
}

function evalMode(c: CoreCase, out: Map<string, HostTensor>): void {
  const sd = StateDict.fromHost(c.state);
  const recorded = new Map<string, tf.Tensor>();
  try {
    tf.tidy(() => {
      const z = fromHost(c.z) as tf.Tensor2D;
      const ctx = context(c, sd, false, mapRecorder(recorded));
      const m = metricObjective(ctx, z);
      const s = softmaxObjective(sd, z, c.labels);
      const g = generatorObjective({ ...ctx, record: undefined }, z);
      putLosses(out, 'eval', m, s, g);
    });
    for (const [name, t] of recorded) {
      if (name === 'graph/W') out.set(name, toHost(t));
      else if (name.startsWith('gnn/')) out.set(`eval/${name.slice(4)}`, toHost(t));
    }
  } finally {
    for (const t of recorded.values()) t.dispose();
    sd.dispose();
  }
}

function trainMode(c: CoreCase, out: Map<string, HostTensor>): void {
  const sd = StateDict.fromHost(c.state);
  const zInit = fromHost(c.z);
  const zVar = tf.variable(zInit, true);
  zInit.dispose();
  const gnnParams = sd.trainable(['gnn.']);
  const classifierParams = sd.trainable(['softmax_classifier.']);
  const varsOf = (names: string[]) => names.map((n) => sd.get(n));
  const putGrads = (prefix: string, names: string[], grads: Record<string, tf.Tensor>) => {
    for (const n of names) {
      const v = sd.get(n);
      const g = grads[v.name];
      out.set(`${prefix}${n}`, g ? toHost(g) : { dtype: 'F32', shape: [...v.shape], data: new Float32Array(v.size) });
    }
  };
  try {
    const ctx = context(c, sd, true);
    let m!: ReturnType<typeof metricObjective>;
    const metric = tf.variableGrads(() => {
      m = keepAll(metricObjective(ctx, zVar as unknown as tf.Tensor2D));
      return m.jMetric;
    }, [zVar, ...varsOf(gnnParams)]);
    out.set('grad/z', toHost(metric.grads[zVar.name] as tf.Tensor));
    putGrads('grad_metric/', gnnParams, metric.grads);

    let s!: ReturnType<typeof softmaxObjective>;
    const soft = tf.variableGrads(() => {
      s = keepAll(softmaxObjective(sd, zVar as unknown as tf.Tensor2D, c.labels));
      return s.jSoftce;
    }, varsOf(classifierParams));
    putGrads('grad_softce/', classifierParams, soft.grads);

    let g!: ReturnType<typeof generatorObjective>;
    const zDetached = tf.clone(zVar) as tf.Tensor2D;
    const gen = tf.variableGrads(
      () => {
        const r = generatorObjective(ctx, zDetached);
        keepAll(r);
        keepAll(r.sim);
        g = r;
        return r.jGen;
      },
      varsOf([...gnnParams, ...classifierParams]),
    );
    putGrads('grad/', [...gnnParams, ...classifierParams], gen.grads);

    putLosses(out, 'train', m, s, g);
    for (const bn of ['gnn.bottleneck1.0', 'gnn.bottleneck2.0']) {
      out.set(`train/bn_after_forward/${bn}.running_mean`, toHost(sd.get(`${bn}.running_mean`)));
      out.set(`train/bn_after_forward/${bn}.running_var`, toHost(sd.get(`${bn}.running_var`)));
      out.set(`train/bn_after_forward/${bn}.num_batches_tracked`, i64([sd.counter(`${bn}.num_batches_tracked`)], []));
    }
    for (const r of [metric, soft, gen]) {
      r.value.dispose();
      Object.values(r.grads).forEach((t) => t.dispose());
    }
    zDetached.dispose();
    for (const o of [m, s, g, g?.sim]) for (const v of Object.values(o ?? {})) if (v instanceof tf.Tensor) v.dispose();
  } finally {
    zVar.dispose();
    sd.dispose();
  }
}
