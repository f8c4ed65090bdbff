// Replays a training-trajectory fixture (test/fixtures/golden/README.md, "Training-trajectory
// fixtures"): T whole iterations of the official GCA_HNG.forward from state0, with the given
// inputs, hardness values and mixing sequences, and compares losses, e_bj, para_scale, the state
// after every iteration and the three optimizers' moments and step counters.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { type HostTensor, f64, scalarOf, toNumbers } from '../io/host_tensor.ts';
import { StateDict } from '../models/state_dict.ts';
import { embeddingHead } from '../models/embedding_head.ts';
import { createOptimizers } from '../train/optimizers.ts';
import { trainIteration } from '../gca_hng/iteration.ts';
import { compareTensor, expectedNames, type ComparisonRow, type Tolerance } from './compare.ts';
import { fromHost } from './host_convert.ts';

export interface TrajectoryTolerance {
  losses: number;
  params: number;
  moments: number;
}

export const TRAJECTORY_TOLERANCE: TrajectoryTolerance = { losses: 1e-4, params: 2e-4, moments: 1e-3 };

const ZERO_GRAD_BIAS = /edge_model\.att\.k_linear\.bias$/;

export function trajectoryTolerance(name: string, gnnLr: number): Tolerance {
  const iter = Number(/^iter(\d+)\//.exec(name)?.[1] ?? 0);
  // The zero-gradient bias drifts by noise-driven Adam steps of at most about lr each (two GNN steps per iteration).
  return trainingStateTolerance(name, gnnLr * 2 * (iter + 1));
}

/**
 * The tolerance of a tensor recorded during training (`…/state/<param>`, `…/<optimizer>/<param>/…`,
 * or a loss): `zeroGradBiasDrift` bounds how far the mathematically zero-gradient bias may have
 * drifted by then (about lr per GNN step so far). Shared by the trajectories and the epoch-level runs.
 */
export function trainingStateTolerance(name: string, zeroGradBiasDrift: number): Tolerance {
  if (name.endsWith('/step') || name.endsWith('num_batches_tracked')) return { rel: 0, abs: 0, exact: true };
  if (ZERO_GRAD_BIAS.test(name.replace(/\/(exp_avg|exp_avg_sq)$/, ''))) {
    if (/\/(exp_avg|exp_avg_sq)$/.test(name)) return { rel: 0, abs: 0, skip: 'mathematically zero gradient: moments are rounding noise' };
    return { rel: 0, abs: zeroGradBiasDrift, absoluteOnly: true };
  }
  if (/\/(exp_avg|exp_avg_sq)$/.test(name)) return { rel: TRAJECTORY_TOLERANCE.moments, abs: 1e-12 };
  if (/\/state\//.test(name)) {
    const buffer = /running_(mean|var)$/.test(name);
    return { rel: buffer ? TRAJECTORY_TOLERANCE.losses : TRAJECTORY_TOLERANCE.params, abs: 1e-9 };
  }
  return { rel: TRAJECTORY_TOLERANCE.losses, abs: 1e-9 };
}

/**
 * The loss settings a training fixture's JSON records, as hardneg's loss configuration (the official
 * similarity mask; edge dropout 0, as the fixtures are made). Shared by the trajectory and run checks.
 */
export function fixtureLossSettings(num: (name: string) => number) {
  return {
    alpha: num('alpha'),
    beta: num('beta'),
    softmaxFactor: num('softmax_factor'),
    dotWeight: num('DOT_WEIGHT'),
    divWeight: num('DIV_WEIGHT'),
    simMask: 'reference' as const,
    edgeDropout: 0,
  };
}

export async function runTrajectoryFixture(prefix: string): Promise<{ computed: Map<string, HostTensor>; rows?: ComparisonRow[] }> {
  const inputs = readSafetensors(`${prefix}.train.inputs.safetensors`).tensors;
  const statePath = `${prefix}.train.state0.safetensors`;
  if (!existsSync(statePath)) throw new UserError(`${statePath}: not found`);
  const state0 = readSafetensors(statePath).tensors;
  const need = (n: string): HostTensor => {
    const t = inputs.get(n);
    if (!t) throw new UserError(`${prefix}.train.inputs.safetensors: missing tensor '${n}'`);
    return t;
  };
  const num = (n: string) => scalarOf(need(n), n);
  const shape = { P: num('P'), K: num('K'), D: num('D'), L: num('L'), H: num('H'), C: num('C') };
  const T = num('T');
  const gnnLr = num('GNN_LR');
  const computed = replayTrajectory({
    shape,
    T,
    state0,
    loss: fixtureLossSettings(num),
    solver: {
      baseLr: num('BASE_LR'),
      embeddingRatio: num('EMBEDDING_RATIO'),
      gnnLr,
      classifierLr: num('CLASSIFIER_LR'),
      weightDecay: num('WEIGHT_DECAY'),
      classifierWeightDecay: 0.01,
    },
    clip: num('GRAD_L2_CLIP'),
    iteration: (t) => ({
      x: need(`x_${t}`),
      labels: toNumbers(need(`y_${t}`)),
      mixing: toNumbers(need(`rand_seq_${t}`)),
      jAvg: num(`J_avg_${t}`),
      jGen: num(`J_gen_${t}`),
    }),
  });
  const expectedPath = `${prefix}.train.expected.safetensors`;
  if (!existsSync(expectedPath)) return { computed: await computed };
  const out = await computed;
  const expected = readSafetensors(expectedPath).tensors;
  const rows = expectedNames(expected).map((n) => compareTensor(n, out.get(n), expected, trajectoryTolerance(n, gnnLr)));
  return { computed: out, rows };
}

export interface TrajectorySpec {
  shape: { P: number; K: number; D: number; L: number; H: number; C: number };
  T: number;
  state0: Map<string, HostTensor>;
  loss: import('../gca_hng/config.ts').GcaHngLossConfig;
  solver: import('../train/optimizers.ts').SolverConfig;
  clip: number | null;
  iteration: (t: number) => { x: HostTensor; labels: number[]; mixing: number[]; jAvg: number; jGen: number };
}

/** Runs the T iterations and returns every tensor a trajectory fixture's expected file names. */
export async function replayTrajectory(s: TrajectorySpec): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  const sd = StateDict.fromHost(s.state0);
  const opts = createOptimizers(sd, s.solver);
  try {
    for (let t = 0; t < s.T; t++) {
      const it = s.iteration(t);
      const x = fromHost(it.x);
      const losses = trainIteration(
        {
          sd,
          shape: s.shape,
          loss: s.loss,
          embed: (input) => embeddingHead(sd, input as tf.Tensor2D, true),
          optC: opts.optC,
          optGnn: opts.optGnn,
          optS: opts.optS,
          clip: s.clip,
        },
        { input: x, labels: it.labels, jAvg: it.jAvg, jGen: it.jGen, mixingMetric: it.mixing, mixingGenerator: it.mixing },
      );
      x.dispose();
      for (const k of ['J_m', 'J_gnnce', 'J_syn', 'J_metric', 'J_softce', 'J_div', 'J_gence', 'J_gen'] as const) {
        out.set(`iter${t}/loss/${k}`, { dtype: 'F32', shape: [], data: Float32Array.of(losses[k]) });
      }
      out.set(`iter${t}/e_bj`, f64([losses.e_bj], []));
      out.set(`iter${t}/para_scale`, f64([losses.para_scale], []));
      for (const [name, v] of await sd.toHost()) out.set(`iter${t}/state/${name}`, v);
      for (const [optName, opt] of [
        ['opt_c', opts.optC],
        ['opt_gnn', opts.optGnn],
        ['opt_s', opts.optS],
      ] as const) {
        for (const [name, v] of await opt.stateToHost()) out.set(`iter${t}/${optName}/${name}`, v);
      }
    }
    return out;
  } finally {
    opts.optC.dispose();
    opts.optGnn.dispose();
    opts.optS.dispose();
    sd.dispose();
  }
}
