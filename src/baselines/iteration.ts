// One iteration of a method other than GCA-HNG: the base loss alone (`none`) or a baseline
// generator (hdml-lite, ee, symm, ps, daml-lite) around it: zero opt_c, backward the method's objective,
// clip, step. Proxies and a generator's own parameters are in opt_c's extra groups.
import * as tf from '@tensorflow/tfjs';
import type { Random } from '../engine/random.ts';
import type { HardNegativeGenerator } from './index.ts';
import type { MetricLoss } from '../losses/metric/index.ts';
import type { IterationBatch, IterationModel } from '../gca_hng/iteration.ts';

export function baselineIteration(
  m: IterationModel,
  b: IterationBatch,
  generator: HardNegativeGenerator,
  loss: MetricLoss,
  rng: Random,
): Record<string, number> {
  m.optC.zeroGrad();
  const names = m.optC.params().filter((n) => !m.frozen?.has(n));
  const vars = names.map((n) => m.sd.get(n));
  const terms: Record<string, number> = {};
  const { value, grads } = tf.variableGrads(() => {
    const o = generator.objective(loss, { embeddings: m.embed(b.input), labels: b.labels, rng, jAvg: b.jAvg });
    for (const [k, t] of Object.entries(o.terms)) terms[k] = t.dataSync()[0] as number;
    return o.total;
  }, vars);
  for (const v of vars) {
    const g = grads[v.name];
    if (g) m.optC.accumulate(m.sd.nameOf(v) as string, g);
  }
  const total = value.dataSync()[0] as number;
  value.dispose();
  Object.values(grads).forEach((g) => g.dispose());
  if (m.clip !== null) m.optC.clipGradValue(m.clip);
  m.optC.step();
  return { J_m: terms.J_m ?? total, ...terms, J_total: total };
}
