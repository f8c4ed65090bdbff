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
