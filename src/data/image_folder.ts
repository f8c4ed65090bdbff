// A dataset in an image folder, torchvision `ImageFolder` style (docs/algorithm.md §8):
//
//   DIR/train/<class>/**/*.{png,jpg,jpeg}
//   DIR/test/<class>/**/*.{png,jpg,jpeg}
//
// - Labels: the class folder names of a split, sorted lexicographically (by UTF-16 code unit, as
//   Python's sorted() for all ordinary names), numbered 0..C−1. Each split numbers its own classes
//   (the retrieval splits are class-disjoint). Files: recursively, directories in path order, files
//   sorted by name inside each (torchvision's order). Extensions are matched case-insensitively;
//   hidden files are skipped silently, other files with a warning.
// - Decoding (sharp): PNG or JPEG, any of grayscale, grayscale+alpha, RGB, RGBA, CMYK, 8 or 16 bit,
//   converted to sRGB (or to grayscale with `channels: 1`). Alpha is dropped without compositing,
//   like PIL's convert('RGB'). EXIF orientation is ignored, as PIL does.
// - Geometry (torchvision's test transform Resize(resize) + CenterCrop(size)): the shorter side is
//   resized to `resize` (default `size`) with a bilinear kernel keeping the aspect ratio, then the
//   centre `size`×`size` is cut, its offset round((h − size)/2) rounded half to even as Python does.
// - Pixels: float32 in [0, 1] NHWC, optionally normalised per channel.
//
// Problems are reported with UserError (one line naming the path and what was expected): DIR
// missing, a split missing or empty, a class folder with no image, a corrupt image (or, with
// `skipCorrupt`, a warning and the image left out). A test class with fewer than 2 images gets a
// warning: its queries have no positive (R = 0 in MAP@R). `inspectImageFolder` lists every problem
// instead of stopping at the first, for a CLI `inspect` command.
import { availableParallelism } from 'node:os';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { firstLine, UserError } from '../errors.ts';
import {
  checkIndices,
  checkNormalization,
  type Dataset,
  type DatasetSplit,
  type ImageBatch,
  type ImageShape,
  InMemorySplit,
  type Normalization,
  uint8ToFloat,
} from './dataset.ts';
import { mapConcurrent } from './concurrency.ts';
import { loadSharp, roundHalfEven, type SharpFactory, toRgb } from './transforms.ts';

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];
export const SPLIT_NAMES = ['train', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export interface ImageFolderOptions {
  /** Side of the square images produced (the centre crop). Default 64. */
  size?: number;
  /** Shorter side after resizing, before the crop (≥ size). Default: size. */
  resize?: number;
  /** 3: RGB (default); 1: grayscale. */
  channels?: 1 | 3;
  normalization?: Normalization | null;
  /** Leave corrupt images out with a warning instead of failing. Default false. */
  skipCorrupt?: boolean;
  /**
   * Decode every image when opening and keep them in memory (default true). false: only the
   * headers are checked when opening, images are decoded by each load() (a file that turns out
   * to be corrupt then fails that load).
   */
  preload?: boolean;
  /** Images decoded at once. Default: min(8, available parallelism). */
  concurrency?: number;
  /** Receives every warning (class with < 2 test images, ignored files, skipped images). */
  onWarning?: (message: string) => void;
}

export interface ImageFolderProblem {
  severity: 'error' | 'warning';
  path: string;
  message: string;
}

export interface ImageFolderSplitSummary {
  name: SplitName;
  path: string;
  /** Readable images (all listed images unless some are corrupt). */
  images: number;
  classes: number;
  classNames: string[];
  imagesPerClass: number[];
}

export interface ImageFolderReport {
  dir: string;
  splits: ImageFolderSplitSummary[];
  problems: ImageFolderProblem[];
  /** No problem of severity 'error'. */
  ok: boolean;
}

export interface ImageFolderDataset extends Dataset {
  readonly dir: string;
  readonly train: DatasetSplit;
  readonly test: DatasetSplit;
  /** Images left out because they could not be decoded (skipCorrupt). */
  readonly skipped: readonly string[];
  /** Warnings raised while opening (also sent to onWarning). */
  readonly warnings: readonly string[];
}

interface ScannedFile {
  path: string;
  label: number;
}

interface ScannedSplit {
  name: SplitName;
  path: string;
  classNames: string[];
  files: ScannedFile[];
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function hasImageExtension(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

function checkDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UserError(`${dir}: dataset folder not found (expected ${dir}/train/<class>/<images> and ${dir}/test/<class>/<images>)`);
  }
  if (!st.isDirectory()) throw new UserError(`${dir}: not a folder (expected a dataset folder with train/ and test/ inside)`);
}

/** Lists DIR's splits, classes and image files; adds what is wrong to `problems`. */
function scan(dir: string, problems: ImageFolderProblem[]): ScannedSplit[] {
  checkDir(dir);
  const splits: ScannedSplit[] = [];
  for (const entry of readdirSync(dir).sort(byCodeUnit)) {
    if (entry.startsWith('.') || (SPLIT_NAMES as readonly string[]).includes(entry)) continue;
    if (isDir(join(dir, entry)))
      problems.push({ severity: 'warning', path: join(dir, entry), message: 'not a split (only train/ and test/ are read), ignored' });
  }
  for (const name of SPLIT_NAMES) {
    const path = join(dir, name);
    if (!isDir(path)) {
      problems.push({ severity: 'error', path, message: `missing ${name} split (expected ${path}/<class>/<images>)` });
      continue;
    }
    const classNames: string[] = [];
    for (const entry of readdirSync(path).sort(byCodeUnit)) {
      if (entry.startsWith('.')) continue;
      if (isDir(join(path, entry))) classNames.push(entry);
      else problems.push({ severity: 'warning', path: join(path, entry), message: 'a file outside any class folder, ignored' });
    }
    if (classNames.length === 0) {
      problems.push({ severity: 'error', path, message: `empty ${name} split: no class folders (expected ${path}/<class>/<images>)` });
      continue;
    }
    const files: ScannedFile[] = [];
    classNames.forEach((cls, label) => {
      const classDir = join(path, cls);
      const found = listImageFiles(classDir, (p) => problems.push({ severity: 'warning', path: p, message: NOT_AN_IMAGE }));
      if (found.length === 0)
        problems.push({ severity: 'error', path: classDir, message: `class folder with no PNG or JPEG image (extensions ${IMAGE_EXTENSIONS.join(', ')})` });
      for (const f of found) files.push({ path: f, label });
    });
    splits.push({ name, path, classNames, files });
  }
  return splits;
}

/**
 * Image files under `root`, recursively: directories in path order, names sorted within each.
 * Other files are passed to `onOther` (hidden entries are skipped).
 */
export function listImageFiles(root: string, onOther: (path: string) => void): string[] {
  const dirs: string[] = [];
  const walk = (d: string): void => {
    dirs.push(d);
    for (const e of readdirSync(d)) if (!e.startsWith('.') && isDir(join(d, e))) walk(join(d, e));
  };
  walk(root);
  dirs.sort(byCodeUnit);
  const out: string[] = [];
  for (const d of dirs) {
    for (const e of readdirSync(d).sort(byCodeUnit)) {
      const p = join(d, e);
      if (e.startsWith('.') || isDir(p)) continue;
      if (hasImageExtension(e)) out.push(p);
      else onOther(p);
    }
  }
  return out;
}

/** The message for a file that is not an image, in a class folder. */
export const NOT_AN_IMAGE = `not a PNG or JPEG (extensions ${IMAGE_EXTENSIONS.join(', ')}), ignored`;

interface Geometry {
  size: number;
  resize: number;
  channels: 1 | 3;
}

function geometry(opts: ImageFolderOptions): Geometry {
  const size = opts.size ?? 64;
  const resize = opts.resize ?? size;
  const channels = opts.channels ?? 3;
  if (!Number.isInteger(size) || size < 1) throw new UserError(`image size must be a positive integer, got ${size}`);
  if (!Number.isInteger(resize) || resize < size)
    throw new UserError(`resize (shorter side before the crop) must be an integer ≥ the crop size ${size}, got ${resize}`);
  if (channels !== 1 && channels !== 3) throw new UserError(`channels must be 1 or 3, got ${String(channels)}`);
  return { size, resize, channels };
}

/**
 * Decodes one PNG/JPEG file (or its bytes) into size×size×channels uint8 HWC: colour conversion, shorter side to
 * `resize`, centre crop to `size`. Throws sharp's error for an unreadable or corrupt file.
 */
export async function decodeImage(path: string | Buffer, opts: ImageFolderOptions = {}): Promise<Uint8Array> {
  const g = geometry(opts);
  const sharp = await loadSharp();
  return decodeWith(sharp, path, g);
}

async function decodeWith(sharp: SharpFactory, path: string | Buffer, g: Geometry): Promise<Uint8Array> {
  // 1. Full-resolution sRGB (or grey) without alpha. Done as its own pass so the alpha channel is
  //    dropped before resizing (sharp would otherwise premultiply it into the colour).
  const full = await sharp(path)
    .toColourspace(g.channels === 3 ? 'srgb' : 'b-w')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  let data: Buffer = full.data;
  const { width, height } = full.info;
  let ch = full.info.channels;
  if (ch !== g.channels) {
    if (ch === 1 && g.channels === 3) {
      data = toRgb(data, width * height, ch);
      ch = 3;
    } else {
      throw new Error(`decoded to ${ch} channels, expected ${g.channels}`);
    }
  }
  // 2. Shorter side to `resize` (bilinear, aspect ratio kept).
  const resized = await sharp(data, { raw: { width, height, channels: ch as 1 | 3 } })
    .resize({ width: g.resize, height: g.resize, fit: 'outside', kernel: 'linear' })
    .toColourspace(ch === 3 ? 'srgb' : 'b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rw = resized.info.width;
  const rh = resized.info.height;
  if (rw < g.size || rh < g.size || resized.info.channels !== ch)
    throw new Error(`resized to ${rw}×${rh}×${resized.info.channels}, cannot crop ${g.size}×${g.size}×${ch}`);
  // 3. Centre crop, offsets as torchvision's CenterCrop.
  const top = roundHalfEven((rh - g.size) / 2);
  const left = roundHalfEven((rw - g.size) / 2);
  const out = new Uint8Array(g.size * g.size * ch);
  for (let y = 0; y < g.size; y++) {
    const src = ((top + y) * rw + left) * ch;
    out.set(resized.data.subarray(src, src + g.size * ch), y * g.size * ch);
  }
  return out;
}

function defaultConcurrency(opts: ImageFolderOptions): number {
  const c = opts.concurrency ?? Math.min(8, availableParallelism());
  if (!Number.isInteger(c) || c < 1) throw new UserError(`concurrency must be a positive integer, got ${c}`);
  return c;
}

/** Summarises `dir` and lists every problem found; throws only when `dir` itself is missing. */
export async function inspectImageFolder(dir: string, opts: ImageFolderOptions & { decode?: boolean } = {}): Promise<ImageFolderReport> {
  const problems: ImageFolderProblem[] = [];
  const splits = scan(dir, problems);
  const g = geometry(opts);
  const sharp = await loadSharp();
  const summaries: ImageFolderSplitSummary[] = [];
  for (const s of splits) {
    const failures = await mapConcurrent(s.files, defaultConcurrency(opts), async (f) => {
      try {
        if (opts.decode) await decodeWith(sharp, f.path, g);
        else await checkHeader(sharp, f.path);
        return null;
      } catch (err) {
        return firstLine(err);
      }
    });
    const ok = failures.map((why, i) => {
      if (why !== null) problems.push({ severity: 'error', path: (s.files[i] as ScannedFile).path, message: `unreadable or corrupt image (${why})` });
      return why === null;
    });
    const perClass = s.classNames.map(() => 0);
    s.files.forEach((f, i) => {
      if (ok[i]) perClass[f.label] = (perClass[f.label] as number) + 1;
    });
    classProblems(s, perClass, problems);
    summaries.push({
      name: s.name,
      path: s.path,
      images: perClass.reduce((a, b) => a + b, 0),
      classes: s.classNames.length,
      classNames: s.classNames,
      imagesPerClass: perClass,
    });
  }
  return { dir, splits: summaries, problems, ok: !problems.some((p) => p.severity === 'error') };
}

/** Errors for classes left without images (only those that had files: empty folders are reported by scan), warnings for small test classes. */
function classProblems(s: ScannedSplit, perClass: number[], problems: ImageFolderProblem[]): void {
  const listed = s.classNames.map(() => 0);
  for (const f of s.files) listed[f.label] = (listed[f.label] as number) + 1;
  perClass.forEach((n, c) => {
    const path = join(s.path, s.classNames[c] as string);
    if (n === 0 && (listed[c] as number) > 0) problems.push({ severity: 'error', path, message: 'class folder with no readable image' });
    else if (n === 1 && s.name === 'test')
      problems.push({
        severity: 'warning',
        path,
        message: 'test class with only 1 image: its query has no positive (R = 0), retrieval metrics need at least 2 per class',
      });
  });
}

async function checkHeader(sharp: SharpFactory, path: string): Promise<void> {
  const m = await sharp(path).metadata();
  if (!m.width || !m.height) throw new Error('no image size in the header');
}

/** A split that decodes its files on every load. */
class DiskSplit implements DatasetSplit {
  readonly size: number;
  readonly labels: Int32Array;
  readonly imageShape: ImageShape;
  private readonly norm: Normalization | null;

  constructor(
    readonly name: string,
    readonly classNames: readonly string[],
    private readonly files: readonly ScannedFile[],
    private readonly g: Geometry,
    normalization: Normalization | null,
    private readonly concurrency: number,
  ) {
    this.size = files.length;
    this.labels = Int32Array.from(files, (f) => f.label);
    this.imageShape = [g.size, g.size, g.channels];
    this.norm = checkNormalization(normalization, g.channels);
  }

  source(index: number): string {
    return this.files[index]?.path ?? `${this.name}[${index}]`;
  }

  async load(indices: ArrayLike<number>): Promise<ImageBatch> {
    checkIndices(indices, this.size, this.name);
    const [h, w, c] = this.imageShape;
    const per = h * w * c;
    const out = new Float32Array(indices.length * per);
    const sharp = await loadSharp();
    await mapConcurrent(Array.from(indices), this.concurrency, async (idx, i) => {
      const path = this.source(idx);
      let bytes: Uint8Array;
      try {
        bytes = await decodeWith(sharp, path, this.g);
      } catch (err) {
        throw new UserError(`${path}: unreadable or corrupt image (${firstLine(err)})`);
      }
      uint8ToFloat(bytes, 0, out, i, per, c, this.norm);
    });
    return { pixels: out, shape: [indices.length, h, w, c] };
  }
}

/** Opens DIR as a dataset; see the header comment for the layout, decoding and errors. */
export async function openImageFolder(dir: string, opts: ImageFolderOptions = {}): Promise<ImageFolderDataset> {
  const g = geometry(opts);
  const concurrency = defaultConcurrency(opts);
  const norm = checkNormalization(opts.normalization, g.channels);
  const problems: ImageFolderProblem[] = [];
  const scanned = scan(dir, problems);
  const firstError = problems.find((p) => p.severity === 'error');
  if (firstError) throw new UserError(`${firstError.path}: ${firstError.message}`);
  const sharp = await loadSharp();
  const skipped: string[] = [];
  const preload = opts.preload ?? true;
  const built: DatasetSplit[] = [];
  for (const s of scanned) {
    const results = await mapConcurrent(s.files, concurrency, async (f): Promise<{ image: Uint8Array | null } | { error: string }> => {
      try {
        if (preload) return { image: await decodeWith(sharp, f.path, g) };
        await checkHeader(sharp, f.path);
        return { image: null };
      } catch (err) {
        return { error: firstLine(err) };
      }
    });
    const decoded = results.map((r, i) => {
      if (!('error' in r)) return r.image;
      const path = (s.files[i] as ScannedFile).path;
      const why = `unreadable or corrupt image (${r.error})`;
      if (!opts.skipCorrupt)
        throw new UserError(`${path}: ${why}; expected a PNG or JPEG file (--set dataset.skipCorrupt=true leaves such files out, with a warning)`);
      problems.push({ severity: 'warning', path, message: `${why}, skipped` });
      skipped.push(path);
      return undefined;
    });
    const keep = s.files.filter((_, i) => decoded[i] !== undefined);
    const perClass = s.classNames.map(() => 0);
    for (const f of keep) perClass[f.label] = (perClass[f.label] as number) + 1;
    classProblems(s, perClass, problems);
    const err = problems.find((p) => p.severity === 'error');
    if (err) throw new UserError(`${err.path}: ${err.message}`);
    if (preload) {
      const per = g.size * g.size * g.channels;
      const pixels = new Uint8Array(keep.length * per);
      let j = 0;
      decoded.forEach((d) => {
        if (d) pixels.set(d, per * j++);
      });
      built.push(
        new InMemorySplit({
          name: s.name,
          classNames: s.classNames,
          labels: Int32Array.from(keep, (f) => f.label),
          pixels,
          imageShape: [g.size, g.size, g.channels],
          normalization: norm,
          source: (i) => keep[i]?.path ?? `${s.name}[${i}]`,
        }),
      );
    } else {
      built.push(new DiskSplit(s.name, s.classNames, keep, g, norm, concurrency));
    }
  }
  const warnings = problems.filter((p) => p.severity === 'warning').map((p) => `${p.path}: ${p.message}`);
  for (const w of warnings) opts.onWarning?.(w);
  const [train, test] = built as [DatasetSplit, DatasetSplit];
  return { name: `image-folder:${relative(process.cwd(), dir) || '.'}`, dir, train, test, skipped, warnings };
}
