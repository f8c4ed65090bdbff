// The layers the backbones' exportOnnx write, as ONNX nodes on NCHW tensors (convolutions) or
// [n, tokens, width] tensors (the ViT): each mirrors the evaluation-mode forward of the layer of
// the same name under src/nn/, with the state dict's PyTorch-layout weights.
import * as tf from '@tensorflow/tfjs';
import type { StateDict } from '../models/state_dict.ts';
import type { OnnxGraph } from './onnx_graph.ts';

/** Conv2d without bias, square kernel, symmetric padding (the torchvision backbones' convolutions). */
export function convNoBias(g: OnnxGraph, x: string, weight: tf.Tensor, stride: number, padding: number, what: string): string {
  const [, , kh, kw] = weight.shape as [number, number, number, number];
  return g.node('Conv', [x, g.weight(weight, what)], {
    kernel_shape: { ints: [kh, kw] },
    strides: { ints: [stride, stride] },
    pads: { ints: [padding, padding, padding, padding] },
  });
}

/**
 * BatchNorm2d with running statistics under the full name `name` (name.weight, .bias,
 * .running_mean, .running_var): ONNX's BatchNormalization in inference mode computes the same
 * (x − μ)/√(σ² + eps)·γ + β, and onnxruntime folds it into the convolution before it.
 */
export function batchNorm(g: OnnxGraph, sd: StateDict, x: string, name: string, eps: number): string {
  return g.node(
    'BatchNormalization',
    [
      x,
      g.weight(sd.get(`${name}.weight`), 'bn_scale'),
      g.weight(sd.get(`${name}.bias`), 'bn_bias'),
      g.weight(sd.get(`${name}.running_mean`), 'bn_mean'),
      g.weight(sd.get(`${name}.running_var`), 'bn_var'),
    ],
    { epsilon: { f: eps } },
  );
}

/** MaxPool2d(kernel, stride, padding, ceil_mode) with PyTorch's implicit −∞ padding (ONNX's as well). */
export function maxPool(g: OnnxGraph, x: string, kernel: number, stride: number, padding = 0, ceilMode = false): string {
  return g.node('MaxPool', [x], {
    kernel_shape: { ints: [kernel, kernel] },
    strides: { ints: [stride, stride] },
    pads: { ints: [padding, padding, padding, padding] },
    ceil_mode: { i: ceilMode ? 1 : 0 },
  });
}

/** [n, C, h, w] → [n, C]: AdaptiveAvgPool2d(1) (or the max) and a flatten. */
export function globalPool(g: OnnxGraph, x: string, kind: 'avg' | 'max'): string {
  return g.node('Flatten', [g.node(kind === 'avg' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x])], { axis: { i: 1 } });
}

/**
 * nn.Linear on the last axis of a tensor of any rank: MatMul with the weight transposed (stored
 * [in, out], so the graph does not transpose it on every run) and the bias added.
 */
export function linear(g: OnnxGraph, x: string, weight: tf.Tensor, bias: tf.Tensor, what: string): string {
  const wt = tf.tidy(() => tf.transpose(weight));
  try {
    return g.node('Add', [g.node('MatMul', [x, g.weight(wt, `${what}_wT`)]), g.weight(bias, `${what}_b`)]);
  } finally {
    wt.dispose();
  }
}

/**
 * LayerNorm over the last axis (biased variance, as torch): ONNX's LayerNormalization from opset
 * 17; below it, the same from primitives. ReduceMean takes its axes as an attribute up to opset 17
 * (an input from 18), which is all the decomposition needs.
 */
export function layerNorm(g: OnnxGraph, x: string, weight: tf.Tensor, bias: tf.Tensor, eps: number, opset: number, what: string): string {
  const w = g.weight(weight, `${what}_w`);
  const b = g.weight(bias, `${what}_b`);
  if (opset >= 17) return g.node('LayerNormalization', [x, w, b], { axis: { i: -1 }, epsilon: { f: eps } });
  const mean = g.node('ReduceMean', [x], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  const centred = g.node('Sub', [x, mean]);
  const variance = g.node('ReduceMean', [g.node('Mul', [centred, centred])], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  const normed = g.node('Div', [centred, g.node('Sqrt', [g.node('Add', [variance, g.floats([eps], [], 'ln_eps')])])]);
  return g.node('Add', [g.node('Mul', [normed, w]), b]);
}

/** Exact GELU, x·(1 + erf(x/√2))/2 (ONNX's Gelu op only exists from opset 20). */
export function gelu(g: OnnxGraph, x: string): string {
  const erf = g.node('Erf', [g.node('Mul', [x, g.floats([Math.SQRT1_2], [], 'inv_sqrt2')])]);
  return g.node('Mul', [g.node('Mul', [x, g.floats([0.5], [], 'half')]), g.node('Add', [erf, g.floats([1], [], 'one')])]);
}
