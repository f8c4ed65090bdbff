// The paper's image pipeline: torchvision's geometry (RandomResizedCrop with its 10 attempts and
// fallback, Resize + CenterCrop), ImageNet normalisation, seeded and resumable batches, worker
// threads giving the same bytes as the calling thread.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../src/errors.ts';
import { FileSplit, ImagePool } from '../src/data/pipeline.ts';
import {
  centerCropBox,
  fallbackCropBox,
  IMAGENET_NORMALIZATION,
  PAPER_TEST_TRANSFORM,
  PAPER_TRAIN_TRANSFORM,
  randomResizedCropBox,
  resizeShorterSide,
  roundHalfEven,
  trainDecision,
  type TrainTransform,
} from '../src/data/transforms.ts';

let tmp = '';
const files: string[] = [];
const inThread = new ImagePool({ workers: 0 });
const threaded = new ImagePool({ workers: 2 });

/** 500×375 PNG: R = round(x·255/499), G = round(y·255/374), B = 40·k. */
async function gradient(path: string, k: number): Promise<void> {
  const w = 500;
  const h = 375;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([Math.round((x * 255) / 499), Math.round((y * 255) / 374), 40 * k], (y * w + x) * 3);
  await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'hardneg-pipe-'));
  for (let k = 0; k < 5; k++) {
    files.push(join(tmp, `g${k}.png`));
    await gradient(files[k] as string, k);
  }
  // 5: halves (red | blue) with a green band on top; 6: uniform (255, 128, 0); 7: not an image.
  const raw = Buffer.alloc(500 * 375 * 3);
  for (let y = 0; y < 375; y++) for (let x = 0; x < 500; x++) raw.set(y < 20 ? [0, 255, 0] : x < 250 ? [255, 0, 0] : [0, 0, 255], (y * 500 + x) * 3);
  files.push(join(tmp, 'halves.png'));
  await sharp(raw, { raw: { width: 500, height: 375, channels: 3 } })
    .png()
    .toFile(files[5] as string);
  files.push(join(tmp, 'uniform.png'));
  await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 255, g: 128, b: 0 } } })
    .png()
    .toFile(files[6] as string);
  files.push(join(tmp, 'broken.jpg'));
  writeFileSync(files[7] as string, 'not a jpeg');
});

after(async () => {
  await inThread.close();
  await threaded.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const split = (pool: ImagePool, normalization: typeof IMAGENET_NORMALIZATION | null = null): FileSplit =>
  new FileSplit({
    name: 'train',
    files,
    labels: Int32Array.from([0, 0, 1, 1, 2, 2, 3, 3]),
    classNames: ['a', 'b', 'c', 'd'],
    pool,
    normalization,
  });

// ---------------------------------------------------------------- geometry

test('Python rounding, Resize(256) and CenterCrop(224) as torchvision computes them', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 58.5, 59.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 58, 60, 2, 3]);
  assert.deepEqual(resizeShorterSide(500, 375, 256), { width: 341, height: 256 }); // int(256·500/375) = 341
  assert.deepEqual(resizeShorterSide(375, 500, 256), { width: 256, height: 341 });
  assert.deepEqual(resizeShorterSide(300, 200, 256), { width: 384, height: 256 });
  assert.deepEqual(resizeShorterSide(256, 256, 256), { width: 256, height: 256 });
  assert.deepEqual(resizeShorterSide(1000, 257, 256), { width: 996, height: 256 }); // 996.1 truncated
  assert.deepEqual(centerCropBox(341, 256, 224), { top: 16, left: 58, height: 224, width: 224 }); // round(58.5) = 58
  assert.deepEqual(centerCropBox(343, 256, 224), { top: 16, left: 60, height: 224, width: 224 }); // round(59.5) = 60
});

test('RandomResizedCrop: torchvision get_params step by step, and its fallback', () => {
  // Both draws 0.5: area 0.54·W·H, ratio 1 → w = h = round(√(0.54·187500)) = 318; offsets from below().
  const halves = (): number => 0.5;
  assert.deepEqual(
    randomResizedCropBox(500, 375, [0.08, 1], [3 / 4, 4 / 3], halves, (n) => n - 1),
    { top: 375 - 318, left: 500 - 318, height: 318, width: 318 },
  );
  // The first attempt too large (scale 1, ratio 4/3 on a 100×400 image: w = 231 > 100), the second fits.
  const draws = [0.999999, 0.999999, 0, 0];
  let k = 0;
  const box = randomResizedCropBox(
    100,
    400,
    [0.08, 1],
    [3 / 4, 4 / 3],
    () => draws[k++] as number,
    () => 0,
  );
  assert.equal(k, 4);
  assert.deepEqual(box, { top: 0, left: 0, width: roundHalfEven(Math.sqrt(0.08 * 40000 * 0.75)), height: roundHalfEven(Math.sqrt((0.08 * 40000) / 0.75)) });
  // Ten failures → the fallback: whole image clipped to the ratio range, centred with floor division.
  let calls = 0;
  const fb = randomResizedCropBox(
    500,
    100,
    [1, 1],
    [3 / 4, 4 / 3],
    () => {
      calls++;
      return 0.3;
    },
    () => 0,
  );
  assert.equal(calls, 20);
  assert.deepEqual(fb, { top: 0, left: 183, height: 100, width: 133 });
  assert.deepEqual(fallbackCropBox(10, 1000, [3 / 4, 4 / 3]), { top: 493, left: 0, height: 13, width: 10 });
  assert.deepEqual(fallbackCropBox(400, 300, [3 / 4, 4 / 3]), { top: 0, left: 0, height: 300, width: 400 });
  // An image far too wide for the ratio range always falls back.
  for (let s = 0; s < 50; s++) assert.deepEqual(trainDecision(s, 1000, 10, PAPER_TRAIN_TRANSFORM).box, { top: 0, left: 493, height: 10, width: 13 });
});

test('RandomResizedCrop: over many seeds every crop obeys the scale and ratio ranges, and flips are about half', () => {
  const W = 500;
  const H = 375;
  let flips = 0;
  const seen = new Set<string>();
  for (let s = 0; s < 3000; s++) {
    const { box, flip } = trainDecision(s, W, H, PAPER_TRAIN_TRANSFORM);
    assert.deepEqual(trainDecision(s, W, H, PAPER_TRAIN_TRANSFORM), { box, flip });
    if (flip) flips++;
    seen.add(JSON.stringify(box));
    assert.ok(
      box.width >= 1 && box.height >= 1 && box.left >= 0 && box.top >= 0 && box.left + box.width <= W && box.top + box.height <= H,
      JSON.stringify(box),
    );
    // w, h are rounded from √(area·r), √(area/r): allow the half-pixel of rounding on each.
    const area = box.width * box.height;
    const lo = (Math.sqrt(0.08 * W * H * 0.75) - 0.5) * (Math.sqrt((0.08 * W * H) / (4 / 3)) - 0.5);
    assert.ok(area >= lo && area <= W * H, `area ${area}`);
    const ratio = box.width / box.height;
    assert.ok(ratio >= (3 / 4) * (1 - 1 / box.height) - 1 / box.height && ratio <= (4 / 3) * (1 + 1 / box.height) + 1 / box.height, `ratio ${ratio}`);
  }
  assert.ok(flips > 1350 && flips < 1650, `${flips} flips of 3000`);
  assert.ok(seen.size > 2900, `${seen.size} distinct crops`);
});

// ---------------------------------------------------------------- pixels

test('test transform: 500×375 → Resize to 341×256 → centre crop at (16, 58); pixels where the geometry puts them', async () => {
  const b = await split(inThread).load([5]);
  assert.deepEqual(b.shape, [1, 224, 224, 3]);
  assert.deepEqual(b.applied[0], {
    width: 500,
    height: 375,
    resized: { width: 341, height: 256 },
    box: { top: 16, left: 58, height: 224, width: 224 },
    flip: false,
    converted: null,
  });
  const px = (y: number, x: number): number[] => Array.from(b.pixels.subarray((y * 224 + x) * 3, (y * 224 + x) * 3 + 3), (v) => Math.round(v * 255));
  // The red|blue edge is at x = 170.5 of the resized image; the green band (rows 0–19, resized
  // 0–13.7) lies above the crop.
  assert.deepEqual(px(0, 100), [255, 0, 0]);
  assert.deepEqual(px(0, 125), [0, 0, 255]);
  assert.deepEqual(px(223, 0), [255, 0, 0]);
  // Output column 112 is resized column 170, centred at 170.5 → source x = 250.0, on the edge: an even blend.
  const edge = px(0, 112);
  assert.ok(Math.abs((edge[0] as number) - 128) <= 2 && edge[1] === 0 && Math.abs((edge[2] as number) - 128) <= 2, `edge pixel ${edge}`);
  assert.ok((px(0, 111)[0] as number) > 200 && (px(0, 113)[2] as number) > 200, `beside the edge ${px(0, 111)} | ${px(0, 113)}`);
});

test('normalisation: (x/255 − mean)/std with the ImageNet mean and std', async () => {
  const b = await split(inThread, IMAGENET_NORMALIZATION).load([6]);
  const want = [(1 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0 - 0.406) / 0.225];
  for (let i = 0; i < b.pixels.length; i++) assert.ok(Math.abs((b.pixels[i] as number) - (want[i % 3] as number)) < 1e-5, `value ${b.pixels[i]} at ${i}`);
  assert.deepEqual(split(inThread, IMAGENET_NORMALIZATION).normalization, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
});

test('train transform: the crop box and flip drawn from each seed are the pixels produced; seeded; flip mirrors', async () => {
  const s = split(inThread);
  const seeds = [11, 12, 13, 14, 15];
  const a = await s.loadTrain([0, 1, 2, 3, 4], seeds);
  const again = await s.loadTrain([0, 1, 2, 3, 4], seeds);
  assert.deepEqual(a.pixels, again.pixels);
  assert.deepEqual(a.shape, [5, 224, 224, 3]);
  const other = await s.loadTrain([0, 1, 2, 3, 4], [21, 22, 23, 24, 25]);
  assert.notDeepEqual(a.pixels, other.pixels);
  for (let n = 0; n < 5; n++) {
    const d = trainDecision(seeds[n] as number, 500, 375, PAPER_TRAIN_TRANSFORM);
    const ap = a.applied[n];
    assert.deepEqual({ box: ap?.box, flip: ap?.flip }, d);
    // Gradient image: R encodes the source column, G the source row, B the image.
    for (const [i, j] of [
      [10, 10],
      [112, 200],
      [200, 50],
    ] as const) {
      const o = ((n * 224 + i) * 224 + j) * 3;
      const sx = d.box.left + ((d.flip ? 223 - j : j) + 0.5) * (d.box.width / 224) - 0.5;
      const sy = d.box.top + (i + 0.5) * (d.box.height / 224) - 0.5;
      const r = (a.pixels[o] as number) * 255;
      const g = (a.pixels[o + 1] as number) * 255;
      assert.ok(Math.abs(r - (sx * 255) / 499) < 3, `image ${n} (${i}, ${j}): R ${r} vs ${(sx * 255) / 499}`);
      assert.ok(Math.abs(g - (sy * 255) / 374) < 3, `image ${n} (${i}, ${j}): G ${g} vs ${(sy * 255) / 374}`);
      assert.equal(Math.round((a.pixels[o + 2] as number) * 255), 40 * n);
    }
  }
  // Same seed, flip probability 0 and 1: the same crop, mirrored.
  const never: TrainTransform = { ...PAPER_TRAIN_TRANSFORM, flipProbability: 0 };
  const always: TrainTransform = { ...PAPER_TRAIN_TRANSFORM, flipProbability: 1 };
  const p0 = await s.loadTrain([3], [99], never);
  const p1 = await s.loadTrain([3], [99], always);
  assert.deepEqual(p0.applied[0]?.box, p1.applied[0]?.box);
  for (let y = 0; y < 224; y += 37)
    for (let x = 0; x < 224; x += 29)
      for (let c = 0; c < 3; c++) {
        assert.equal(p0.pixels[(y * 224 + x) * 3 + c], p1.pixels[(y * 224 + (223 - x)) * 3 + c]);
      }
});

test('worker threads give the same bytes as the calling thread; an unreadable image fails the batch by name', async () => {
  const seeds = [5, 6, 7, 8, 9, 10, 11];
  const idx = [0, 1, 2, 3, 4, 5, 6];
  const [a, b] = await Promise.all([
    split(inThread, IMAGENET_NORMALIZATION).loadTrain(idx, seeds),
    split(threaded, IMAGENET_NORMALIZATION).loadTrain(idx, seeds),
  ]);
  assert.deepEqual(a.pixels, b.pixels);
  assert.deepEqual(a.applied, b.applied);
  const [t1, t2] = await Promise.all([split(inThread).load([4, 0]), split(threaded).load([4, 0])]);
  assert.deepEqual(t1.pixels, t2.pixels);
  for (const pool of [inThread, threaded]) {
    await assert.rejects(split(pool).load([0, 7]), (e: unknown) => e instanceof UserError && /broken\.jpg: unreadable or corrupt image \(/.test(e.message));
  }
  await assert.rejects(split(inThread).load([8]), /index 8 \(position 0\) is out of range \[0, 8\)/);
});

test('loadTrain: one seed per image decides its crop and flip; the same seeds give the same pixels', async () => {
  const s = split(threaded);
  const a = await s.loadTrain([0, 1, 2], [11, 12, 13]);
  const again = await s.loadTrain([0, 1, 2], [11, 12, 13]);
  const other = await s.loadTrain([0, 1, 2], [11, 12, 14]);
  assert.deepEqual(a.shape, [3, 224, 224, 3]);
  assert.deepEqual(again.pixels, a.pixels);
  const third = 224 * 224 * 3;
  assert.deepEqual(other.pixels.subarray(0, 2 * third), a.pixels.subarray(0, 2 * third), 'images 0 and 1 keep their seeds');
  assert.notDeepEqual(other.pixels.subarray(2 * third), a.pixels.subarray(2 * third), 'image 2 has another seed');
  // The test transform's geometry is the paper's.
  assert.deepEqual(s.transform, PAPER_TEST_TRANSFORM);
});
