// Builds the compact Fashion-MNIST copy committed under data/fashion-mnist/ from the original IDX
// files (Debian: `apt-get install dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist).
//
// Subset rule: from each original file, keep the first N images of every class, in file order
// (N = 1000 for train-*, 300 for t10k-*), and write them as gzip-compressed IDX files with the
// original names, so the loader reads the subset and the full data alike.
//
//   node --import tsx scripts/data/make_fashion_mnist_subset.ts [--src DIR] [--out DIR]
//        [--train-per-class 1000] [--test-per-class 300]
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/io/atomic_write.ts';
import { readIdx, serializeIdx } from '../../src/data/idx.ts';
import { FASHION_MNIST_FILES } from '../../src/data/fashion_mnist.ts';

function parseArgs(argv: string[]): { src: string; out: string; trainPerClass: number; testPerClass: number } {
  const o = { src: '/usr/share/datasets/fashion-mnist', out: 'data/fashion-mnist', trainPerClass: 1000, testPerClass: 300 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag}: missing value`);
    if (flag === '--src') o.src = value;
    else if (flag === '--out') o.out = value;
    else if (flag === '--train-per-class') o.trainPerClass = Number(value);
    else if (flag === '--test-per-class') o.testPerClass = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

function subset(images: Uint8Array, labels: Uint8Array, perClass: number): { images: Uint8Array; labels: Uint8Array } {
  const taken = new Array<number>(10).fill(0);
  const keep: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if ((taken[y] as number) < perClass) {
      taken[y] = (taken[y] as number) + 1;
      keep.push(i);
    }
  }
  const short = taken.findIndex((n) => n < perClass);
  if (short >= 0) throw new Error(`class ${short} has only ${taken[short]} images, fewer than ${perClass}`);
  const out = new Uint8Array(keep.length * 784);
  keep.forEach((src, dst) => out.set(images.subarray(src * 784, (src + 1) * 784), dst * 784));
  return { images: out, labels: Uint8Array.from(keep, (i) => labels[i] as number) };
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(join(o.src, FASHION_MNIST_FILES.train.images))) {
    throw new Error(`${o.src}: no ${FASHION_MNIST_FILES.train.images} (install the originals with 'apt-get install dataset-fashion-mnist' or pass --src DIR)`);
  }
  mkdirSync(o.out, { recursive: true });
  let pixelSum = 0;
  let pixelSq = 0;
  let pixelCount = 0;
  for (const [part, perClass] of [
    ['train', o.trainPerClass],
    ['test', o.testPerClass],
  ] as const) {
    const files = FASHION_MNIST_FILES[part];
    const images = readIdx(join(o.src, files.images));
    const labels = readIdx(join(o.src, files.labels));
    const s = subset(images.data, labels.data, perClass);
    const n = s.labels.length;
    for (const [name, bytes] of [
      [files.images, serializeIdx({ dims: [n, 28, 28], data: s.images })],
      [files.labels, serializeIdx({ dims: [n], data: s.labels })],
    ] as const) {
      writeFileAtomic(join(o.out, name), bytes);
      console.log(`${join(o.out, name)}: ${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`);
    }
    console.log(`${part}: ${n} images (${perClass} per class) from ${images.dims[0]}`);
    // Mean/std over the whole original train file, the customary normalisation constants.
    if (part === 'train') {
      for (const v of images.data) {
        pixelSum += v / 255;
        pixelSq += (v / 255) ** 2;
      }
      pixelCount += images.data.length;
    }
  }
  const mean = pixelSum / pixelCount;
  console.log(`original train pixels: mean ${mean.toFixed(4)}, std ${Math.sqrt(pixelSq / pixelCount - mean * mean).toFixed(4)}`);
}

main();
