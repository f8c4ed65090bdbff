// Numbers from the text of a flag or a file, checked, with a one-line UserError that names the
// flag as the user typed it and what was expected: `--epochs abc: expected a positive integer`.
import { UserError } from './errors.ts';

export interface NumberRule {
  min?: number;
  max?: number;
  /** The value must be below max, not equal to it. */
  belowMax?: boolean;
  integer?: boolean;
}

function describeRule(r: NumberRule): string {
  const kind = r.integer ? 'an integer' : 'a number';
  if (r.min !== undefined && r.max !== undefined) return `${kind} in [${r.min}, ${r.max}${r.belowMax ? ')' : ']'}`;
  if (r.min !== undefined)
    return r.min === 0 ? `a non-negative ${r.integer ? 'integer' : 'number'}` : r.min === 1 && r.integer ? 'a positive integer' : `${kind} ≥ ${r.min}`;
  if (r.max !== undefined) return `${kind} ${r.belowMax ? '<' : '≤'} ${r.max}`;
  return kind;
}

/** A finite number from a flag's text, or a UserError: `--flag VALUE: expected …`. */
export function numberFlag(flag: string, text: string, rule: NumberRule = {}): number {
  const t = text.trim();
  const x = t === '' ? NaN : Number(t);
  const ok =
    Number.isFinite(x) &&
    (!rule.integer || Number.isInteger(x)) &&
    (rule.min === undefined || x >= rule.min) &&
    (rule.max === undefined || (rule.belowMax ? x < rule.max : x <= rule.max));
  if (!ok) throw new UserError(`--${flag} ${text}: expected ${describeRule(rule)}`);
  return x;
}

/** The same for an optional flag: undefined stays undefined. */
export function optionalNumberFlag(flag: string, text: string | undefined, rule: NumberRule = {}): number | undefined {
  return text === undefined ? undefined : numberFlag(flag, text, rule);
}
