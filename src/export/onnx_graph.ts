// A small builder of ONNX graphs: what a backbone's `exportOnnx` (src/models/backbone.ts) writes
// into. Weights become float32 initializers taken from the state dict; node and tensor names are
// prefixed so a composed graph (a frozen ONNX backbone + the head) never sees two of one name.
import type * as tf from '@tensorflow/tfjs';
import { ATTR, type AttributeMsg, type NodeMsg, ONNX_FLOAT, ONNX_INT64, type TensorMsg } from './onnx_proto.ts';

export type AttrValue = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string };

function attribute(name: string, v: AttrValue): AttributeMsg {
  if ('i' in v) return { name, type: ATTR.INT, i: v.i };
  if ('f' in v) return { name, type: ATTR.FLOAT, f: v.f };
  if ('ints' in v) return { name, type: ATTR.INTS, ints: v.ints };
  if ('floats' in v) return { name, type: ATTR.FLOATS, floats: v.floats };
  return { name, type: ATTR.STRING, s: new TextEncoder().encode(v.s) };
}

/** What a backbone's exportOnnx may need beyond its weights: the fixed image side and the opset written. */
export interface OnnxExportContext {
  height: number;
  width: number;
  opset: number;
}

export class OnnxGraph {
  readonly nodes: NodeMsg[] = [];
  readonly initializers: TensorMsg[] = [];
  private count = 0;

  constructor(private readonly prefix = 'hardneg/') {}

  private fresh(what: string): string {
    return `${this.prefix}${what}_${this.count++}`;
  }

  /** A float32 initializer; returns its name. */
  floats(data: Float32Array | readonly number[], dims: number[], what = 'const'): string {
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    const name = this.fresh(what);
    this.initializers.push({ name, dims, data_type: ONNX_FLOAT, raw_data: new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength)) });
    return name;
  }

  /** An int64 initializer (shapes, axes). */
  int64s(values: readonly number[], what = 'ints'): string {
    const b = new BigInt64Array(values.map((v) => BigInt(v)));
    const name = this.fresh(what);
    this.initializers.push({ name, dims: [values.length], data_type: ONNX_INT64, raw_data: new Uint8Array(b.buffer) });
    return name;
  }

  /** A state-dict tensor as an initializer (its PyTorch layout, which ONNX shares: Conv [out, in, kh, kw], Gemm [out, in]). */
  weight(t: tf.Tensor, what = 'w'): string {
    return this.floats(Float32Array.from(t.dataSync() as Float32Array), [...t.shape], what);
  }

  /** Adds a node with `count` outputs (Split); returns their names. */
  nodeOutputs(op: string, inputs: string[], count: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = Array.from({ length: count }, () => this.fresh(op.toLowerCase()));
    this.node(op, inputs, attrs, outs);
    return outs;
  }

  /** Adds a node; returns its (first) output's name. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[]): string {
    const out = outputs ?? [this.fresh(op.toLowerCase())];
    this.nodes.push({
      input: inputs,
      output: out,
      name: this.fresh(`${op}_node`),
      op_type: op,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out[0] as string;
  }
}
