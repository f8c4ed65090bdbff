// Conversions between TensorFlow.js tensors and host tensors.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../io/host_tensor.ts';

export function toHost(t: tf.Tensor): HostTensor {
  return { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
}

export function fromHost(t: HostTensor): tf.Tensor {
  return tf.tensor(Float32Array.from(t.data as Float32Array | Float64Array), t.shape, 'float32');
}
