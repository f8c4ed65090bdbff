// What the ONNX writers share: the opsets they are written for, the model's input and output
// names, the options of a model built in memory, the declaration of a float tensor, and the
// model around a graph that takes an image batch.
import { UserError } from '../errors.ts';
import { VERSION } from '../version.ts';
import type { OnnxGraph } from './onnx_graph.ts';
import { type Dim, encodeModel, ONNX_FLOAT, type ValueInfoMsg } from './onnx_proto.ts';

export const DEFAULT_OPSET = 17;
export const MIN_OPSET = 13;
/** The newest opset the exporter's ops are written for (ReduceSum takes axes as an input from 13 on, unchanged through 21). */
export const MAX_OPSET = 21;
/** The exported model's input and output names. */
export const INPUT = 'images';
export const OUTPUT = 'embeddings';

export interface MetricModelExportOptions {
  opset?: number;
  metadata?: Record<string, string>;
  doc?: string;
}

export function tensorInfo(name: string, dims: Dim[]): ValueInfoMsg {
  return { name, type: { tensor_type: { elem_type: ONNX_FLOAT, shape: { dim: dims } } } };
}

export function checkOpset(opset: number): void {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET)
    throw new UserError(`--opset ${opset}: expected an integer from ${MIN_OPSET} to ${MAX_OPSET}`);
}

/**
 * The bytes of the model around `g`: float32 [n, C, H, W] NCHW images of a fixed side in as
 * INPUT, [n, width] out as `output`, a dynamic batch axis n.
 */
export function encodeImageModel(
  g: OnnxGraph,
  o: {
    graphName: string;
    output: string;
    width: number;
    inputShape: readonly [number, number, number];
    opset: number;
    doc: string;
    metadata?: Record<string, string>;
  },
): Uint8Array {
  const [C, H, W] = o.inputShape;
  return encodeModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: o.opset }],
    producer_name: 'hardneg',
    producer_version: VERSION,
    doc_string: o.doc,
    graph: {
      name: o.graphName,
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorInfo(INPUT, [{ dim_param: 'n' }, { dim_value: C }, { dim_value: H }, { dim_value: W }])],
      output: [tensorInfo(o.output, [{ dim_param: 'n' }, { dim_value: o.width }])],
    },
    metadata_props: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}
