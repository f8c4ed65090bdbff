// The P×K chunk layout of a GCA-HNG batch: row k·P + p holds the k-th sample of class slot p,
// so y[i] = y[i mod P] and the first P labels are distinct.

export interface ChunkLayout {
  P: number;
  K: number;
}

/** Finds P and K from labels in chunk layout, or explains why the labels are not in it. */
export function inferChunkLayout(labels: readonly number[]): ChunkLayout {
  const B = labels.length;
  for (let P = 1; P <= B / 2; P++) {
    if (B % P !== 0) continue;
    if (labels.every((y, i) => y === labels[i % P])) {
      const first = labels.slice(0, P);
      if (new Set(first).size !== P) break;
      if (P < 2) throw new Error('labels hold a single class: GCA-HNG needs at least 2 classes per batch');
      return { P, K: B / P };
    }
  }
  throw new Error(
    `labels are not in the P×K chunk layout (row k·P + p = k-th sample of class slot p, the P classes distinct, K ≥ 2): got [${labels.slice(0, 12).join(', ')}${B > 12 ? ', …' : ''}]`,
  );
}
