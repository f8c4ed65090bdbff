// `hardneg features`: a pretrained backbone's eval-mode features of a batch of images already
// transformed, .npy in and .npy out. A thin shell over extractFeatures (src/models/features.ts).
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { initBackend, type BackendName } from '../../engine/backend.ts';
import { readNpy, writeNpy } from '../../io/npy.ts';
import { sameFile } from '../../io/paths.ts';
import { PRETRAINED_BACKBONE_NAMES, pretrainedBackboneSpec } from '../../models/backbones.ts';
import {
  checkImageBatch,
  checkPooling,
  DEFAULT_FEATURE_ENGINE,
  extractFeatures,
  featureBackboneSpec,
  FEATURE_ENGINES,
  type FeatureEngine,
  POOLINGS,
  type Pooling,
} from '../../models/features.ts';
import { nameList } from '../../text.ts';
import { numberFlag } from '../../values.ts';
import { ProgressBar } from '../progress.ts';

const DEFAULT_BATCH = 16;
const DEFAULT_POOLING: Pooling = 'avg';

/** The registry's pretrained backbones with their feature widths. */
const BACKBONE_LIST = nameList(PRETRAINED_BACKBONE_NAMES.map((name) => `${name} (${pretrainedBackboneSpec(name).features} features)`));

const HELP = `usage: hardneg features --backbone NAME --weights FILE --input X.npy --out F.npy
                        [--pooling avg|avg+max] [--batch N] [--engine onnxruntime|tfjs]
                        [--backend NAME] [--json]

Writes a pretrained backbone's features of a batch of images, in evaluation mode (BatchNorm with
its running statistics), as PyTorch's model.eval() gives them. The images must already be
transformed the way the backbone expects (resized, cropped, ImageNet-normalised); nothing is done
to them here.

options:
  --backbone NAME   a backbone with pretrained weights:
                      ${BACKBONE_LIST}
  --weights FILE    a .pth (either torch.save format) or .safetensors file under torchvision's names,
                      or a name of 'hardneg weights list' (resolved in the cache; fetch it first)
  --input X.npy     float32 [N, 3, H, W] (NCHW, as PyTorch)
  --out F.npy       float32 [N, width], written atomically once every image is done; never an input
  --pooling P       after ResNet-50's last block: avg (default: torchvision's global average
                      pooling) or avg+max (average + max pooling, summed: the official RES
                      configurations' MODEL.POOLING, which model.pooling=true trains with);
                      GoogLeNet's pooling is its own (avg only)
  --batch N         images per forward pass (default ${DEFAULT_BATCH}); memory grows with it
  --engine E        what computes the features: onnxruntime (default: the backbone written as an
                      ONNX graph in memory and run in onnxruntime-node, measured faster; tfjs
                      where onnxruntime-node cannot be loaded) or tfjs (hardneg's own kernels,
                      on --backend); the features agree to a relative L2 of 1e-4
  --backend NAME    the computation backend of the tfjs engine (default auto: wasm + native kernels)
  --json            print one JSON object: backbone, weights, pooling, engine, input, output,
                      shape, seconds (and no progress bar)

A progress bar goes to stderr. Bad input (a wrong dtype, rank or channel count, a missing weights
file, an unknown backbone) is one line and exit 2, and leaves --out untouched.
`;

const OPTIONS = {
  backbone: { type: 'string' },
  weights: { type: 'string' },
  input: { type: 'string' },
  out: { type: 'string' },
  pooling: { type: 'string', default: DEFAULT_POOLING },
  batch: { type: 'string', default: String(DEFAULT_BATCH) },
  engine: { type: 'string', default: DEFAULT_FEATURE_ENGINE },
  backend: { type: 'string', default: 'auto' },
  json: { type: 'boolean', default: false },
} as const;

function required(flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new UserError(`needs --${flag}; see 'hardneg features --help'`);
  return value;
}

export const command: Command = {
  summary: "a pretrained backbone's eval-mode features of a batch of transformed images (.npy in, .npy out)",
  help: HELP,
  async run(argv) {
    const { values: v, positionals } = parseFlags({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UserError(`takes no positional argument, got '${positionals[0]}' (the input is --input X.npy)`);
    const backbone = required('backbone', v.backbone);
    const spec = featureBackboneSpec(backbone);
    const weights = required('weights', v.weights);
    const input = required('input', v.input);
    const out = required('out', v.out);
    if (!(POOLINGS as readonly string[]).includes(v.pooling)) throw new UserError(`--pooling ${v.pooling}: expected ${nameList(POOLINGS)}`);
    const pooling = v.pooling as Pooling;
    if (!(FEATURE_ENGINES as readonly string[]).includes(v.engine)) throw new UserError(`--engine ${v.engine}: expected ${nameList(FEATURE_ENGINES)}`);
    const requested = v.engine as FeatureEngine;
    checkPooling(backbone, spec, pooling);
    const batchSize = numberFlag('batch', v.batch, { integer: true, min: 1 });
    for (const [flag, path] of [
      ['input', input],
      ['weights', weights],
    ] as const) {
      if (sameFile(path, out)) throw new UserError(`--out ${out}: that is the --${flag} file; write the features elsewhere`);
    }
    if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`--out ${out}: is a folder, expected a file name`);
    const folder = dirname(out);
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UserError(`--out ${out}: the folder ${folder} does not exist`);
    if (!existsSync(input)) throw new UserError(`--input ${input}: no such file`);
    const x = readNpy(input);
    checkImageBatch(x, input);

    await initBackend(v.backend as BackendName);
    const bar = new ProgressBar(`${backbone} features`, v.json);
    const started = performance.now();
    let engine: FeatureEngine = requested;
    const features = await extractFeatures(backbone, x, {
      weights,
      pooling,
      engine: requested,
      onEngine: (e) => (engine = e),
      batchSize,
      source: input,
      onProgress: (done, total) => bar.update(done, total, 'images'),
    });
    bar.done();
    writeNpy(out, features);
    const seconds = (performance.now() - started) / 1000;
    if (v.json) {
      console.log(JSON.stringify({ backbone, weights, pooling, engine, input, output: out, shape: features.shape, seconds: Number(seconds.toFixed(3)) }));
    } else {
      console.log(`wrote ${backbone} features [${features.shape.join(', ')}] (pooling ${pooling}, ${engine}) of ${input} to ${out} in ${seconds.toFixed(1)} s`);
    }
    return 0;
  },
};
