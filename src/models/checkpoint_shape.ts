// What a GCA-HNG checkpoint's tensors say about the model: embedding width, GNN depth, classes.
import type { HostTensor } from '../io/host_tensor.ts';
import { gnnParameterShapes } from '../gca_hng/gnn/names.ts';

export interface GeneratorDims {
  D: number;
  L: number;
  C: number;
}

export function generatorDims(tensors: Map<string, HostTensor>, source: string): GeneratorDims {
  const dimRed = tensors.get('gnn.dim_red.weight');
  const cls = tensors.get('gnn.cls.0.weight');
  if (!dimRed || !cls) throw new Error(`${source}: not a GCA-HNG checkpoint (missing gnn.dim_red.weight or gnn.cls.0.weight)`);
  const D = dimRed.shape[0] as number;
  let L = 0;
  while (tensors.has(`gnn.gnn.${L}.edge_model.att.q_linear.weight`)) L++;
  const C = cls.shape[0] as number;
  for (const [name, shape] of gnnParameterShapes(D, L, C)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${source}: missing '${name}' (a checkpoint with D=${D}, L=${L}, C=${C} needs it)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${source}: '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  return { D, L, C };
}
