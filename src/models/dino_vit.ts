// DINO's ViT-S/16 (facebookresearch/dino, vision_transformer.py `vit_small`, patch 16) as a Backbone
// (docs/backbones.md): 16×16 stride-16 patch embedding, a CLS token, a learned position embedding
// (bicubically resized for inputs other than 224 px, as DINO's interpolate_pos_encoding), 12
// pre-norm blocks (LayerNorm eps 1e-6 → qkv with bias → 6 heads of 64, softmax attention → proj,
// residual; LayerNorm → fc1 384→1536 → exact GELU → fc2, residual), the final LayerNorm, and the
// CLS token as the 384-d feature. No dropout or drop-path (DINO's defaults for vit_small are 0).
//
// Parameters: DINO's names under 'feature_extractor.backbone.' (the official Feature_Extractor
// holds the torch.hub model itself as `backbone`; its head is Identity, so it has none).
// The patch convolution is a reshape of the NHWC image into patch rows and one matrix product,
// which runs on the native matmul kernel. Each block runs as a gradient checkpoint in training
// (only its input is kept; it is recomputed in the backward pass), which is what lets the
// official batch of 81 images fit the wasm heap (docs/backbones.md has the numbers).
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import { nativeKernelsActive } from '../engine/native_kernels.ts';
import { checkpoint, lazyGradOp, segment } from '../nn/checkpoint.ts';
import { gelu, layerNormEps1e6 } from '../nn/fused.ts';
import { linear } from '../nn/linear.ts';
import type { StateDict } from './state_dict.ts';
import type { OnnxExportContext, OnnxGraph } from '../export/onnx_graph.ts';
import { gelu as onnxGelu, layerNorm as onnxLayerNorm, linear as onnxLinear } from '../export/onnx_layers.ts';
import type { ParameterShapes, TorchvisionBackbone } from './torchvision.ts';

export const DINO_PREFIX = 'feature_extractor.backbone.';
export const DINO_VITS16_FEATURES = 384;
const WIDTH = DINO_VITS16_FEATURES;
const DEPTH = 12;
const HEADS = 6;
const HEAD_DIM = WIDTH / HEADS;
const MLP_WIDTH = 4 * WIDTH;
const PATCH = 16;
/** The position embedding's grid: 224 px / 16. */
const GRID = 14;
// head_dim^-0.5 = 1/8 is a power of two, so scaling q before q·kᵀ gives the same floats as scaling
// the [T, T] scores after it (PyTorch's order), on a tensor T/64 times smaller.
const ATTENTION_SCALE = HEAD_DIM ** -0.5;

/**
 * How a training forward keeps what the backward pass needs, per block:
 *  - 'checkpoint': only the block's input; the block is recomputed in the backward pass (one more
 *    forward, ~12 × n × 197 × 384 floats kept in all);
 *  - 'segment': every activation, gradients freed block by block (faster, ~0.3 GB per image at 224 px).
 */
export type BlockMemory = 'checkpoint' | 'segment';

export interface DinoVitOptions {
  /** Default: 'checkpoint' from 16 images on, 'segment' below. */
  blockMemory?: BlockMemory;
}

const BLOCK_PARTS = ['norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2'] as const;

function blockShapes(i: number): ParameterShapes {
  const p = `blocks.${i}`;
  return [
    [`${p}.norm1.weight`, [WIDTH]],
    [`${p}.norm1.bias`, [WIDTH]],
    [`${p}.attn.qkv.weight`, [3 * WIDTH, WIDTH]],
    [`${p}.attn.qkv.bias`, [3 * WIDTH]],
    [`${p}.attn.proj.weight`, [WIDTH, WIDTH]],
    [`${p}.attn.proj.bias`, [WIDTH]],
    [`${p}.norm2.weight`, [WIDTH]],
    [`${p}.norm2.bias`, [WIDTH]],
    [`${p}.mlp.fc1.weight`, [MLP_WIDTH, WIDTH]],
    [`${p}.mlp.fc1.bias`, [MLP_WIDTH]],
    [`${p}.mlp.fc2.weight`, [WIDTH, MLP_WIDTH]],
    [`${p}.mlp.fc2.bias`, [WIDTH]],
  ];
}

/** DINO's state dict, in its order: 150 tensors, 21,665,664 parameters. */
export function dinoVitS16Shapes(): ParameterShapes {
  return [
    ['cls_token', [1, 1, WIDTH]],
    ['pos_embed', [1, GRID * GRID + 1, WIDTH]],
    ['patch_embed.proj.weight', [WIDTH, 3, PATCH, PATCH]],
    ['patch_embed.proj.bias', [WIDTH]],
    ...Array.from({ length: DEPTH }, (_, i) => blockShapes(i)).flat(),
    ['norm.weight', [WIDTH]],
    ['norm.bias', [WIDTH]],
  ];
}

// ---------------------------------------------------------------------------------------------
// Position-embedding interpolation (DINO's interpolate_pos_encoding)

/** PyTorch's cubic convolution weights (A = −0.75) of the 4 taps around a source offset t ∈ [0, 1). */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * The [outSize, inSize] matrix of torch's bicubic upsampling along one axis (align_corners False)
 * for a given scale_factor: output i samples the input at (i + 0.5)/scale − 0.5 with the 4 taps
 * clamped to the border. With scale_factor given, torch uses it as is, not outSize/inSize.
 */
export function bicubicMatrix(inSize: number, outSize: number, scaleFactor: number): Float64Array {
  const m = new Float64Array(outSize * inSize);
  const step = 1 / scaleFactor;
  for (let i = 0; i < outSize; i++) {
    const src = step * (i + 0.5) - 0.5;
    const base = Math.floor(src);
    cubicWeights(src - base).forEach((wt, k) => {
      const j = Math.min(Math.max(base - 1 + k, 0), inSize - 1);
      m[i * inSize + j] = (m[i * inSize + j] as number) + wt;
    });
  }
  return m;
}

/**
 * The position embedding for an image of h × w pixels (hp × wp patches): DINO's own for 224 × 224;
 * otherwise its 14 × 14 patch grid resized bicubically with scale factors ((hp + 0.1)/14,
 * (wp + 0.1)/14) — DINO adds 0.1 so that the output size floors to hp, wp, and torch then samples
 * with those factors — the CLS position unchanged. Linear in pos_embed: one [hp·wp, 196] product.
 */
export function interpolatedPositionEmbedding(posEmbed: tf.Tensor, h: number, w: number): tf.Tensor3D {
  const hp = Math.floor(h / PATCH);
  const wp = Math.floor(w / PATCH);
  const n = (posEmbed.shape[1] as number) - 1;
  // DINO compares the token count and the image's pixel sides: a non-square image of 14 × 14
  // patches is still resampled (with scale 14.1/14).
  if (hp * wp === n && h === w) return posEmbed as tf.Tensor3D;
  const grid = Math.round(Math.sqrt(n));
  if (grid * grid !== n) throw new Error(`dino-vits16: pos_embed has ${n} patch positions, not a square grid`);
  const [sh, sw] = [(hp + 0.1) / grid, (wp + 0.1) / grid];
  if (Math.floor(grid * sh) !== hp || Math.floor(grid * sw) !== wp) throw new Error(`dino-vits16: cannot resize the position grid to ${hp} × ${wp}`);
  const rows = bicubicMatrix(grid, hp, sh);
  const cols = bicubicMatrix(grid, wp, sw);
  // kron(rows, cols): patch (r, c) of the output mixes grid position (i, j) with rows[r,i]·cols[c,j].
  const k = new Float32Array(hp * wp * n);
  for (let r = 0; r < hp; r++)
    for (let c = 0; c < wp; c++)
      for (let i = 0; i < grid; i++) {
        const a = rows[r * grid + i] as number;
        if (a === 0) continue;
        for (let j = 0; j < grid; j++) k[(r * wp + c) * n + i * grid + j] = a * (cols[c * grid + j] as number);
      }
  return tf.tidy(() => {
    const width = posEmbed.shape[2] as number;
    const cls = tf.slice(posEmbed, [0, 0, 0], [1, 1, width]);
    const patches = tf.reshape(tf.slice(posEmbed, [0, 1, 0], [1, n, width]), [n, width]);
    const resized = tf.matMul(tf.tensor2d(k, [hp * wp, n]), patches);
    return tf.concat([cls, tf.reshape(resized, [1, hp * wp, width])], 1) as tf.Tensor3D;
  });
}

// ---------------------------------------------------------------------------------------------
// The blocks

/**
 * a·b or a·bᵀ over the last two axes of rank-4 tensors; each input's gradient only when needed.
 * On the pure wasm path transposes are explicit (its matMul is very slow with a transposed operand).
 */
function batchMatMul(a: tf.Tensor4D, b: tf.Tensor4D, transposeB: boolean): tf.Tensor4D {
  const native = nativeKernelsActive();
  const t = (x: tf.Tensor) => tf.transpose(x, [0, 1, 3, 2]);
  return lazyGradOp(
    [a, b],
    (save) => {
      save([a, b]);
      return native ? tf.matMul(a, b, false, transposeB) : tf.matMul(a, transposeB ? t(b) : b);
    },
    (dy, saved) => {
      const [sa, sb] = saved as [tf.Tensor4D, tf.Tensor4D];
      if (transposeB) {
        // y = a·bᵀ: da = dy·b, db = dyᵀ·a
        return [() => tf.matMul(dy, sb), () => (native ? tf.matMul(dy, sa, true, false) : tf.matMul(t(dy), sa))];
      }
      // y = a·b: da = dy·bᵀ, db = aᵀ·dy
      return [() => (native ? tf.matMul(dy, sb, false, true) : tf.matMul(dy, t(sb))), () => (native ? tf.matMul(sa, dy, true, false) : tf.matMul(t(sa), dy))];
    },
  ) as tf.Tensor4D;
}

/** One pre-norm block; a pure function of its arguments (it may be recomputed). */
function block(x: tf.Tensor, ...p: tf.Tensor[]): tf.Tensor {
  const [n1w, n1b, qkvW, qkvB, projW, projB, n2w, n2b, fc1W, fc1B, fc2W, fc2B] = p as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ];
  const [n, tokens] = x.shape as [number, number, number];
  const qkv = tf.reshape(linear(layerNormEps1e6(x, n1w, n1b), qkvW, qkvB), [n, tokens, 3 * HEADS, HEAD_DIM]);
  // [n, 18, T, 64]: q, k, v are its three [n, 6, T, 64] thirds (PyTorch's reshape(B, N, 3, H, d)).
  const [q, k, v] = tf.split(tf.transpose(qkv, [0, 2, 1, 3]), 3, 1) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  const attention = tf.softmax(batchMatMul(tf.mul(q, ATTENTION_SCALE), k, true));
  const heads = tf.reshape(tf.transpose(batchMatMul(attention, v, false), [0, 2, 1, 3]), [n, tokens, WIDTH]);
  const x1 = tf.add(x, linear(heads, projW, projB));
  const mlp = linear(gelu(linear(layerNormEps1e6(x1, n2w, n2b), fc1W, fc1B)), fc2W, fc2B);
  return tf.add(x1, mlp);
}

/** Images NHWC [n, h, w, 3] → patch embeddings [n, ⌊h/16⌋·⌊w/16⌋, 384] (the stride-16 convolution, a remainder dropped). */
function patchEmbedding(images: tf.Tensor4D, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor3D {
  const [n, h, w, c] = images.shape;
  const [hp, wp] = [Math.floor(h / PATCH), Math.floor(w / PATCH)];
  const cropped = h === hp * PATCH && w === wp * PATCH ? images : tf.slice(images, [0, 0, 0, 0], [n, hp * PATCH, wp * PATCH, c]);
  // [n·hp, 16 rows, wp, 16·3] → [n·hp, wp, 16, 48]: each patch's pixels in (row, column, channel) order.
  const rows = tf.reshape(cropped, [n * hp, PATCH, wp, PATCH * c]);
  const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [n * hp * wp, PATCH * PATCH * c]);
  // The weight [out, c, kh, kw] in the same (kh, kw, c) order.
  const kernel = tf.reshape(tf.transpose(weight, [0, 2, 3, 1]), [WIDTH, PATCH * PATCH * c]);
  return tf.reshape(linear(patches, kernel, bias), [n, hp * wp, WIDTH]);
}

/**
 * The evaluation-mode forward as ONNX, for images of the fixed side ctx.height × ctx.width: the
 * position embedding is resized once here (the forward's interpolatedPositionEmbedding) and stored
 * as a constant, so the model only takes that image size.
 */
function exportDino(sd: StateDict, g: OnnxGraph, input: string, ctx: OnnxExportContext): string {
  const P = DINO_PREFIX;
  const get = (name: string) => sd.get(P + name);
  const ln = (x: string, name: string, what: string) => onnxLayerNorm(g, x, get(`${name}.weight`), get(`${name}.bias`), 1e-6, ctx.opset, what);
  const lin = (x: string, name: string, what: string) => onnxLinear(g, x, get(`${name}.weight`), get(`${name}.bias`), what);
  // The 16×16 stride-16 patch convolution; Conv drops a remainder of < 16 pixels as the forward's crop does.
  const conv = g.node('Conv', [input, g.weight(get('patch_embed.proj.weight'), 'patch_w'), g.weight(get('patch_embed.proj.bias'), 'patch_b')], {
    kernel_shape: { ints: [PATCH, PATCH] },
    strides: { ints: [PATCH, PATCH] },
  });
  // [n, 384, hp, wp] → [n, hp·wp, 384]: patches in row-major order, as the forward's.
  const patches = g.node('Transpose', [g.node('Reshape', [conv, g.int64s([0, WIDTH, -1], 'shape')])], { perm: { ints: [0, 2, 1] } });
  // The CLS token repeated over the dynamic batch: Expand to [n, 1, 384], n read from the input's shape.
  const batch = g.node('Slice', [g.node('Shape', [input]), g.int64s([0], 'starts'), g.int64s([1], 'ends')]);
  const clsShape = g.node('Concat', [batch, g.int64s([1, WIDTH], 'shape')], { axis: { i: 0 } });
  const cls = g.node('Expand', [g.weight(get('cls_token'), 'cls_token'), clsShape]);
  const pos = tf.tidy(() => interpolatedPositionEmbedding(get('pos_embed'), ctx.height, ctx.width));
  let x: string;
  try {
    x = g.node('Add', [g.node('Concat', [cls, patches], { axis: { i: 1 } }), g.weight(pos, 'pos_embed')]);
  } finally {
    // interpolatedPositionEmbedding returns the state dict's own tensor at 224 × 224.
    if (pos !== get('pos_embed')) pos.dispose();
  }
  for (let i = 0; i < DEPTH; i++) {
    const b = `blocks.${i}`;
    // [n, T, 1152] → [n, T, 18, 64] → [n, 18, T, 64]: q, k, v are its three [n, 6, T, 64] thirds.
    const qkvRows = g.node('Reshape', [lin(ln(x, `${b}.norm1`, 'ln1'), `${b}.attn.qkv`, 'qkv'), g.int64s([0, 0, 3 * HEADS, HEAD_DIM], 'shape')]);
    const qkv = g.node('Transpose', [qkvRows], { perm: { ints: [0, 2, 1, 3] } });
    const [q, k, v] = g.nodeOutputs('Split', [qkv, g.int64s([HEADS, HEADS, HEADS], 'split')], 3, { axis: { i: 1 } }) as [string, string, string];
    const scores = g.node('MatMul', [g.node('Mul', [q, g.floats([ATTENTION_SCALE], [], 'scale')]), g.node('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } })]);
    const heads = g.node('MatMul', [g.node('Softmax', [scores], { axis: { i: -1 } }), v]);
    const merged = g.node('Reshape', [g.node('Transpose', [heads], { perm: { ints: [0, 2, 1, 3] } }), g.int64s([0, 0, WIDTH], 'shape')]);
    const x1 = g.node('Add', [x, lin(merged, `${b}.attn.proj`, 'proj')]);
    const mlp = lin(onnxGelu(g, lin(ln(x1, `${b}.norm2`, 'ln2'), `${b}.mlp.fc1`, 'fc1')), `${b}.mlp.fc2`, 'fc2');
    x = g.node('Add', [x1, mlp]);
  }
  // The CLS token [n, 384], then the final LayerNorm (per token, as the forward's).
  const clsOut = g.node('Gather', [x, g.int64s([0], 'cls_index')], { axis: { i: 1 } });
  return ln(g.node('Flatten', [clsOut], { axis: { i: 1 } }), 'norm', 'ln_final');
}

export function dinoVitS16(options: DinoVitOptions = {}): TorchvisionBackbone {
  const P = DINO_PREFIX;
  const shapes = dinoVitS16Shapes();
  const blockParameters = (sd: StateDict, i: number) =>
    BLOCK_PARTS.flatMap((part) => [sd.get(`${P}blocks.${i}.${part}.weight`), sd.get(`${P}blocks.${i}.${part}.bias`)]);

  return {
    name: 'dino-vits16',
    features: DINO_VITS16_FEATURES,
    prefix: P,
    // No BatchNorm2d: BN_FREEZE has nothing to freeze, and the official constructor freezes nothing
    // (PATCH_FREEZE calls .eval() on a Conv2d, which changes nothing: QUIRK 6).
    bnFreeze: false,
    constructorFreezesBnAffine: false,
    headInit: 'orthogonal',
    parameterShapes: () => shapes.map(([n, s]) => [n, [...s]]),
    batchNormAffineNames: () => [],
    init(sd: StateDict, rng: Random) {
      // DINO's fresh initialisation: trunc_normal_(std 0.02) (bounds ±2 absolute, i.e. a plain normal)
      // for cls_token, pos_embed and every Linear weight, Linear biases 0, LayerNorm 1 and 0; the patch
      // Conv2d keeps PyTorch's default, U(±1/√fan_in) for weight and bias. Pretrained weights are
      // normally loaded over these.
      const patchBound = 1 / Math.sqrt(3 * PATCH * PATCH);
      for (const [name, shape] of shapes) {
        let t: tf.Tensor;
        if (name.startsWith('patch_embed.')) t = tf.randomUniform(shape, -patchBound, patchBound, 'float32', rng.nextUint32());
        else if (/norm\d?\.weight$/.test(name)) t = tf.ones(shape);
        else if (name.endsWith('.bias')) t = tf.zeros(shape);
        else t = tf.randomNormal(shape, 0, 0.02, 'float32', rng.nextUint32());
        sd.set(P + name, t);
        t.dispose();
      }
    },
    forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D {
      const [n, h, w, c] = images.shape;
      if (c !== 3 || h < PATCH || w < PATCH) throw new Error(`dino-vits16: expected RGB images [n, h ≥ 16, w ≥ 16, 3], got [${images.shape.join(', ')}]`);
      const memory = options.blockMemory ?? (n >= 16 ? 'checkpoint' : 'segment');
      return tf.tidy(() => {
        const patches = patchEmbedding(images, sd.get(`${P}patch_embed.proj.weight`), sd.get(`${P}patch_embed.proj.bias`));
        const cls = tf.tile(sd.get(`${P}cls_token`), [n, 1, 1]);
        let x: tf.Tensor = tf.add(tf.concat([cls, patches], 1), interpolatedPositionEmbedding(sd.get(`${P}pos_embed`), h, w));
        for (let i = 0; i < DEPTH; i++) {
          const inputs = [x, ...blockParameters(sd, i)];
          if (!training) x = block(x, ...inputs.slice(1));
          else x = memory === 'checkpoint' ? checkpoint(block, inputs) : segment(block, inputs);
        }
        // LayerNorm acts per token: normalising the CLS token alone gives DINO's x = norm(x); x[:, 0].
        const clsToken = tf.reshape(tf.slice(x, [0, 0, 0], [n, 1, WIDTH]), [n, WIDTH]);
        return layerNormEps1e6(clsToken, sd.get(`${P}norm.weight`), sd.get(`${P}norm.bias`)) as tf.Tensor2D;
      });
    },
    exportOnnx: exportDino,
  };
}
