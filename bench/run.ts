// `npm run bench -- [--case NAME ...] [--runs N] [--rounds R] [--threads N] [--batch N] [--chunk N] [--backend NAME] [--json]`:
// long measurements, never part of `npm test`. Prints one line per case; with --json one object
// per line: {"case", "median_ms", "min_ms", "runs", "peak_rss_mb", ...}.
//
// Cases:
//   iteration-{small,cub,sop}          one GCA-HNG training iteration (bench/iteration.ts)
//   iteration-{small,cub,sop}-pytorch  the same iteration in PyTorch (bench/pytorch_iteration.py;
//                                      needs Debian's python3-torch, reported as skipped without it)
//   evaluate-100k                      Recall@1,2,4,8 + MAP@R of 100,000 × 512 embeddings (bench/evaluate.ts)
//   pipeline                           training image pipeline, images/s (bench/pipeline.ts)
//   search-100k                        search index of 100,000 × 128 vectors: build seconds, ANN
//                                      recall@10, latency at concurrency 1 and 32 in process and over
//                                      HTTP (serve --index), memory and LanceDB engines (bench/search.ts)
//   finetune-{resnet50,googlenet,dino-vits16}
//                                      one fine-tuning step of the backbone + embedding head at --batch N
//                                      images of 224 px (default 16; bench/finetune.ts), followed by
//   finetune-*-pytorch                 the same step in PyTorch (bench/pytorch_finetune.py, and
//                                      bench/pytorch_finetune_vit.py for DINO)
//   features-{resnet50,googlenet}      frozen-feature extraction (inference only) of --images N images of
//                                      224 px (default 32; bench/features.ts): hardneg's own backbone on
//                                      tfjs, the same with HARDNEG_DNNL=1, BackboneFeatureModel's default
//                                      engine (onnxruntime on its own ONNX export), and the torchvision
//                                      twin in onnxruntime-node (bench/export_features_onnx.py makes it;
//                                      skipped without it)
//
// Every case runs in a process of its own, so its peak RSS is its own (the wasm heap never
// shrinks). --threads sets the thread count of both sides: our native kernels (HARDNEG_THREADS)
// and PyTorch (torch.set_num_threads, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS). --rounds R repeats
// the whole list R times, alternating the cases, and reports the median of the round medians:
// on a shared machine this compares ours and PyTorch's under the same background load.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, type BackendName } from '../src/engine/backend.ts';
import { nativeStatus } from '../src/engine/native_kernels.ts';
import { benchEvaluate } from './evaluate.ts';
import {
  benchFeatures,
  FEATURES_ARMS,
  FEATURES_BATCH,
  FEATURES_CASES,
  FEATURES_DEFAULT_IMAGES,
  FEATURES_EXPORT_HINT,
  type FeaturesArm,
  featuresFiles,
} from './features.ts';
import { DEFAULT_BACKBONE_CHUNK } from '../src/nn/chunked_backbone.ts';
import { benchFinetune, FINETUNE_CASES, FINETUNE_DEFAULT_BATCH, FINETUNE_PYTORCH_CASES, pytorchFinetuneArgs } from './finetune.ts';
import { benchIteration, ITERATION_SHAPES } from './iteration.ts';
import { benchPipeline } from './pipeline.ts';
import { benchSearchCase } from './search.ts';
import { median, type BenchResult } from './timing.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';

type Result = BenchResult & { [extra: string]: unknown };

/** Cases measured in this process (the child side). */
const LOCAL: Record<string, (runs: number) => Promise<Result>> = {
  'evaluate-100k': async (runs) => ({ ...(await benchEvaluate({ runs })) }),
  // The training image pipeline (bench/pipeline.ts): images/s of the paper's train transform.
  pipeline: async (runs) => ({ ...(await benchPipeline({ runs })) }),
  // One measurement per run of the case: building two 100k indexes is the long part.
  'search-100k': async () => ({ ...(await benchSearchCase()) }),
};
for (const name of Object.keys(ITERATION_SHAPES)) LOCAL[`iteration-${name}`] = async (runs) => ({ ...(await benchIteration(name, runs)) });
for (const name of FINETUNE_CASES) LOCAL[name] = async (runs) => ({ ...(await benchFinetune(name.replace(/^finetune-/, ''), batch, runs, chunk)) });

const PYTORCH_CASES = [...Object.keys(ITERATION_SHAPES).map((name) => `iteration-${name}-pytorch`), ...FINETUNE_PYTORCH_CASES];
const CASES = [
  ...Object.keys(ITERATION_SHAPES).flatMap((name) => [`iteration-${name}`, `iteration-${name}-pytorch`]),
  'evaluate-100k',
  'pipeline',
  'search-100k',
  ...FINETUNE_CASES.flatMap((name) => [name, `${name}-pytorch`]),
  ...FEATURES_CASES,
];

const USAGE = `usage: npm run bench -- [--case NAME ...] [--runs N] [--rounds R] [--threads N] [--backend NAME] [--json]

Long measurements, each case in a process of its own (never part of npm test).
  --case NAME    one of: ${CASES.join(', ')}
                 (repeatable; default: all)
  --runs N       timed runs per case and round (default 3; iterations after one untimed warm-up)
  --rounds R     repeat the whole list R times, alternating the cases; report the median of the
                 round medians (default 1)
  --threads N    threads of our native kernels and of PyTorch (default: all cores)
  --batch N      images per fine-tuning step of the finetune-* cases (default ${FINETUNE_DEFAULT_BATCH})
  --images N     images whose features the features-* cases extract, ${FEATURES_BATCH} per forward (default ${FEATURES_DEFAULT_IMAGES})
  --chunk N      a larger batch goes through ResNet-50/GoogLeNet in chunks of at most N images, its
                 gradient summed over them (model.backboneChunk; default ${DEFAULT_BACKBONE_CHUNK})
  --backend NAME TensorFlow.js backend for our cases (default auto)
  --json         one JSON object per case and line: {"case", "median_ms", "min_ms", "runs", "peak_rss_mb", ...}
A finetune-* case also runs its PyTorch twin, side by side, when PyTorch is available; a features-*
case prints one object {case, batch, hardneg_ms_per_image, hardneg_dnnl_ms_per_image,
onnxruntime_ms_per_image, ratio} (ratio: hardneg's ms per image over onnxruntime's).`;

function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        help: { type: 'boolean', default: false },
        case: { type: 'string', multiple: true },
        runs: { type: 'string', default: '3' },
        rounds: { type: 'string', default: '1' },
        threads: { type: 'string', default: String(availableParallelism()) },
        batch: { type: 'string', default: String(FINETUNE_DEFAULT_BATCH) },
        images: { type: 'string', default: String(FEATURES_DEFAULT_IMAGES) },
        arm: { type: 'string', default: 'hardneg' },
        chunk: { type: 'string', default: String(DEFAULT_BACKBONE_CHUNK) },
        json: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'auto' },
        child: { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const { values } = parseCommandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const runs = Number(values.runs);
const rounds = Number(values.rounds);
const threads = Number(values.threads);
const batch = Number(values.batch);
const images = Number(values.images);
const chunk = Number(values.chunk);
for (const [flag, v] of [
  ['--images', images],
  ['--runs', runs],
  ['--rounds', rounds],
  ['--threads', threads],
  ['--batch', batch],
  ['--chunk', chunk],
] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`${flag} must be a positive integer`);
    process.exit(2);
  }
}
// A fine-tuning case brings its PyTorch twin along, measured in the same run.
const selected = (values.case ?? CASES).flatMap((c) =>
  FINETUNE_CASES.includes(c) && !values.child && !values.case?.includes(`${c}-pytorch`) ? [c, `${c}-pytorch`] : [c],
);
const unknown = selected.filter((c) => !CASES.includes(c));
if (unknown.length > 0) {
  console.error(`unknown case '${unknown[0]}'; cases: ${CASES.join(', ')}`);
  process.exit(2);
}

if (values.child) {
  // One case, measured here; the parent reads the JSON line.
  const backend = await initBackend(values.backend as BackendName);
  const native = nativeStatus();
  const name = selected[0] as string;
  const r: Result = FEATURES_CASES.includes(name)
    ? {
        ...(await benchFeatures(values.arm as FeaturesArm, name.replace(/^features-/, ''), images, runs, here, threads)),
        dnnl: native.dnnl.active,
      }
    : await (LOCAL[name] as (runs: number) => Promise<Result>)(runs);
  // The process's high-water mark, as PyTorch's side reports it (ru_maxrss), not a sampled one.
  const peak = Math.max(r.peak_rss_mb, Math.round(process.resourceUsage().maxRSS / 1024));
  console.log(JSON.stringify({ ...r, peak_rss_mb: peak, backend, native: native.active, threads: native.active ? native.threads : 1 }));
  process.exit(0);
}

function torchAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

function runChild(name: string, arm: FeaturesArm = 'hardneg'): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, HARDNEG_THREADS: String(threads), OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  // The features-* arms: oneDNN only where asked for, whatever the caller's environment says.
  if (FEATURES_CASES.includes(name)) env.HARDNEG_DNNL = arm === 'dnnl' ? '1' : '0';
  const pytorch = PYTORCH_CASES.includes(name);
  const cmd = FINETUNE_PYTORCH_CASES.includes(name)
    ? [PYTHON, ...pytorchFinetuneArgs(here, name, batch, runs, threads)]
    : pytorch
      ? [
          PYTHON,
          join(here, 'pytorch_iteration.py'),
          '--shape',
          name.replace(/^iteration-|-pytorch$/g, ''),
          '--runs',
          String(runs),
          '--threads',
          String(threads),
        ]
      : [
          process.execPath,
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          '--child',
          '--case',
          name,
          '--runs',
          String(runs),
          '--backend',
          String(values.backend),
          '--batch',
          String(batch),
          '--images',
          String(images),
          '--arm',
          arm,
          '--threads',
          String(threads),
          '--chunk',
          String(chunk),
        ];
  const r = spawnSync(cmd[0] as string, cmd.slice(1), { env, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || !line) throw new Error(`bench case ${name} failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(line) as Result;
}

const hasTorch = selected.some((c) => PYTORCH_CASES.includes(c)) && torchAvailable();
const results = new Map<string, Result[]>();
/** Per features-* case and arm: why it has no result (skipped, or its process failed). */
const featureNotes = new Map<string, string>();
for (let round = 0; round < rounds; round++) {
  for (const name of selected) {
    if (PYTORCH_CASES.includes(name) && !hasTorch) continue;
    if (FEATURES_CASES.includes(name)) {
      for (const arm of FEATURES_ARMS) {
        const key = `${name}:${arm}`;
        const onnx = featuresFiles(here, name.replace(/^features-/, '')).onnx;
        if (arm === 'onnxruntime' && !existsSync(onnx)) {
          featureNotes.set(key, `skipped: ${onnx} is missing; make it with ${FEATURES_EXPORT_HINT}`);
          continue;
        }
        // One arm failing (oneDNN is experimental) leaves the others' numbers standing.
        try {
          results.set(key, [...(results.get(key) ?? []), runChild(name, arm)]);
        } catch (err) {
          featureNotes.set(key, `failed: ${(err as Error).message}`);
        }
      }
      continue;
    }
    results.set(name, [...(results.get(name) ?? []), runChild(name)]);
  }
}

/** Median over the rounds of one features-* arm's ms per image, or null without a result. */
function featureArm(name: string, arm: FeaturesArm): { ms: number; r: Result } | null {
  const rs = results.get(`${name}:${arm}`);
  if (!rs || rs.length === 0) return null;
  return { ms: Math.round(median(rs.map((x) => Number(x.ms_per_image))) * 100) / 100, r: rs[rs.length - 1] as Result };
}

for (const name of selected.filter((c) => FEATURES_CASES.includes(c))) {
  const [ours, dnnl, dflt, ort] = FEATURES_ARMS.map((arm) => featureArm(name, arm));
  // Same weights on both sides (the exported .pth): the feature sums should agree to float32 rounding.
  const shared = ours && ort && ours.r.weights === 'exported';
  const line = {
    case: name,
    batch: FEATURES_BATCH,
    images,
    hardneg_ms_per_image: ours?.ms ?? null,
    hardneg_dnnl_ms_per_image: dnnl && dnnl.r.dnnl === true ? dnnl.ms : null,
    /** What `hardneg features` and model.frozen run by default, and which engine that was. */
    default_ms_per_image: dflt?.ms ?? null,
    default_engine: dflt?.r.engine ?? null,
    onnxruntime_ms_per_image: ort?.ms ?? null,
    ratio: ours && ort ? Math.round((ours.ms / ort.ms) * 100) / 100 : null,
    ratio_default: dflt && ort ? Math.round((dflt.ms / ort.ms) * 100) / 100 : null,
    ratio_dnnl: dnnl && ort && dnnl.r.dnnl === true ? Math.round((dnnl.ms / ort.ms) * 100) / 100 : null,
    features_abs_sum_rel_diff: shared ? Number((Math.abs(Number(ours.r.abs_sum) - Number(ort.r.abs_sum)) / Number(ort.r.abs_sum)).toExponential(2)) : null,
    // The default engine's features against the torchvision twin's (same weights when exported).
    features_abs_sum_rel_diff_default:
      dflt && ort && dflt.r.weights === 'exported'
        ? Number((Math.abs(Number(dflt.r.abs_sum) - Number(ort.r.abs_sum)) / Number(ort.r.abs_sum)).toExponential(2))
        : null,
    weights: ours?.r.weights ?? null,
    backend: ours?.r.backend ?? null,
    threads,
    runs,
    rounds,
    notes: [
      ...FEATURES_ARMS.flatMap((arm) => {
        const note = featureNotes.get(`${name}:${arm}`);
        return note ? [`${arm}: ${note}`] : [];
      }),
      ...(dnnl && dnnl.r.dnnl !== true ? ['dnnl: the addon has no oneDNN convolutions here (HARDNEG_DNNL=1 changed nothing)'] : []),
    ],
  };
  if (values.json) console.log(JSON.stringify(line));
  else {
    const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);
    console.log(
      `${name.padEnd(24)} per image: hardneg tfjs ${ms(line.hardneg_ms_per_image)}  hardneg+oneDNN ${ms(line.hardneg_dnnl_ms_per_image)}  default (${line.default_engine ?? '-'}) ${ms(line.default_ms_per_image)}  onnxruntime ${ms(line.onnxruntime_ms_per_image)}  ratio ${line.ratio ?? '-'}  (${images} images, ${FEATURES_BATCH} per forward, ${threads} threads)${line.notes.length ? `\n  ${line.notes.join('\n  ')}` : ''}`,
    );
  }
}

const summary = new Map<string, Result>();
for (const name of selected.filter((c) => !FEATURES_CASES.includes(c))) {
  const rs = results.get(name);
  if (!rs) {
    const skipped = { case: name, skipped: `PyTorch not available (${PYTHON} cannot import torch; Debian: apt-get install python3-torch)` };
    console.log(values.json ? JSON.stringify(skipped) : `${name.padEnd(24)} skipped: ${skipped.skipped}`);
    continue;
  }
  const r: Result = {
    ...(rs[rs.length - 1] as Result),
    case: name,
    median_ms: Math.round(median(rs.map((x) => x.median_ms)) * 10) / 10,
    min_ms: Math.min(...rs.map((x) => x.min_ms)),
    runs: rs.reduce((a, x) => a + x.runs, 0),
    peak_rss_mb: Math.max(...rs.map((x) => x.peak_rss_mb)),
    rounds,
  };
  summary.set(name, r);
  if (values.json) {
    console.log(JSON.stringify(r));
  } else {
    const extra = Object.entries(r)
      .filter(([k]) => !['case', 'median_ms', 'min_ms', 'runs', 'peak_rss_mb', 'rounds', 'losses'].includes(k))
      .map(([k, v]) => `${k} ${String(v).split(' ')[0]}`)
      .join('  ');
    console.log(
      `${name.padEnd(24)} median ${r.median_ms.toFixed(1)} ms  min ${r.min_ms.toFixed(1)} ms  runs ${r.runs}  peak RSS ${r.peak_rss_mb} MB  ${extra}`,
    );
  }
}

// Ours against PyTorch where both were measured in this run.
for (const name of [...Object.keys(ITERATION_SHAPES).map((n) => `iteration-${n}`), ...FINETUNE_CASES]) {
  const ours = summary.get(name);
  const theirs = summary.get(`${name}-pytorch`);
  if (!ours || !theirs) continue;
  const ratio = {
    case: `${name} vs pytorch`,
    time_ratio: Math.round((ours.median_ms / theirs.median_ms) * 100) / 100,
    rss_ratio: Math.round((ours.peak_rss_mb / theirs.peak_rss_mb) * 100) / 100,
    threads,
  };
  console.log(values.json ? JSON.stringify(ratio) : `${ratio.case.padEnd(24)} time ×${ratio.time_ratio}  peak RSS ×${ratio.rss_ratio}  (${threads} threads)`);
}
