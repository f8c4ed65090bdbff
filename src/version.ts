// hardneg's own version and the installed versions of the packages it reports on.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const PACKAGE_JSON = new URL('../package.json', import.meta.url);

/** hardneg's version, from its package.json (one source). */
export const VERSION: string = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string }).version;

/**
 * The version of an installed package, or null when it is not installed. Found from the file its
 * entry point resolves to (a package's `exports` may hide its package.json), walking up to the
 * package.json that carries its name.
 */
export function installedVersion(name: string): string | null {
  let entry: string;
  try {
    entry = createRequire(PACKAGE_JSON).resolve(name);
  } catch {
    return null;
  }
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? null;
    } catch {
      // no package.json at this level: keep walking up
    }
  }
  return null;
}
