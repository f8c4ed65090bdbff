// The backbone registry: every `model.backbone` name with what the rest of the code needs to know
// of it — how images reach it, the side of the images it takes, its feature width, whether every
// training image is augmented, and how it is built. The configuration's accepted names
// (src/train/config.ts), the data path (src/train/datasets.ts), the trainer's augmentation
// (src/train/trainer.ts) and the run setup (src/train/setup.ts) read this table: adding a backbone
// is an entry here plus its model file.
import { PAPER_TRAIN_TRANSFORM } from '../data/transforms.ts';
import type { Backbone } from './backbone.ts';
import { DINO_VITS16_FEATURES, dinoVitS16 } from './dino_vit.ts';
import { GOOGLENET_FEATURES, googlenet } from './googlenet.ts';
import { featureIdentityBackbone } from './onnx_backbone.ts';
import { RESNET50_FEATURES, resnet50 } from './resnet50.ts';
import { SMALL_CNN_FEATURES, smallCnn } from './small_cnn.ts';
import type { StateDict } from './state_dict.ts';
import { loadTorchvisionFile, type LoadReport, type TorchvisionBackbone } from './torchvision.ts';

/**
 * How images reach a backbone (src/train/datasets.ts has one data path per kind):
 *  - 'small-images': small images held in memory at dataset.imageSize (fashion-mnist, folder),
 *    trained from scratch; a seeded flip (dataset.flip) is the only augmentation;
 *  - 'paper-pipeline': image files through the paper's 224-px pipeline (seeded RandomResizedCrop
 *    + flip in training, Resize 256 + CenterCrop 224 for evaluation), pretrained weights (torchvision
 *    or DINO) from model.weights;
 *  - 'frozen-features': features of the ONNX image model model.onnx, extracted once with the
 *    evaluation transform (and from mirrored images, for flips) and cached; only the embedding head
 *    and GCA-HNG train.
 */
export type BackboneInput = 'small-images' | 'paper-pipeline' | 'frozen-features';

/** The configuration fields that set the side of a backbone's input images. */
export interface InputSizeFields {
  /** dataset.imageSize */
  imageSize: number;
  /** model.onnxInputSize */
  onnxInputSize: number;
}

interface Spec<I extends BackboneInput, O, B extends Backbone> {
  readonly input: I;
  /** One line for help texts. */
  readonly description: string;
  /** Feature width n_mid; null where the model file decides (the ONNX model's output width). */
  readonly features: number | null;
  /** Side of the square images it takes. */
  inputSize(fields: InputSizeFields): number;
  /**
   * Every training image gets an augmentation seed (the paper's crop + flip, or a mirrored cached
   * feature); false: only with dataset.flip.
   */
  readonly augmentsEveryImage: boolean;
  create(options: O): B;
}

export type SmallImageBackboneSpec = Spec<'small-images', { channels: number }, Backbone>;
export interface PaperBackboneSpec extends Spec<'paper-pipeline', { bnFreeze: boolean; pooling: boolean }, TorchvisionBackbone> {
  /** Whether it offers global average + max pooling (model.pooling, `features --pooling avg+max`); else its own pooling is fixed. */
  readonly avgMaxPooling: boolean;
  /** Reads a weights file (.pth in either torch.save format, or safetensors) into `sd` under the backbone's names. */
  loadWeights(sd: StateDict, backbone: TorchvisionBackbone, path: string): LoadReport;
}
export type FrozenFeatureBackboneSpec = Spec<'frozen-features', { width: number }, Backbone>;
export type BackboneSpec = SmallImageBackboneSpec | PaperBackboneSpec | FrozenFeatureBackboneSpec;

const PAPER_SIDE = PAPER_TRAIN_TRANSFORM.size;

const REGISTRY = {
  'small-cnn': {
    input: 'small-images',
    description: 'a small CNN trained from scratch on small images (dataset.imageSize)',
    features: SMALL_CNN_FEATURES,
    inputSize: (f) => f.imageSize,
    augmentsEveryImage: false,
    create: (o) => smallCnn(o.channels),
  } satisfies SmallImageBackboneSpec,
  resnet50: {
    input: 'paper-pipeline',
    description: "torchvision ResNet-50, the paper's 224-px pipeline, weights from model.weights",
    features: RESNET50_FEATURES,
    inputSize: () => PAPER_SIDE,
    augmentsEveryImage: true,
    avgMaxPooling: true,
    create: (o) => resnet50({ bnFreeze: o.bnFreeze, pooling: o.pooling }),
    loadWeights: loadTorchvisionFile,
  } satisfies PaperBackboneSpec,
  googlenet: {
    input: 'paper-pipeline',
    description: "torchvision GoogLeNet, the paper's 224-px pipeline, weights from model.weights",
    features: GOOGLENET_FEATURES,
    inputSize: () => PAPER_SIDE,
    augmentsEveryImage: true,
    avgMaxPooling: false,
    create: (o) => googlenet({ bnFreeze: o.bnFreeze }),
    loadWeights: loadTorchvisionFile,
  } satisfies PaperBackboneSpec,
  onnx: {
    input: 'frozen-features',
    description: 'frozen-feature mode: features of model.onnx cached once, then only the head and GCA-HNG train',
    features: null,
    inputSize: (f) => f.onnxInputSize,
    augmentsEveryImage: true,
    create: (o) => featureIdentityBackbone(o.width),
  } satisfies FrozenFeatureBackboneSpec,
  'dino-vits16': {
    input: 'paper-pipeline',
    description: "DINO ViT-S/16 (CLS token, 384 features), the paper's 224-px pipeline, weights from model.weights",
    features: DINO_VITS16_FEATURES,
    inputSize: () => PAPER_SIDE,
    augmentsEveryImage: true,
    avgMaxPooling: false,
    create: () => dinoVitS16(),
    loadWeights: loadTorchvisionFile,
  } satisfies PaperBackboneSpec,
};

export type BackboneName = keyof typeof REGISTRY;

/** Every backbone name, in the registry's order (the first is the configuration's default). */
export const BACKBONE_NAMES = Object.keys(REGISTRY) as [BackboneName, ...BackboneName[]];

export function backboneSpec(name: BackboneName): BackboneSpec {
  return REGISTRY[name];
}

/**
 * The backbones that turn images into features with pretrained weights (the paper pipeline's): the names `hardneg features --backbone` takes and model.frozen extracts with.
 * small-cnn is not one (it only ever trains from scratch), nor onnx (its model is a file of its own).
 */
export const PRETRAINED_BACKBONE_NAMES = BACKBONE_NAMES.filter((n) => REGISTRY[n].input === 'paper-pipeline');

export function isPretrainedBackbone(name: string): boolean {
  return (PRETRAINED_BACKBONE_NAMES as readonly string[]).includes(name);
}

/** The registry entry of a pretrained backbone (see PRETRAINED_BACKBONE_NAMES). */
export function pretrainedBackboneSpec(name: BackboneName): PaperBackboneSpec {
  const spec: BackboneSpec = REGISTRY[name];
  if (spec.input !== 'paper-pipeline') throw new Error(`${name} is not a pretrained image backbone`);
  return spec;
}

/** The backbones whose images arrive one way (for messages that name the alternatives). */
export function backbonesTaking(inputs: readonly BackboneInput[]): BackboneName[] {
  return BACKBONE_NAMES.filter((n) => inputs.includes(REGISTRY[n].input));
}
