// The gallery and UMAP options that report and serve share, and integer flag parsing.
import { UserError } from '../errors.ts';

export function parseCount(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max)
    throw new UserError(`--${flag}: expected an integer from ${min} to ${max}, got '${text}'`);
  return Number(text);
}

/** The options of the gallery and the UMAP map, shared with hardneg serve. */
export const VIEW_OPTIONS = { k: { type: 'string' }, queries: { type: 'string' }, seed: { type: 'string' } } as const;

export function viewOptions(v: { k?: string; queries?: string; seed?: string }): { k: number; queries: number; seed: number; onWarning: (m: string) => void } {
  return {
    k: parseCount('k', v.k, 8, 1, 100),
    queries: parseCount('queries', v.queries, 24, 1, 1000),
    seed: parseCount('seed', v.seed, 0, 0, 2 ** 31),
    onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  };
}
