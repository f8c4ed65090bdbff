// Numeric assertions for tests.
import assert from 'node:assert/strict';

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'value'): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    assert.ok(Math.abs(a - e) <= tol, `${what}[${i}]: ${a} vs expected ${e} (tolerance ${tol})`);
  }
}

export function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  let d = 0;
  let r = 0;
  for (let i = 0; i < expected.length; i++) {
    d += ((actual[i] as number) - (expected[i] as number)) ** 2;
    r += (expected[i] as number) ** 2;
  }
  return Math.sqrt(d) / Math.sqrt(r);
}
