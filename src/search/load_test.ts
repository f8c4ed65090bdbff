// A loopback load generator for the search service (the tests and the bench use it): `clients`
// concurrent keep-alive connections share `requests` requests, each timed from send to the last
// byte of the answer. A request counts as an error when it fails on the network or answers
// anything but 2xx; the first few errors are kept so a failing run says why.
import { Agent, request } from 'node:http';

export interface LoadTestOptions {
  /** The endpoint, e.g. http://127.0.0.1:8080/api/search. */
  url: string;
  /** Concurrent clients (each one keep-alive connection). */
  clients: number;
  /** Requests in all. */
  requests: number;
  /** Request i's body: a string or Buffer is sent as is, anything else as JSON. */
  body?: (i: number) => unknown;
  /** Default: POST when there is a body, else GET. */
  method?: string;
  headers?: Record<string, string>;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

export interface LoadTestResult {
  requests: number;
  errors: number;
  /** Completed requests per second of wall time. */
  qps: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** The first few error descriptions (status and body, or the network error). */
  errorSamples: string[];
}

/** The q-quantile (0..1) of ascending values, nearest rank. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

export async function loadTest(opts: LoadTestOptions): Promise<LoadTestResult> {
  if (!Number.isInteger(opts.clients) || opts.clients < 1) throw new RangeError(`loadTest: clients must be a positive integer, got ${opts.clients}`);
  if (!Number.isInteger(opts.requests) || opts.requests < 0) throw new RangeError(`loadTest: requests must be a non-negative integer, got ${opts.requests}`);
  const url = new URL(opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.clients });
  const method = opts.method ?? (opts.body ? 'POST' : 'GET');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let next = 0;

  const fail = (what: string) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(what);
  };

  const one = (i: number): Promise<void> =>
    new Promise((done) => {
      let payload: Buffer | null = null;
      const headers: Record<string, string | number> = { ...opts.headers };
      if (opts.body) {
        const b = opts.body(i);
        payload = Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b));
        if (!Buffer.isBuffer(b) && typeof b !== 'string') headers['Content-Type'] ??= 'application/json';
        headers['Content-Length'] = payload.length;
      }
      const t0 = performance.now();
      const req = request(url, { method, agent, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies.push(performance.now() - t0);
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) fail(`HTTP ${status}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`);
          done();
        });
        res.on('error', (err) => {
          fail(`response: ${err.message}`);
          done();
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
      req.on('error', (err) => {
        fail(`request: ${err.message}`);
        done();
      });
      req.end(payload ?? undefined);
    });

  const client = async () => {
    // Each client takes the next request number until all are taken: a shared queue, no batches.
    while (next < opts.requests) await one(next++);
  };

  const start = performance.now();
  try {
    await Promise.all(Array.from({ length: opts.clients }, client));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: opts.requests,
    errors,
    qps: seconds > 0 ? opts.requests / seconds : 0,
    p50_ms: quantile(latencies, 0.5),
    p99_ms: quantile(latencies, 0.99),
    max_ms: latencies.length > 0 ? (latencies[latencies.length - 1] as number) : NaN,
    errorSamples,
  };
}
