// `hardneg train`: train a metric model with GCA-HNG, one of its ablations, a baseline generator or
// the base loss alone (`none`) into a run directory.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { GENERATOR_NAMES } from '../../baselines/index.ts';
import { BACKEND_NAMES } from '../../engine/backend.ts';
import { GCA_METHODS } from '../../gca_hng/variants.ts';
import { PAPER_BENCHMARK_NAMES } from '../../data/listing.ts';
import { BACKBONE_NAMES, backbonesTaking } from '../../models/backbones.ts';
import { BASE_LOSSES, parseConfig, type TrainConfig } from '../../train/config.ts';
import { RUN_FILES, isRunDir, readRunConfig } from '../../train/run_dir.ts';
import { beginRun, type RunStart } from '../../train/run_start.ts';
import { resolveConfig } from '../../train/setup.ts';
import { formatEval, helpOption } from '../format.ts';
import { nameList } from '../../text.ts';
import { configSources, trainWithProgress } from '../training.ts';

/** The defaults of every key, for the help. */
const DEFAULTS: TrainConfig = parseConfig({}, 'defaults');

const HELP = `usage: hardneg train --out RUN_DIR [--dataset NAME] [--data-root DIR] [--preset NAME]
                     [--method NAME] [--epochs N] [--seed S] [--backend NAME] [--config FILE.yaml]
                     [--set key=value ...] [--overwrite] [--json] [--quiet]
       hardneg train --resume RUN_DIR [--json] [--quiet]

Trains backbone → BatchNorm1d → Linear embeddings with GCA-HNG hard negatives (or one of its
ablations, a baseline generator, or with --method none the same model and base loss without
generated negatives), evaluating on the test split.
The run directory receives config.json (the resolved configuration), checkpoint.safetensors
(resumable: weights, optimizer state, random streams, position in the epoch; written atomically),
best.safetensors (best Recall@1) and model.safetensors (final weights) under the official
parameter names, log.jsonl (one line per iteration and evaluation) and metrics.json.

options:
${[
  helpOption(
    '--dataset NAME',
    `fashion-mnist (embedded${DEFAULTS.dataset.name === 'fashion-mnist' ? ', default' : ''}), folder (DIR/train/<class>/*, DIR/test/<class>/*), or a benchmark as distributed (see the README): ${nameList(PAPER_BENCHMARK_NAMES)}`,
  ),
  helpOption('--data-root DIR', 'the directory of the folder dataset or of a benchmark'),
  helpOption(
    '--method NAME',
    `${nameList(GCA_METHODS.slice(0, 1), { defaultName: DEFAULTS.train.method })}; its ablations ${nameList(GCA_METHODS.slice(1), { conjunction: 'and' })} (docs/ablations.md); none (the base loss alone); or a baseline generator: ${nameList(GENERATOR_NAMES.filter((n) => n !== 'none'))} (docs/losses_and_baselines.md)`,
  ),
  helpOption('--epochs N', `training epochs (default ${DEFAULTS.train.epochs})`),
  helpOption('--seed S', `seed of every random stream (initialisation, sampler, mixing, dropout, flips; default ${DEFAULTS.train.seed})`),
  helpOption('--backend NAME', nameList(BACKEND_NAMES, { defaultName: DEFAULTS.backend })),
  helpOption(
    '--preset NAME',
    `one of the 12 official configurations: g-, res-, dino- × ${PAPER_BENCHMARK_NAMES.join(', ')} (configs/presets/); --config and --set apply on top`,
  ),
  helpOption('--config FILE.yaml', 'configuration file (keys as in config.json; unknown keys are refused)'),
  helpOption(
    '--set key=value',
    `override one key, e.g. --set loss.alpha=2 --set train.classesPerBatch=8; loss.base: ${nameList(BASE_LOSSES, { defaultName: DEFAULTS.loss.base })}; model.backbone: ${nameList(
      BACKBONE_NAMES,
      { defaultName: DEFAULTS.model.backbone },
    )} (docs/backbones.md); model.frozen=true (default ${DEFAULTS.model.frozen}): features of ${nameList(backbonesTaking(['paper-pipeline']))} with model.weights extracted once in eval mode and cached in model.featureCache, only the head and GCA-HNG train (onnx is always frozen)`,
  ),
  helpOption('--out RUN_DIR', 'where to write the run (refused if it holds a run, unless --overwrite)'),
  helpOption('--overwrite', 'replace the run in --out'),
  helpOption('--resume RUN_DIR', 'continue an interrupted run exactly where its last checkpoint left it'),
  helpOption('--json', "print metrics.json's content at the end"),
  helpOption('--quiet', 'no progress bar'),
].join('\n')}`;

/** The flags that set the configuration: refused with --resume, which uses the saved one. */
const CONFIG_FLAGS = ['dataset', 'data-root', 'method', 'preset', 'epochs', 'seed', 'config', 'set', 'backend', 'overwrite'] as const;

export const command: Command = {
  summary: 'train GCA-HNG (an ablation, a baseline or none) into a resumable run directory',
  help: HELP,
  async run(argv) {
    const { values: v } = parseFlags({
      args: argv,
      options: {
        dataset: { type: 'string' },
        'data-root': { type: 'string' },
        method: { type: 'string' },
        preset: { type: 'string' },
        epochs: { type: 'string' },
        seed: { type: 'string' },
        config: { type: 'string' },
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        resume: { type: 'string' },
        overwrite: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        backend: { type: 'string' },
      },
      strict: true,
    });
    let runDir: string;
    let config: TrainConfig;
    let start: RunStart | undefined;
    if (v.resume) {
      runDir = v.resume;
      if (v.out && v.out !== v.resume) throw new UserError('--resume continues the run in place; drop --out (or give the same directory)');
      if (!isRunDir(runDir)) throw new UserError(`--resume ${runDir}: not a run directory (no ${RUN_FILES.config})`);
      if (!existsSync(join(runDir, RUN_FILES.checkpoint))) throw new UserError(`--resume ${runDir}: no checkpoint yet; start the run again with --overwrite`);
      const given = CONFIG_FLAGS.filter((f) => v[f] !== undefined && v[f] !== false);
      if (given.length > 0)
        throw new UserError(`--resume uses the run's saved configuration; ${given.map((f) => `--${f}`).join(', ')} cannot be combined with it`);
      config = readRunConfig(runDir);
    } else {
      if (!v.out) throw new UserError('--out RUN_DIR is required (or --resume RUN_DIR)');
      runDir = v.out;
      config = resolveConfig(configSources(v));
      start = beginRun(runDir, config, { overwrite: v.overwrite });
      if (start.replacing && !v.quiet && !v.json) process.stderr.write(`replacing the run in ${runDir} (kept aside until the new run has started)\n`);
    }
    const result = await trainWithProgress(config, runDir, Boolean(v.resume), v.quiet || v.json, start);
    const metrics = { final: result.final, best: result.best, wall_s: result.wallSeconds };
    if (v.json) console.log(JSON.stringify(metrics));
    else
      console.log(
        `run finished in ${result.wallSeconds.toFixed(1)} s: ${runDir}\n  final ${result.final ? formatEval(result.final) : '-'}\n  best  ${result.best ? formatEval(result.best) : '-'}`,
      );
    return 0;
  },
};
