// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, Zalando Research, MIT licence) as a class-disjoint
// retrieval dataset, read from gzip-compressed IDX files with Node's zlib only (no network).
//
// By default it reads the compact copy committed in data/fashion-mnist/ (the first 1,000 images of
// each class from the original train file and the first 300 of each class from the original test
// file; see data/fashion-mnist/README.md and scripts/data/make_fashion_mnist_subset.ts). Pointing
// `dir` at the original files (e.g. /usr/share/datasets/fashion-mnist) reads the full 70,000.
//
// Split rule (class-disjoint, like CUB/Cars in docs/algorithm.md §8: the first half of the class ids
// trains, the second half is retrieved): the images of both original files are pooled; classes
// 0–4 (T-shirt/top, Trouser, Pullover, Dress, Coat) form `train`, classes 5–9 (Sandal, Shirt,
// Sneaker, Bag, Ankle boot) form `test`. Each split numbers its classes 0..4 in ascending original
// id; images keep file order, the original train file's images before the test file's.
// With the committed copy that is 6,500 train images (1,300 per class) and 6,500 test images.
//
// Pixels: float32 in [0, 1], shape [n, 28, 28, 1]; with `normalize: true` they become
// (x − 0.2860)/0.3530, the mean and std of all pixels of the original 60,000-image train file.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { type Dataset, InMemorySplit, type Normalization } from './dataset.ts';
import { IdxError, readIdx } from './idx.ts';

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** File names, the same in the committed copy and in the original distribution. */
export const FASHION_MNIST_FILES = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
} as const;

/** The committed copy. */
export const FASHION_MNIST_DIR = fileURLToPath(new URL('../../data/fashion-mnist/', import.meta.url));

/** Original class ids of the train split; the other classes form the test split. */
export const FASHION_MNIST_TRAIN_CLASSES: readonly number[] = [0, 1, 2, 3, 4];

/** Mean and std of all pixels (in [0, 1]) of the original 60,000-image train file. */
export const FASHION_MNIST_NORMALIZATION: Normalization = { mean: [0.286], std: [0.353] };

export interface FashionMnistOptions {
  /** Folder with the four .gz IDX files (default: the committed copy). */
  dir?: string;
  /** Original class ids (0–9) that form the train split; the rest form the test split. */
  trainClasses?: readonly number[];
  /** true: FASHION_MNIST_NORMALIZATION; or a custom one; default: none (values in [0, 1]). */
  normalize?: boolean | Normalization;
}

export interface FashionMnist extends Dataset {
  readonly train: InMemorySplit;
  readonly test: InMemorySplit;
  /** Original Fashion-MNIST class id (0–9) of each split's class index. */
  readonly originalClasses: { train: readonly number[]; test: readonly number[] };
}

interface Part {
  file: string;
  images: Uint8Array;
  labels: Uint8Array;
}

function readPart(dir: string, part: 'train' | 'test'): Part {
  const files = FASHION_MNIST_FILES[part];
  const imagesPath = join(dir, files.images);
  const labelsPath = join(dir, files.labels);
  for (const p of [imagesPath, labelsPath]) {
    if (!existsSync(p)) throw new UserError(`${p}: not found (expected the Fashion-MNIST IDX files ${files.images} and ${files.labels} in ${dir})`);
  }
  try {
    const images = readIdx(imagesPath);
    const labels = readIdx(labelsPath);
    if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
      throw new UserError(`${imagesPath}: expected images of shape [n, 28, 28], got [${images.dims.join(', ')}]`);
    }
    if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
      throw new UserError(`${labelsPath}: expected ${images.dims[0]} labels (one per image), got shape [${labels.dims.join(', ')}]`);
    }
    const bad = labels.data.findIndex((y) => y > 9);
    if (bad >= 0) throw new UserError(`${labelsPath}: label ${labels.data[bad]} at ${bad} is outside 0..9`);
    return { file: files.images, images: images.data, labels: labels.data };
  } catch (err) {
    if (err instanceof IdxError) throw new UserError(err.message);
    throw err;
  }
}

export function loadFashionMnist(opts: FashionMnistOptions = {}): FashionMnist {
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const trainClasses = [...new Set(opts.trainClasses ?? FASHION_MNIST_TRAIN_CLASSES)].sort((a, b) => a - b);
  if (trainClasses.some((c) => !Number.isInteger(c) || c < 0 || c > 9))
    throw new UserError(`Fashion-MNIST train classes must be ids in 0..9, got [${trainClasses.join(', ')}]`);
  const testClasses = [...Array(10).keys()].filter((c) => !trainClasses.includes(c));
  if (trainClasses.length < 2 || testClasses.length < 2)
    throw new UserError(`Fashion-MNIST: each split needs at least 2 classes, got train [${trainClasses.join(', ')}] and test [${testClasses.join(', ')}]`);
  const norm = opts.normalize === true ? FASHION_MNIST_NORMALIZATION : opts.normalize || null;
  const parts = [readPart(dir, 'train'), readPart(dir, 'test')];

  const build = (name: 'train' | 'test', classes: number[]): InMemorySplit => {
    const toSplit = new Int32Array(10).fill(-1);
    classes.forEach((c, i) => (toSplit[c] = i));
    const picks: { part: Part; index: number }[] = [];
    for (const part of parts) {
      for (let i = 0; i < part.labels.length; i++) if ((toSplit[part.labels[i] as number] as number) >= 0) picks.push({ part, index: i });
    }
    const pixels = new Uint8Array(picks.length * 784);
    const labels = new Int32Array(picks.length);
    picks.forEach(({ part, index }, j) => {
      pixels.set(part.images.subarray(index * 784, (index + 1) * 784), j * 784);
      labels[j] = toSplit[part.labels[index] as number] as number;
    });
    return new InMemorySplit({
      name,
      classNames: classes.map((c) => FASHION_MNIST_CLASSES[c] as string),
      labels,
      pixels,
      imageShape: [28, 28, 1],
      normalization: norm,
      source: (i) => {
        const p = picks[i];
        return p ? `${join(dir, p.part.file)}#${p.index}` : `${name}[${i}]`;
      },
    });
  };

  return {
    name: 'fashion-mnist',
    train: build('train', trainClasses),
    test: build('test', testClasses),
    originalClasses: { train: trainClasses, test: testClasses },
  };
}
