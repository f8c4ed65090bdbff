// Comparison of our tensors with a fixture's expected tensors, whatever their storage:
// full; `rows` (`#rows` row indices + `#sel` those rows + `#stats`); `sample` (`#idx` flat
// indices + `#sel` + `#stats`). Stats are [sum, sum|x|, sum x², max|x|] of the full tensor.
import { type HostTensor, numel, toNumbers } from '../io/host_tensor.ts';

export interface Tolerance {
  /** Maximum relative L2 error ‖ours − ref‖/‖ref‖. */
  rel: number;
  /** Used instead when the reference is (mathematically) zero: maximum absolute difference. */
  abs: number;
  /** Always compare the absolute difference against `abs`, whatever the reference's size. */
  absoluteOnly?: boolean;
  /** Compare values exactly (integers, counters). */
  exact?: boolean;
  /** Skip the comparison (with a reason shown in the report). */
  skip?: string;
}

export interface ComparisonRow {
  name: string;
  storage: 'full' | 'rows' | 'sample';
  /** Relative L2 error, or the absolute max difference when `absolute`. */
  error: number;
  absolute: boolean;
  tolerance: number;
  ok: boolean;
  note?: string;
}

/** Base names of the expected tensors (suffixes #rows/#idx/#sel/#stats folded). */
export function expectedNames(expected: Map<string, HostTensor>): string[] {
  const names = new Set<string>();
  for (const n of expected.keys()) names.add(n.replace(/#(rows|idx|sel|stats)$/, ''));
  return [...names];
}

function values(t: HostTensor): Float64Array {
  return Float64Array.from(toNumbers(t));
}

function selection(
  ours: HostTensor,
  expected: Map<string, HostTensor>,
  name: string,
): { mine: Float64Array; ref: Float64Array; storage: ComparisonRow['storage'] } {
  const full = expected.get(name);
  if (full) return { mine: values(ours), ref: values(full), storage: 'full' };
  const sel = expected.get(`${name}#sel`);
  if (!sel) throw new Error(`expected file has no '${name}'`);
  const rows = expected.get(`${name}#rows`);
  const all = values(ours);
  if (rows) {
    const width = numel(ours.shape.slice(1));
    const idx = toNumbers(rows);
    const mine = new Float64Array(idx.length * width);
    idx.forEach((r, i) => mine.set(all.subarray(r * width, (r + 1) * width), i * width));
    return { mine, ref: values(sel), storage: 'rows' };
  }
  const flat = toNumbers(expected.get(`${name}#idx`) ?? { dtype: 'I64', shape: [0], data: new BigInt64Array(0) });
  return { mine: Float64Array.from(flat, (i) => all[i] as number), ref: values(sel), storage: 'sample' };
}

export function compareTensor(name: string, ours: HostTensor | undefined, expected: Map<string, HostTensor>, tol: Tolerance): ComparisonRow {
  if (tol.skip) return { name, storage: 'full', error: 0, absolute: true, tolerance: 0, ok: true, note: `skipped: ${tol.skip}` };
  if (!ours) return { name, storage: 'full', error: Infinity, absolute: true, tolerance: 0, ok: false, note: 'not computed' };
  const { mine, ref, storage } = selection(ours, expected, name);
  if (mine.length !== ref.length) {
    return { name, storage, error: Infinity, absolute: true, tolerance: 0, ok: false, note: `size ${mine.length} vs ${ref.length}` };
  }
  let diff2 = 0;
  let ref2 = 0;
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = (mine[i] as number) - (ref[i] as number);
    diff2 += d * d;
    ref2 += (ref[i] as number) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(d));
    maxRef = Math.max(maxRef, Math.abs(ref[i] as number));
    if (Number.isNaN(mine[i]) !== Number.isNaN(ref[i])) maxAbs = Infinity;
  }
  if (tol.exact) return { name, storage, error: maxAbs, absolute: true, tolerance: 0, ok: maxAbs === 0 };
  let row: ComparisonRow;
  if (tol.absoluteOnly || maxRef <= tol.abs) {
    row = { name, storage, error: maxAbs, absolute: true, tolerance: tol.abs, ok: maxAbs <= tol.abs };
  } else {
    const rel = Math.sqrt(diff2) / Math.sqrt(ref2);
    row = { name, storage, error: rel, absolute: false, tolerance: tol.rel, ok: rel <= tol.rel };
  }
  const stats = expected.get(`${name}#stats`);
  if (stats && storage !== 'full' && row.ok) {
    // The whole tensor's sum, checked against a tolerance scaled by Σ|x| (sums can cancel).
    const [sum, sumAbs] = toNumbers(stats) as [number, number];
    const mySum = values(ours).reduce((a, b) => a + b, 0);
    const e = Math.abs(mySum - sum) / Math.max(sumAbs, 1e-30);
    if (e > Math.max(tol.rel, 1e-6) && sumAbs > tol.abs) {
      row = { ...row, ok: false, note: `full-tensor sum off by ${e.toExponential(2)} of Σ|x|` };
    }
  }
  return row;
}

export function formatReport(rows: ComparisonRow[], onlyFailures = false): string {
  const lines: string[] = [];
  const width = Math.min(70, Math.max(...rows.map((r) => r.name.length), 4));
  for (const r of rows) {
    if (onlyFailures && r.ok) continue;
    const err = r.error === Infinity ? 'inf' : r.error.toExponential(2);
    const kind = r.absolute ? 'abs' : 'rel';
    lines.push(
      `${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(width)} ${kind} ${err} ${r.ok ? '<=' : '>'} ${r.tolerance.toExponential(1)} ${r.storage}${r.note ? `  (${r.note})` : ''}`,
    );
  }
  const failed = rows.filter((r) => !r.ok).length;
  lines.push(`tensors: ${rows.length - failed} within tolerance, ${failed} out of tolerance`);
  return lines.join('\n');
}
