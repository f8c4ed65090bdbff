// hardneg's own version and the installed versions of the packages it reports on.
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/**
 * The git commit hardneg runs from, when it runs from a git checkout (a published package has
 * none: null). `dirty` says the work tree differs from the commit, so a result table can tell
 * whether its commit alone reproduces it.
 */
export function sourceCommit(): { commit: string; dirty: boolean } | null {
  const root = fileURLToPath(new URL('.', PACKAGE_JSON));
  const git = (args: string[]) => spawnSync('git', ['-C', root, ...args], { encoding: 'utf8', timeout: 5000 });
  const head = git(['rev-parse', '--show-toplevel', 'HEAD']);
  if (head.status !== 0) return null;
  const [top, commit] = head.stdout.trim().split('\n');
  // A package installed inside someone else's repository is not a checkout of hardneg.
  if (!top || !commit || !sameDir(top, root)) return null;
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return { commit, dirty: status.status !== 0 || status.stdout.trim() !== '' };
}

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
