// Optional capture of intermediate tensors (for golden comparisons and diagnostics).
import * as tf from '@tensorflow/tfjs';

export type Recorder = (name: string, value: tf.Tensor) => void;

/** A recorder that keeps clones of what it is given in a map the caller must dispose. */
export function mapRecorder(into: Map<string, tf.Tensor>): Recorder {
  return (name, value) => {
    into.get(name)?.dispose();
    into.set(name, tf.keep(tf.clone(value)));
  };
}
