// A backbone alone (no head) as an ONNX model: what BackboneFeatureModel runs in onnxruntime-node.
// Kept apart from export_model.ts, which knows runs and embedders, so the models layer can use it.
import { UserError } from '../errors.ts';
import type { Backbone } from '../models/backbone.ts';
import type { StateDict } from '../models/state_dict.ts';
import { checkOpset, DEFAULT_OPSET, encodeImageModel, INPUT, type MetricModelExportOptions } from './onnx_common.ts';
import { OnnxGraph } from './onnx_graph.ts';

/** The backbone-only model's output name (exportBackboneFeatures). */
export const FEATURES_OUTPUT = 'features';

/**
 * A backbone alone (no head) as the bytes of an ONNX model taking float32 [n, C, H, W] NCHW images
 * of the fixed side H × W as `images` and giving `features` [n, F]: the evaluation-mode forward,
 * pooling included, exactly as Backbone.forward computes it. BackboneFeatureModel runs it in
 * onnxruntime-node, which was measured faster than our own kernels on these backbones.
 */
export function exportBackboneFeatures(
  backbone: Backbone,
  sd: StateDict,
  [C, H, W]: [number, number, number],
  opts: MetricModelExportOptions = {},
): Uint8Array {
  const opset = opts.opset ?? DEFAULT_OPSET;
  checkOpset(opset);
  if (!backbone.exportOnnx) throw new UserError(`the ${backbone.name} backbone cannot be exported to ONNX (it does not implement Backbone.exportOnnx)`);
  const g = new OnnxGraph();
  // The backbone names its own output; an Identity gives it the fixed name callers read.
  const out = g.node('Identity', [backbone.exportOnnx(sd, g, INPUT, { height: H, width: W, opset })], {}, [FEATURES_OUTPUT]);
  return encodeImageModel(g, {
    graphName: 'hardneg_features',
    output: out,
    width: backbone.features,
    inputShape: [C, H, W],
    opset,
    doc: opts.doc ?? `hardneg ${backbone.name} features: float32 [n, ${C}, ${H}, ${W}] NCHW → [n, ${backbone.features}]`,
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
}
