// Replays an epoch-level fixture (test/fixtures/golden/README.md, "Epoch-level run fixtures";
// made by scripts/golden/make_run_fixture.py from the official train.py loop) through hardneg's own
// trainer, runTraining: the epoch loop, its learning-rate schedules, the J_avg/J_gen epoch means,
// warm-up freezing and BN_FREEZE are the trainer's, not re-implemented here. The fixture supplies
// what is random or external to the loop: the data (features through a stub backbone with a
// BatchNorm2d), the batches the official sampler drew, GeneralPulling's mixing draws and state0.
// Every iteration's losses, J_avg, J_gen, φ, J_syn weight and learning rates, and every epoch's
// state dict, optimizer step counters, J means and evaluation embeddings are compared.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { readNpy } from '../io/npy.ts';
import { type HostTensor, f32, f64, scalarOf, toNumbers } from '../io/host_tensor.ts';
import { parseConfig } from '../train/config.ts';
import type { ImageSplit } from '../train/image_split.ts';
import { RUN_FILES } from '../train/run_dir.ts';
import { runTraining, type BatchSampler } from '../train/trainer.ts';
import { compareTensor, expectedNames, type ComparisonRow, type Tolerance } from './compare.ts';
import { TRAJECTORY_TOLERANCE, fixtureLossSettings, trainingStateTolerance } from './trajectory_check.ts';
import { referenceStubBackbone } from './stub_backbone.ts';

/** The suffix that marks an epoch-level fixture: PREFIX.run.inputs.safetensors, … */
export const RUN_FIXTURE = '.run';

const LOSS_KEYS = ['J_m', 'J_gnnce', 'J_syn', 'J_metric', 'J_softce', 'J_div', 'J_gence', 'J_gen'] as const;
/** The official opt_c has two groups (backbone, embedding head); hardneg's first two are those. */
const OFFICIAL_OPT_C_GROUPS = 2;

/** `iter<g>/…` as the trajectories; `epoch<e>/…` with the zero-gradient bias drift of the iterations done by then. */
export function runTolerance(name: string, gnnLr: number, iterationsPerEpoch: number): Tolerance {
  const epoch = /^epoch(\d+)\//.exec(name);
  if (!epoch) return { rel: TRAJECTORY_TOLERANCE.losses, abs: 1e-9 };
  // Embeddings of the evaluation split come from the epoch's parameters: their tolerance.
  if (name.endsWith('/eval/embeddings')) return { rel: TRAJECTORY_TOLERANCE.params, abs: 1e-9 };
  const iterationsDone = (Number(epoch[1]) + 1) * iterationsPerEpoch;
  return trainingStateTolerance(name, 2 * gnnLr * iterationsDone);
}

/** Features [n, F] as an image split of [n, 1, 1, F] "images" (the stub backbone's 1×1 input). */
function featureSplit(x: HostTensor, y: HostTensor): ImageSplit {
  const [n, width] = x.shape as [number, number];
  const data = Float32Array.from(x.data as Float32Array);
  const labels = Int32Array.from(toNumbers(y));
  return {
    size: n,
    labels,
    numClasses: Math.max(...labels) + 1,
    images: async (indices) => {
      const out = new Float32Array(indices.length * width);
      indices.forEach((i, r) => out.set(data.subarray(i * width, (i + 1) * width), r * width));
      return tf.tensor4d(out, [indices.length, 1, 1, width]);
    },
  };
}

/** The batches the official sampler drew, in its order (class-major), as the trainer's sampler. */
function recordedSampler(batches: HostTensor): BatchSampler {
  const [epochs, perEpoch, B] = batches.shape as [number, number, number];
  const all = toNumbers(batches);
  let next = 0;
  return {
    nextBatch() {
      if (next >= epochs * perEpoch) throw new Error(`the trainer asked for batch ${next + 1}; the fixture recorded ${epochs * perEpoch}`);
      const batch = all.slice(next * B, (next + 1) * B);
      next += 1;
      return batch;
    },
    batchesPerEpoch: () => perEpoch,
    state: () => next,
    restore: (s) => {
      next = s as number;
    },
  };
}

export async function runRunFixture(prefix: string): Promise<{ computed: Map<string, HostTensor>; rows?: ComparisonRow[] }> {
  const inputsPath = `${prefix}${RUN_FIXTURE}.inputs.safetensors`;
  const statePath = `${prefix}${RUN_FIXTURE}.state0.safetensors`;
  for (const p of [inputsPath, statePath]) if (!existsSync(p)) throw new UserError(`${p}: not found`);
  const inputs = readSafetensors(inputsPath).tensors;
  const state0 = readSafetensors(statePath).tensors;
  const need = (n: string): HostTensor => {
    const t = inputs.get(n);
    if (!t) throw new UserError(`${inputsPath}: missing tensor '${n}'`);
    return t;
  };
  const num = (n: string) => scalarOf(need(n), n);
  const [P, K, epochs, iterations] = [num('P'), num('K'), num('EPOCHS'), num('ITERS')];
  const config = parseConfig(
    {
      // model.backbone stays the default: the trainer reads only its augmentation flag (none), the
      // backbone itself is the stub passed below.
      model: { embeddingSize: num('D'), gnnLayers: num('L'), attentionHeads: num('H'), normalize: false },
      train: {
        method: 'gca-hng',
        classesPerBatch: P,
        samplesPerClass: K,
        epochs,
        seed: num('seed'),
        evalEvery: num('EVAL_EPOCH'),
        checkpointEvery: epochs * iterations + 1,
      },
      loss: { ...fixtureLossSettings(num), hardness: 'official' },
      solver: {
        baseLr: num('BASE_LR'),
        embeddingRatio: num('EMBEDDING_RATIO'),
        gnnLr: num('GNN_LR'),
        classifierLr: num('CLASSIFIER_LR'),
        weightDecay: num('WEIGHT_DECAY'),
        classifierWeightDecay: 0.01,
        lrPolicy: 'step',
        metricGamma: num('METRIC_GAMMA'),
        metricDecaySteps: num('METRIC_DECAY_STEPS'),
        gradClip: true,
        gradClipValue: num('GRAD_L2_CLIP'),
        bnFreeze: true,
        warmUpEpochs: num('WARM_UP_EPOCH'),
        bnAffine: 'official',
      },
      eval: { ks: [1], nmi: false },
    },
    inputsPath,
  );
  const mixing = toNumbers(need('mixing'));
  let drawn = 0;
  const computed = new Map<string, HostTensor>();
  let g = 0;
  const runDir = mkdtempSync(join(tmpdir(), 'hardneg-run-fixture-'));
  try {
    await runTraining({
      config,
      runDir,
      resume: false,
      train: featureSplit(need('x_train'), need('y_train')),
      test: featureSplit(need('x_eval'), need('y_eval')),
      backbone: referenceStubBackbone(need('x_train').shape[1] as number, num('n_mid'), config.solver.bnFreeze),
      sampler: () => recordedSampler(need('batches')),
      loadWeights: (sd) => {
        const missing = sd.names().filter((n) => !state0.has(n));
        const extra = [...state0.keys()].filter((n) => !sd.names().includes(n));
        if (missing.length + extra.length > 0)
          throw new UserError(
            `${statePath}: does not fit the model (missing ${missing.slice(0, 3).join(', ') || '-'}; unknown ${extra.slice(0, 3).join(', ') || '-'})`,
          );
        for (const [name, t] of state0) sd.load(name, t);
      },
      mixing: () => {
        if (drawn >= mixing.length) throw new Error(`the trainer drew more than the ${mixing.length} mixing values the fixture recorded`);
        return mixing[drawn++] as number;
      },
      onIteration: (p) => {
        for (const k of LOSS_KEYS) computed.set(`iter${g}/loss/${k}`, f32([p.losses[k] as number], []));
        computed.set(`iter${g}/J_avg`, f64([p.jAvg], []));
        computed.set(`iter${g}/J_gen`, f64([p.jGen], []));
        computed.set(`iter${g}/phi`, f64([p.losses.para_scale as number], []));
        computed.set(`iter${g}/jsyn_weight`, f64([1 - (p.losses.e_bj as number)], []));
        const optC = p.learningRates.optC.slice(0, OFFICIAL_OPT_C_GROUPS);
        computed.set(`iter${g}/lr/opt_c`, f64(optC, [optC.length]));
        computed.set(`iter${g}/lr/opt_gnn`, f64(p.learningRates.optGnn, [p.learningRates.optGnn.length]));
        computed.set(`iter${g}/lr/opt_s`, f64(p.learningRates.optS, [p.learningRates.optS.length]));
        g += 1;
      },
      onEpochEnd: async ({ epoch, jAvg, jGen, sd, optimizers }) => {
        const e = `epoch${epoch}`;
        const embeddings = join(runDir, RUN_FILES.testEmbeddings);
        if (existsSync(embeddings)) {
          computed.set(`${e}/eval/embeddings`, readNpy(embeddings));
          // Removed, so that an epoch without evaluation shows as one.
          rmSync(embeddings);
        }
        computed.set(`${e}/J_avg`, f64([jAvg], []));
        computed.set(`${e}/J_gen`, f64([jGen], []));
        for (const [name, t] of await sd.toHost()) computed.set(`${e}/state/${name}`, t);
        for (const [optName, opt] of [
          ['opt_c', optimizers.optC],
          ['opt_gnn', optimizers.optGnn],
          ['opt_s', optimizers.optS],
        ] as const) {
          // The step counters say which parameters each optimizer has stepped (warm-up freezing).
          for (const [name, t] of await opt.stateToHost()) if (name.endsWith('/step')) computed.set(`${e}/${optName}/${name}`, t);
        }
      },
    });
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  const expectedPath = `${prefix}${RUN_FIXTURE}.expected.safetensors`;
  if (!existsSync(expectedPath)) return { computed };
  const expected = readSafetensors(expectedPath).tensors;
  const names = expectedNames(expected);
  const gnnLr = num('GNN_LR');
  const rows = names.map((n) => compareTensor(n, computed.get(n), expected, runTolerance(n, gnnLr, iterations)));
  // What hardneg computed and the official run has not: e.g. a step counter of a parameter the
  // official warm-up kept frozen.
  const known = new Set(names);
  for (const n of computed.keys()) {
    if (!known.has(n)) rows.push({ name: n, storage: 'full', error: Infinity, absolute: true, tolerance: 0, ok: false, note: 'not in the official run' });
  }
  if (drawn !== mixing.length) {
    rows.push({
      name: 'mixing',
      storage: 'full',
      error: Infinity,
      absolute: true,
      tolerance: 0,
      ok: false,
      note: `drew ${drawn} of the ${mixing.length} recorded values`,
    });
  }
  return { computed, rows };
}
