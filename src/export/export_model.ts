// The whole image → embedding model of a run as one ONNX model (hardneg export): input float32
// [n, C, H, W] NCHW, transformed as the run evaluates (the Embedder's preprocessing, recorded in
// the model's metadata_props), output [n, D] — the same numbers as Embedder.embedTensor.
//
// The backbone writes its own graph (Backbone.exportOnnx); the head (BatchNorm1d in evaluation
// mode → Linear, and the L2 normalisation of model.normalize) is written here. In frozen-feature
// mode the run's ONNX backbone (model.onnx) is read and composed with the head: the exported
// model then takes what that model takes (its input, its opset), and only the head is new.
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { Embedder } from '../inference/embedder.ts';
import { backboneSpec } from '../models/backbones.ts';
import { HEAD_BN, HEAD_LINEAR } from '../models/embedding_head.ts';
import type { MetricModel } from '../models/metric_model.ts';
import type { StateDict } from '../models/state_dict.ts';
import { VERSION } from '../version.ts';
import { checkOpset, DEFAULT_OPSET, encodeImageModel, INPUT, type MetricModelExportOptions, MIN_OPSET, OUTPUT, tensorInfo } from './onnx_common.ts';
import { OnnxGraph } from './onnx_graph.ts';
import { decodeModel, type Dim, encodeModel, type GraphMsg, type ModelMsg } from './onnx_proto.ts';

export { DEFAULT_OPSET, INPUT, MAX_OPSET, type MetricModelExportOptions, MIN_OPSET, OUTPUT } from './onnx_common.ts';
export { exportBackboneFeatures, FEATURES_OUTPUT } from './backbone_features.ts';

export interface ExportOptions {
  /** Default 17; frozen-feature mode keeps the frozen model's own opset. */
  opset?: number;
}

export interface ExportResult {
  bytes: Uint8Array;
  opset: number;
  inputName: string;
  outputName: string;
  /** [C, H, W] for native backbones; the frozen model's declared input otherwise. */
  inputShape: (number | string)[];
  metadata: Record<string, string>;
}

/** BatchNorm1d (running statistics) → Linear → optional L2 normalisation, from `features` [n, F]. */
function writeHead(sd: StateDict, g: OnnxGraph, features: string, normalize: boolean): string {
  const bn = g.node(
    'BatchNormalization',
    [
      features,
      g.weight(sd.get(`${HEAD_BN}.weight`), 'bn_scale'),
      g.weight(sd.get(`${HEAD_BN}.bias`), 'bn_bias'),
      g.weight(sd.get(`${HEAD_BN}.running_mean`), 'bn_mean'),
      g.weight(sd.get(`${HEAD_BN}.running_var`), 'bn_var'),
    ],
    { epsilon: { f: 1e-5 } },
  );
  const z = g.node(
    'Gemm',
    [bn, g.weight(sd.get(`${HEAD_LINEAR}.weight`), 'fc_w'), g.weight(sd.get(`${HEAD_LINEAR}.bias`), 'fc_b')],
    { transB: { i: 1 } },
    normalize ? undefined : [OUTPUT],
  );
  if (!normalize) return z;
  // z/√(Σz² + 1e-12), as src/models/embedding_head.ts.
  const sum = g.node('ReduceSum', [g.node('Mul', [z, z]), g.int64s([1], 'axes')], { keepdims: { i: 1 } });
  const norm = g.node('Sqrt', [g.node('Add', [sum, g.floats([1e-12], [], 'eps')])]);
  return g.node('Div', [z, norm], {}, [OUTPUT]);
}

function metadataOf(e: Embedder, opset: number): Record<string, string> {
  const p = e.preprocessing;
  return {
    'hardneg.version': VERSION,
    'hardneg.preprocessing': JSON.stringify(p),
    'hardneg.input_layout': 'NCHW',
    'hardneg.resize_policy': p.resizePolicy,
    'hardneg.resize': String(p.resize),
    'hardneg.crop': String(p.size),
    'hardneg.mean': JSON.stringify(p.mean),
    'hardneg.std': JSON.stringify(p.std),
    'hardneg.dim': String(e.dim),
    'hardneg.metric': e.metric,
    'hardneg.backbone': e.config.model.backbone,
    'hardneg.weights': e.model.weights,
    'hardneg.weights_sha256': e.model.sha256,
    'hardneg.opset': String(opset),
    // The fixed image size the graph was written for (a ViT's position embedding is resized to it once).
    'hardneg.input_size': `${e.inputShape[1]}x${e.inputShape[2]}`,
  };
}

/** The run behind `e` as an ONNX model (see the header). */
export function exportOnnx(e: Embedder, opts: ExportOptions = {}): ExportResult {
  const spec = backboneSpec(e.config.model.backbone);
  if (spec.input === 'frozen-features') return exportFrozen(e, opts, e.config.model.normalize);
  const opset = opts.opset ?? DEFAULT_OPSET;
  checkOpset(opset);
  const [C, H, W] = e.inputShape;
  const metadata = metadataOf(e, opset);
  const bytes = exportMetricModel(e.metricModel, [C, H, W], {
    opset,
    metadata,
    doc: `hardneg ${e.config.model.backbone} embedding model: float32 [n, ${C}, ${H}, ${W}] NCHW (preprocessing in metadata_props) → [n, ${e.dim}]`,
  });
  return { bytes, opset, inputName: INPUT, outputName: OUTPUT, inputShape: [C, H, W], metadata };
}

/**
 * A metric model (backbone → head) as the bytes of an ONNX model taking float32 [n, C, H, W] NCHW
 * images of the fixed side H × W as `images` and giving `embeddings` [n, D]: what exportOnnx
 * writes for a run, without the run (the backbone parity tests export models built in memory).
 */
export function exportMetricModel(m: MetricModel, [C, H, W]: [number, number, number], opts: MetricModelExportOptions = {}): Uint8Array {
  const opset = opts.opset ?? DEFAULT_OPSET;
  checkOpset(opset);
  const backbone = m.backbone;
  if (!backbone.exportOnnx)
    throw new UserError(
      `the ${backbone.name} backbone cannot be exported to ONNX (exportable: small-cnn, resnet50, googlenet, dino-vits16 and frozen-feature mode, model.backbone=onnx; a backbone becomes exportable by implementing Backbone.exportOnnx)`,
    );
  const g = new OnnxGraph();
  const out = writeHead(m.sd, g, backbone.exportOnnx(m.sd, g, INPUT, { height: H, width: W, opset }), m.normalize);
  const D = m.sd.get(`${HEAD_LINEAR}.weight`).shape[0] as number;
  return encodeImageModel(g, {
    graphName: 'hardneg_embedder',
    output: out,
    width: D,
    inputShape: [C, H, W],
    opset,
    doc: opts.doc ?? `hardneg ${backbone.name} embedding model: float32 [n, ${C}, ${H}, ${W}] NCHW → [n, ${D}]`,
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
}

function exportFrozen(e: Embedder, opts: ExportOptions, normalize: boolean): ExportResult {
  const path = e.config.model.onnx as string;
  let frozen: ModelMsg;
  try {
    frozen = decodeModel(readFileSync(path));
  } catch (err) {
    throw new UserError(`model.onnx ${path}: not a readable ONNX model (${(err as Error).message})`);
  }
  const graph: GraphMsg = frozen.graph;
  const opset = frozen.opset_import.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx')?.version ?? 0;
  if (opset < MIN_OPSET)
    throw new UserError(
      `model.onnx ${path}: opset ${opset}; the export keeps the frozen backbone's opset and needs ≥ ${MIN_OPSET} (re-export the backbone with opset ≥ 13)`,
    );
  if (opts.opset !== undefined && opts.opset !== opset)
    throw new UserError(`--opset ${opts.opset}: in frozen-feature mode the export keeps the frozen backbone's opset (${opset}; ${path})`);
  if (graph.initializer.some((t) => (t as { data_location?: number }).data_location === 1))
    throw new UserError(`model.onnx ${path}: its weights are in external data files, which the export cannot carry; save the backbone with its weights inside`);
  const inits = new Set(graph.initializer.map((t) => t.name));
  const inputs = graph.input.filter((i) => !inits.has(i.name));
  const image = inputs[0];
  const feature = graph.output[0];
  if (inputs.length !== 1 || !image || !feature) throw new UserError(`model.onnx ${path}: expected one image input and an output, got ${inputs.length} inputs`);
  const g = new OnnxGraph('hardneg_head/');
  // The frozen output's first axis is the batch; the rest is the feature vector (as OnnxImageModel reads it).
  const out = writeHead(e.metricModel.sd, g, g.node('Flatten', [feature.name], { axis: { i: 1 } }), normalize);
  const batch: Dim = image.type?.tensor_type?.shape?.dim[0] ?? { dim_param: 'n' };
  const metadata = metadataOf(e, opset);
  const model: ModelMsg = {
    ...frozen,
    producer_name: 'hardneg',
    producer_version: VERSION,
    doc_string: `hardneg frozen-feature embedding model: ${path} → Flatten → the run's head → [n, ${e.dim}]`,
    graph: {
      ...graph,
      node: [...graph.node, ...g.nodes],
      initializer: [...graph.initializer, ...g.initializers],
      output: [tensorInfo(out, [batch, { dim_value: e.dim }])],
    },
    metadata_props: [...(frozen.metadata_props ?? []), ...Object.entries(metadata).map(([key, value]) => ({ key, value }))],
  };
  const dims = image.type?.tensor_type?.shape?.dim.slice(1).map((d) => ('dim_value' in d ? d.dim_value : d.dim_param)) ?? [];
  return { bytes: encodeModel(model), opset, inputName: image.name, outputName: out, inputShape: dims, metadata };
}
