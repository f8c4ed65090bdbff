// `hardneg serve`: the report's views on a local web server while runs train. The page polls
// /api/sections; each poll re-reads what the trainer appended to log.jsonl (incrementally) and
// recomputes the embedding views only when an evaluation wrote new embeddings; the page swaps in
// the sections whose content changed. Binds to 127.0.0.1 unless told otherwise, and answers only
// requests addressed to the host it serves (no DNS rebinding from other sites).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { parseFlags } from '../args.ts';
import type { Command } from '../command.ts';
import { UserError } from '../../errors.ts';
import { renderPage, sectionHash } from '../../report/html_page.ts';
import { ReportModel } from '../../report/report_model.ts';
import type { Section } from '../../report/views.ts';
import { parseCount, VIEW_OPTIONS, viewOptions } from '../view_options.ts';

const HELP = `usage: hardneg serve RUN_DIR [RUN_DIR ...] [--port 8080] [--host 127.0.0.1] [--interval 2]
                     [--k 8] [--queries 24] [--seed 0]

Serves the views of 'hardneg report' at http://HOST:PORT/ and keeps them current while the runs
train: the page checks for news every --interval seconds; new log lines are read as they are
appended, and the UMAP map and the gallery are recomputed after each evaluation.

options:
  --port N        TCP port (default 8080; 0 picks a free one, printed at start)
  --host ADDR     address to bind (default 127.0.0.1: this machine only)
  --interval S    seconds between the page's checks (default 2)
  --k, --queries, --seed   as for hardneg report`;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

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
  async run(argv) {
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
        const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
        if (LOOPBACK.has(host) && !LOOPBACK.has(hostHeader))
          return send(res, 403, 'text/plain', 'forbidden: this server answers requests for localhost only\n');
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
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE')
          reject(new UserError(`--port ${port}: address ${host}:${port} is already in use (choose another --port, or 0 for a free one)`));
        else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new UserError(`--host ${host}: cannot bind to this address (${err.code})`));
        else reject(err);
      });
      server.listen(port, host, () => resolveListen());
    });
    const address = server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    const shownHost = host.includes(':') ? `[${host}]` : host;
    console.log(`serving ${model.runs.length} run${model.runs.length > 1 ? 's' : ''} (${names}) at http://${shownHost}:${actualPort}/ (Ctrl-C to stop)`);
    if (!LOOPBACK.has(host)) process.stderr.write(`warning: --host ${host} is not this machine only: whoever can reach it can read these runs\n`);
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
