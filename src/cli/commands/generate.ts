// `hardneg generate`: the synthetic hard negatives of one batch from a trained GNN (eval mode).
import { parseFlags } from '../args.ts';
import { sameFile } from '../../io/paths.ts';
import { numberFlag } from '../../values.ts';
import * as tf from '@tensorflow/tfjs';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { initBackend, type BackendName } from '../../engine/backend.ts';
import { Random, STREAMS } from '../../engine/random.ts';
import { readNpy, writeNpy } from '../../io/npy.ts';
import { readSafetensors } from '../../io/safetensors.ts';
import { toNumbers } from '../../io/host_tensor.ts';
import { StateDict } from '../../models/state_dict.ts';
import { generatorDims } from '../../models/checkpoint_shape.ts';
import { inferChunkLayout } from '../../samplers/chunk_layout.ts';
import { hardnessFactor } from '../../gca_hng/hard_negatives.ts';
import { runGenerator } from '../../gca_hng/generator.ts';

const HELP = `usage: hardneg generate --checkpoint CKPT.safetensors --embeddings Z.npy --labels Y.npy
                        --heads H --alpha A --j-avg J [--random R.npy | --seed S] --out NEG.npy [--json]

Writes the synthetic hard negatives of one batch: the first output of the generation step, with
the GNN in evaluation mode (BatchNorm running statistics, no dropout).
  --checkpoint   safetensors with the official names gnn.* (a GCA-HNG checkpoint)
  --embeddings   float32 .npy [B, D], rows in the P×K chunk layout (row k·P + p = k-th sample of slot p)
  --labels       integer .npy [B] in the same layout: labels[i] = labels[i mod P], P distinct classes
  --heads        node-attention heads H of the checkpoint's GNN (D must be divisible by H)
  --alpha        LOSS.ALPHA; hardness factor exp(−alpha / j-avg)
  --j-avg        the average metric loss J_avg (1e6 at the start of training)
  --random       .npy with the K(K−1) mixing uniforms (default: drawn from --seed, default 0)
  --out          output .npy [K·P·P, D]: row k·P² + a·P + n is the negative for anchor (k, a) from slot n
  --json         print a JSON summary`;

function required(flag: string, v: string | undefined): string {
  if (v === undefined) throw new UserError(`--${flag} is required`);
  return v;
}

/** The first value that is NaN or ±Inf, as a message, or null. */
function nonFinite(values: ArrayLike<number | bigint>, what: string): string | null {
  for (let i = 0; i < values.length; i++) {
    const x = Number(values[i]);
    if (!Number.isFinite(x)) return `${what} holds ${x} at flat index ${i}: expected finite numbers`;
  }
  return null;
}

export const command: Command = {
  summary: 'write the synthetic hard negatives of one batch from a GCA-HNG checkpoint',
  help: HELP,
  async run(argv) {
    const { values: v } = parseFlags({
      args: argv,
      options: {
        checkpoint: { type: 'string' },
        embeddings: { type: 'string' },
        labels: { type: 'string' },
        heads: { type: 'string' },
        alpha: { type: 'string' },
        'j-avg': { type: 'string' },
        random: { type: 'string' },
        seed: { type: 'string', default: '0' },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'auto' },
      },
      strict: true,
    });
    for (const f of ['checkpoint', 'embeddings', 'labels', 'out'] as const) if (!v[f]) throw new UserError(`--${f} is required`);
    const H = numberFlag('heads', required('heads', v.heads), { integer: true, min: 1 });
    // φ = exp(−α/J_avg) must stay in (0, 1]: α ≥ 0 and J_avg > 0.
    const alpha = numberFlag('alpha', required('alpha', v.alpha), { min: 0 });
    const jAvg = numberFlag('j-avg', required('j-avg', v['j-avg']), { min: Number.MIN_VALUE });
    const inputs = [v.checkpoint, v.embeddings, v.labels, v.random].filter((p): p is string => p !== undefined);
    const clash = inputs.find((p) => sameFile(p, v.out as string));
    if (clash) throw new UserError(`--out ${v.out}: that is an input of this command (${clash}); write the negatives elsewhere`);

    const ckptPath = v.checkpoint as string;
    const tensors = readSafetensors(ckptPath).tensors;
    let dims;
    try {
      dims = generatorDims(tensors, ckptPath);
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    const z = readNpy(v.embeddings as string);
    if (z.shape.length !== 2 || (z.dtype !== 'F32' && z.dtype !== 'F64')) {
      throw new UserError(`${v.embeddings}: expected a float array [B, D], got ${z.dtype} [${z.shape.join(', ')}]`);
    }
    const [B, D] = z.shape as [number, number];
    const badZ = nonFinite(z.data as Float32Array, v.embeddings as string);
    if (badZ) throw new UserError(badZ);
    if (D !== dims.D) throw new UserError(`${v.embeddings}: embedding width ${D} does not match the checkpoint's D=${dims.D} (${ckptPath})`);
    if (D % H !== 0) throw new UserError(`--heads ${H}: D=${D} is not divisible by it`);
    const y = readNpy(v.labels as string);
    const labels = toNumbers(y);
    if (y.shape.length !== 1 || labels.length !== B || !labels.every(Number.isInteger)) {
      throw new UserError(`${v.labels}: expected ${B} integer labels (one per embedding row), got ${y.dtype} [${y.shape.join(', ')}]`);
    }
    let layout;
    try {
      layout = inferChunkLayout(labels);
    } catch (err) {
      throw new UserError(`${v.labels}: ${(err as Error).message}`);
    }
    const { P, K } = layout;
    let mixing: number[];
    if (v.random) {
      mixing = toNumbers(readNpy(v.random));
      if (mixing.length !== K * (K - 1)) throw new UserError(`${v.random}: expected K(K−1) = ${K * (K - 1)} mixing values for K=${K}, got ${mixing.length}`);
      const outside = mixing.findIndex((u) => !(u >= 0 && u < 1));
      if (outside >= 0) throw new UserError(`${v.random}: value ${mixing[outside]} at index ${outside} is outside [0, 1); the mixing values are uniform draws`);
    } else {
      const seed = numberFlag('seed', v.seed, { integer: true, min: 0 });
      const rng = new Random(seed, STREAMS.generateMixing);
      mixing = Array.from({ length: K * (K - 1) }, () => rng.random());
    }
    const backend = await initBackend(v.backend as BackendName);
    const sd = StateDict.fromHost(new Map([...tensors].filter(([n]) => n.startsWith('gnn.'))));
    try {
      const neg = tf.tidy(() => {
        const zt = tf.tensor2d(Float32Array.from(z.data as Float32Array), [B, D]);
        return runGenerator({ sd, shape: { P, K, D, H, L: dims.L, C: dims.C }, nodes: zt, phi: hardnessFactor(alpha, jAvg), mixing }).negatives;
      });
      const data = neg.dataSync() as Float32Array;
      writeNpy(v.out as string, { dtype: 'F32', shape: [K * P * P, D], data: Float32Array.from(data) });
      neg.dispose();
      const summary = { out: v.out, P, K, D, L: dims.L, H, rows: K * P * P, phi: hardnessFactor(alpha, jAvg), backend };
      console.log(
        v.json
          ? JSON.stringify(summary)
          : `wrote ${summary.rows} hard negatives [${summary.rows}, ${D}] to ${v.out} (P=${P}, K=${K}, φ=${summary.phi.toPrecision(4)})`,
      );
      return 0;
    } finally {
      sd.dispose();
    }
  },
};
