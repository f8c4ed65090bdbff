// Repeated timing with a warm-up run: median and minimum wall time and the peak resident memory.

export interface BenchResult {
  case: string;
  median_ms: number;
  min_ms: number;
  runs: number;
  peak_rss_mb: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export async function timeRuns(name: string, runs: number, fn: () => void | Promise<void>, warmup = 1): Promise<BenchResult> {
  let peak = process.memoryUsage().rss;
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  try {
    for (let i = 0; i < warmup; i++) await fn();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    return {
      case: name,
      median_ms: Math.round(median(times) * 10) / 10,
      min_ms: Math.round(Math.min(...times) * 10) / 10,
      runs,
      peak_rss_mb: Math.round(peak / 1048576),
    };
  } finally {
    clearInterval(sample);
  }
}
