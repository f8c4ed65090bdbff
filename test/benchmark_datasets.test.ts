// The four benchmarks read as distributed, on format-exact miniature copies built here: counts,
// labels (the datasets' own ids), split membership, problems, colour conversion, the message for
// a folder that is not the dataset, and `hardneg data inspect`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../src/errors.ts';
import { BENCHMARKS, benchmarkSpec, type BenchmarkName, type BenchmarkReport, inspectBenchmark, openBenchmark } from '../src/data/benchmarks.ts';
import { closeImagePools, ImagePool } from '../src/data/pipeline.ts';
import { decodeRgb, loadSharp } from '../src/data/transforms.ts';
import { hardneg, ROOT } from './helpers/cli.ts';

let tmp = '';
const roots: Record<'cub' | 'cars' | 'sop' | 'inshop' | 'folder', string> = { cub: '', cars: '', sop: '', inshop: '', folder: '' };
const pool = new ImagePool({ workers: 0 });

type Kind = 'rgb' | 'gray' | 'cmyk' | 'garbage';

/** A small JPEG (or PNG by extension) whose colour depends on `seed`. */
async function image(path: string, seed: number, kind: Kind = 'rgb', width = 40, height = 30): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  if (kind === 'garbage') {
    writeFileSync(path, 'this is not an image\n');
    return;
  }
  const background = { r: (seed * 53) % 256, g: (seed * 97) % 256, b: (seed * 31) % 256 };
  let img = sharp({ create: { width, height, channels: 3, background } });
  if (kind === 'gray') img = img.toColourspace('b-w');
  if (kind === 'cmyk') img = img.toColourspace('cmyk');
  await (path.toLowerCase().endsWith('.png') ? img.png() : img.jpeg()).toFile(path);
}

// ---------------------------------------------------------------- miniature layouts

const CUB_NAMES: Record<number, string> = {
  1: 'Black_footed_Albatross',
  2: 'Laysan_Albatross',
  100: 'Brown_Pelican',
  101: 'White_Pelican',
  102: 'Western_Wood_Pewee',
  200: 'Common_Yellowthroat',
};
const cubFolder = (c: number): string => `${String(c).padStart(3, '0')}.${CUB_NAMES[c] ?? `Bird_${c}`}`;
// [class, file stem, kind]; images.txt order (image ids 1..), classes interleaved on purpose.
const CUB_IMAGES: [number, string, Kind][] = [
  [1, 'Black_Footed_Albatross_0046_18', 'rgb'],
  [1, 'Black_Footed_Albatross_0009_34', 'gray'],
  [1, 'Black_Footed_Albatross_0002_55', 'rgb'],
  [2, 'Laysan_Albatross_0002_1027', 'rgb'],
  [2, 'Laysan_Albatross_0082_524', 'cmyk'],
  [100, 'Brown_Pelican_0062_94', 'rgb'],
  [100, 'Brown_Pelican_0120_93', 'rgb'],
  [101, 'White_Pelican_0025_97604', 'rgb'],
  [101, 'White_Pelican_0049_96941', 'rgb'],
  [102, 'Western_Wood_Pewee_0012_795045', 'rgb'],
  [102, 'Western_Wood_Pewee_0040_98160', 'rgb'],
  [102, 'Western_Wood_Pewee_0072_98125', 'rgb'],
  [200, 'Common_Yellowthroat_0055_190967', 'rgb'],
  [200, 'Common_Yellowthroat_0003_190521', 'rgb'],
];

async function makeCub(root: string): Promise<void> {
  mkdirSync(join(root, 'images'), { recursive: true });
  const classes = Array.from({ length: 200 }, (_, i) => `${i + 1} ${cubFolder(i + 1)}`);
  writeFileSync(join(root, 'classes.txt'), `${classes.join('\n')}\n`);
  const lines: string[] = [];
  const labels: string[] = [];
  const split: string[] = [];
  for (const [i, [cls, stem, kind]] of CUB_IMAGES.entries()) {
    const rel = `${cubFolder(cls)}/${stem}.jpg`;
    lines.push(`${i + 1} ${rel}`);
    labels.push(`${i + 1} ${cls}`);
    split.push(`${i + 1} ${i % 2}`); // the classification split: must not be used
    await image(join(root, 'images', rel), i + 1, kind);
  }
  writeFileSync(join(root, 'images.txt'), `${lines.join('\n')}\n`);
  writeFileSync(join(root, 'image_class_labels.txt'), `${labels.join('\n')}\n`);
  writeFileSync(join(root, 'train_test_split.txt'), `${split.join('\n')}\n`);
  writeFileSync(join(root, 'bounding_boxes.txt'), CUB_IMAGES.map((_, i) => `${i + 1} 1.0 2.0 30.0 20.0`).join('\n') + '\n');
  mkdirSync(join(root, 'parts'));
  mkdirSync(join(root, 'attributes'));
  writeFileSync(join(root, 'README'), 'CUB-200-2011\n');
}

// The annotations of test/fixtures/mat/*.mat: image number → class.
const CARS_CLASSES = [1, 1, 99, 1, 98, 196, 98, 99, 196, 196];

async function makeCars(root: string, mat = 'cars_annos_compressed.mat'): Promise<void> {
  for (const [i] of CARS_CLASSES.entries())
    await image(join(root, 'car_ims', `${String(i + 1).padStart(6, '0')}.jpg`), 100 + i, i === 4 ? 'gray' : 'rgb', 60, 40);
  copyFileSync(join(ROOT, 'test', 'fixtures', 'mat', mat), join(root, 'cars_annos.mat'));
}

// [image_id, class_id, super_class_id, path] rows of Ebay_train.txt / Ebay_test.txt.
const SOP_TRAIN: [number, number, number, string][] = [
  [1, 1, 1, 'bicycle_final/111085122871_0.JPG'],
  [2, 1, 1, 'bicycle_final/111085122871_1.JPG'],
  [3, 1, 1, 'bicycle_final/111085122871_2.JPG'],
  [4, 3, 2, 'cabinet_final/111265328556_0.JPG'],
  [5, 3, 2, 'cabinet_final/111265328556_1.JPG'],
  [6, 2, 1, 'bicycle_final/111110169441_0.JPG'],
  [7, 2, 1, 'bicycle_final/111110169441_4.JPG'],
];
const SOP_TEST: [number, number, number, string][] = [
  [1, 11319, 1, 'bicycle_final/111085118407_0.JPG'],
  [2, 11319, 1, 'bicycle_final/111085118407_1.JPG'],
  [3, 11320, 1, 'bicycle_final/111085122202_0.JPG'],
  [4, 11320, 1, 'bicycle_final/111085122202_3.JPG'],
  [5, 22634, 12, 'toaster_final/391216151226_0.JPG'],
  [6, 22634, 12, 'toaster_final/391216151226_1.JPG'],
];

async function makeSop(root: string): Promise<void> {
  const write = async (file: string, rows: typeof SOP_TRAIN, eol: string): Promise<void> => {
    writeFileSync(join(root, file), ['image_id class_id super_class_id path', ...rows.map((r) => r.join(' '))].join(eol) + eol);
    for (const r of rows) await image(join(root, r[3]), r[0] + r[1], 'rgb');
  };
  mkdirSync(root, { recursive: true });
  await write('Ebay_train.txt', SOP_TRAIN, '\n');
  await write('Ebay_test.txt', SOP_TEST, '\r\n'); // CRLF, which the official conversion mishandles
  writeFileSync(join(root, 'Ebay_info.txt'), 'image_id class_id super_class_id path\n');
  writeFileSync(join(root, 'Ebay_final.txt'), 'image_id class_id super_class_id path\n');
  writeFileSync(join(root, 'LICENSE'), 'x\n');
}

// [path, item, status] rows of list_eval_partition.txt.
const INSHOP_ROWS: [string, string, string][] = [
  ['img/WOMEN/Dresses/id_00000002/02_1_front.jpg', 'id_00000002', 'train'],
  ['img/WOMEN/Dresses/id_00000002/02_2_side.jpg', 'id_00000002', 'train'],
  ['img/WOMEN/Skirts/id_00000001/01_1_front.jpg', 'id_00000001', 'train'],
  ['img/MEN/Denim/id_00000080/01_1_front.jpg', 'id_00000080', 'train'],
  ['img/WOMEN/Blouses_Shirts/id_00000007/01_1_front.jpg', 'id_00000007', 'query'],
  ['img/WOMEN/Blouses_Shirts/id_00000007/01_2_side.jpg', 'id_00000007', 'gallery'],
  ['img/WOMEN/Blouses_Shirts/id_00000007/01_3_back.jpg', 'id_00000007', 'gallery'],
  ['img/MEN/Tees_Tanks/id_00000010/03_1_front.jpg', 'id_00000010', 'gallery'],
  ['img/MEN/Tees_Tanks/id_00000010/03_2_side.jpg', 'id_00000010', 'query'],
  ['img/WOMEN/Dresses/id_00000008/02_4_full.jpg', 'id_00000008', 'query'],
  ['img/WOMEN/Dresses/id_00000008/02_7_additional.jpg', 'id_00000008', 'query'],
  ['img/WOMEN/Dresses/id_00000008/02_1_front.jpg', 'id_00000008', 'gallery'],
];

async function makeInShop(root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  const rows = INSHOP_ROWS.map(([p, item, status]) => `${p.padEnd(61)}${item.padEnd(24)}${status}`);
  writeFileSync(join(root, 'list_eval_partition.txt'), [String(INSHOP_ROWS.length), 'image_name item_id evaluation_status', ...rows].join('\n') + '\n');
  for (const [i, [p]] of INSHOP_ROWS.entries()) await image(join(root, p), 200 + i, 'rgb', 32, 48);
}

async function makeFolder(root: string): Promise<void> {
  for (const [split, cls, n] of [
    ['train', 'b_cat', 2],
    ['train', 'a_dog', 2],
    ['test', 'Zebra', 2],
    ['test', 'ant', 3],
  ] as const) {
    for (let i = 0; i < n; i++) await image(join(root, split, cls, `img${i}.png`), i + cls.length, 'rgb', 20, 20);
  }
  writeFileSync(join(root, 'train', 'a_dog', 'notes.txt'), 'x');
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hardneg-bench-'));
  roots.cub = join(tmp, 'CUB_200_2011');
  roots.cars = join(tmp, 'cars');
  roots.sop = join(tmp, 'Stanford_Online_Products');
  roots.inshop = join(tmp, 'inshop');
  roots.folder = join(tmp, 'folder');
  await Promise.all([makeCub(roots.cub), makeCars(roots.cars), makeSop(roots.sop), makeInShop(roots.inshop), makeFolder(roots.folder)]);
});

after(async () => {
  await pool.close();
  await closeImagePools();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const labelsBySplit = (r: BenchmarkReport): Record<string, (number | string)[]> => {
  const out: Record<string, (number | string)[]> = {};
  for (const i of r.items ?? []) (out[i.split] ??= []).push(i.label);
  return out;
};

// ---------------------------------------------------------------- CUB

test('CUB-200-2011: classes 1–100 train, 101–200 test (not train_test_split.txt), images.txt order, own class numbers', async () => {
  const r = await inspectBenchmark('cub200', roots.cub, { list: true });
  assert.deepEqual(r.splits, { train: { images: 7, classes: 3, listed: 7 }, test: { images: 7, classes: 3, listed: 7 } });
  assert.deepEqual(labelsBySplit(r), { train: [1, 1, 1, 2, 2, 100, 100], test: [101, 101, 102, 102, 102, 200, 200] });
  assert.equal(r.items?.[0]?.path, 'images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg');
  assert.equal(r.items?.[7]?.path, 'images/101.White_Pelican/White_Pelican_0025_97604.jpg');
  assert.ok(r.ok, 'no error');
  assert.deepEqual(r.remarks, []);
  // The odd colour models are notes, not drops.
  assert.deepEqual(
    r.problems.map((p) => [p.severity, p.path, p.problem]),
    [
      ['note', 'images/001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg', 'grayscale image, converted to RGB when loaded'],
      ['note', 'images/002.Laysan_Albatross/Laysan_Albatross_0082_524.jpg', 'CMYK image, converted to RGB when loaded'],
    ],
  );
  const ds = await openBenchmark('cub200', roots.cub, { pool, normalization: null });
  assert.deepEqual([...ds.train.labels], [0, 0, 0, 1, 1, 2, 2]);
  assert.deepEqual(ds.train.classIds, [1, 2, 100]);
  assert.deepEqual(ds.train.classNames, ['001.Black_footed_Albatross', '002.Laysan_Albatross', '100.Brown_Pelican']);
  assert.deepEqual([...ds.test.labels], [0, 0, 1, 1, 1, 2, 2]);
  assert.deepEqual(ds.test.classIds, [101, 102, 200]);
  assert.deepEqual(ds.train.imageShape, [224, 224, 3]);
  // Grayscale and CMYK images load as three channels; grayscale with R = G = B.
  const b = await ds.train.load([1, 4]);
  assert.deepEqual(b.shape, [2, 224, 224, 3]);
  const px = (n: number, y: number, x: number): number[] =>
    Array.from(b.pixels.subarray(((n * 224 + y) * 224 + x) * 3, ((n * 224 + y) * 224 + x) * 3 + 3), (v) => Math.round(v * 255));
  const [r0, g0, b0] = px(0, 100, 100);
  assert.ok(r0 === g0 && g0 === b0, `gray pixel ${px(0, 100, 100)}`);
  // CMYK: converted by the same colour management as a plain sRGB decode (saturated colours move).
  const ref = await decodeRgb(await loadSharp(), join(roots.cub, 'images', cubFolder(2), 'Laysan_Albatross_0082_524.jpg'));
  assert.equal(ref.converted, 'cmyk');
  const cmyk = px(1, 100, 100);
  assert.ok(cmyk.every((v, c) => Math.abs(v - (ref.data[c] as number)) <= 2) && cmyk[0] !== cmyk[1], `cmyk pixel ${cmyk} vs ${[...ref.data.subarray(0, 3)]}`);
});

// ---------------------------------------------------------------- Cars

test('Cars196: cars_annos.mat read in TypeScript (scipy and MATLAB byte layouts alike); classes 1–98 train, 99–196 test whatever the test flag', async () => {
  const want = {
    splits: { train: { images: 5, classes: 2, listed: 5 }, test: { images: 5, classes: 2, listed: 5 } },
    labels: { train: [1, 1, 1, 98, 98], test: [99, 196, 99, 196, 196] },
    trainPaths: ['car_ims/000001.jpg', 'car_ims/000002.jpg', 'car_ims/000004.jpg', 'car_ims/000005.jpg', 'car_ims/000007.jpg'],
  };
  for (const mat of ['cars_annos_compressed.mat', 'cars_annos_plain.mat', 'cars_annos_matlab_le.mat', 'cars_annos_matlab_be.mat']) {
    copyFileSync(join(ROOT, 'test', 'fixtures', 'mat', mat), join(roots.cars, 'cars_annos.mat'));
    const r = await inspectBenchmark('cars196', roots.cars, { list: true, check: 'exists' });
    assert.deepEqual(r.splits, want.splits, mat);
    assert.deepEqual(labelsBySplit(r), want.labels, mat);
    assert.deepEqual(
      r.items?.filter((i) => i.split === 'train').map((i) => i.path),
      want.trainPaths,
      mat,
    );
    assert.deepEqual(r.problems, [], mat);
  }
  const ds = await openBenchmark('cars196', roots.cars, { pool });
  assert.deepEqual(ds.train.classIds, [1, 98]);
  assert.deepEqual(ds.train.classNames, ['AM General Hummer SUV 2000', 'Ferrari 458 Italia Coupe 2012']);
  assert.deepEqual([...ds.train.labels], [0, 0, 0, 1, 1]);
  assert.deepEqual(ds.test.classIds, [99, 196]);
  assert.deepEqual(ds.test.classNames, ['Ferrari 458 Italia Convertible 2012', 'smart fortwo Convertible 2012']);
  assert.deepEqual([...ds.test.labels], [0, 1, 0, 1, 1]);
  const r = await inspectBenchmark('cars196', roots.cars);
  assert.deepEqual(
    r.problems.map((p) => [p.severity, p.path, p.problem]),
    [['note', 'car_ims/000005.jpg', 'grayscale image, converted to RGB when loaded']],
  );
});

// ---------------------------------------------------------------- SOP

test('Stanford Online Products: Ebay_train.txt / Ebay_test.txt (LF or CRLF), class_id as the label, ascending numbering', async () => {
  const r = await inspectBenchmark('sop', roots.sop, { list: true });
  assert.deepEqual(r.splits, { train: { images: 7, classes: 3, listed: 7 }, test: { images: 6, classes: 3, listed: 6 } });
  assert.deepEqual(labelsBySplit(r), { train: [1, 1, 1, 3, 3, 2, 2], test: [11319, 11319, 11320, 11320, 22634, 22634] });
  assert.deepEqual(
    r.items?.map((i) => i.path),
    [...SOP_TRAIN, ...SOP_TEST].map((x) => x[3]),
  );
  assert.deepEqual(r.problems, []);
  const ds = await openBenchmark('sop', roots.sop, { pool });
  assert.deepEqual([...ds.train.labels], [0, 0, 0, 2, 2, 1, 1]);
  assert.deepEqual(ds.train.classIds, [1, 2, 3]);
  assert.deepEqual(ds.train.classNames, ['111085122871', '111110169441', '111265328556']);
  assert.deepEqual([...ds.test.labels], [0, 0, 1, 1, 2, 2]);
  assert.deepEqual(ds.test.classIds, [11319, 11320, 22634]);
});

// ---------------------------------------------------------------- In-Shop

test('In-Shop: train / query / gallery from list_eval_partition.txt, item ids as labels, query and gallery numbered together', async () => {
  const r = await inspectBenchmark('inshop', roots.inshop, { list: true });
  assert.deepEqual(r.splits, {
    train: { images: 4, classes: 3, listed: 4 },
    query: { images: 4, classes: 3, listed: 4 },
    gallery: { images: 4, classes: 3, listed: 4 },
  });
  assert.deepEqual(labelsBySplit(r), {
    train: ['id_00000002', 'id_00000002', 'id_00000001', 'id_00000080'],
    query: ['id_00000007', 'id_00000010', 'id_00000008', 'id_00000008'],
    gallery: ['id_00000007', 'id_00000007', 'id_00000010', 'id_00000008'],
  });
  assert.equal(r.items?.[0]?.path, 'img/WOMEN/Dresses/id_00000002/02_1_front.jpg');
  assert.deepEqual(r.problems, []);
  const ds = await openBenchmark('inshop', roots.inshop, { pool });
  assert.deepEqual(Object.keys(ds.splits).sort(), ['gallery', 'query', 'test', 'train']);
  assert.deepEqual(ds.train.classIds, ['id_00000001', 'id_00000002', 'id_00000080']);
  assert.deepEqual([...ds.train.labels], [1, 1, 0, 2]);
  assert.deepEqual(ds.query?.classIds, ['id_00000007', 'id_00000008', 'id_00000010']);
  assert.deepEqual(ds.gallery?.classIds, ds.query?.classIds);
  assert.deepEqual([...(ds.query?.labels ?? [])], [0, 2, 1, 1]);
  assert.deepEqual([...(ds.gallery?.labels ?? [])], [0, 0, 2, 1]);
  assert.equal(ds.test.size, 8);
  assert.deepEqual([...ds.test.labels], [0, 2, 1, 1, 0, 0, 2, 1]);
  // The archive's own place for the list (Eval/) is found too.
  const alt = join(tmp, 'inshop_eval');
  mkdirSync(join(alt, 'Eval'), { recursive: true });
  copyFileSync(join(roots.inshop, 'list_eval_partition.txt'), join(alt, 'Eval', 'list_eval_partition.txt'));
  mkdirSync(join(alt, 'img'));
  const r2 = await inspectBenchmark('inshop', alt, { check: 'exists' });
  assert.deepEqual(r2.splits.query, { images: 0, classes: 0, listed: 4 });
  assert.equal(r2.problems.filter((p) => p.problem === 'missing file').length, 12);
});

// ---------------------------------------------------------------- image folder

test('image folder: class folder names as labels, sorted by code unit per split', async () => {
  const r = await inspectBenchmark('folder', roots.folder, { list: true });
  assert.deepEqual(r.splits, { train: { images: 4, classes: 2, listed: 4 }, test: { images: 5, classes: 2, listed: 5 } });
  assert.deepEqual(labelsBySplit(r), { train: ['a_dog', 'a_dog', 'b_cat', 'b_cat'], test: ['Zebra', 'Zebra', 'ant', 'ant', 'ant'] });
  assert.deepEqual(
    r.problems.map((p) => [p.severity, p.path]),
    [['warning', 'train/a_dog/notes.txt']],
  );
  const ds = await openBenchmark('folder', roots.folder, { pool });
  assert.deepEqual(ds.test.classNames, ['Zebra', 'ant']);
});

// ---------------------------------------------------------------- problems and wrong folders

test('problems: a missing file, an unreadable image, a malformed line; a truncated image with --check decode', async () => {
  const root = join(tmp, 'CUB_broken');
  await makeCub(root);
  unlinkSync(join(root, 'images', cubFolder(2), 'Laysan_Albatross_0002_1027.jpg'));
  writeFileSync(join(root, 'images', cubFolder(101), 'White_Pelican_0025_97604.jpg'), 'not a jpeg');
  const noise = Buffer.from(Array.from({ length: 96 * 96 * 3 }, (_, i) => (i * 7919) % 251));
  const good = await sharp(noise, { raw: { width: 96, height: 96, channels: 3 } })
    .jpeg()
    .toBuffer();
  writeFileSync(join(root, 'images', cubFolder(200), 'Common_Yellowthroat_0055_190967.jpg'), good.subarray(0, Math.floor(good.length / 2))); // header intact, data cut
  writeFileSync(join(root, 'images.txt'), `${CUB_IMAGES.map(([c, s], i) => `${i + 1} ${cubFolder(c)}/${s}.jpg`).join('\n')}\n15\n`);
  const r = await inspectBenchmark('cub200', root, { list: true });
  assert.equal(r.ok, false);
  const errors = r.problems.filter((p) => p.severity === 'error').map((p) => [p.path, p.problem.replace(/ \(.*\)$/, '')]);
  assert.deepEqual(errors, [
    ['images.txt', "line 15: expected '<image_id> <path>', got '15'"],
    ['images/002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg', 'missing file'],
    ['images/101.White_Pelican/White_Pelican_0025_97604.jpg', 'unreadable image'],
  ]);
  assert.deepEqual(r.splits.train, { images: 6, classes: 3, listed: 7 });
  assert.deepEqual(r.splits.test, { images: 6, classes: 3, listed: 7 });
  assert.equal(r.items?.length, 12);
  assert.deepEqual(r.remarks, ['1 test class(es) with a single image (e.g. 101): their queries have no positive (R = 0)']);
  const decoded = await inspectBenchmark('cub200', root, { check: 'decode' });
  assert.ok(
    decoded.problems.some((p) => p.path === `images/${cubFolder(200)}/Common_Yellowthroat_0055_190967.jpg` && /^unreadable image/.test(p.problem)),
    JSON.stringify(decoded.problems),
  );
  await assert.rejects(
    openBenchmark('cub200', root, { pool }),
    (e: unknown) => e instanceof UserError && /images\.txt: line 15: expected '<image_id> <path>'.*and 1 more problem;/.test(e.message),
  );
  const skipped: string[] = [];
  const ds = await openBenchmark('cub200', root, { pool, skipBad: true, onWarning: (w) => skipped.push(w) });
  assert.equal(ds.train.size, 6);
  assert.ok(
    skipped.some((w) => /Laysan_Albatross_0002_1027\.jpg: missing file \(left out\)/.test(w)),
    skipped.join('\n'),
  );
});

test('a folder that is not the named dataset: what was expected and what was found', async () => {
  const cases: [BenchmarkName, string, RegExp][] = [
    [
      'cub200',
      roots.sop,
      /Stanford_Online_Products does not look like CUB_200_2011: expected images\.txt, classes\.txt, image_class_labels\.txt and images\/; found Ebay_final\.txt, Ebay_info\.txt, Ebay_test\.txt, Ebay_train\.txt, LICENSE, bicycle_final\/, cabinet_final\/, toaster_final\/$/,
    ],
    [
      'cars196',
      roots.cub,
      /CUB_200_2011 does not look like Cars196 \(a folder with cars_annos\.mat and car_ims\/\): expected cars_annos\.mat and car_ims\/; found README, attributes\/, bounding_boxes\.txt, classes\.txt/,
    ],
    [
      'sop',
      roots.inshop,
      /inshop does not look like Stanford_Online_Products: expected Ebay_train\.txt and Ebay_test\.txt; found img\/, list_eval_partition\.txt$/,
    ],
    [
      'inshop',
      roots.cars,
      /cars does not look like In-Shop Clothes Retrieval: expected list_eval_partition\.txt or Eval\/list_eval_partition\.txt and img\/ or Img\/img\/; found car_ims\/, cars_annos\.mat$/,
    ],
    ['folder', roots.cub, /CUB_200_2011 does not look like an image-folder dataset: expected train\/ and test\/; found/],
    ['cub200', tmp, /does not look like CUB_200_2011: .*; did you mean .*CUB_200_2011\?$/],
    ['cub200', join(tmp, 'nowhere'), /nowhere: folder not found \(expected CUB_200_2011: a folder with images\.txt/],
  ];
  for (const [name, dir, message] of cases) {
    assert.throws(
      () => BENCHMARKS[name].list(dir),
      (e: unknown) => e instanceof UserError && message.test(e.message),
      `${name} on ${dir}`,
    );
  }
  // A cars_annos.mat that is not one.
  const bad = join(tmp, 'cars_bad');
  mkdirSync(join(bad, 'car_ims'), { recursive: true });
  writeFileSync(join(bad, 'cars_annos.mat'), 'MATLAB? no');
  assert.throws(() => BENCHMARKS.cars196.list(bad), /cars_annos\.mat: not a MATLAB v5 MAT-file/);
  copyFileSync(join(ROOT, 'test', 'fixtures', 'mat', 'misc.mat'), join(bad, 'cars_annos.mat'));
  assert.throws(() => BENCHMARKS.cars196.list(bad), /cars_annos\.mat: no variable 'annotations' \(found: d, f32.*\(expected Cars196's cars_annos\.mat\)/);
});

// ---------------------------------------------------------------- the command

test('hardneg data inspect --json [--list], the readable report, and the exit statuses', async () => {
  const r = hardneg(['data', 'inspect', '--dataset', 'cub200', '--data-root', roots.cub, '--list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as BenchmarkReport;
  assert.equal(out.dataset, 'cub200');
  assert.deepEqual(out.splits.train, { images: 7, classes: 3, listed: 7 });
  assert.deepEqual(out.splits.test, { images: 7, classes: 3, listed: 7 });
  assert.deepEqual(out.items?.[13], { path: 'images/200.Common_Yellowthroat/Common_Yellowthroat_0003_190521.jpg', label: 200, split: 'test' });
  assert.ok(
    out.problems.every((p) => typeof p.path === 'string' && typeof p.problem === 'string'),
    'problems have path and problem',
  );
  const text = hardneg(['data', 'inspect', '--dataset', 'sop', '--data-root', roots.sop]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /train\s+7\s+3\n\s+test\s+6\s+3/);
  assert.match(text.stdout, /problems: none/);
  const wrong = hardneg(['data', 'inspect', '--dataset', 'sop', '--data-root', roots.cub, '--json']);
  assert.equal(wrong.code, 2);
  assert.equal(wrong.stdout, '');
  assert.match(wrong.stderr, /^hardneg data: .*CUB_200_2011 does not look like Stanford_Online_Products: expected Ebay_train\.txt and Ebay_test\.txt; found /);
  assert.throws(() => benchmarkSpec('imagenet'), /unknown dataset 'imagenet'; expected one of cub200, cars196, sop, inshop, folder/);
  // In-Shop's report has its three splits, in order.
  assert.deepEqual(Object.keys((await inspectBenchmark('inshop', roots.inshop, { check: 'exists' })).splits), ['train', 'query', 'gallery']);
});
