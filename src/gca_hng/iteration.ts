// One GCA-HNG training iteration in the official order (docs/algorithm.md §6.6):
//  1 zero opt_c, opt_gnn │ 2–8 pass 1: J_metric = J_m + J_syn + J_gce, backward
//  9 clip + opt_c.step   │ 10 clip + opt_gnn.step (#1)
// 11 opt_s: zero, J_ce = 10·CE(cls(sg z)), backward, step (no clipping)
// 12 zero opt_gnn │ 13–15 pass 2 on sg(z) with the updated GNN: J_gen │ 16 backward, clip, opt_gnn.step (#2)
import * as tf from '@tensorflow/tfjs';
import type { GnnShape } from './gnn/config.ts';
import type { DropoutSpec } from './gnn/edge_update.ts';
import type { AdamW } from '../optim/adamw.ts';
import type { StateDict } from '../models/state_dict.ts';
import type { GcaHngLossConfig } from './config.ts';
import { generatorObjective, metricObjective, softmaxObjective } from './objectives.ts';
import type { GcaVariant } from './variants.ts';
import type { MetricLoss } from '../losses/metric/index.ts';

export interface IterationModel {
  sd: StateDict;
  shape: GnnShape;
  loss: GcaHngLossConfig;
  /** The metric model's forward (backbone + head), in training mode. */
  embed: (input: tf.Tensor) => tf.Tensor2D;
  optC: AdamW;
  optGnn: AdamW;
  optS: AdamW;
  /** Element-wise gradient clip value (SOLVER.GRAD_L2_CLIP when GRAD_CLIP is on), or null. */
  clip: number | null;
  /** Parameters of opt_c that receive no gradient now (the backbone during warm-up). */
  frozen?: ReadonlySet<string>;
  /** An ablation of the official method. */
  variant?: GcaVariant;
  /** A base loss other than N-pair (see PassContext.baseLoss). */
  baseLoss?: MetricLoss;
}

export interface IterationBatch {
  input: tf.Tensor;
  labels: readonly number[];
  jAvg: number;
  jGen: number;
  /** K(K−1) mixing uniforms for the metric-side and the generator-side generation. */
  mixingMetric: readonly number[];
  mixingGenerator: readonly number[];
  dropout?: DropoutSpec;
  /** Hardness factor φ overriding exp(−α/J_avg) (the adaptive schedule). */
  phi?: number;
}

/** The official forward's `metrics`, plus the constants it used. */
export interface IterationLosses {
  J_m: number;
  J_gnnce: number;
  J_syn: number;
  J_metric: number;
  J_softce: number;
  J_div: number;
  J_gence: number;
  J_gen: number;
  e_bj: number;
  para_scale: number;
}

function backward(loss: () => tf.Scalar, opts: AdamW[], sd: StateDict, exclude?: ReadonlySet<string>): number {
  const names = opts.flatMap((o) => o.params()).filter((n) => !exclude?.has(n));
  const vars = names.map((n) => sd.get(n));
  const { value, grads } = tf.variableGrads(loss, vars);
  for (const v of vars) {
    const g = grads[v.name];
    if (!g) continue;
    const name = sd.nameOf(v) as string;
    (opts.find((o) => o.owns(name)) as AdamW).accumulate(name, g);
  }
  const out = value.dataSync()[0] as number;
  value.dispose();
  Object.values(grads).forEach((g) => g.dispose());
  return out;
}

export function trainIteration(m: IterationModel, b: IterationBatch): IterationLosses {
  const { sd } = m;
  const ctx = {
    sd,
    shape: m.shape,
    loss: m.loss,
    labels: b.labels,
    jAvg: b.jAvg,
    jGen: b.jGen,
    training: true,
    dropout: b.dropout,
    phi: b.phi,
    variant: m.variant,
    baseLoss: m.baseLoss,
  };
  m.optC.zeroGrad();
  m.optGnn.zeroGrad();

  let z!: tf.Tensor2D;
  const scalars: Record<string, number> = {};
  let eBj = 0;
  let phi = 0;
  const jMetric = backward(
    () => {
      const zOnTape = m.embed(b.input);
      z = tf.keep(tf.clone(zOnTape));
      const r = metricObjective({ ...ctx, mixing: b.mixingMetric }, zOnTape);
      scalars.J_m = r.jM.dataSync()[0] as number;
      scalars.J_gnnce = r.jGce.dataSync()[0] as number;
      scalars.J_syn = r.jSyn.dataSync()[0] as number;
      eBj = r.eBj;
      phi = r.phi;
      return r.jMetric;
    },
    [m.optC, m.optGnn],
    sd,
    m.frozen,
  );

  try {
    if (m.clip !== null) m.optC.clipGradValue(m.clip);
    m.optC.step();
    if (m.clip !== null) m.optGnn.clipGradValue(m.clip);
    m.optGnn.step();

    m.optS.zeroGrad();
    const jSoftce = backward(() => softmaxObjective(sd, z, b.labels).jSoftce, [m.optS], sd);
    m.optS.step();

    m.optGnn.zeroGrad();
    // J_gen also reaches the classifier, but that gradient is zeroed before opt_s uses it: skipped.
    const jGen = backward(
      () => {
        const r = generatorObjective({ ...ctx, mixing: b.mixingGenerator }, z);
        scalars.J_div = r.jDiv.dataSync()[0] as number;
        scalars.J_gence = r.jGence.dataSync()[0] as number;
        return r.jGen;
      },
      [m.optGnn],
      sd,
    );
    if (m.clip !== null) m.optGnn.clipGradValue(m.clip);
    m.optGnn.step();

    return {
      J_m: scalars.J_m as number,
      J_gnnce: scalars.J_gnnce as number,
      J_syn: scalars.J_syn as number,
      J_metric: jMetric,
      J_softce: jSoftce,
      J_div: scalars.J_div as number,
      J_gence: scalars.J_gence as number,
      J_gen: jGen,
      e_bj: eBj,
      para_scale: phi,
    };
  } finally {
    z.dispose();
  }
}
