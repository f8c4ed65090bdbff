// hardneg's cache folder, shared by everything it keeps between runs (downloaded weights, records
// of backend checks): $XDG_CACHE_HOME/hardneg, else ~/.cache/hardneg.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'hardneg');
}
