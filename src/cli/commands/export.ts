// `hardneg export`: a run's whole image → embedding model as ONNX (src/export/export_model.ts).
import { existsSync, statSync } from 'node:fs';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { helpOption } from '../format.ts';
import { UserError } from '../../errors.ts';
import { writeFileAtomic } from '../../io/atomic_write.ts';
import { sameFile } from '../../io/paths.ts';
import { numberFlag } from '../../values.ts';
import { isRunDir } from '../../train/run_dir.ts';
import { loadEmbedder } from '../../inference/embedder.ts';
import { DEFAULT_OPSET, exportOnnx, MAX_OPSET, MIN_OPSET } from '../../export/export_model.ts';
import { outputFolder } from '../../inference/embed_job.ts';

const HELP = `usage: hardneg export RUN_DIR --out model.onnx [--weights final|best] [--opset N] [--json]

The run's whole image → embedding model as one ONNX file: input float32 [n, C, H, W] (NCHW,
dynamic batch), normalised as the run evaluates; output [n, D], the numbers of 'hardneg embed
--input'. The preprocessing (resize policy, resize, crop, mean, std) is in the model's
metadata_props (docs/deploy.md). Small-CNN, ResNet-50, GoogLeNet and DINO ViT-S/16 runs are
written op by op for the run's fixed evaluation size (224 px for the pretrained backbones; DINO's
position embedding is resized to it once); a frozen-feature run's ONNX backbone (model.onnx) is
composed with the trained head, and the exported model takes what that backbone takes.

${[
  helpOption('RUN_DIR', 'a run directory of hardneg train'),
  helpOption('--out FILE', 'the .onnx file to write (atomically, replacing an earlier file)'),
  helpOption('--weights W', 'final (model.safetensors, default) or best (best.safetensors)'),
  helpOption('--opset N', `ONNX opset, ${MIN_OPSET} to ${MAX_OPSET} (default ${DEFAULT_OPSET}; frozen-feature mode keeps the backbone's own)`),
  helpOption('--json', 'print one JSON summary line'),
].join('\n')}`;

export const command: Command = {
  summary: "a run's image → embedding model as ONNX",
  help: HELP,
  async run(argv) {
    const { values: v, positionals } = parseFlags({
      args: argv,
      options: {
        out: { type: 'string' },
        weights: { type: 'string', default: 'final' },
        opset: { type: 'string' },
        backend: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length !== 1)
      throw new UserError(positionals.length === 0 ? 'needs RUN_DIR (a run directory of hardneg train)' : `unexpected argument '${positionals[1]}'`);
    const runDir = positionals[0] as string;
    if (!isRunDir(runDir)) throw new UserError(`${runDir}: not a run directory (expected config.json and the files of hardneg train)`);
    if (v.out === undefined) throw new UserError('--out model.onnx is required');
    const out = v.out;
    if (v.weights !== 'final' && v.weights !== 'best') throw new UserError(`--weights ${v.weights}: expected final or best`);
    const opset = v.opset === undefined ? undefined : numberFlag('opset', v.opset, { integer: true, min: MIN_OPSET, max: MAX_OPSET });
    if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`--out ${out}: is a folder, expected a file name`);
    if (!existsSync(outputFolder(out))) throw new UserError(`--out ${out}: folder ${outputFolder(out)} does not exist`);
    const embedder = await loadEmbedder(runDir, { weights: v.weights, backend: v.backend });
    try {
      const onnx = embedder.config.model.onnx;
      if (onnx && existsSync(onnx) && sameFile(onnx, out))
        throw new UserError(`--out ${out}: that is the run's frozen backbone (model.onnx); write the export elsewhere`);
      const r = exportOnnx(embedder, { opset });
      writeFileAtomic(out, r.bytes);
      const summary = {
        out,
        bytes: r.bytes.byteLength,
        opset: r.opset,
        input: r.inputName,
        inputShape: ['n', ...r.inputShape],
        output: r.outputName,
        dim: embedder.dim,
      };
      console.log(
        v.json
          ? JSON.stringify(summary)
          : `wrote ${out} (${(r.bytes.byteLength / 1e6).toFixed(2)} MB, opset ${r.opset}): '${r.inputName}' [${summary.inputShape.join(', ')}] → '${r.outputName}' [n, ${embedder.dim}]`,
      );
      return 0;
    } finally {
      embedder.dispose();
    }
  },
};
