// Human-readable renderings of results.
import type { EvalRecord } from '../train/evaluate_model.ts';

export function formatEval(r: EvalRecord): string {
  const recall = Object.entries(r.recall)
    .map(([k, v]) => `R@${k} ${(100 * v).toFixed(2)}`)
    .join('  ');
  const nmi = r.nmi === null ? '' : `  NMI ${(100 * r.nmi).toFixed(2)}`;
  return `epoch ${r.epoch}: ${recall}  MAP@R ${(100 * r.map_at_r).toFixed(2)}  RP ${(100 * r.r_precision).toFixed(2)}${nmi}`;
}

/** One option of a help text: the flag in a 20-column field, the text wrapped at `width` columns and aligned under itself. */
export function helpOption(flag: string, text: string, width = 100): string {
  const indent = ' '.repeat(22);
  const lines: string[] = [];
  let line = `  ${flag.padEnd(20)}${flag.length >= 20 ? ' ' : ''}`;
  let fresh = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!fresh && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else {
      line += (fresh ? '' : ' ') + word;
    }
    fresh = false;
  }
  lines.push(line);
  return lines.join('\n');
}
