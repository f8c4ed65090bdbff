import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../src/errors.ts';
import { InMemorySplit, classCounts } from '../src/data/dataset.ts';
import { IdxError, parseIdx, readIdx, serializeIdx } from '../src/data/idx.ts';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, FASHION_MNIST_FILES, FASHION_MNIST_NORMALIZATION, loadFashionMnist } from '../src/data/fashion_mnist.ts';
import { decodeImage, inspectImageFolder, openImageFolder } from '../src/data/image_folder.ts';

// ---------------------------------------------------------------- IDX and in-memory splits

test('IDX round trip, gzip or not, and clear errors for damaged files', () => {
  const a = { dims: [2, 3], data: Uint8Array.from([1, 2, 3, 4, 5, 255]) };
  for (const gz of [true, false]) {
    const back = parseIdx(serializeIdx(a, gz));
    assert.deepEqual(back.dims, [2, 3]);
    assert.deepEqual([...back.data], [...a.data]);
  }
  const raw = serializeIdx(a, false);
  assert.throws(
    () => parseIdx(raw.subarray(0, raw.length - 1), 'x.idx'),
    (e: unknown) => e instanceof IdxError && /x\.idx: truncated/.test(e.message),
  );
  assert.throws(() => parseIdx(Uint8Array.from([1, 2, 3, 4]), 'y'), /y: not an IDX file/);
  const gz = serializeIdx(a);
  assert.throws(() => parseIdx(gz.subarray(0, 15), 'z.gz'), /z\.gz: corrupt gzip stream/);
});

test('InMemorySplit loads NHWC float32 in [0, 1] or normalised, and checks its input', async () => {
  const pixels = Uint8Array.from([0, 255, 51, 102, 0, 0, 255, 255]); // 2 images 1×2×2
  const s = new InMemorySplit({ name: 'train', classNames: ['a', 'b'], labels: Int32Array.from([1, 0]), pixels, imageShape: [1, 2, 2] });
  const b = await s.load([1, 0, 1]);
  assert.deepEqual(b.shape, [3, 1, 2, 2]);
  assert.deepEqual(
    [...b.pixels].map((v) => Math.round(v * 255)),
    [0, 0, 255, 255, 0, 255, 51, 102, 0, 0, 255, 255],
  );
  const n = new InMemorySplit({
    name: 't',
    classNames: ['a', 'b'],
    labels: Int32Array.from([1, 0]),
    pixels,
    imageShape: [1, 2, 2],
    normalization: { mean: [0.5, 0], std: [0.5, 2] },
  });
  const v = (await n.load([0])).pixels;
  assert.ok(Math.abs((v[0] as number) - -1) < 1e-6 && Math.abs((v[1] as number) - 0.5) < 1e-6 && Math.abs((v[2] as number) - (0.2 - 0.5) / 0.5) < 1e-6);
  await assert.rejects(s.load([2]), /index 2 \(position 0\) is out of range \[0, 2\)/);
  assert.throws(
    () => new InMemorySplit({ name: 'x', classNames: ['a', 'b', 'c'], labels: Int32Array.from([1, 0]), pixels, imageShape: [1, 2, 2] }),
    /class 2 has no image/,
  );
  assert.throws(
    () => new InMemorySplit({ name: 'x', classNames: ['a', 'b'], labels: Int32Array.from([1, 0]), pixels, imageShape: [2, 2, 2] }),
    /8 pixel bytes for 2 images/,
  );
  assert.throws(
    () =>
      new InMemorySplit({
        name: 'x',
        classNames: ['a', 'b'],
        labels: Int32Array.from([1, 0]),
        pixels,
        imageShape: [1, 2, 2],
        normalization: { mean: [0, 0, 0], std: [1] },
      }),
    /mean has 3 values, expected 1 or 2/,
  );
});

// ---------------------------------------------------------------- Fashion-MNIST

let cached: ReturnType<typeof loadFashionMnist> | undefined;
const fashion = (): ReturnType<typeof loadFashionMnist> => (cached ??= loadFashionMnist());

test('Fashion-MNIST: committed files follow the subset rule (1,000 + 300 per class) and stay small', () => {
  const train = readIdx(join(FASHION_MNIST_DIR, FASHION_MNIST_FILES.train.labels));
  const t10k = readIdx(join(FASHION_MNIST_DIR, FASHION_MNIST_FILES.test.labels));
  assert.deepEqual([...classCounts(train.data, 10)], new Array(10).fill(1000));
  assert.deepEqual([...classCounts(t10k.data, 10)], new Array(10).fill(300));
  assert.deepEqual(readIdx(join(FASHION_MNIST_DIR, FASHION_MNIST_FILES.test.images)).dims, [3000, 28, 28]);
  const bytes = Object.values(FASHION_MNIST_FILES)
    .flatMap((f) => [f.images, f.labels])
    .reduce((s, f) => s + statSync(join(FASHION_MNIST_DIR, f)).size, 0);
  assert.ok(bytes < 8e6, `${bytes} bytes`);
});

test('Fashion-MNIST: class-disjoint split, 6,500 + 6,500 images, labels 0..4, pixels in [0, 1]', async () => {
  const ds = fashion();
  assert.equal(ds.train.size, 6500);
  assert.equal(ds.test.size, 6500);
  assert.deepEqual(ds.train.classNames, ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat']);
  assert.deepEqual(ds.test.classNames, ['Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
  assert.deepEqual(ds.originalClasses, { train: [0, 1, 2, 3, 4], test: [5, 6, 7, 8, 9] });
  assert.equal(ds.train.classNames.filter((c) => ds.test.classNames.includes(c)).length, 0, 'class-disjoint');
  assert.deepEqual([...classCounts(ds.train.labels, 5)], [1300, 1300, 1300, 1300, 1300]);
  assert.deepEqual([...classCounts(ds.test.labels, 5)], [1300, 1300, 1300, 1300, 1300]);
  assert.deepEqual(ds.train.imageShape, [28, 28, 1]);

  const all = Array.from({ length: 6500 }, (_, i) => i);
  const b = await ds.test.load(all);
  assert.deepEqual(b.shape, [6500, 28, 28, 1]);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const v of b.pixels) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  assert.equal(min, 0);
  assert.equal(max, 1);
  const mean = sum / b.pixels.length;
  assert.ok(mean > 0.15 && mean < 0.45, `mean ${mean}`);

  // Image order: each split takes the original train file first, then the test file, in file order.
  const rawTrain = readIdx(join(FASHION_MNIST_DIR, FASHION_MNIST_FILES.train.images));
  const rawLabels = readIdx(join(FASHION_MNIST_DIR, FASHION_MNIST_FILES.train.labels));
  const firstTest = rawLabels.data.findIndex((y) => y >= 5);
  assert.deepEqual([...ds.test.raw(0)], [...rawTrain.data.subarray(firstTest * 784, (firstTest + 1) * 784)]);
  assert.equal(ds.test.labels[0], (rawLabels.data[firstTest] as number) - 5);
  assert.match(ds.test.source(0), new RegExp(`train-images-idx3-ubyte\\.gz#${firstTest}$`));
  assert.match(ds.test.source(6499), /t10k-images-idx3-ubyte\.gz#\d+$/);
});

test('Fashion-MNIST: normalisation, a custom class partition and a missing folder', async () => {
  const plain = fashion();
  const norm = loadFashionMnist({ normalize: true });
  const [x, z] = [(await plain.train.load([5])).pixels, (await norm.train.load([5])).pixels];
  const { mean, std } = FASHION_MNIST_NORMALIZATION;
  for (let j = 0; j < 784; j += 37) assert.ok(Math.abs((z[j] as number) - ((x[j] as number) - (mean[0] as number)) / (std[0] as number)) < 1e-5);
  const custom = loadFashionMnist({ trainClasses: [9, 0, 8] });
  assert.deepEqual(custom.train.classNames, ['T-shirt/top', 'Bag', 'Ankle boot']);
  assert.equal(custom.test.classNames.length, 7);
  assert.equal(custom.test.size, 7 * 1300);
  assert.equal(FASHION_MNIST_CLASSES.length, 10);
  assert.throws(
    () => loadFashionMnist({ dir: '/nonexistent/fm' }),
    (e: unknown) => e instanceof UserError && /\/nonexistent\/fm\/train-images-idx3-ubyte\.gz: not found/.test(e.message),
  );
  assert.throws(() => loadFashionMnist({ trainClasses: [0] }), /at least 2 classes/);
});

// ---------------------------------------------------------------- image folders

let root = '';
const W = 16;

async function rgbFile(path: string, w: number, h: number, rgb: [number, number, number], format: 'png' | 'jpeg'): Promise<void> {
  const img = sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(path);
}

/** A small dataset: every colour model the loader must handle, plus the usual clutter. */
async function makeTree(dir: string): Promise<void> {
  for (const d of ['train/cat', 'train/dog/sub', 'test/bird', 'test/Fish']) mkdirSync(join(dir, d), { recursive: true });
  await rgbFile(join(dir, 'train/cat/a_rgb.png'), 40, 30, [200, 100, 50], 'png');
  await sharp(Buffer.alloc(30 * 30, 128), { raw: { width: 30, height: 30, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(join(dir, 'train/cat/b_gray.png'));
  const rgba = Buffer.alloc(20 * 20 * 4);
  for (let i = 0; i < 400; i++) rgba.set([10, 200, 30, i % 2 === 0 ? 0 : 255], 4 * i);
  await sharp(rgba, { raw: { width: 20, height: 20, channels: 4 } })
    .png()
    .toFile(join(dir, 'train/cat/c_rgba.png'));
  await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 100, b: 50 } } })
    .toColourspace('cmyk')
    .jpeg({ quality: 95 })
    .toFile(join(dir, 'train/dog/d_cmyk.jpg'));
  const halves = Buffer.alloc(40 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 20; x < 40; x++) halves.fill(255, 3 * (y * 40 + x), 3 * (y * 40 + x) + 3);
  await sharp(halves, { raw: { width: 40, height: 20, channels: 3 } })
    .png()
    .toFile(join(dir, 'train/dog/e_halves.png'));
  await rgbFile(join(dir, 'train/dog/sub/f_upper.JPG'), 24, 24, [0, 0, 255], 'jpeg');
  writeFileSync(join(dir, 'train/dog/notes.txt'), 'not an image');
  writeFileSync(join(dir, 'train/.DS_Store'), 'hidden');
  await rgbFile(join(dir, 'test/bird/x.png'), 17, 23, [0, 255, 0], 'png');
  await sharp(Buffer.alloc(18 * 18, 60), { raw: { width: 18, height: 18, channels: 1 } })
    .toColourspace('b-w')
    .jpeg()
    .toFile(join(dir, 'test/bird/y_gray.jpg'));
  await rgbFile(join(dir, 'test/Fish/z.png'), 16, 16, [255, 255, 255], 'png');
}

function copyTree(name: string): string {
  const dir = join(root, name);
  cpSync(join(root, 'base'), dir, { recursive: true });
  return dir;
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'hardneg-data-'));
  await makeTree(join(root, 'base'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const px = (p: Float32Array, n: number, y: number, x: number, c: number, size = W, ch = 3): number =>
  Math.round((p[((n * size + y) * size + x) * ch + c] as number) * 255);

test('image folder: labels from sorted class folders, fixed size, every colour model to RGB', async () => {
  const fixtures = join(root, 'base');
  assert.equal((await sharp(join(fixtures, 'train/cat/b_gray.png')).metadata()).channels, 1);
  assert.equal((await sharp(join(fixtures, 'train/dog/d_cmyk.jpg')).metadata()).space, 'cmyk');
  assert.equal((await sharp(join(fixtures, 'test/bird/y_gray.jpg')).metadata()).channels, 1);

  const warnings: string[] = [];
  const ds = await openImageFolder(fixtures, { size: W, onWarning: (m) => warnings.push(m) });
  assert.deepEqual(ds.train.classNames, ['cat', 'dog']);
  assert.deepEqual(ds.test.classNames, ['Fish', 'bird'], 'code-unit order: upper case first');
  assert.deepEqual([...ds.train.labels], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...ds.test.labels], [0, 1, 1]);
  assert.deepEqual(
    Array.from({ length: 6 }, (_, i) => ds.train.source(i).slice(fixtures.length + 1)),
    ['train/cat/a_rgb.png', 'train/cat/b_gray.png', 'train/cat/c_rgba.png', 'train/dog/d_cmyk.jpg', 'train/dog/e_halves.png', 'train/dog/sub/f_upper.JPG'],
  );
  assert.deepEqual(ds.train.imageShape, [W, W, 3]);

  const b = await ds.train.load([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(b.shape, [6, W, W, 3]);
  const rgbAt = (n: number, y = 8, x = 8): number[] => [0, 1, 2].map((c) => px(b.pixels, n, y, x, c));
  assert.deepEqual(rgbAt(0), [200, 100, 50], 'RGB PNG');
  assert.deepEqual(rgbAt(1), [128, 128, 128], 'grayscale PNG → 3 equal channels');
  assert.deepEqual(rgbAt(2), [10, 200, 30], 'RGBA: alpha dropped, colour kept (no premultiplication)');
  const cmyk = rgbAt(3);
  // Through two ICC conversions (sRGB → CMYK → sRGB) the colour moves a little; read as raw
  // channels it would be far off (C≈0, M≈128, Y≈191).
  [200, 100, 50].forEach((v, c) => assert.ok(Math.abs((cmyk[c] as number) - v) <= 35, `CMYK JPEG → RGB ${cmyk}`));
  const blue = rgbAt(5);
  assert.ok((blue[2] as number) > 240 && (blue[0] as number) < 15, `JPEG ${blue}`);
  // 40×20 black|white → shorter side 16 (32×16) → centre 16 columns = 8..23: black left, white right.
  for (let x = 0; x < 6; x++) assert.equal(px(b.pixels, 4, 8, x, 0), 0, `column ${x}`);
  for (let x = 10; x < W; x++) assert.equal(px(b.pixels, 4, 8, x, 1), 255, `column ${x}`);
  for (const v of b.pixels) assert.ok(v >= 0 && v <= 1);

  const t = await ds.test.load([1, 2]);
  assert.deepEqual(
    [0, 1, 2].map((c) => px(t.pixels, 0, 3, 3, c)),
    [0, 255, 0],
  );
  const g = [0, 1, 2].map((c) => px(t.pixels, 1, 3, 3, c));
  assert.ok(g[0] === g[1] && g[1] === g[2] && Math.abs((g[0] as number) - 60) <= 2, `grayscale JPEG ${g}`);

  assert.ok(
    warnings.some((w) => /notes\.txt: not a PNG or JPEG/.test(w)),
    warnings.join('\n'),
  );
  assert.ok(
    warnings.some((w) => /test\/Fish: test class with only 1 image/.test(w)),
    warnings.join('\n'),
  );
  assert.ok(!warnings.some((w) => /DS_Store/.test(w)), 'hidden files are skipped silently');
});

test('image folder: grayscale output, resize + crop, normalisation, on-demand decoding', async () => {
  const fixtures = join(root, 'base');
  const gray = await openImageFolder(fixtures, { size: 8, channels: 1 });
  const gb = await gray.train.load([0]);
  assert.deepEqual(gb.shape, [1, 8, 8, 1]);
  const luma = px(gb.pixels, 0, 4, 4, 0, 8, 1);
  assert.ok(luma > 100 && luma < 140, `luma of (200,100,50): ${luma}`);

  // Resize(20) + CenterCrop(8) of the 40×20 halves: 40×20 kept, columns 16..23, boundary at 4.
  const crop = await decodeImage(join(fixtures, 'train/dog/e_halves.png'), { size: 8, resize: 20 });
  assert.equal(crop.length, 8 * 8 * 3);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7].map((x) => crop[(4 * 8 + x) * 3]),
    [0, 0, 0, 0, 255, 255, 255, 255],
  );
  // Odd margins round half to even as Python: a 41-wide ramp (value 5·x) cropped to 8 starts at
  // column round(16.5) = 16, i.e. value 80.
  const ramp = Buffer.alloc(41 * 20);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 41; x++) ramp[y * 41 + x] = 5 * x;
  const rampPath = join(root, 'ramp.png');
  await sharp(ramp, { raw: { width: 41, height: 20, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(rampPath);
  const rc = await decodeImage(rampPath, { size: 8, resize: 20, channels: 1 });
  assert.deepEqual([...rc.subarray(0, 8)], [80, 85, 90, 95, 100, 105, 110, 115]);
  await assert.rejects(decodeImage(join(fixtures, 'train/dog/e_halves.png'), { size: 8, resize: 6 }), /resize .* must be an integer ≥ the crop size 8/);

  const norm = await openImageFolder(fixtures, { size: W, normalization: { mean: [0.5], std: [0.25] } });
  const plain = await openImageFolder(fixtures, { size: W, preload: false });
  const all = [5, 0, 1, 2, 3, 4];
  const [n, p] = [await norm.train.load(all), await plain.train.load(all)];
  const eager = await (await openImageFolder(fixtures, { size: W })).train.load(all);
  assert.deepEqual(p.pixels, eager.pixels, 'on-demand decoding gives the preloaded pixels');
  for (let j = 0; j < p.pixels.length; j += 13) assert.ok(Math.abs((n.pixels[j] as number) - ((p.pixels[j] as number) - 0.5) / 0.25) < 1e-5);
});

test('image folder: missing folder, missing or empty split, empty class — one-line errors naming the path', async () => {
  const msg = async (dir: string): Promise<string> => {
    try {
      await openImageFolder(dir, { size: W });
    } catch (e) {
      assert.ok(e instanceof UserError, String(e));
      assert.ok(!e.message.includes('\n'), 'one line');
      return e.message;
    }
    throw new Error('expected an error');
  };
  assert.match(await msg(join(root, 'nope')), /nope: dataset folder not found \(expected .*\/train\/<class>\/<images>/);
  const noTest = copyTree('no-test');
  rmSync(join(noTest, 'test'), { recursive: true });
  assert.match(await msg(noTest), /no-test\/test: missing test split/);
  const empty = copyTree('empty-split');
  rmSync(join(empty, 'test'), { recursive: true });
  mkdirSync(join(empty, 'test'));
  assert.match(await msg(empty), /empty-split\/test: empty test split: no class folders/);
  const emptyClass = copyTree('empty-class');
  mkdirSync(join(emptyClass, 'train/zebra'));
  writeFileSync(join(emptyClass, 'train/zebra/readme.md'), '');
  assert.match(await msg(emptyClass), /empty-class\/train\/zebra: class folder with no PNG or JPEG image/);
  const file = join(root, 'a-file');
  writeFileSync(file, '');
  assert.match(await msg(file), /a-file: not a folder/);
});

test('image folder: a corrupt image fails with its path, or is skipped with a warning', async () => {
  const dir = copyTree('corrupt');
  writeFileSync(join(dir, 'train/dog/bad.jpg'), 'definitely not a jpeg');
  const good = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  writeFileSync(join(dir, 'test/bird/truncated.png'), good.subarray(0, good.length - 200));
  await assert.rejects(
    openImageFolder(dir, { size: W }),
    (e: unknown) => e instanceof UserError && /train\/dog\/bad\.jpg: unreadable or corrupt image/.test(e.message),
  );

  const warnings: string[] = [];
  const ds = await openImageFolder(dir, { size: W, skipCorrupt: true, onWarning: (m) => warnings.push(m) });
  assert.equal(ds.train.size, 6);
  assert.equal(ds.test.size, 3);
  assert.deepEqual(
    ds.skipped.map((p) => p.slice(dir.length + 1)),
    ['train/dog/bad.jpg', 'test/bird/truncated.png'],
  );
  assert.ok(warnings.some((w) => /bad\.jpg: unreadable or corrupt image .*skipped/.test(w)));

  // Without preloading only headers are checked: the truncated PNG fails when it is loaded.
  const lazy = await openImageFolder(dir, { size: W, preload: false, skipCorrupt: true });
  assert.equal(lazy.test.size, 4);
  const t = [0, 1, 2, 3].find((i) => lazy.test.source(i).endsWith('truncated.png')) as number;
  await assert.rejects(lazy.test.load([t]), (e: unknown) => e instanceof UserError && /truncated\.png: unreadable or corrupt image/.test(e.message));

  // A class whose only images are corrupt is an error even when skipping.
  const dead = copyTree('dead-class');
  rmSync(join(dead, 'test/Fish/z.png'));
  writeFileSync(join(dead, 'test/Fish/z.png'), 'garbage');
  await assert.rejects(openImageFolder(dead, { size: W, skipCorrupt: true }), /test\/Fish: class folder with no readable image/);
});

test('inspectImageFolder summarises the splits and lists every problem', async () => {
  const dir = copyTree('inspect');
  writeFileSync(join(dir, 'train/dog/bad.jpg'), 'garbage');
  mkdirSync(join(dir, 'val'));
  const r = await inspectImageFolder(dir);
  assert.equal(r.ok, false);
  assert.deepEqual(
    r.splits.map((s) => [s.name, s.images, s.classes, s.imagesPerClass]),
    [
      ['train', 6, 2, [3, 3]],
      ['test', 3, 2, [1, 2]],
    ],
  );
  const lines = r.problems.map((p) => `${p.severity} ${p.path.slice(dir.length + 1)}: ${p.message}`);
  assert.ok(
    lines.some((l) => /^error train\/dog\/bad\.jpg: unreadable or corrupt image/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /^warning train\/dog\/notes\.txt: not a PNG or JPEG/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /^warning test\/Fish: test class with only 1 image/.test(l)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => /^warning val: not a split/.test(l)),
    lines.join('\n'),
  );
  const clean = await inspectImageFolder(join(root, 'base'), { decode: true });
  assert.equal(clean.ok, true);
  await assert.rejects(inspectImageFolder(join(root, 'nope')), /dataset folder not found/);
});
