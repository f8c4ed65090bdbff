// Gradient checkpointing: run `fn` without recording it on the gradient tape and recompute it
// (with its own, short-lived tape) when the gradient is needed. TensorFlow.js keeps every
// intermediate gradient of a backward pass alive until the pass ends, so a whole GNN layer on
// the tape costs several times its activations; checkpointed, only its inputs are kept.
// `fn` must be a pure function of its arguments (pass dropout masks in, not random draws).
import * as tf from '@tensorflow/tfjs';

interface EngineState {
  state: { activeTape: unknown };
}

function recomputeGradients(fn: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  // A gradient computed inside another one's backward pass replaces the engine's active tape and
  // clears it when done; the outer pass still needs its tape for its own clean-up, so restore it.
  const engine = tf.engine() as unknown as EngineState;
  const outerTape = engine.state.activeTape;
  try {
    return tf.tidy(() => tf.grads((...args: tf.Tensor[]) => fn(...args))(xs, dy));
  } finally {
    engine.state.activeTape = outerTape;
  }
}

export function checkpoint(fn: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xs = args.slice(0, -1) as tf.Tensor[];
    save(xs);
    return {
      value: fn(...xs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => recomputeGradients(fn, saved, dy),
    };
  }) as unknown as (...xs: tf.Tensor[]) => tf.Tensor;
  return op(...inputs);
}
