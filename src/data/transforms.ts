// The paper's image transforms (docs/algorithm.md §1.3), torchvision's geometry exactly, pixels by sharp:
//
//   train: RandomResizedCrop(224, scale (0.08, 1), ratio (3/4, 4/3), bilinear), RandomHorizontalFlip
//          (p = 0.5), ToTensor ([0, 1]), Normalize(ImageNet mean, std);
//   test:  Resize(256) (shorter side, bilinear, aspect kept), CenterCrop(224), ToTensor, Normalize.
//
// Geometry follows torchvision to the integer:
//   - RandomResizedCrop.get_params: up to 10 attempts of area·U(scale) and exp(U(log ratio)),
//     w = round(√(area·r)), h = round(√(area/r)) (Python's round, half to even), accepted when
//     0 < w ≤ W and 0 < h ≤ H, then top ~ U{0..H−h}, left ~ U{0..W−w}; otherwise the fallback:
//     the whole image clipped to the ratio range and centred ((H−h)//2, (W−w)//2);
//   - Resize(s) with an int: the shorter side becomes s, the longer int(s·long/short) (truncated);
//   - CenterCrop(c): top = round((H−c)/2), left = round((W−c)/2), half to even.
// Randomness: every image's crop and flip come from its own 32-bit seed through a PCG stream
// (`trainDecision`), so a batch is a pure function of the image files and the seeds; the pipeline
// (src/data/pipeline.ts) draws the seeds from one seeded stream per run.
//
// Decoding: sharp reads PNG/JPEG (and what else libvips reads) into 8-bit sRGB: grayscale is
// replicated to three channels, CMYK converted with its profile (or libvips' default), alpha
// dropped without compositing (PIL's convert('RGB')); EXIF orientation is ignored, as PIL does.
// Resampling is libvips' bilinear ('linear') kernel, which, like PIL's, widens its support when
// reducing (antialiased); JPEG decoding and the filters are not bit-identical to PIL's.
import { readFile } from 'node:fs/promises';
import type { Sharp, SharpOptions } from 'sharp';
import type { Normalization } from './dataset.ts';
import { Random, STREAMS } from '../engine/random.ts';
import { firstLine, UserError } from '../errors.ts';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
export const IMAGENET_NORMALIZATION: Normalization = { mean: IMAGENET_MEAN, std: IMAGENET_STD };

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

export interface TrainTransform {
  kind: 'train';
  /** Output side (square). */
  size: number;
  /** Range of the crop's area as a fraction of the image's. */
  scale: readonly [number, number];
  /** Range of the crop's aspect ratio width/height. */
  ratio: readonly [number, number];
  /** Probability of a horizontal flip. */
  flipProbability: number;
}

export interface TestTransform {
  kind: 'test';
  /** Shorter side after resizing. */
  resize: number;
  /** Side of the centre crop (≤ resize). */
  size: number;
}

export type ImageTransform = TrainTransform | TestTransform;

export const PAPER_TRAIN_TRANSFORM: TrainTransform = Object.freeze({
  kind: 'train',
  size: 224,
  scale: [0.08, 1] as const,
  ratio: [3 / 4, 4 / 3] as const,
  flipProbability: 0.5,
});
export const PAPER_TEST_TRANSFORM: TestTransform = Object.freeze({ kind: 'test', resize: 256, size: 224 });

/** Python's round(): nearest integer, halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Throws unless the transform's numbers are usable. */
export function checkTransform(t: ImageTransform): void {
  const posInt = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (!posInt(t.size)) throw new RangeError(`transform size must be a positive integer, got ${t.size}`);
  if (t.kind === 'test') {
    if (!posInt(t.resize) || t.resize < t.size) throw new RangeError(`test transform: resize must be an integer ≥ size ${t.size}, got ${t.resize}`);
    return;
  }
  const [s0, s1] = t.scale;
  const [r0, r1] = t.ratio;
  if (!(s0 > 0 && s0 <= s1 && s1 <= 1)) throw new RangeError(`train transform: scale must satisfy 0 < min ≤ max ≤ 1, got (${s0}, ${s1})`);
  if (!(r0 > 0 && r0 <= r1)) throw new RangeError(`train transform: ratio must satisfy 0 < min ≤ max, got (${r0}, ${r1})`);
  if (!(t.flipProbability >= 0 && t.flipProbability <= 1))
    throw new RangeError(`train transform: flip probability must be in [0, 1], got ${t.flipProbability}`);
}

/**
 * torchvision's RandomResizedCrop.get_params for an image of width×height: `uniform()` gives
 * numbers in [0, 1), `below(n)` integers in [0, n).
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  uniform: () => number,
  below: (n: number) => number,
): CropBox {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (scale[0] + (scale[1] - scale[0]) * uniform());
    const aspect = Math.exp(logRatio[0] + (logRatio[1] - logRatio[0]) * uniform());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = below(height - h + 1);
      const left = below(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  return fallbackCropBox(width, height, ratio);
}

/** RandomResizedCrop's fallback: the whole image, clipped to the ratio range, centred. */
export function fallbackCropBox(width: number, height: number, ratio: readonly [number, number]): CropBox {
  const inRatio = width / height;
  let w = width;
  let h = height;
  const lo = Math.min(ratio[0], ratio[1]);
  const hi = Math.max(ratio[0], ratio[1]);
  if (inRatio < lo) h = roundHalfEven(w / lo);
  else if (inRatio > hi) w = roundHalfEven(h * hi);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

export interface TrainDecision {
  box: CropBox;
  flip: boolean;
}

/** The crop and flip of one image of width×height drawn from its seed. */
export function trainDecision(seed: number, width: number, height: number, t: TrainTransform): TrainDecision {
  const rng = new Random(seed >>> 0, STREAMS.image);
  const box = randomResizedCropBox(
    width,
    height,
    t.scale,
    t.ratio,
    () => rng.random(),
    (n) => rng.int(n),
  );
  const flip = rng.random() < t.flipProbability;
  return { box, flip };
}

/** torchvision Resize(size) with an int: the shorter side to `size`, the longer truncated. */
export function resizeShorterSide(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** torchvision CenterCrop(size) of a width×height image (size ≤ both sides). */
export function centerCropBox(width: number, height: number, size: number): CropBox {
  return { top: roundHalfEven((height - size) / 2), left: roundHalfEven((width - size) / 2), height: size, width: size };
}

/** What was done to one image. */
export interface AppliedTransform {
  /** The decoded image's size. */
  width: number;
  height: number;
  /** Test transform: the size after Resize; train: the original size. */
  resized: { width: number; height: number };
  /** The box cut from the (resized) image. */
  box: CropBox;
  flip: boolean;
  /** The source's colour model when it was not RGB ('b-w', 'cmyk', …) or had alpha, for notes. */
  converted: string | null;
}

export type SharpFactory = (input?: string | Buffer | Uint8Array, options?: SharpOptions) => Sharp;

let sharpModule: SharpFactory | undefined;

/** sharp, loaded once per thread. */
export async function loadSharp(): Promise<SharpFactory> {
  if (sharpModule) return sharpModule;
  try {
    sharpModule = (await import('sharp')).default as unknown as SharpFactory;
  } catch (err) {
    throw new UserError(`image decoding needs the 'sharp' package, which failed to load (${firstLine(err)}); run npm install`);
  }
  return sharpModule;
}

export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
  /** Colour model conversion done ('b-w', 'cmyk', 'rgb+alpha', …) or null for plain RGB. */
  converted: string | null;
}

/** How an image's colour model differs from plain 8-bit RGB, for notes (null when it does not). */
export function colourModel(meta: { space?: string | undefined; hasAlpha?: boolean | undefined }): string | null {
  const space = meta.space ?? 'srgb';
  const rgb = space === 'srgb' || space === 'rgb';
  return rgb && !meta.hasAlpha ? null : `${rgb ? 'rgb' : space}${meta.hasAlpha ? '+alpha' : ''}`;
}

/** Decodes a file (or its bytes) to full-size 8-bit RGB, HWC (see the header for the conversions). */
export async function decodeRgb(sharp: SharpFactory, input: string | Buffer): Promise<RgbImage> {
  const meta = await sharp(input).metadata();
  const full = await sharp(input).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = full.info;
  return { data: toRgb(full.data, width * height, channels), width, height, converted: colourModel(meta) };
}

/** HWC pixels with 1 or 3 channels as 3 channels. */
export function toRgb(data: Buffer, pixels: number, channels: number): Buffer {
  if (channels === 3) return data;
  if (channels !== 1) throw new Error(`decoded to ${channels} channels, expected 3`);
  const rgb = Buffer.alloc(pixels * 3);
  for (let i = 0; i < pixels; i++) rgb.fill(data[i] as number, 3 * i, 3 * i + 3);
  return rgb;
}

/**
 * Decodes `path` (a file, or encoded image bytes), applies `t` (with the image's `seed` for a train transform) and writes the
 * size×size×3 result as float32 HWC at `out[offset…]`: x/255, then normalised when `norm` is given.
 *
 * One sharp pipeline per image (file bytes → crop/resize → sRGB), sized from the header; images
 * with alpha are first decoded without it, so the resampling never mixes in premultiplied alpha.
 */
export async function transformInto(
  sharp: SharpFactory,
  path: string | Buffer,
  t: ImageTransform,
  seed: number,
  out: Float32Array,
  offset: number,
  norm: Normalization | null,
): Promise<AppliedTransform> {
  // Encoded bytes are taken as they are (the embedder's uploads), so files and buffers share one path.
  const bytes = typeof path === 'string' ? await readFile(path) : path;
  const meta = await sharp(bytes).metadata();
  const converted = colourModel(meta);
  let width = meta.width;
  let height = meta.height;
  if (!width || !height) throw new Error('no image size in the header');
  let input: Sharp;
  if (meta.hasAlpha) {
    const rgb = await decodeRgb(sharp, bytes);
    ({ width, height } = rgb);
    input = sharp(rgb.data, { raw: { width, height, channels: 3 } });
  } else {
    input = sharp(bytes);
  }
  let applied: AppliedTransform;
  if (t.kind === 'train') {
    const { box, flip } = trainDecision(seed, width, height, t);
    input = input.extract({ left: box.left, top: box.top, width: box.width, height: box.height }).resize(t.size, t.size, { fit: 'fill', kernel: 'linear' });
    applied = { width, height, resized: { width, height }, box, flip, converted };
  } else {
    const resized = resizeShorterSide(width, height, t.resize);
    const box = centerCropBox(resized.width, resized.height, t.size);
    input = input
      .resize(resized.width, resized.height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
      .extract({ left: box.left, top: box.top, width: box.width, height: box.height });
    applied = { width, height, resized, box, flip: false, converted };
  }
  const result = await input.toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (result.info.width !== t.size || result.info.height !== t.size)
    throw new Error(`transformed to ${result.info.width}×${result.info.height}, expected ${t.size}×${t.size}`);
  const pixels = toRgb(result.data, t.size * t.size, result.info.channels);
  writeFloats(pixels, t.size, applied.flip, out, offset, norm);
  return applied;
}

/** uint8 HWC size×size×3 → float32 at out[offset…], mirrored left-right when `flip`. */
export function writeFloats(pixels: Uint8Array, size: number, flip: boolean, out: Float32Array, offset: number, norm: Normalization | null): void {
  const scale = [0, 1, 2].map((c) => 1 / (255 * (norm ? (norm.std[c] as number) : 1)));
  const shift = [0, 1, 2].map((c) => (norm ? (norm.mean[c] as number) / (norm.std[c] as number) : 0));
  const [s0, s1, s2] = scale as [number, number, number];
  const [h0, h1, h2] = shift as [number, number, number];
  for (let y = 0; y < size; y++) {
    const row = y * size;
    for (let x = 0; x < size; x++) {
      const src = 3 * (row + (flip ? size - 1 - x : x));
      const dst = offset + 3 * (row + x);
      out[dst] = (pixels[src] as number) * s0 - h0;
      out[dst + 1] = (pixels[src + 1] as number) * s1 - h1;
      out[dst + 2] = (pixels[src + 2] as number) * s2 - h2;
    }
  }
}
