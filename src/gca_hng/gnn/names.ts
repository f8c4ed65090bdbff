// Official state-dict names of the GNN (`gnn.*`): one function per module so a typo is a compile error.

export const GNN = 'gnn.';

export const nodeLayer = (l: number): string => `gnn.gnn.${l}.node_model.layers.0.`;
export const edgeLayer = (l: number): string => `gnn.gnn.${l}.edge_model.`;

/** Every (name, shape) of the GNN's state dict, in the official key order. */
export function gnnParameterShapes(D: number, L: number, C: number): Array<[string, number[]]> {
  const lin = (p: string, out: number, inp: number): Array<[string, number[]]> => [
    [`${p}.weight`, [out, inp]],
    [`${p}.bias`, [out]],
  ];
  const norm = (p: string, n: number): Array<[string, number[]]> => [
    [`${p}.weight`, [n]],
    [`${p}.bias`, [n]],
  ];
  const bn = (p: string): Array<[string, number[]]> => [...norm(p, D), [`${p}.running_mean`, [D]], [`${p}.running_var`, [D]], [`${p}.num_batches_tracked`, []]];
  const out: Array<[string, number[]]> = [...lin('gnn.dim_red', D, D)];
  for (let l = 0; l < L; l++) {
    const e = edgeLayer(l);
    out.push(...lin(`${e}att.q_linear`, D, D), ...lin(`${e}att.k_linear`, D, D), ...lin(`${e}att.v_linear`, D, D));
    out.push(...lin(`${e}node_to_edge`, D, D), ...norm(`${e}norm.1`, D));
    out.push(...lin(`${e}linear.0`, 4 * D, D), ...norm(`${e}linear.2`, 4 * D), ...lin(`${e}linear.3`, D, 4 * D));
    const n = nodeLayer(l);
    out.push(...lin(`${n}att.q_linear`, D, D), ...lin(`${n}att.v_linear`, D, D), ...lin(`${n}att.k_linear`, D, D), ...lin(`${n}att.out`, D, D));
    out.push(...lin(`${n}linear1`, 4 * D, D), ...lin(`${n}linear2`, D, 4 * D), ...lin(`${n}edge_to_node`, D, D), ...lin(`${n}update_node`, D, D));
    out.push(...norm(`${n}norm.1`, D));
  }
  out.push(...bn('gnn.bottleneck1.0'), ...bn('gnn.bottleneck2.0'), ...lin('gnn.fc.0', D, D), ...lin('gnn.cls.0', C, D));
  return out;
}
