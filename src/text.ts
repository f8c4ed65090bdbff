// Text helpers shared by error messages and help texts.

/** Names as a sentence's list: 'a', 'a or b', 'a, b or c'; `defaultName` is marked '(default)'. */
export function nameList(names: readonly string[], opts: { conjunction?: string; defaultName?: string } = {}): string {
  const marked = names.map((n) => (n === opts.defaultName ? `${n} (default)` : n));
  if (marked.length <= 1) return marked.join('');
  return `${marked.slice(0, -1).join(', ')} ${opts.conjunction ?? 'or'} ${marked[marked.length - 1]}`;
}
