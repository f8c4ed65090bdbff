// Tools that shape what a TensorFlow.js backward pass keeps and computes.
//
// TensorFlow.js keeps every intermediate gradient of a backward pass alive until the pass ends,
// so a whole GNN on one tape costs several times its activations in gradients alone.
//  - `segment(fn, xs)` runs fn once on a tape of its own and puts ONE node on the caller's tape;
//    its gradient back-propagates through that private tape and frees each intermediate gradient
//    as soon as it is used. Activations are kept (no recomputation), gradients live per segment.
//  - `checkpoint(fn, xs)` keeps only the inputs and recomputes fn when the gradient is needed:
//    less memory, one more forward pass.
//  - `lazyGradOp` is an op whose input gradients are computed only for the inputs the backward
//    pass asks for (tf.customGrad computes all of them), e.g. no weight gradient for a frozen layer.
// `fn` must be a pure function of its arguments (pass dropout masks in, not random draws).
import * as tf from '@tensorflow/tfjs';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

type Thunks = Record<string, () => tf.Tensor>;

interface EngineInternals {
  state: { activeTape: TapeNode[] | null };
  isTapeOn(): boolean;
  addTapeNode(
    name: string,
    inputs: Record<string, tf.Tensor>,
    outputs: tf.Tensor[],
    gradient: (dy: tf.Tensor) => Thunks,
    saved: tf.Tensor[],
    attrs: object,
  ): void;
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: tf.GradSaveFunc) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Thunks;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

const engine = () => tf.engine() as unknown as EngineInternals;
const inputMap = (xs: tf.Tensor[]) => Object.fromEntries(xs.map((t, i) => [String(i), t]));

/** An op y = forward(save) of `inputs`; grads(dy, saved) gives one thunk per input, called only when needed. */
export function lazyGradOp(
  inputs: tf.Tensor[],
  forward: (save: tf.GradSaveFunc) => tf.Tensor,
  grads: (dy: tf.Tensor, saved: tf.Tensor[]) => Array<() => tf.Tensor>,
): tf.Tensor {
  return engine().runKernelFunc({
    forwardFunc: (_backend, save) => forward(save),
    backwardsFunc: (dy, saved) => Object.fromEntries(grads(dy, saved).map((g, i) => [String(i), g])),
    inputs: inputMap(inputs),
  });
}

/**
 * Runs `fn`, a gradient computation, inside another one's backward pass: a gradient computation
 * replaces the engine's active tape and clears it when done, but the outer pass still needs its
 * tape for its own clean-up, so it is restored afterwards.
 */
export function withinBackward<T>(fn: () => T): T {
  const e = engine();
  const outerTape = e.state.activeTape;
  try {
    return fn();
  } finally {
    e.state.activeTape = outerTape;
  }
}

function recomputeGradients(fn: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  return withinBackward(() => tf.tidy(() => tf.grads((...args: tf.Tensor[]) => fn(...args))(xs, dy)));
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

/**
 * Which of `xs` can carry a gradient: trainable variables and what the current tape computed
 * from them (PyTorch's requires_grad). A segment computes only these inputs' gradients up front.
 */
function requiresGrad(tape: TapeNode[], xs: tf.Tensor[]): boolean[] {
  const isParam = (t: tf.Tensor) => t instanceof tf.Variable && t.trainable;
  const reached = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => isParam(t) || reached.has(t.id))) node.outputs.forEach((o) => reached.add(o.id));
  }
  return xs.map((x) => isParam(x) || reached.has(x.id));
}

/** The tape nodes on a path from xs to y, each with only its inputs that depend on xs (as tfjs does). */
function pathFromTo(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      node.outputs.forEach((o) => fromX.add(o.id));
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i] as TapeNode;
    if (node.outputs.some((o) => toY.has(o.id))) {
      Object.values(node.inputs).forEach((t) => toY.add(t.id));
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((n) => nodesFromX.has(n.id) && nodesToY.has(n.id))
    .map((n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))) }));
}

/**
 * Back-propagates dy from y through `tape` to xs, disposing every intermediate gradient once
 * the node that consumes it is done. Returns the gradients by tensor id (absent: no path).
 */
function backprop(tape: TapeNode[], y: tf.Tensor, dy: tf.Tensor, xs: tf.Tensor[]): Map<number, tf.Tensor> {
  const acc = new Map<number, tf.Tensor>([[y.id, dy]]);
  const keep = new Set(xs.map((x) => x.id));
  const nodes = pathFromTo(tape, xs, y);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i] as TapeNode;
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
    const inputs = Object.entries(node.inputs);
    // In a tidy: a custom gradient computes its results eagerly, with all its temporaries.
    const dxs = tf.tidy(() => {
      const thunks = node.gradient?.(dys) as Thunks;
      return inputs.map(([name]) => (thunks[name] as () => tf.Tensor)());
    });
    for (const [k, [, x]] of inputs.entries()) {
      let dx = dxs[k] as tf.Tensor;
      if (dys.includes(dx) || dxs.indexOf(dx) !== k) dx = tf.clone(dx); // aliased: the output's gradient is freed below
      const prev = acc.get(x.id);
      acc.set(x.id, prev ? tf.add(prev, dx) : dx);
      if (prev) {
        prev.dispose();
        dx.dispose();
      }
    }
    for (const o of node.outputs) {
      const g = acc.get(o.id);
      if (g && g !== dy && !keep.has(o.id)) {
        g.dispose();
        acc.delete(o.id);
      }
    }
  }
  acc.delete(y.id);
  return acc;
}

export function segment(fn: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): tf.Tensor {
  const e = engine();
  if (!e.isTapeOn()) return fn(...inputs);
  const outerTape = e.state.activeTape as TapeNode[];
  const needed = requiresGrad(outerTape, inputs);
  e.state.activeTape = [];
  let y: tf.Tensor;
  let tape: TapeNode[];
  try {
    y = fn(...inputs);
  } finally {
    tape = e.state.activeTape as TapeNode[];
    e.state.activeTape = outerTape;
  }
  // The private tape's saved tensors are handed to the engine, which disposes them with its own
  // at the end of the outer backward pass (or of the outer tape, if it never runs).
  const saved = tape.flatMap((n) => n.saved ?? []);
  const gradient = (dy: tf.Tensor): Thunks => {
    const grads = backprop(
      tape,
      y,
      dy,
      inputs.filter((_, i) => needed[i]),
    );
    const late = (x: tf.Tensor) => () => {
      // An input we did not expect to need a gradient (its source was not a trainable variable).
      const g = backprop(tape, y, dy, [x]);
      return g.get(x.id) ?? tf.zerosLike(x);
    };
    return Object.fromEntries(
      inputs.map((x, i) => {
        const g = grads.get(x.id);
        return [String(i), needed[i] ? () => g ?? tf.zerosLike(x) : late(x)];
      }),
    );
  };
  e.addTapeNode('HardnegSegment', inputMap(inputs), [y], gradient, saved, {});
  return y;
}
