// Checks one metrics fixture made by the official evaluation code (PREFIX.expected.json with
// Recall@k, MAP@R and R-Precision under both semantics, and the In-Shop form): every entry within
// 1e-6 of what hardneg's evaluation computes on PREFIX.X.npy / T.npy (query_/gallery_ for In-Shop).
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { readNpy } from '../io/npy.ts';
import { toNumbers } from '../io/host_tensor.ts';
import { embeddings, evaluateInShop, evaluateRetrieval, type Embeddings, type RetrievalMetrics } from '../metrics/index.ts';

export const METRICS_TOLERANCE = 1e-6;

interface ExpectedMetrics {
  recall: Record<string, number>;
  /** Percent, as the official code prints; null where it is NaN. */
  map_at_r: number | null;
  r_precision: number | null;
}

export interface MetricsFixtureResult {
  /** Values compared (every Recall@k, MAP@R and R-Precision of every entry). */
  values: number;
  /** One line per value out of tolerance. */
  failures: string[];
}

function metricEntries(json: Record<string, unknown>, prefix = ''): [string, ExpectedMetrics][] {
  const found: [string, ExpectedMetrics][] = [];
  for (const [key, value] of Object.entries(json)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
    if ('recall' in value && 'map_at_r' in value) found.push([prefix + key, value as ExpectedMetrics]);
    else found.push(...metricEntries(value as Record<string, unknown>, `${prefix}${key}.`));
  }
  return found;
}

function loadEmbeddings(path: string): Embeddings {
  const t = readNpy(path);
  return embeddings(toNumbers(t), t.shape[0] as number, t.shape[1] as number);
}

function compare(actual: number, expected: number | null, what: string, tally: MetricsFixtureResult): void {
  tally.values++;
  const ok = expected === null ? Number.isNaN(actual) : Math.abs(actual - expected) <= METRICS_TOLERANCE;
  if (!ok) tally.failures.push(`${what}: ${actual} vs expected ${expected}`);
}

export async function checkMetricsFixture(prefix: string): Promise<MetricsFixtureResult> {
  const file = (suffix: string): string => `${prefix}.${suffix}`;
  let expected: Record<string, unknown>;
  try {
    expected = JSON.parse(readFileSync(file('expected.json'), 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`${file('expected.json')}: ${(err as Error).message}`);
  }
  const x = loadEmbeddings(file('X.npy'));
  const t = toNumbers(readNpy(file('T.npy')));
  const tally: MetricsFixtureResult = { values: 0, failures: [] };
  const entries = metricEntries(expected);
  for (const [path, entry] of entries) {
    // `*_textbook` entries are textbook semantics; all others are the official code's.
    const semantics = path.includes('textbook') ? 'textbook' : 'official';
    const ks = Object.keys(entry.recall).map(Number);
    const actual: RetrievalMetrics = path.startsWith('inshop')
      ? await evaluateInShop(
          loadEmbeddings(file('query_X.npy')),
          toNumbers(readNpy(file('query_T.npy'))),
          loadEmbeddings(file('gallery_X.npy')),
          toNumbers(readNpy(file('gallery_T.npy'))),
          { ks, semantics },
        )
      : await evaluateRetrieval(x, t, { ks, semantics });
    for (const [k, v] of Object.entries(entry.recall)) compare(actual.recall[k] as number, v, `${path} Recall@${k}`, tally);
    compare(actual.mapAtR, entry.map_at_r === null ? null : entry.map_at_r / 100, `${path} MAP@R`, tally);
    compare(actual.rPrecision, entry.r_precision === null ? null : entry.r_precision / 100, `${path} R-Precision`, tally);
  }
  return tally;
}
