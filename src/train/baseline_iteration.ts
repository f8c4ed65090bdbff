// One iteration of the `none` method: the same model and N-pair loss J_m, no generated negatives,
// no GNN: zero opt_c, backward J_m, clip, step.
import * as tf from '@tensorflow/tfjs';
import { npairLoss } from '../losses/npair.ts';
import type { IterationBatch, IterationModel } from './iteration.ts';

export function baselineIteration(m: IterationModel, b: IterationBatch): { J_m: number } {
  m.optC.zeroGrad();
  const names = m.optC.params().filter((n) => !m.frozen?.has(n));
  const vars = names.map((n) => m.sd.get(n));
  const { value, grads } = tf.variableGrads(() => npairLoss(m.embed(b.input), b.labels, m.shape.P, m.shape.K), vars);
  for (const v of vars) {
    const g = grads[v.name];
    if (g) m.optC.accumulate(m.sd.nameOf(v) as string, g);
  }
  const jM = value.dataSync()[0] as number;
  value.dispose();
  Object.values(grads).forEach((g) => g.dispose());
  if (m.clip !== null) m.optC.clipGradValue(m.clip);
  m.optC.step();
  return { J_m: jM };
}
