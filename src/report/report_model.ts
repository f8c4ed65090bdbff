// The report's data for a set of run directories, refreshable: the logs are re-read
// incrementally, and the expensive embedding views (one exact neighbour search, the UMAP map, the
// gallery's thumbnails) are recomputed only when a run's test embeddings change, in the
// background while serving. `hardneg report` refreshes once; `hardneg serve` on each poll.
import { setTimeout as delay } from 'node:timers/promises';
import { RUN_COLORS } from './svg_chart.ts';
import { openRuns, type RunDir } from './run_data.ts';
import { sharedNeighbours } from './neighbours.ts';
import { umapProjection } from './umap_projection.ts';
import { rankQueries } from './gallery.ts';
import { openThumbnails } from './thumbnails.ts';
import { allSections, type EmbeddingView, type RunSnapshot, type Section } from './views.ts';

export interface ReportOptions {
  /** Results per gallery query (default 8). */
  k?: number;
  /** Gallery queries shown per run, worst first (default 24). */
  queries?: number;
  /** UMAP seed (default 0). */
  seed?: number;
  /** Search in blocks, yielding to the event loop between them (a server stays responsive). */
  cooperative?: boolean;
  /** Receives warnings (a dataset that cannot be opened for thumbnails, …). */
  onWarning?: (message: string) => void;
}

type Embedding = EmbeddingView | { missing: string };

/** How long a (non-final) refresh waits for new embedding views before answering without them. */
const JOB_WAIT_MS = 1000;

export class ReportModel {
  readonly runs: RunDir[];
  private readonly k: number;
  private readonly queries: number;
  private readonly seed: number;
  private readonly embedding = new Map<RunDir, { version: string; view: Embedding }>();
  /** Embedding views being computed, by run (in the background while serving). */
  private readonly jobs = new Map<RunDir, Promise<void>>();
  private finishedJobs = false;
  private inFlight: Promise<boolean> | null = null;

  constructor(
    dirs: readonly string[],
    private readonly options: ReportOptions = {},
  ) {
    this.runs = openRuns(dirs);
    this.k = options.k ?? 8;
    this.queries = options.queries ?? 24;
    this.seed = options.seed ?? 0;
  }

  /**
   * Re-reads the runs; returns whether anything changed since the last call. New test embeddings
   * start a background computation of their views (the previous views are shown meanwhile);
   * with `final` (a report of finished runs) it waits for them. Concurrent calls share one refresh.
   */
  refresh(final = false): Promise<boolean> {
    if (!this.inFlight) {
      this.inFlight = this.doRefresh(final).finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async doRefresh(final: boolean): Promise<boolean> {
    let changed = this.finishedJobs;
    this.finishedJobs = false;
    for (const run of this.runs) {
      if (run.refresh(final)) changed = true;
      const version = run.embeddingsVersion();
      const cached = this.embedding.get(run);
      if ((cached && cached.version === version) || this.jobs.has(run)) continue;
      if (!cached) changed = true;
      const job = this.embeddingView(run)
        .then(
          (view) => ({ view, retry: 'missing' in view }),
          (err: unknown) => {
            // A failure of the computation itself is shown (and not retried until the files change).
            const missing = `the map and the gallery could not be made: ${(err as Error).message}`;
            this.options.onWarning?.(`${run.name}: ${missing}`);
            return { view: { missing }, retry: false };
          },
        )
        .then(({ view, retry }) => {
          // Missing or inconsistent files (none yet, or the trainer is replacing them) are looked
          // at again on the next refresh; the page changes only when the outcome does.
          const prev = this.embedding.get(run)?.view;
          this.embedding.set(run, { version: retry ? 'retry' : version, view });
          if (!(prev && 'missing' in prev && 'missing' in view && prev.missing === view.missing)) this.finishedJobs = true;
        })
        .finally(() => {
          this.jobs.delete(run);
        });
      this.jobs.set(run, job);
    }
    // A report waits for every view; a server waits a moment (quick jobs are done by then) and
    // shows the rest on a later poll.
    const all = Promise.all(this.jobs.values());
    await (final ? all : Promise.race([all, delay(JOB_WAIT_MS)]));
    if (this.finishedJobs) changed = true;
    this.finishedJobs = false;
    return changed;
  }

  private async embeddingView(run: RunDir): Promise<Embedding> {
    const t = run.testEmbeddings();
    if ('missing' in t) return t;
    const e = t.value;
    const nb = await sharedNeighbours(e, Math.max(this.k, 14), { cooperative: this.options.cooperative });
    const projection = await umapProjection(nb.lists, { seed: this.seed });
    const ranked = rankQueries(nb, this.k);
    const queries = ranked.slice(0, this.queries);
    const thumbs = await openThumbnails(run.config, e.labels);
    let thumbnails: Map<number, string> | null = null;
    let classNames: readonly string[];
    let thumbnailsMissing: string | null = null;
    if ('source' in thumbs) {
      classNames = thumbs.source.classNames;
      thumbnails = new Map();
      const wanted = new Set<number>();
      for (const q of queries) {
        wanted.add(q.index);
        for (const r of q.results) wanted.add(r.index);
      }
      for (const i of [...wanted].sort((a, b) => a - b)) thumbnails.set(i, await thumbs.source.thumbnail(i));
    } else {
      thumbnailsMissing = thumbs.missing;
      this.options.onWarning?.(`${run.name}: no gallery thumbnails: ${thumbs.missing}`);
      const maxLabel = e.labels.reduce((m, v) => Math.max(m, v), 0);
      classNames = Array.from({ length: maxLabel + 1 }, (_, i) => `class ${i}`);
    }
    // The embeddings are written just before their evaluation's log line: by now it is there.
    run.log.poll();
    const epoch = run.log.evaluations[run.log.evaluations.length - 1]?.epoch ?? null;
    return { epoch, rows: e.rows, labels: e.labels, classNames, projection, queries, scoredQueries: ranked.length, k: this.k, thumbnails, thumbnailsMissing };
  }

  snapshots(): RunSnapshot[] {
    return this.runs.map((run, i) => {
      const cached = this.embedding.get(run)?.view ?? null;
      const updating = this.jobs.has(run);
      const embedding: RunSnapshot['embedding'] =
        cached && !('missing' in cached)
          ? { ...cached, updating }
          : updating
            ? { missing: 'computing the map and the gallery of the newest test embeddings…' }
            : cached;
      return {
        name: run.name,
        dir: run.dir,
        color: RUN_COLORS[i % RUN_COLORS.length] as string,
        config: run.config,
        iterations: run.log.iterations,
        evaluations: run.log.evaluations,
        diagnostics: run.log.diagnostics,
        metrics: run.metrics,
        logProblems: run.log.problems,
        problems: run.problems,
        embedding,
      };
    });
  }

  sections(): Section[] {
    return allSections(this.snapshots());
  }
}
