// The backbone interface: images (NHWC, float) → features [n, n_mid]. Pretrained ONNX and
// frozen-feature backbones implement the same interface; their parameters (if any) live under
// feature_extractor.backbone.* in the state dict.
import type * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { StateDict } from './state_dict.ts';
import type { OnnxExportContext, OnnxGraph } from '../export/onnx_graph.ts';

export interface Backbone {
  name: string;
  /** Feature width n_mid. */
  features: number;
  /**
   * How the official Feature_Extractor initialises the head's Linear for this backbone: PyTorch's
   * default (absent), or, for DINO, an orthogonal weight (gain 1) and a zero bias.
   */
  readonly headInit?: 'orthogonal';
  /** Adds freshly initialised parameters to the state dict. */
  init(sd: StateDict, rng: Random): void;
  forward(sd: StateDict, images: tf.Tensor4D, training: boolean): tf.Tensor2D;
  /**
   * Where the training forward is a per-sample function (no batch statistics — BatchNorm frozen —,
   * no dropout, nothing that mixes images): the full names of the parameters it reads, so that
   * a large batch may go through in chunks (src/nn/chunked_backbone.ts). Absent, or null: the
   * batch is one piece.
   */
  perSampleParameters?(): string[] | null;
  /**
   * Writes the evaluation-mode forward into an ONNX graph (hardneg export): `input` names the
   * float32 NCHW image batch (`ctx`: its fixed height and width, and the opset being written);
   * returns the name of the [n, features] output. A backbone without it cannot be exported (the
   * exporter says so).
   */
  exportOnnx?(sd: StateDict, g: OnnxGraph, input: string, ctx: OnnxExportContext): string;
}
