// Thumbnails of the test split a run was evaluated on, as inline PNG data URIs (sharp), from the
// dataset named in the run's config.json: the embedded Fashion-MNIST (28×28 grey, as stored) or an
// image folder (the test transform's resize and centre crop, at a side between 48 and 96 pixels).
// Row i of test_embeddings.npy is image i of the split; when the split no longer matches the
// embeddings (the folder changed or is gone) the gallery shows class names without pictures.
import sharp from 'sharp';
import { loadFashionMnist } from '../data/fashion_mnist.ts';
import { openImageFolder } from '../data/image_folder.ts';
import type { DatasetSplit } from '../data/dataset.ts';
import type { RunConfigSummary } from './run_data.ts';

export interface ThumbnailSource {
  classNames: readonly string[];
  /** PNG data URI of test image i. */
  thumbnail(index: number): Promise<string>;
}

/** Encodes uint8 HWC pixels (1 or 3 channels) as a PNG data URI. */
async function pngDataUri(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<string> {
  const png = await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels } })
    .png({ compressionLevel: 9, palette: false })
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

function fromSplit(split: DatasetSplit): ThumbnailSource {
  const cache = new Map<number, Promise<string>>();
  const [h, w, c] = split.imageShape;
  const encode = async (i: number): Promise<string> => {
    // Opened without normalisation: values are byte/255, so rounding recovers the bytes exactly.
    const b = await split.load([i]);
    const bytes = Uint8Array.from(b.pixels, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
    return pngDataUri(bytes, w, h, c === 1 ? 1 : 3);
  };
  return {
    classNames: split.classNames,
    thumbnail(i) {
      let p = cache.get(i);
      if (!p) {
        p = encode(i);
        cache.set(i, p);
      }
      return p;
    },
  };
}

/**
 * Opens the test split of the run's dataset for thumbnails. Returns the reason instead when it
 * cannot be opened or does not match the run's test labels.
 */
export async function openThumbnails(config: RunConfigSummary, labels: Int32Array): Promise<{ source: ThumbnailSource } | { missing: string }> {
  let split: DatasetSplit;
  try {
    if (config.dataset.name === 'fashion-mnist') {
      split = loadFashionMnist().test;
    } else if (config.dataset.name === 'folder' && config.dataset.root) {
      const size = Math.min(96, Math.max(48, config.dataset.imageSize));
      split = (await openImageFolder(config.dataset.root, { size, channels: 3, preload: false })).test;
    } else {
      return { missing: `dataset '${config.dataset.name}' has no images the report can show` };
    }
  } catch (err) {
    return { missing: `the test images could not be opened: ${(err as Error).message}` };
  }
  if (split.size !== labels.length)
    return { missing: `the dataset's test split has ${split.size} images but the run's embeddings ${labels.length} rows: the dataset changed since` };
  for (let i = 0; i < labels.length; i++) {
    if (split.labels[i] !== labels[i]) return { missing: `the dataset's test labels differ from the run's at image ${i}: the dataset changed since` };
  }
  return { source: fromSplit(split) };
}
