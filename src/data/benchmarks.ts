// The retrieval benchmarks read as distributed (docs/algorithm.md §8), and the registry of their readers.
//
//   name      --data-root DIR holds                                   splits
//   cub200    CUB_200_2011/: images.txt, classes.txt,                  train: classes 1–100
//             image_class_labels.txt, images/                          test: classes 101–200
//   cars196   cars_annos.mat, car_ims/                                 train: classes 1–98
//                                                                      test: classes 99–196
//   sop       Stanford_Online_Products/: Ebay_train.txt, Ebay_test.txt train, test (the files)
//   inshop    list_eval_partition.txt (or Eval/…), img/                train, query, gallery
//   folder    train/<class>/…, test/<class>/… (src/data/image_folder.ts) train, test
//
// Each reader (src/data/{cub200,cars196,sop,inshop}.ts and the folder scan below) lists every image
// of every split with the dataset's own class identifier (CUB and Cars class number, SOP class_id,
// In-Shop item id, folder name) and the problems it saw. This module then checks the files
// (exist; readable header; or fully decodable), numbers the classes of each split 0..C−1 in
// ascending order of the own identifier (In-Shop's query and gallery share one numbering), and
// either reports (`inspectBenchmark`, for `hardneg data inspect`) or opens the splits as
// FileSplits with the paper's test transform (`openBenchmark`).
//
// A directory that is not the named dataset is refused with a UserError saying what was expected
// and what was found. Problems have a severity: 'error' (a listed file missing or unreadable, a
// malformed line), 'warning' (suspicious but usable), 'note' (e.g. a grayscale or CMYK image,
// converted to RGB when loaded).
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { firstLine, UserError } from '../errors.ts';
import type { Dataset, Normalization } from './dataset.ts';
import { IMAGE_EXTENSIONS, listImageFiles, NOT_AN_IMAGE } from './image_folder.ts';
import { FileSplit, type ImagePool } from './pipeline.ts';
import { colourModel, decodeRgb, loadSharp, type TestTransform } from './transforms.ts';
import { listCub200 } from './cub200.ts';
import { listCars196 } from './cars196.ts';
import { listSop } from './sop.ts';
import { listInShop } from './inshop.ts';
import { mapConcurrent } from './concurrency.ts';
import {
  BENCHMARK_NAMES,
  type BenchmarkName,
  type ClassId,
  type Severity,
  type DatasetProblem,
  type ListedImage,
  type ListedSplit,
  type BenchmarkListing,
  relPath,
  isDir,
  requireLayout,
  compareClassIds,
  byCodeUnit,
  stat,
} from './listing.ts';

export {
  BENCHMARK_NAMES,
  PAPER_BENCHMARK_NAMES,
  type BenchmarkName,
  type ClassId,
  type Severity,
  type DatasetProblem,
  type ListedImage,
  type ListedSplit,
  type BenchmarkListing,
  relPath,
  isFile,
  isDir,
  describeFolder,
  type LayoutEntry,
  requireLayout,
  type TableRow,
  readTable,
  parseId,
  compareClassIds,
} from './listing.ts';

// ---------------------------------------------------------------- the image-folder layout

/** The class-folder layout of src/data/image_folder.ts, with the same file order. */
export function listFolder(rootArg: string): BenchmarkListing {
  const root = resolve(rootArg);
  requireLayout(root, 'an image-folder dataset', ['train/', 'test/']);
  const problems: DatasetProblem[] = [];
  const splits: ListedSplit[] = [];
  const classNames = new Map<ClassId, string>();
  for (const name of ['train', 'test']) {
    const images: ListedImage[] = [];
    const dir = join(root, name);
    const classes = readdirSync(dir)
      .filter((e) => !e.startsWith('.'))
      .sort(byCodeUnit);
    for (const cls of classes) {
      if (!isDir(join(dir, cls))) {
        problems.push({ path: relPath(name, cls), problem: 'a file outside any class folder, ignored', severity: 'warning' });
        continue;
      }
      const files = listImages(root, join(dir, cls), problems);
      if (files.length === 0)
        problems.push({
          path: relPath(name, cls),
          problem: `class folder with no PNG or JPEG image (extensions ${IMAGE_EXTENSIONS.join(', ')})`,
          severity: 'error',
        });
      classNames.set(cls, cls);
      for (const f of files) images.push({ path: f, classId: cls });
    }
    if (classes.length === 0)
      problems.push({ path: name, problem: `empty ${name} split: no class folders (expected ${name}/<class>/<images>)`, severity: 'error' });
    splits.push({ name, images });
  }
  return { dataset: 'folder', root, splits, classNames, sharedLabels: [], compare: byCodeUnit, problems };
}

/** The images of a class folder as root-relative paths, in image_folder.ts's order. */
function listImages(root: string, dir: string, problems: DatasetProblem[]): string[] {
  const rel = (p: string): string => relative(root, p).split(sep).join('/');
  return listImageFiles(dir, (p) => problems.push({ path: rel(p), problem: NOT_AN_IMAGE, severity: 'warning' })).map(rel);
}

// ---------------------------------------------------------------- registry

export interface BenchmarkSpec {
  name: BenchmarkName;
  /** What --data-root must point at. */
  title: string;
  /** Lists the dataset (throws a UserError when root is not this dataset). */
  list(root: string): BenchmarkListing;
  inspect(root: string, opts?: InspectOptions): Promise<BenchmarkReport>;
}

function spec(name: BenchmarkName, title: string, list: (root: string) => BenchmarkListing): BenchmarkSpec {
  return { name, title, list, inspect: (root, opts) => inspectBenchmark(name, root, opts) };
}

export const BENCHMARKS: Readonly<Record<BenchmarkName, BenchmarkSpec>> = {
  cub200: spec('cub200', 'CUB_200_2011 (the extracted CUB_200_2011 folder)', listCub200),
  cars196: spec('cars196', 'Cars196 (a folder with cars_annos.mat and car_ims/)', listCars196),
  sop: spec('sop', 'Stanford_Online_Products (the extracted folder)', listSop),
  inshop: spec('inshop', 'In-Shop Clothes Retrieval (list_eval_partition.txt and img/)', listInShop),
  folder: spec('folder', 'an image-folder dataset (train/<class>/… and test/<class>/…)', listFolder),
};

export function benchmarkSpec(name: string): BenchmarkSpec {
  if (!(BENCHMARK_NAMES as readonly string[]).includes(name)) throw new UserError(`unknown dataset '${name}'; expected one of ${BENCHMARK_NAMES.join(', ')}`);
  return BENCHMARKS[name as BenchmarkName];
}

// ---------------------------------------------------------------- checking and numbering

/** How much of each listed file is checked: exists; its header reads; it decodes fully. */
export type CheckLevel = 'exists' | 'header' | 'decode';

interface CheckedSplit {
  name: string;
  listed: number;
  /** The usable images (exist and, as far as checked, read). */
  images: ListedImage[];
}

async function checkFiles(
  listing: BenchmarkListing,
  level: CheckLevel,
  concurrency: number,
  onProgress?: (done: number, total: number) => void,
): Promise<CheckedSplit[]> {
  const sharp = level === 'exists' ? null : await loadSharp();
  const seen = new Map<string, { ok: boolean }>();
  const total = listing.splits.reduce((s, x) => s + x.images.length, 0);
  let done = 0;
  const checked: CheckedSplit[] = [];
  for (const split of listing.splits) {
    // Files are checked concurrently; their problems are reported in listing order, not completion order.
    const found: (DatasetProblem | null)[] = split.images.map(() => null);
    const ok = await mapConcurrent(split.images, concurrency, async (img, index): Promise<boolean> => {
      const known = seen.get(img.path);
      if (known) return known.ok;
      const entry = { ok: false };
      seen.set(img.path, entry);
      const report = (p: DatasetProblem): void => {
        found[index] = p;
      };
      const abs = join(listing.root, img.path);
      const st = stat(abs);
      if (!st) report({ path: img.path, problem: 'missing file', severity: 'error' });
      else if (!st.isFile()) report({ path: img.path, problem: 'not a file', severity: 'error' });
      else if (!sharp) entry.ok = true;
      else {
        try {
          let model: string | null;
          if (level === 'header') {
            const meta = await sharp(abs).metadata();
            if (!meta.width || !meta.height) throw new Error('no image size in the header');
            model = colourModel(meta);
          } else {
            model = (await decodeRgb(sharp, abs)).converted;
          }
          if (model) report({ path: img.path, problem: `${describeModel(model)}, converted to RGB when loaded`, severity: 'note' });
          entry.ok = true;
        } catch (err) {
          report({ path: img.path, problem: `unreadable image (${firstLine(err)})`, severity: 'error' });
        }
      }
      onProgress?.(++done, total);
      return entry.ok;
    });
    for (const p of found) if (p) listing.problems.push(p);
    checked.push({ name: split.name, listed: split.images.length, images: split.images.filter((_, i) => ok[i]) });
  }
  return checked;
}

function describeModel(model: string): string {
  const [space, alpha] = model.split('+');
  const name = space === 'b-w' ? 'grayscale image' : space === 'cmyk' ? 'CMYK image' : space === 'rgb' ? 'RGB image' : `${space} image`;
  return alpha ? `${name} with an alpha channel (dropped)` : name;
}

export interface NumberedSplit {
  name: string;
  images: ListedImage[];
  /** 0..C−1 per image. */
  labels: Int32Array;
  /** Own identifier of label c. */
  classIds: ClassId[];
  classNames: string[];
}

/** Labels 0..C−1 by ascending own identifier, per split or per group of shared splits. */
export function numberSplits(listing: BenchmarkListing, splits: readonly { name: string; images: ListedImage[] }[]): NumberedSplit[] {
  const compare = listing.compare ?? compareClassIds;
  const groupOf = (name: string): string[] => listing.sharedLabels.find((g) => g.includes(name)) ?? [name];
  const mappings = new Map<string, { ids: ClassId[]; index: Map<ClassId, number> }>();
  return splits.map((s) => {
    const group = groupOf(s.name);
    const key = group.join('+');
    let m = mappings.get(key);
    if (!m) {
      const ids = [...new Set(splits.filter((x) => group.includes(x.name)).flatMap((x) => x.images.map((i) => i.classId)))].sort(compare);
      m = { ids, index: new Map(ids.map((id, i) => [id, i])) };
      mappings.set(key, m);
    }
    const index = m.index;
    // A split of a shared group may lack some of the group's classes: keep the shared numbering.
    return {
      name: s.name,
      images: s.images,
      labels: Int32Array.from(s.images, (i) => index.get(i.classId) as number),
      classIds: m.ids,
      classNames: m.ids.map((id) => listing.classNames.get(id) ?? String(id)),
    };
  });
}

/**
 * Adds split-level problems (an empty split, classes on both sides of a retrieval split) and
 * returns remarks on the data that are not faults of the copy (single-image test classes, queries
 * of items without gallery images).
 */
function splitWarnings(listing: BenchmarkListing, numbered: NumberedSplit[]): string[] {
  const remarks: string[] = [];
  const byName = new Map(numbered.map((s) => [s.name, s]));
  for (const s of numbered) {
    if (s.images.length === 0) listing.problems.push({ path: '.', problem: `the ${s.name} split has no usable image`, severity: 'error' });
  }
  const trainIds = new Set((byName.get('train')?.images ?? []).map((i) => i.classId));
  for (const s of numbered) {
    if (s.name === 'train') continue;
    const overlap = [...new Set(s.images.map((i) => i.classId))].filter((id) => trainIds.has(id));
    if (overlap.length > 0)
      listing.problems.push({
        path: '.',
        problem: `${overlap.length} class(es) in both train and ${s.name} (e.g. ${overlap[0]}): the retrieval splits should be class-disjoint`,
        severity: 'warning',
      });
  }
  const test = byName.get('test');
  if (test) {
    const counts = new Map<ClassId, number>();
    for (const i of test.images) counts.set(i.classId, (counts.get(i.classId) ?? 0) + 1);
    const single = [...counts].filter(([, n]) => n === 1).map(([id]) => id);
    if (single.length > 0) remarks.push(`${single.length} test class(es) with a single image (e.g. ${single[0]}): their queries have no positive (R = 0)`);
  }
  const query = byName.get('query');
  const gallery = byName.get('gallery');
  if (query && gallery) {
    const inGallery = new Set(gallery.images.map((i) => i.classId));
    const lonely = [...new Set(query.images.map((i) => i.classId))].filter((id) => !inGallery.has(id));
    if (lonely.length > 0) remarks.push(`${lonely.length} query item(s) with no gallery image (e.g. ${lonely[0]}): those queries cannot succeed`);
  }
  return remarks;
}

// ---------------------------------------------------------------- inspect

export interface InspectOptions {
  /** Default 'header'. */
  check?: CheckLevel;
  /** Files checked at once. Default min(16, 2 × cores). */
  concurrency?: number;
  /** Include `items`. */
  list?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface SplitSummary {
  /** Usable images: listed, present and (as far as checked) readable. */
  images: number;
  /** Classes with at least one usable image. */
  classes: number;
  /** Images the dataset lists for the split. */
  listed: number;
}

export interface ReportItem {
  path: string;
  /** The dataset's own class identifier. */
  label: ClassId;
  split: string;
}

export interface BenchmarkReport {
  dataset: BenchmarkName;
  root: string;
  check: CheckLevel;
  splits: Record<string, SplitSummary>;
  problems: DatasetProblem[];
  /** Observations on the data that are not faults of the copy (e.g. single-image test classes). */
  remarks: string[];
  items?: ReportItem[];
  /** No problem of severity 'error'. */
  ok: boolean;
}

/** Lists and checks a dataset; throws only when DIR is not the dataset (UserError). */
export async function inspectBenchmark(name: BenchmarkName, root: string, opts: InspectOptions = {}): Promise<BenchmarkReport> {
  const listing = benchmarkSpec(name).list(root);
  const check = opts.check ?? 'header';
  const checked = await checkFiles(listing, check, opts.concurrency ?? Math.min(16, 2 * availableParallelism()), opts.onProgress);
  const numbered = numberSplits(listing, checked);
  const remarks = splitWarnings(listing, numbered);
  const splits: Record<string, SplitSummary> = {};
  for (const s of checked) splits[s.name] = { images: s.images.length, classes: new Set(s.images.map((i) => i.classId)).size, listed: s.listed };
  const order: Record<Severity, number> = { error: 0, warning: 1, note: 2 };
  const problems = listing.problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => order[a.p.severity] - order[b.p.severity] || a.i - b.i)
    .map((x) => x.p);
  const report: BenchmarkReport = { dataset: name, root: listing.root, check, splits, problems, remarks, ok: !problems.some((p) => p.severity === 'error') };
  if (opts.list) report.items = checked.flatMap((s) => s.images.map((i) => ({ path: i.path, label: i.classId, split: s.name })));
  return report;
}

// ---------------------------------------------------------------- open

export interface OpenBenchmarkOptions {
  /** Default: the paper's test transform (Resize 256, CenterCrop 224). */
  transform?: TestTransform;
  /** Default: ImageNet mean and std; null: [0, 1]. */
  normalization?: Normalization | null;
  pool?: ImagePool;
  /** 'exists' (default) or 'header'. */
  check?: Exclude<CheckLevel, 'decode'>;
  /** Leave missing or unreadable images out with a warning instead of failing. */
  skipBad?: boolean;
  onWarning?: (message: string) => void;
}

export interface BenchmarkDataset extends Dataset {
  readonly name: string;
  readonly root: string;
  readonly train: FileSplit;
  /**
   * The evaluation split. In-Shop: the query images followed by the gallery images, numbered with
   * their shared mapping (the first `query.size` are the queries).
   */
  readonly test: FileSplit;
  readonly query?: FileSplit;
  readonly gallery?: FileSplit;
  /** Every split by name (train, test; or train, query, gallery). */
  readonly splits: Readonly<Record<string, FileSplit>>;
  readonly warnings: readonly string[];
}

/** Opens a dataset's splits as FileSplits; problems of severity 'error' throw a UserError. */
export async function openBenchmark(name: BenchmarkName, root: string, opts: OpenBenchmarkOptions = {}): Promise<BenchmarkDataset> {
  const listing = benchmarkSpec(name).list(root);
  const checked = await checkFiles(listing, opts.check ?? 'exists', Math.min(16, 2 * availableParallelism()));
  const errors = listing.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0 && !opts.skipBad) {
    const first = errors[0] as DatasetProblem;
    const more =
      errors.length > 1
        ? ` (and ${errors.length - 1} more problem${errors.length > 2 ? 's' : ''}; run hardneg data inspect --dataset ${name} --data-root ${root})`
        : '';
    throw new UserError(`${join(listing.root, first.path)}: ${first.problem}${more}`);
  }
  const numbered = numberSplits(listing, checked);
  const remarks = splitWarnings(listing, numbered);
  const fatal = listing.problems.find((p) => p.severity === 'error' && p.path === '.');
  if (fatal) throw new UserError(`${listing.root}: ${fatal.problem}`);
  const warnings = [
    ...listing.problems
      .filter((p) => p.severity !== 'note')
      .map((p) => `${join(listing.root, p.path)}: ${p.problem}${p.severity === 'error' ? ' (left out)' : ''}`),
    ...remarks.map((r) => `${listing.root}: ${r}`),
  ];
  for (const w of warnings) opts.onWarning?.(w);
  const make = (s: NumberedSplit, splitName = s.name): FileSplit =>
    new FileSplit({
      name: splitName,
      files: s.images.map((i) => join(listing.root, i.path)),
      labels: s.labels,
      classNames: s.classNames,
      classIds: s.classIds,
      // In-Shop's query and gallery keep their shared numbering even where one lacks an item.
      allowEmptyClasses: listing.sharedLabels.some((g) => g.includes(s.name)),
      ...(opts.transform ? { transform: opts.transform } : {}),
      ...(opts.normalization !== undefined ? { normalization: opts.normalization } : {}),
      ...(opts.pool ? { pool: opts.pool } : {}),
    });
  const splits: Record<string, FileSplit> = {};
  for (const s of numbered) splits[s.name] = make(s);
  const query = numbered.find((s) => s.name === 'query');
  const gallery = numbered.find((s) => s.name === 'gallery');
  if (query && gallery) {
    splits.test = make({
      name: 'test',
      images: [...query.images, ...gallery.images],
      labels: Int32Array.from([...query.labels, ...gallery.labels]),
      classIds: query.classIds,
      classNames: query.classNames,
    });
  }
  const train = splits.train as FileSplit;
  const test = splits.test as FileSplit;
  return {
    name,
    root: listing.root,
    train,
    test,
    splits,
    warnings,
    ...(splits.query ? { query: splits.query } : {}),
    ...(splits.gallery ? { gallery: splits.gallery } : {}),
  };
}
