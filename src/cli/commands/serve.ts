// `hardneg serve RUN_DIR…`: the report's views on a local web server while runs train. The page polls
// /api/sections; each poll re-reads what the trainer appended to log.jsonl (incrementally) and
// recomputes the embedding views only when an evaluation wrote new embeddings; the page swaps in
// the sections whose content changed. Binds to 127.0.0.1 unless told otherwise, and answers only
// requests addressed to the host it serves (no DNS rebinding from other sites).
// `hardneg serve --index INDEX_DIR`: the search service and page of src/search/service.ts over a
// built index; SIGINT/SIGTERM stop accepting, let in-flight requests finish, and exit 0.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import type { SearchEngine, SearchIndex } from '../../search/types.ts';
import { createSearchService } from '../../search/service.ts';
import { UserError } from '../../errors.ts';
import { hostAllowed, isLoopback, listenError, serverUrl } from '../../http_host.ts';
import { renderPage, sectionHash } from '../../report/html_page.ts';
import { ReportModel } from '../../report/report_model.ts';
import type { Section } from '../../report/views.ts';
import { parseCount, VIEW_OPTIONS, viewOptions } from '../view_options.ts';

const HELP = `usage: hardneg serve RUN_DIR [RUN_DIR ...] [--port 8080] [--host 127.0.0.1] [--interval 2]
                     [--k 8] [--queries 24] [--seed 0]
       hardneg serve --index INDEX_DIR [--port 8080] [--host 127.0.0.1] [--images DIR] [--no-model]
                     [--engine auto|memory|lancedb]

Serves the views of 'hardneg report' at http://HOST:PORT/ and keeps them current while the runs
train: the page checks for news every --interval seconds; new log lines are read as they are
appended, and the UMAP map and the gallery are recomputed after each evaluation.

options:
  --port N        TCP port (default 8080; 0 picks a free one, printed at start)
  --host ADDR     address to bind (default 127.0.0.1: this machine only)
  --interval S    seconds between the page's checks (default 2)
  --k, --queries, --seed   as for hardneg report

With --index, serves a search index (made by 'hardneg index') instead: a search page at
http://HOST:PORT/ (drop an image, or search from an item's id) and a JSON API:
  POST /api/search            {"vector": [...], "k": 10, "where": "label = 'cat'"} or {"id": N, "k": 10},
                              or multipart/form-data with the file in field 'image' (+ fields k, where)
  GET  /api/items/ID/image    a thumbnail (WebP, at most 160 px) of the item's image
  GET  /api/items/ID          the item's id, label and path
  GET  /api/info              dim, count, metric, kind, engine, whether image queries work
k is at most 1000; JSON bodies at most 1 MiB, uploads at most 20 MiB. Ctrl-C or SIGTERM stops
accepting connections, finishes the requests in flight and exits 0.

index options:
  --index DIR     the index directory
  --port, --host  as above (default 8080, 127.0.0.1)
  --images DIR    the image folder the items' paths are relative to (default: the one recorded in
                  the index; without one, no thumbnails)
  --no-model      do not load the index's model: no image queries, a faster start
  --engine E      who answers searches without a filter (default auto):
                    memory   hold the vectors in memory; an exact scan, the queries that arrive
                             during one scan answered together by the next
                    lancedb  the LanceDB table as built (its ANN index where it has one)
                    auto     memory for a local index of at most 512 MB of vectors, else lancedb
                  searches with "where" always go to LanceDB`;

interface Rendered {
  version: string;
  sections: Array<Section & { hash: string }>;
}

function render(model: ReportModel): Rendered {
  const sections = model.sections().map((s) => ({ ...s, hash: sectionHash(s.html) }));
  return { version: sectionHash(sections.map((s) => s.hash).join(':')), sections };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'Content-Type': `${type}; charset=utf-8`,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export const command: Command = {
  summary: 'serve the report views on localhost, refreshing while runs train',
  help: HELP,
  ownsSignals: (argv) => isIndexMode(argv),
  async run(argv) {
    if (isIndexMode(argv)) return runIndex(argv);
    const { values: v, positionals } = parseFlags({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        interval: { type: 'string' },
        ...VIEW_OPTIONS,
      },
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length === 0) throw new UserError("needs at least one RUN_DIR (a directory made by hardneg train --out); see 'hardneg serve --help'");
    const port = parseCount('port', v.port, 8080, 0, 65535);
    const host = v.host ?? '127.0.0.1';
    const intervalText = v.interval ?? '2';
    const interval = Number(intervalText);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(intervalText) || interval < 0.2 || interval > 3600)
      throw new UserError(`--interval: expected seconds from 0.2 to 3600, got '${intervalText}'`);
    const model = new ReportModel(positionals, { ...viewOptions(v), cooperative: true });
    let current: Rendered | null = null;
    const names = model.runs.map((r) => r.name).join(', ');

    const update = async (): Promise<Rendered> => {
      if ((await model.refresh()) || !current) current = render(model);
      return current;
    };

    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (!hostAllowed(host, req.headers.host)) return send(res, 403, 'text/plain', 'forbidden: this server answers requests for localhost only\n');
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
        try {
          if (url.pathname === '/' || url.pathname === '/index.html') {
            const r = await update();
            return send(
              res,
              200,
              'text/html',
              renderPage({
                title: `hardneg live: ${names}`,
                subtitle: model.runs.map((run) => resolve(run.dir)).join(' · '),
                sections: r.sections,
                live: { intervalMs: Math.round(interval * 1000), version: r.version },
              }),
            );
          }
          if (url.pathname === '/api/sections') {
            const r = await update();
            const since = url.searchParams.get('since');
            const body = since === r.version ? { version: r.version, sections: [] } : r;
            return send(res, 200, 'application/json', JSON.stringify(body));
          }
          return send(res, 404, 'text/plain', 'not found\n');
        } catch (err) {
          process.stderr.write(`hardneg serve: ${(err as Error).message}\n`);
          return send(res, 500, 'application/json', JSON.stringify({ error: (err as Error).message }));
        }
      })();
    });

    await new Promise<void>((resolveListen, reject) => {
      server.once('error', (err) => reject(listenError(err, host, port)));
      server.listen(port, host, () => resolveListen());
    });
    const address = server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    console.log(`serving ${model.runs.length} run${model.runs.length > 1 ? 's' : ''} (${names}) at ${serverUrl(host, actualPort)} (Ctrl-C to stop)`);
    if (!isLoopback(host)) process.stderr.write(`warning: --host ${host} is not this machine only: whoever can reach it can read these runs\n`);
    // The first reading (neighbour search and UMAP map of each run) starts now; the first page waits for it.
    update().catch((err: unknown) => process.stderr.write(`hardneg serve: ${(err as Error).message}\n`));

    await new Promise<void>((done) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.close(() => done());
        server.closeAllConnections();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};

function isSearchEngine(x: string): x is SearchEngine {
  return x === 'auto' || x === 'memory' || x === 'lancedb';
}

function isIndexMode(argv: string[]): boolean {
  return argv.some((a) => a === '--index' || a.startsWith('--index='));
}

async function runIndex(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags({
    args: argv,
    options: {
      index: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      images: { type: 'string' },
      'no-model': { type: 'boolean' },
      engine: { type: 'string', default: 'auto' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UserError(`--index serves one index; unexpected argument '${positionals[0]}' (RUN_DIRs are served without --index)`);
  if (!v.index) throw new UserError('--index: expected an index directory');
  const port = parseCount('port', v.port, 8080, 0, 65535);
  const host = v.host ?? '127.0.0.1';
  const engine = v.engine as string;
  if (!isSearchEngine(engine)) throw new UserError(`--engine ${engine}: expected auto, memory or lancedb`);
  const opened = await openIndexService(v.index, { images: v.images ?? null, noModel: v['no-model'] === true, engine });
  try {
    return await serveIndex(opened.index, { port, host, imagesRoot: opened.imagesRoot, ...(opened.embedImage ? { embedImage: opened.embedImage } : {}) });
  } finally {
    opened.close();
  }
}

export interface OpenedIndex {
  index: SearchIndex;
  /** Where thumbnails are read from, or null. */
  imagesRoot: string | null;
  /** The index's model as an image → vector function, when it has one and it loads. */
  embedImage?: (bytes: Buffer) => Promise<Float32Array>;
  /** Releases the model and the index. */
  close(): void;
}

/**
 * Opens an index and what serving it needs: its image folder (`images` overrides the recorded one)
 * and, unless `noModel`, the model it was built with. A model that cannot be loaded turns image
 * queries off with a warning rather than refusing to serve the vectors.
 */
export async function openIndexService(dir: string, opts: { images: string | null; noModel: boolean; engine?: SearchEngine }): Promise<OpenedIndex> {
  const { openIndex } = await import('../../search/index_store.ts');
  const index = await openIndex(dir, { engine: opts.engine ?? 'auto' });
  try {
    const manifest = index.manifest;
    const imagesRoot = opts.images !== null ? resolve(opts.images) : manifest.imagesRoot !== null ? resolve(index.dir, manifest.imagesRoot) : null;
    if (!manifest.model || opts.noModel) return { index, imagesRoot, close: () => index.close() };
    const ref = manifest.model.model;
    try {
      const { loadEmbedder } = await import('../../inference/embedder.ts');
      const embedder = await loadEmbedder(ref.runDir, { weights: ref.weights });
      if (embedder.dim !== manifest.dim) {
        embedder.dispose();
        throw new UserError(`the run's embeddings are ${embedder.dim}-d, the index's ${manifest.dim}-d`);
      }
      if (embedder.model.sha256 !== ref.sha256)
        process.stderr.write(`warning: ${ref.runDir}/${ref.file} changed since the index was built: image queries use the current weights\n`);
      // One model, one forward pass at a time: queued uploads wait instead of piling up tensors.
      let queue: Promise<unknown> = Promise.resolve();
      const embedImage = (bytes: Buffer): Promise<Float32Array> => {
        const run = queue.then(() => embedder.embedImageBuffers([bytes]));
        queue = run.catch(() => undefined);
        return run;
      };
      return {
        index,
        imagesRoot,
        embedImage,
        close: () => {
          embedder.dispose();
          index.close();
        },
      };
    } catch (err) {
      if (!(err instanceof UserError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      process.stderr.write(`warning: image queries are off: cannot load the index's model from ${ref.runDir} (${(err as Error).message})\n`);
      return { index, imagesRoot, close: () => index.close() };
    }
  } catch (err) {
    index.close();
    throw err;
  }
}

export interface ServeIndexOptions {
  port: number;
  host: string;
  imagesRoot: string | null;
  embedImage?: (bytes: Buffer) => Promise<Float32Array>;
}

/** Serves an open index until SIGINT or SIGTERM, then drains the requests in flight; 0 when stopped so. */
export async function serveIndex(index: SearchIndex, opts: ServeIndexOptions): Promise<number> {
  const service = createSearchService({ index, imagesRoot: opts.imagesRoot, ...(opts.embedImage ? { embedImage: opts.embedImage } : {}) });
  const { host, port } = opts;
  let address;
  try {
    address = await service.listen(port, host);
  } catch (err) {
    throw listenError(err, host, port);
  }
  const m = index.manifest;
  console.log(
    `serving the index ${resolve(index.dir)} (${m.count} items, ${m.dim}-d, ${m.metric}, ${m.kind}, answered from ${index.engine === 'memory' ? 'memory' : 'LanceDB'}${opts.embedImage ? ', image queries' : ', no image queries'}) ` +
      `at ${serverUrl(host, address.port)} (Ctrl-C to stop)`,
  );
  if (!isLoopback(host))
    process.stderr.write(`warning: --host ${host} is not this machine only: whoever can reach it can search this index and see its images\n`);
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: stop waiting for slow requests.
        service.server.closeAllConnections();
        return;
      }
      stopping = true;
      process.stderr.write(`${signal}: finishing the requests in flight, then stopping\n`);
      void service.close().then(() => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        done();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
