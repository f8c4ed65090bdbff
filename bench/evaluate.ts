// Benchmark of retrieval evaluation at SOP-like scale: Recall@1,2,4,8 + MAP@R + R-Precision
// (textbook) on 100,000 random 512-D embeddings in 1000 classes. Exact search: 100,000² / 2 dot
// products of length 512, about 5·10¹² multiply-adds, so this is bound by matrix-product speed.
// Run alone: node --import tsx bench/evaluate.ts [rows]
import { pathToFileURL } from 'node:url';
import { embeddings, evaluateRetrieval, seededRandom } from '../src/metrics/index.ts';

import type { BenchResult } from './timing.ts';

export async function benchEvaluate(options: { rows?: number; dim?: number; classes?: number; runs?: number } = {}): Promise<BenchResult> {
  const { rows = 100_000, dim = 512, classes = 1000, runs = 1 } = options;
  const random = seededRandom(1);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < data.length; i++) data[i] = random() - 0.5;
  const x = embeddings(data, rows, dim);
  const labels = Int32Array.from({ length: rows }, (_, i) => i % classes);
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    await evaluateRetrieval(x, labels, { ks: [1, 2, 4, 8] });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return {
    case: `evaluate textbook R@1,2,4,8+MAP@R n=${rows} D=${dim} C=${classes}`,
    median_ms: Math.round(times[Math.floor(times.length / 2)] as number),
    min_ms: Math.round(times[0] as number),
    runs,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = process.argv[2] ? Number(process.argv[2]) : undefined;
  console.log(JSON.stringify(await benchEvaluate({ rows })));
}
