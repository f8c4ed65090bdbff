// What the ONNX writers share: the opsets they are written for, the model's input and output
// names, the options of a model built in memory, and the declaration of a float tensor.
import { UserError } from '../errors.ts';
import { type Dim, ONNX_FLOAT, type ValueInfoMsg } from './onnx_proto.ts';

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
