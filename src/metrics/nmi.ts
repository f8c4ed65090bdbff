// Normalised mutual information between class labels and a k-means clustering of the embeddings,
// NMI = I(U; V) / ((H(U) + H(V)) / 2) (natural logarithms), as sklearn's
// normalized_mutual_info_score with its default arithmetic normalisation.
import { classIds, normalizeRows, type Embeddings } from './embeddings.ts';
import { kMeans, type KMeansOptions } from './kmeans.ts';

function entropy(sizes: Int32Array, total: number): number {
  let h = 0;
  for (const n of sizes) if (n > 0) h -= (n / total) * Math.log(n / total);
  return h;
}

/** NMI of two labelings of the same items (any integer labels). */
export function normalizedMutualInformation(labelsA: ArrayLike<number>, labelsB: ArrayLike<number>): number {
  if (labelsA.length !== labelsB.length) throw new Error(`nmi: ${labelsA.length} vs ${labelsB.length} labels`);
  const a = classIds(labelsA);
  const b = classIds(labelsB);
  // Identical trivial partitions (one class each, or no items) are a perfect match by convention.
  if (a.classCount === b.classCount && a.classCount <= 1) return 1;
  const n = labelsA.length;
  const joint = new Map<number, number>(); // sparse contingency table, key = idA·|B| + idB
  for (let i = 0; i < n; i++) {
    const key = (a.ids[i] as number) * b.classCount + (b.ids[i] as number);
    joint.set(key, (joint.get(key) ?? 0) + 1);
  }
  let mi = 0;
  for (const [key, count] of joint) {
    const sizeA = a.sizes[Math.floor(key / b.classCount)] as number;
    const sizeB = b.sizes[key % b.classCount] as number;
    mi += (count / n) * Math.log((n * count) / (sizeA * sizeB));
  }
  if (mi <= 0) return 0;
  const normaliser = Math.max((entropy(a.sizes, n) + entropy(b.sizes, n)) / 2, Number.EPSILON);
  return mi / normaliser;
}

/** NMI of k-means (as many clusters as classes, on L2-normalised rows) against the labels. */
export async function evaluateNmi(x: Embeddings, labels: ArrayLike<number>, options: KMeansOptions = {}): Promise<number> {
  if (labels.length !== x.rows) throw new Error(`nmi: ${x.rows} embeddings but ${labels.length} labels`);
  const clusters = classIds(labels).classCount;
  const { assignments } = await kMeans(normalizeRows(x), clusters, options);
  return normalizedMutualInformation(labels, assignments);
}
