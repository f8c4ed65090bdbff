// Whether two paths name one file, so that no command writes its output onto one of its inputs.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

/** True when a and b are the same file: the same path, or (both existing) through links or another spelling. */
export function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  if (!existsSync(a) || !existsSync(b)) return false;
  if (realpathSync(a) === realpathSync(b)) return true;
  const [sa, sb] = [statSync(a), statSync(b)];
  return sa.dev === sb.dev && sa.ino === sb.ino;
}
