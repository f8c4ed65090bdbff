// What the benchmark readers (cub200.ts, cars196.ts, sop.ts, inshop.ts) and the registry in
// benchmarks.ts share: the listing types and the helpers for reading a dataset's own files. The
// readers import this module, never the registry, so the two form no import cycle.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { nameList } from '../text.ts';

/** The paper's four retrieval benchmarks (those of the official configurations, configs/presets/). */
export const PAPER_BENCHMARK_NAMES = ['cub200', 'cars196', 'sop', 'inshop'] as const;
/** Every dataset layout the registry in benchmarks.ts reads: the paper's benchmarks and an image folder. */
export const BENCHMARK_NAMES = [...PAPER_BENCHMARK_NAMES, 'folder'] as const;
export type BenchmarkName = (typeof BENCHMARK_NAMES)[number];

/** A dataset's own class identifier: a number (CUB, Cars, SOP) or a string (In-Shop item, folder). */
export type ClassId = number | string;
export type Severity = 'error' | 'warning' | 'note';

export interface DatasetProblem {
  /** Relative to the data root ('/'-separated), or the root itself. */
  path: string;
  problem: string;
  severity: Severity;
}

export interface ListedImage {
  /** Relative to the data root, '/'-separated. */
  path: string;
  classId: ClassId;
}

export interface ListedSplit {
  name: string;
  images: ListedImage[];
}

export interface BenchmarkListing {
  dataset: BenchmarkName;
  /** Absolute. */
  root: string;
  splits: ListedSplit[];
  /** Human-readable class names by own identifier, where the dataset has them. */
  classNames: Map<ClassId, string>;
  /** Groups of splits numbered together (In-Shop: query and gallery). */
  sharedLabels: string[][];
  /** Order of the own identifiers; default: numbers ascending, strings by their number if any. */
  compare?: (a: ClassId, b: ClassId) => number;
  problems: DatasetProblem[];
}

/** '/'-joined relative path. */
export function relPath(...parts: string[]): string {
  return parts
    .filter((p) => p.length > 0)
    .join('/')
    .replace(/\/+/g, '/');
}

/** The file's status, or null when it does not exist or cannot be read. */
export function stat(path: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

export function isFile(path: string): boolean {
  return stat(path)?.isFile() ?? false;
}

export function isDir(path: string): boolean {
  return stat(path)?.isDirectory() ?? false;
}

/** A short listing of what DIR holds, for messages. */
export function describeFolder(dir: string): string {
  let entries: string[];
  try {
    entries = readdirSync(dir)
      .filter((e) => !e.startsWith('.'))
      .sort();
  } catch {
    return 'nothing readable';
  }
  if (entries.length === 0) return 'an empty folder';
  const shown = entries.slice(0, 10).map((e) => (isDir(join(dir, e)) ? `${e}/` : e));
  return shown.join(', ') + (entries.length > shown.length ? ` and ${entries.length - shown.length} more` : '');
}

/** One required entry of a layout: a file, or a folder when `name` ends with '/'; alternatives allowed. */
export type LayoutEntry = string | readonly string[];

function present(root: string, entry: LayoutEntry): boolean {
  const options = typeof entry === 'string' ? [entry] : entry;
  return options.some((o) => (o.endsWith('/') ? isDir(join(root, o)) : isFile(join(root, o))));
}

function listNames(entries: readonly LayoutEntry[]): string {
  const names = entries.map((e) => (typeof e === 'string' ? e : e.join(' or ')));
  return nameList(names, { conjunction: 'and' });
}

/**
 * Throws a UserError unless `root` holds every entry: "DIR does not look like TITLE: expected …;
 * found …", with a hint when a subfolder of DIR is the dataset.
 */
export function requireLayout(root: string, title: string, entries: readonly LayoutEntry[]): void {
  const st = stat(root);
  if (!st) throw new UserError(`${root}: folder not found (expected ${title}: a folder with ${listNames(entries)})`);
  if (!st.isDirectory()) throw new UserError(`${root}: not a folder (expected ${title}: a folder with ${listNames(entries)})`);
  if (entries.every((e) => present(root, e))) return;
  let hint = '';
  try {
    const sub = readdirSync(root)
      .sort()
      .find((e) => !e.startsWith('.') && isDir(join(root, e)) && entries.every((x) => present(join(root, e), x)));
    if (sub) hint = `; did you mean ${join(root, sub)}?`;
  } catch {
    // no hint
  }
  throw new UserError(`${root} does not look like ${title}: expected ${listNames(entries)}; found ${describeFolder(root)}${hint}`);
}

export interface TableRow {
  /** 1-based line number. */
  line: number;
  fields: string[];
}

/** The non-empty lines of a whitespace-separated text file (CRLF or LF). */
export function readTable(root: string, file: string): TableRow[] {
  let text: string;
  try {
    text = readFileSync(join(root, file), 'utf8');
  } catch (err) {
    throw new UserError(`${join(root, file)}: cannot read (${err instanceof Error ? err.message : String(err)})`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: TableRow[] = [];
  text.split(/\r?\n|\r/).forEach((l, i) => {
    const fields = l.trim().split(/\s+/);
    if (fields[0] !== '') rows.push({ line: i + 1, fields });
  });
  return rows;
}

/** A non-negative decimal integer, or null. */
export function parseId(s: string | undefined): number | null {
  return s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : null;
}

/** Numbers ascending; strings by their trailing number when both have one, else by code unit. */
export function compareClassIds(a: ClassId, b: ClassId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = String(a);
  const sb = String(b);
  const ma = /^(.*?)(\d+)$/.exec(sa);
  const mb = /^(.*?)(\d+)$/.exec(sb);
  if (ma && mb && ma[1] === mb[1]) {
    const d = Number(ma[2]) - Number(mb[2]);
    if (d !== 0) return d;
  }
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

export const byCodeUnit = (a: ClassId, b: ClassId): number => {
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
};
