// A small image-folder dataset for CLI tests: DIR/<split>/<class>/<i>.png, 12×12 noise with a
// coloured square at a class-specific position (easy to learn, seeded).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

export async function makeImageFolder(dir: string, split: string, classes: string[], perClass: number, seed: number): Promise<void> {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [c, name] of classes.entries()) {
    mkdirSync(join(dir, split, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(12 * 12 * 3);
      for (let p = 0; p < px.length; p++) px[p] = Math.floor(rand() * 80);
      for (let y = 0; y < 4; y++)
        for (let x = 0; x < 4; x++) {
          const o = (((c * 2 + y) % 12) * 12 + ((c * 3 + x) % 12)) * 3;
          px[o + (c % 3)] = 255;
        }
      await sharp(px, { raw: { width: 12, height: 12, channels: 3 } })
        .png()
        .toFile(join(dir, split, name, `${i}.png`));
    }
  }
}
