// The search service's and page's test collection: a generated image folder (train/<class>/…) whose
// "model" is each image's mean colour in [0, 1], three numbers a test can recompute by hand.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { makeImageFolder } from './image_folder.ts';

/** The test's model: an image's mean colour in [0, 1] (3 floats). */
export async function meanColour(bytes: Buffer): Promise<Float32Array> {
  const stats = await sharp(bytes).removeAlpha().stats();
  return Float32Array.from(stats.channels.slice(0, 3).map((c) => c.mean / 255));
}

/** Makes root/train/<class>/… and returns its images' paths (relative, sorted per class), labels and mean colours [n × 3]. */
export async function colourFolder(
  root: string,
  classes: string[],
  perClass: number,
  seed: number,
): Promise<{ paths: string[]; labels: string[]; vectors: Float32Array }> {
  await makeImageFolder(root, 'train', classes, perClass, seed);
  const paths: string[] = [];
  const labels: string[] = [];
  for (const c of classes)
    for (const f of readdirSync(join(root, 'train', c)).sort()) {
      paths.push(`train/${c}/${f}`);
      labels.push(c);
    }
  const rows = await Promise.all(paths.map(async (p) => meanColour(await sharp(join(root, p)).toBuffer())));
  const vectors = new Float32Array(rows.length * 3);
  rows.forEach((r, i) => vectors.set(r, i * 3));
  return { paths, labels, vectors };
}
