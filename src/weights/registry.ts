// The pretrained weights the official GCA-HNG configurations start from, by name: where each is
// published, how to check a download, and which backbone it is for. torchvision's file names carry
// the first 8 hex digits of the file's SHA-256 (its own download check); DINO publishes no hash,
// so the hash is recorded at the first download and every later use is checked against it.
import { nameList } from '../text.ts';
import { UserError } from '../errors.ts';

export interface WeightsEntry {
  name: string;
  /** The backbone (src/models/backbones.ts) these weights are for. */
  backbone: string;
  url: string;
  /** File name in the cache (the URL's last segment). */
  file: string;
  /** Leading hex digits of the SHA-256 the publisher gives (torchvision: 8, in the file name). */
  sha256Prefix?: string;
  /** The entry of the checkpoint that holds the state dict (DINO's full checkpoints: 'teacher'). */
  key?: string;
  description: string;
}

const ENTRIES: WeightsEntry[] = [
  {
    name: 'resnet50',
    backbone: 'resnet50',
    url: 'https://download.pytorch.org/models/resnet50-0676ba61.pth',
    file: 'resnet50-0676ba61.pth',
    sha256Prefix: '0676ba61',
    description: "torchvision ResNet-50, ImageNet (IMAGENET1K_V1: what the official code's pretrained=True loads)",
  },
  {
    name: 'googlenet',
    backbone: 'googlenet',
    url: 'https://download.pytorch.org/models/googlenet-1378be20.pth',
    file: 'googlenet-1378be20.pth',
    sha256Prefix: '1378be20',
    description: 'torchvision GoogLeNet, ImageNet (IMAGENET1K_V1)',
  },
  {
    name: 'dino-vits16',
    backbone: 'dino-vits16',
    url: 'https://dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth',
    file: 'dino_deitsmall16_pretrain.pth',
    description: 'DINO ViT-S/16 backbone, self-supervised on ImageNet (dino_deitsmall16_pretrain.pth)',
  },
];

export const WEIGHTS_NAMES: readonly string[] = ENTRIES.map((e) => e.name);

export function isWeightsName(name: string): boolean {
  return WEIGHTS_NAMES.includes(name);
}

export function weightsEntry(name: string): WeightsEntry {
  const e = ENTRIES.find((x) => x.name === name);
  if (!e) throw new UserError(`unknown weights '${name}': expected ${nameList(WEIGHTS_NAMES)} (hardneg weights list)`);
  return e;
}

export function listWeights(): readonly WeightsEntry[] {
  return ENTRIES;
}
