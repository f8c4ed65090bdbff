// The official epoch loop (docs/algorithm.md §6.7) around the GCA-HNG iteration, with exact resumption:
// every `checkpointEvery` iterations and at each epoch's end the weights, optimizer state, random
// streams, sampler state, running loss sums and position in the epoch are written atomically, so
// a run killed at any moment and resumed ends exactly as the uninterrupted one.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Random, STREAMS } from '../engine/random.ts';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { VERSION, sourceCommit } from '../version.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { writeNpy } from '../io/npy.ts';
import { hardnessDiagnostics } from '../gca_hng/diagnostics.ts';
import { isGcaMethod, variantOf, type GcaVariant } from '../gca_hng/variants.ts';
import { effectiveAlpha, epochPhi, type HardnessSchedule } from '../gca_hng/hardness_schedule.ts';
import type { Backbone } from '../models/backbone.ts';
import { backboneSpec } from '../models/backbones.ts';
import type { StateDict } from '../models/state_dict.ts';
import type { TrainConfig } from './config.ts';
import { createMetricModel, embed, type MetricModel } from '../models/metric_model.ts';
import { createOptimizers, BACKBONE_PREFIX, OPT_C_GROUPS, type Optimizers } from './optimizers.ts';
import { createLoss } from '../losses/metric/index.ts';
import { checkCompatibility, createGenerator } from '../baselines/index.ts';
import { UserError, firstLine } from '../errors.ts';
import { trainIteration, type IterationModel } from '../gca_hng/iteration.ts';
import { baselineIteration } from '../baselines/iteration.ts';
import { gnnLr, metricLr } from './schedules.ts';
import { freezePlan, frozenAt } from './freezing.ts';
import { evaluateModel, type EvalRecord } from './evaluate_model.ts';
import type { ImageSplit } from './image_split.ts';
import { toChunkLayout } from '../samplers/chunk_reorder.ts';
import { RUN_FILES, appendLog, loadCheckpoint, restoreOptimizers, saveCheckpoint, truncateLog } from './run_dir.ts';

/** The class-balanced P×K sampler, as the trainer uses it. */
export interface BatchSampler {
  /** B indices in class-major order (the K samples of the first drawn class, then the next…). */
  nextBatch(): number[];
  batchesPerEpoch(): number;
  state(): unknown;
  restore(state: unknown): void;
}

export interface TrainerInputs {
  config: TrainConfig;
  runDir: string;
  train: ImageSplit;
  test: ImageSplit;
  backbone: Backbone;
  sampler: (seed: number) => BatchSampler;
  resume: boolean;
  /** Loads pretrained backbone weights into the fresh state dict. */
  loadWeights?: (sd: StateDict) => void;
  /** Progress callback (the CLI draws a bar with it). */
  onIteration?: (p: IterationReport) => void;
  onEvaluation?: (r: EvalRecord) => void;
  /**
   * Called once an epoch has ended (evaluation done, J_avg/J_gen set to its means, checkpoint
   * written), with the live weights and optimizers: read them, do not change them. The epoch-level
   * reference check (src/reference/run_check.ts) compares them with the official loop's.
   */
  onEpochEnd?: (p: EpochEndReport) => Promise<void> | void;
  /**
   * The uniforms of GeneralPulling's mixing, in draw order (metric side, then generator side, each
   * K(K−1) per iteration), in place of the seeded mixing stream: a reference fixture replays the
   * official run's draws with it. The seeded stream is then left untouched.
   */
  mixing?: () => number;
  /** Stop after this many iterations in this process (tests of interruption). */
  stopAfterIterations?: number;
}

export interface IterationReport {
  epoch: number;
  /** Iterations done in this epoch, this one included. */
  iteration: number;
  iterations: number;
  losses: Record<string, number>;
  /** The J_avg and J_gen this iteration ran with (the previous epoch's means; 1e6 in the first epoch). */
  jAvg: number;
  jGen: number;
  /** Every optimizer group's learning rate during this iteration. */
  learningRates: { optC: number[]; optGnn: number[]; optS: number[] };
}

export interface EpochEndReport {
  /** The epoch that ended (0-based). */
  epoch: number;
  /** J_avg and J_gen for the next epoch: this epoch's means. */
  jAvg: number;
  jGen: number;
  sd: StateDict;
  optimizers: Optimizers;
}

export interface TrainerState {
  epoch: number;
  iterationInEpoch: number;
  globalStep: number;
  jAvg: number;
  jGen: number;
  sumJm: number;
  sumJgen: number;
  countJ: number;
  sampler: unknown;
  rng: Record<string, { state: string; inc: string }>;
  best: EvalRecord | null;
  last: EvalRecord | null;
  wallSeconds: number;
}

export interface TrainResult {
  final: EvalRecord | null;
  best: EvalRecord | null;
  wallSeconds: number;
  completed: boolean;
}

const J_START = 1e6;

export async function runTraining(inp: TrainerInputs): Promise<TrainResult> {
  const c = inp.config;
  const P = c.train.classesPerBatch;
  const K = c.train.samplesPerClass;
  const gca = isGcaMethod(c.train.method);
  const variant = isGcaMethod(c.train.method) ? variantOf(c.train.method) : undefined;
  const shape = { P, K, D: c.model.embeddingSize, H: c.model.attentionHeads, L: variant && !variant.global ? 0 : c.model.gnnLayers, C: inp.train.numClasses };
  const model: MetricModel = createMetricModel(inp.backbone, shape, c.train.seed, c.model.normalize, gca, variant !== undefined && !variant.global);
  inp.loadWeights?.(model.sd);
  model.backboneChunk = c.model.backboneChunk;
  const hardness = { kind: c.loss.hardness, alpha: c.loss.alpha, phiRange: c.loss.phiRange } as const;
  const compat = checkCompatibility(gca ? 'gca-hng' : c.train.method, c.loss.base, { samplesPerClass: K, classesPerBatch: P });
  if (!compat.ok) throw new UserError(`method ${c.train.method} with loss ${c.loss.base}: ${compat.reason}`);
  // Loss proxies and a baseline generator's parameters join the state dict (and opt_c) by name.
  const baseLoss = createLoss(c.loss.base, c.loss.options, {
    sd: model.sd,
    numClasses: shape.C,
    embeddingSize: shape.D,
    rng: new Random(c.train.seed, STREAMS.lossProxies),
  });
  const generator = gca
    ? undefined
    : createGenerator(c.train.method, c.method.options, { sd: model.sd, embeddingSize: shape.D, rng: new Random(c.train.seed, STREAMS.generatorInit) });
  const generatorRng = new Random(c.train.seed, STREAMS.generator);
  const opts: Optimizers = createOptimizers(
    model.sd,
    {
      baseLr: c.solver.baseLr,
      embeddingRatio: c.solver.embeddingRatio,
      gnnLr: c.solver.gnnLr,
      classifierLr: c.solver.classifierLr,
      weightDecay: c.solver.weightDecay,
      classifierWeightDecay: c.solver.classifierWeightDecay,
      proxyLrMultiplier: c.solver.proxyLrMultiplier,
    },
    generator,
  );
  const sampler = inp.sampler(c.train.seed);
  const rng = {
    mixing: new Random(c.train.seed, STREAMS.mixing),
    dropout: new Random(c.train.seed, STREAMS.edgeDropout),
    flip: new Random(c.train.seed, STREAMS.augmentationSeeds),
    generator: generatorRng,
  };
  let s: TrainerState = initialState();
  if (inp.resume) s = restoreCheckpoint(inp.runDir, model, opts, sampler, rng);
  const started = Date.now() - s.wallSeconds * 1000;
  const snapshot = (): TrainerState => ({
    ...s,
    sampler: sampler.state(),
    wallSeconds: (Date.now() - started) / 1000,
    rng: Object.fromEntries(Object.entries(rng).map(([k, r]) => [k, r.getState()])),
  });
  const checkpoint = () => saveCheckpoint(inp.runDir, model.sd, opts, snapshot());
  const freezing = freezePlan(inp.backbone, model.sd.trainable([BACKBONE_PREFIX]), c.solver);
  const iterations = c.train.maxIterationsPerEpoch > 0 ? Math.min(c.train.maxIterationsPerEpoch, sampler.batchesPerEpoch()) : sampler.batchesPerEpoch();
  let doneHere = 0;
  // A fixed probe batch for the diagnostics, from its own stream (training is not affected).
  const probe = probeBatch(inp.train.labels, P, K, new Random(c.train.seed, STREAMS.probeBatch));
  const probeMixing = Array.from({ length: K * (K - 1) }, (_, i) => new Random(c.train.seed + i, STREAMS.probeMixing).random());
  // One seed per image drives its augmentation (the paper's crop + flip, a mirrored cached feature, or a flip).
  const augments = c.dataset.flip || backboneSpec(c.model.backbone).augmentsEveryImage;

  try {
    while (s.epoch < c.train.epochs) {
      const e = s.epoch;
      setEpochLearningRates(opts, c, e);
      // Warm-up, and BatchNorm affine parameters under BN_FREEZE: no gradient (requires_grad
      // False), so AdamW skips them entirely.
      const frozen = frozenAt(freezing, e);
      const iterModel: IterationModel = {
        sd: model.sd,
        shape,
        loss: c.loss,
        optC: opts.optC,
        optGnn: opts.optGnn,
        optS: opts.optS,
        frozen,
        variant,
        // The official N-pair J_m is built into the GCA-HNG objective; only other losses replace it.
        baseLoss: baseLoss.name === 'npair' ? undefined : baseLoss,
        clip: c.solver.gradClip ? c.solver.gradClipValue : null,
        embed: (input) => embed(model, input as tf.Tensor4D, true, { frozen }),
      };
      while (s.iterationInEpoch < iterations) {
        if (inp.stopAfterIterations !== undefined && doneHere >= inp.stopAfterIterations)
          return { final: null, best: s.best, wallSeconds: (Date.now() - started) / 1000, completed: false };
        const idx = Array.from(toChunkLayout(sampler.nextBatch(), P, K));
        const augment = augments ? idx.map(() => rng.flip.nextUint32()) : undefined;
        const input = await inp.train.images(idx, augment);
        const labels = idx.map((i) => inp.train.labels[i] as number);
        const nextMixing = inp.mixing ?? (() => rng.mixing.random());
        const draw = () => Array.from({ length: K * (K - 1) }, () => nextMixing());
        const { jAvg, jGen } = s;
        const batch = {
          input,
          labels,
          jAvg,
          jGen,
          mixingMetric: gca ? draw() : [],
          mixingGenerator: gca ? draw() : [],
          dropout: { p: c.loss.edgeDropout, random: () => rng.dropout.random() },
          phi: hardness.kind === 'adaptive' ? epochPhi(hardness, s.jAvg) : undefined,
        };
        const losses: Record<string, number> = generator
          ? baselineIteration(iterModel, batch, generator, baseLoss, rng.generator)
          : { ...trainIteration(iterModel, batch) };
        input.dispose();
        s.sumJm += Math.max(losses.J_m as number, 1e-6);
        s.sumJgen += gca ? Math.max(losses.J_gen as number, 1e-6) : 0;
        s.countJ += 1;
        s.globalStep += 1;
        doneHere += 1;
        appendLog(inp.runDir, {
          type: 'iteration',
          step: s.globalStep,
          epoch: e,
          iteration: s.iterationInEpoch,
          ...losses,
          lr: opts.optC.groups[1]?.lr,
          lr_gnn: opts.optGnn.groups[0]?.lr,
        });
        s.iterationInEpoch += 1;
        const lrs = (o: Optimizers[keyof Optimizers]) => o.groups.map((g) => g.lr);
        inp.onIteration?.({
          epoch: e,
          iteration: s.iterationInEpoch,
          iterations,
          losses,
          jAvg,
          jGen,
          learningRates: { optC: lrs(opts.optC), optGnn: lrs(opts.optGnn), optS: lrs(opts.optS) },
        });
        if (s.globalStep % c.train.checkpointEvery === 0 && s.iterationInEpoch < iterations) await checkpoint();
      }
      // End of epoch: evaluate, then J_avg/J_gen become this epoch's means, then the schedulers step.
      if ((e + 1) % c.train.evalEvery === 0 || e + 1 === c.train.epochs) {
        const diagnose = gca ? { probe, probeMixing, hardness, variant } : undefined;
        await evaluateAtEpochEnd(inp, model, s, e, diagnose);
      }
      s.jAvg = s.countJ > 0 ? s.sumJm / s.countJ : s.jAvg;
      s.jGen = gca && s.countJ > 0 ? s.sumJgen / s.countJ : s.jGen;
      s.sumJm = s.sumJgen = s.countJ = 0;
      s.iterationInEpoch = 0;
      s.epoch = e + 1;
      await checkpoint();
      await inp.onEpochEnd?.({ epoch: e, jAvg: s.jAvg, jGen: s.jGen, sd: model.sd, optimizers: opts });
    }
    await writeWeights(model, join(inp.runDir, RUN_FILES.final));
    const wallSeconds = (Date.now() - started) / 1000;
    // The code that finished the run, so a table built from many runs can name its commits.
    const software = { hardneg: VERSION, ...(sourceCommit() ?? { commit: null, dirty: null }) };
    writeFileAtomic(join(inp.runDir, RUN_FILES.metrics), `${JSON.stringify({ final: s.last, best: s.best, wall_s: wallSeconds, software }, null, 2)}\n`);
    return { final: s.last, best: s.best, wallSeconds, completed: true };
  } finally {
    opts.optC.dispose();
    opts.optGnn.dispose();
    opts.optS.dispose();
    model.sd.dispose();
  }
}

function initialState(): TrainerState {
  return {
    epoch: 0,
    iterationInEpoch: 0,
    globalStep: 0,
    jAvg: J_START,
    jGen: J_START,
    sumJm: 0,
    sumJgen: 0,
    countJ: 0,
    sampler: null,
    rng: {},
    best: null,
    last: null,
    wallSeconds: 0,
  };
}

/** The state of an interrupted run: weights, optimizers, sampler and random streams as checkpointed. */
function restoreCheckpoint(runDir: string, model: MetricModel, opts: Optimizers, sampler: BatchSampler, rng: Record<string, Random>): TrainerState {
  const ckpt = loadCheckpoint<TrainerState>(runDir);
  let s: TrainerState;
  try {
    for (const [name, t] of ckpt.model) model.sd.load(name, t);
    restoreOptimizers(opts, ckpt);
    s = ckpt.state;
    sampler.restore(s.sampler);
    for (const [name, r] of Object.entries(rng)) r.setState(s.rng[name] as { state: string; inc: string });
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${join(runDir, RUN_FILES.checkpoint)} does not fit the run's ${RUN_FILES.config}: ${firstLine(err)}`);
  }
  truncateLog(runDir, s.globalStep);
  return s;
}

/** The metric model's learning rates of epoch e (its policy), and the GNN's cosine. */
function setEpochLearningRates(opts: Optimizers, c: TrainConfig, e: number): void {
  const lrC = (base: number) => metricLr(c.solver.lrPolicy, base, e, c.solver.metricGamma, c.solver.metricDecaySteps);
  opts.optC.setLearningRate(OPT_C_GROUPS.backbone, lrC(c.solver.baseLr));
  opts.optC.setLearningRate(OPT_C_GROUPS.head, lrC(c.solver.baseLr * c.solver.embeddingRatio));
  opts.optC.setLearningRate(OPT_C_GROUPS.proxies, lrC(c.solver.baseLr * c.solver.proxyLrMultiplier));
  opts.optC.setLearningRate(OPT_C_GROUPS.generator, lrC(c.solver.baseLr));
  opts.optGnn.setLearningRate(0, gnnLr(c.solver.gnnLr, e, c.train.epochs));
}

interface Diagnose {
  probe: number[];
  probeMixing: number[];
  hardness: HardnessSchedule;
  variant: GcaVariant | undefined;
}

/**
 * Evaluation at the end of epoch e: metrics on the test split, its embeddings saved, the hardness
 * diagnostics of GCA-HNG on the probe batch, the best weights kept (by Recall@1), one log line.
 */
async function evaluateAtEpochEnd(inp: TrainerInputs, model: MetricModel, s: TrainerState, e: number, diagnose: Diagnose | undefined): Promise<void> {
  const c = inp.config;
  const shape = model.shape;
  const { record: r, embeddings } = await evaluateModel(model, inp.test, e + 1, {
    ks: c.eval.ks,
    semantics: c.eval.semantics,
    nmi: c.eval.nmi,
    seed: c.train.seed,
  });
  s.last = r;
  writeNpy(join(inp.runDir, RUN_FILES.testEmbeddings), { dtype: 'F32', shape: [inp.test.size, shape.D], data: embeddings });
  writeNpy(join(inp.runDir, RUN_FILES.testLabels), { dtype: 'I32', shape: [inp.test.size], data: Int32Array.from(inp.test.labels) });
  if (diagnose) {
    const { probe, probeMixing, hardness, variant } = diagnose;
    const images = await inp.train.images(probe);
    const d = hardnessDiagnostics(model, images, { ...c.loss, alpha: effectiveAlpha(hardness, s.jAvg) }, s.jAvg, s.jGen, probeMixing, variant);
    images.dispose();
    appendLog(inp.runDir, { type: 'diagnostics', step: s.globalStep, epoch: e + 1, ...d });
  }
  if (!s.best || (r.recall['1'] ?? 0) > (s.best.recall['1'] ?? 0)) {
    s.best = r;
    await writeWeights(model, join(inp.runDir, RUN_FILES.best));
  }
  appendLog(inp.runDir, { type: 'evaluation', step: s.globalStep, ...r });
  inp.onEvaluation?.(r);
}

/** P classes with at least K images each (or all classes), K images each, in chunk layout. */
function probeBatch(labels: Int32Array, P: number, K: number, rng: Random): number[] {
  const byClass = new Map<number, number[]>();
  labels.forEach((y, i) => byClass.set(y, [...(byClass.get(y) ?? []), i]));
  const classes = rng.shuffle([...byClass.keys()].sort((a, b) => a - b)).slice(0, P);
  const rows = classes.map((c) => {
    const idx = byClass.get(c) as number[];
    return Array.from({ length: K }, (_, k) => idx[k % idx.length] as number);
  });
  return Array.from({ length: P * K }, (_, i) => (rows[i % P] as number[])[Math.floor(i / P)] as number);
}

async function writeWeights(m: MetricModel, path: string): Promise<void> {
  writeSafetensors(path, await m.sd.toHost());
}
