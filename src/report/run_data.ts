// Reading a run directory for the report (src/train/run_dir.ts writes it): the resolved
// configuration, the JSON-lines log read incrementally (a server re-reads only what was appended,
// starts over when the trainer rewrote the file on resume, and keeps a line cut short until its
// end arrives), metrics.json, and the test embeddings of the latest evaluation. Lines that are not
// JSON or lack the fields of their type are skipped and listed with their line numbers.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { NpyError, readNpy } from '../io/npy.ts';
import { toNumbers } from '../io/host_tensor.ts';
import { RUN_FILES } from '../train/run_dir.ts';

export interface IterationEntry {
  step: number;
  epoch: number;
  /** Every other numeric field: the loss terms (J_m, J_syn, …), e_bj, para_scale, lr, lr_gnn. */
  values: Record<string, number>;
}

export interface EvaluationEntry {
  step: number;
  epoch: number;
  recall: Record<string, number>;
  map_at_r: number;
  r_precision: number;
  nmi: number | null;
}

export interface DiagnosticsEntry {
  step: number;
  epoch: number;
  phi: number;
  syn_weight: number;
  kept_fraction: number;
  relative_position: number;
  distances: { anchor_positive: number[]; anchor_real_negative: number[]; anchor_generated_negative: number[] };
  edge_weights: {
    histogram: { edges: number[]; counts: number[] };
    per_channel_mean: number[];
    per_channel_std: number[];
    within_pair_std: number;
    across_pair_std: number;
  };
}

export interface LogProblem {
  line: number;
  message: string;
}

/** What the report needs of config.json (read leniently: runs of older versions still open). */
export interface RunConfigSummary {
  method: string;
  dataset: { name: string; root: string | null; imageSize: number };
  epochs: number | null;
  seed: number | null;
  embeddingSize: number | null;
  raw: Record<string, unknown>;
}

export interface RunMetrics {
  final: EvaluationEntry | null;
  best: EvaluationEntry | null;
  wall_s: number | null;
}

export interface TestEmbeddings {
  rows: number;
  dim: number;
  data: Float32Array;
  labels: Int32Array;
  /** Identifies this version of the files (size and modification time of both). */
  version: string;
}

const isNum = (v: unknown): v is number => typeof v === 'number';
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' || x === null);

/** An evaluation record (a log line's or metrics.json's); null when it lacks the metrics. */
function parseEvaluation(v: Record<string, unknown>, step: number, epoch: number): EvaluationEntry | null {
  if (!isObj(v.recall) || !isNum(v.map_at_r) || !isNum(v.r_precision)) return null;
  const recall: Record<string, number> = {};
  for (const [k, x] of Object.entries(v.recall)) if (isNum(x)) recall[k] = x;
  return { step, epoch, recall, map_at_r: v.map_at_r, r_precision: v.r_precision, nmi: isNum(v.nmi) ? v.nmi : null };
}

/** Parses one log line into its entry, or says what is wrong with it. */
export function parseLogLine(
  line: string,
):
  | { kind: 'iteration'; entry: IterationEntry }
  | { kind: 'evaluation'; entry: EvaluationEntry }
  | { kind: 'diagnostics'; entry: DiagnosticsEntry }
  | { kind: 'other' }
  | { kind: 'error'; message: string } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { kind: 'error', message: 'not valid JSON' };
  }
  if (!isObj(v)) return { kind: 'error', message: 'not a JSON object' };
  if (!isNum(v.step) || !isNum(v.epoch)) return { kind: 'error', message: `entry of type ${JSON.stringify(v.type)} without a numeric step and epoch` };
  const { step, epoch } = v;
  switch (v.type) {
    case 'iteration': {
      const values: Record<string, number> = {};
      for (const [k, x] of Object.entries(v)) if (isNum(x) && k !== 'step' && k !== 'epoch' && k !== 'iteration') values[k] = x;
      return { kind: 'iteration', entry: { step, epoch, values } };
    }
    case 'evaluation': {
      const entry = parseEvaluation(v, step, epoch);
      return entry ? { kind: 'evaluation', entry } : { kind: 'error', message: 'evaluation entry without recall, map_at_r and r_precision' };
    }
    case 'diagnostics': {
      const d = v.distances,
        w = v.edge_weights;
      if (!isNum(v.phi) || !isNum(v.syn_weight) || !isNum(v.kept_fraction) || !isObj(d) || !isObj(w))
        return { kind: 'error', message: 'diagnostics entry without phi, syn_weight, kept_fraction, distances and edge_weights' };
      if (!isNumArray(d.anchor_positive) || !isNumArray(d.anchor_real_negative) || !isNumArray(d.anchor_generated_negative))
        return { kind: 'error', message: 'diagnostics entry with malformed distances' };
      const h = w.histogram;
      if (!isObj(h) || !isNumArray(h.edges) || !isNumArray(h.counts) || !isNumArray(w.per_channel_mean) || !isNumArray(w.per_channel_std))
        return { kind: 'error', message: 'diagnostics entry with malformed edge_weights' };
      return {
        kind: 'diagnostics',
        entry: {
          step,
          epoch,
          phi: v.phi,
          syn_weight: v.syn_weight,
          kept_fraction: v.kept_fraction,
          relative_position: isNum(v.relative_position) ? v.relative_position : NaN,
          distances: {
            anchor_positive: d.anchor_positive,
            anchor_real_negative: d.anchor_real_negative,
            anchor_generated_negative: d.anchor_generated_negative,
          },
          edge_weights: {
            histogram: { edges: h.edges, counts: h.counts },
            per_channel_mean: w.per_channel_mean,
            per_channel_std: w.per_channel_std,
            within_pair_std: isNum(w.within_pair_std) ? w.within_pair_std : NaN,
            across_pair_std: isNum(w.across_pair_std) ? w.across_pair_std : NaN,
          },
        },
      };
    }
    default:
      return { kind: 'other' };
  }
}

/** The log of one run, read incrementally: `poll()` takes in whatever was appended since. */
export class RunLog {
  iterations: IterationEntry[] = [];
  evaluations: EvaluationEntry[] = [];
  diagnostics: DiagnosticsEntry[] = [];
  problems: LogProblem[] = [];
  private offset = 0;
  private inode = -1;
  private pending = '';
  private lineNo = 0;

  constructor(readonly path: string) {}

  private reset(): void {
    this.iterations = [];
    this.evaluations = [];
    this.diagnostics = [];
    this.problems = [];
    this.offset = 0;
    this.pending = '';
    this.lineNo = 0;
  }

  /**
   * Reads what was appended since the last call; returns whether anything changed. With
   * `final`, a last line without a newline is taken as complete (a report of a finished run).
   */
  poll(final = false): boolean {
    if (!existsSync(this.path)) {
      const had = this.offset > 0;
      this.reset();
      return had;
    }
    const st = statSync(this.path);
    let changed = false;
    if (st.ino !== this.inode || st.size < this.offset) {
      // The trainer rewrote the log (resume drops entries after the checkpoint): read it anew.
      changed = this.offset > 0 || this.inode !== -1;
      this.reset();
      this.inode = st.ino;
    }
    if (st.size > this.offset) {
      const length = st.size - this.offset;
      const buf = Buffer.alloc(length);
      const fd = openSync(this.path, 'r');
      try {
        let got = 0;
        while (got < length) {
          const n = readSync(fd, buf, got, length - got, this.offset + got);
          if (n === 0) break;
          got += n;
        }
        this.offset += got;
        this.take(this.pending + buf.subarray(0, got).toString('utf8'));
      } finally {
        closeSync(fd);
      }
      changed = true;
    }
    if (final && this.pending.trim()) {
      this.lineNo++;
      this.ingest(this.pending, this.lineNo, true);
      this.pending = '';
      changed = true;
    }
    return changed;
  }

  private take(text: string): void {
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      this.lineNo++;
      this.ingest(line, this.lineNo, false);
    }
  }

  private ingest(line: string, no: number, last: boolean): void {
    if (!line.trim()) return;
    const r = parseLogLine(line);
    if (r.kind === 'iteration') this.iterations.push(r.entry);
    else if (r.kind === 'evaluation') this.evaluations.push(r.entry);
    else if (r.kind === 'diagnostics') this.diagnostics.push(r.entry);
    else if (r.kind === 'error') this.problems.push({ line: no, message: last ? `${r.message} (the last line, cut short?)` : r.message });
  }
}

function readJson(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

function summarizeConfig(raw: unknown, path: string): RunConfigSummary {
  if (!isObj(raw)) throw new UserError(`${path}: expected a JSON object (the run's configuration)`);
  const ds = isObj(raw.dataset) ? raw.dataset : {};
  const train = isObj(raw.train) ? raw.train : {};
  const model = isObj(raw.model) ? raw.model : {};
  return {
    method: typeof train.method === 'string' ? train.method : 'gca-hng',
    dataset: {
      name: typeof ds.name === 'string' ? ds.name : 'fashion-mnist',
      root: typeof ds.root === 'string' ? ds.root : null,
      imageSize: isNum(ds.imageSize) ? ds.imageSize : 28,
    },
    epochs: isNum(train.epochs) ? train.epochs : null,
    seed: isNum(train.seed) ? train.seed : null,
    embeddingSize: isNum(model.embeddingSize) ? model.embeddingSize : null,
    raw,
  };
}

/** Throws a UserError naming `dir` unless it is a run directory. */
export function checkRunDir(dir: string): void {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such directory (expected a run directory made by hardneg train --out)`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir}: not a directory (expected a run directory made by hardneg train --out)`);
  if (!existsSync(join(dir, RUN_FILES.config)))
    throw new UserError(`${dir}: not a run directory (no ${RUN_FILES.config}; make one with hardneg train --out ${dir})`);
}

function fileVersion(path: string): string {
  try {
    const st = statSync(path);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return 'missing';
  }
}

/** One run directory, re-readable as it grows. */
export class RunDir {
  readonly dir: string;
  config: RunConfigSummary;
  metrics: RunMetrics | null = null;
  readonly log: RunLog;
  /** Problems outside the log (metrics.json, embeddings), for the page. */
  problems: string[] = [];
  private metricsVersion = '';
  private configVersion = '';

  constructor(
    dir: string,
    public name: string = basename(resolve(dir)),
  ) {
    checkRunDir(dir);
    this.dir = dir;
    this.log = new RunLog(join(dir, RUN_FILES.log));
    this.config = summarizeConfig(readJson(join(dir, RUN_FILES.config)), join(dir, RUN_FILES.config));
    this.configVersion = fileVersion(join(dir, RUN_FILES.config));
  }

  /** Re-reads what changed; returns whether anything did. */
  refresh(final = false): boolean {
    let changed = this.log.poll(final);
    const cv = fileVersion(join(this.dir, RUN_FILES.config));
    if (cv !== this.configVersion && cv !== 'missing') {
      try {
        this.config = summarizeConfig(readJson(join(this.dir, RUN_FILES.config)), join(this.dir, RUN_FILES.config));
        this.configVersion = cv;
        changed = true;
      } catch {
        // Being rewritten: keep the previous configuration and try again next time.
      }
    }
    const path = join(this.dir, RUN_FILES.metrics);
    const mv = fileVersion(path);
    if (mv !== this.metricsVersion) {
      this.metricsVersion = mv;
      changed = true;
      this.problems = this.problems.filter((p) => !p.startsWith(path));
      this.metrics = null;
      if (mv !== 'missing') {
        try {
          const m = readJson(path);
          if (isObj(m)) {
            const entry = (e: unknown): EvaluationEntry | null => (isObj(e) && isNum(e.epoch) ? parseEvaluation(e, 0, e.epoch) : null);
            this.metrics = { final: entry(m.final), best: entry(m.best), wall_s: isNum(m.wall_s) ? m.wall_s : null };
          }
        } catch (err) {
          this.problems.push(`${path}: ${(err as Error).message}`);
        }
      }
    }
    return changed;
  }

  /** Version of the embedding files (changes when an evaluation writes new ones). */
  embeddingsVersion(): string {
    return `${fileVersion(join(this.dir, RUN_FILES.testEmbeddings))}|${fileVersion(join(this.dir, RUN_FILES.testLabels))}`;
  }

  /** The latest test embeddings and labels, or null (with the reason) when absent or inconsistent. */
  testEmbeddings(): { value: TestEmbeddings } | { missing: string } {
    const ePath = join(this.dir, RUN_FILES.testEmbeddings);
    const lPath = join(this.dir, RUN_FILES.testLabels);
    if (!existsSync(ePath) || !existsSync(lPath)) return { missing: 'no test embeddings yet (they are written at the first evaluation)' };
    const version = this.embeddingsVersion();
    try {
      const e = readNpy(ePath);
      const l = readNpy(lPath);
      const [rows, dim] = e.shape;
      if (e.shape.length !== 2 || rows === undefined || dim === undefined)
        return { missing: `${ePath}: expected a 2-D array, got shape [${e.shape.join(', ')}]` };
      if (e.dtype !== 'F32' && e.dtype !== 'F64') return { missing: `${ePath}: expected float embeddings, got ${e.dtype}` };
      const labels = Int32Array.from(toNumbers(l));
      if (labels.length !== rows) return { missing: `${lPath}: ${labels.length} labels for ${rows} embeddings` };
      const data = e.data instanceof Float32Array ? e.data : Float32Array.from(e.data as Float64Array);
      return { value: { rows, dim, data, labels, version } };
    } catch (err) {
      if (err instanceof NpyError || err instanceof UserError) return { missing: err.message };
      throw err;
    }
  }
}

/** Opens run directories, naming each by its folder (with as much of the path as makes names unique). */
export function openRuns(dirs: readonly string[]): RunDir[] {
  const full = dirs.map((d) => resolve(d).split(/[\\/]/).filter(Boolean));
  const names = full.map((parts) => parts[parts.length - 1] ?? '/');
  for (let depth = 2; depth <= Math.max(...full.map((p) => p.length)); depth++) {
    const dup = names.map((n) => names.filter((m) => m === n).length > 1);
    if (!dup.some(Boolean)) break;
    full.forEach((parts, i) => {
      if (dup[i]) names[i] = parts.slice(-depth).join('/');
    });
  }
  return dirs.map((d, i) => new RunDir(d, names[i]));
}
