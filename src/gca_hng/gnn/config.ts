// Shape of a GCA-HNG batch and GNN. B = P·K rows in chunk layout (row k·P + p is the k-th
// sample of the p-th class slot); E = B² edges.

export interface GnnShape {
  /** Classes per batch. */
  P: number;
  /** Samples per class. */
  K: number;
  /** Embedding width. */
  D: number;
  /** Node-attention heads. */
  H: number;
  /** GNN layers. */
  L: number;
  /** Training classes (node classifier width). */
  C: number;
}

export function validateShape(s: GnnShape): void {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer, got ${v}`);
  }
  if (s.P < 2) throw new Error(`P (classes per batch) must be at least 2, got ${s.P}`);
  if (s.K < 2) throw new Error(`K (samples per class) must be at least 2, got ${s.K}`);
  if (s.D % s.H !== 0) throw new Error(`the embedding width D=${s.D} must be divisible by the head count H=${s.H}`);
}
