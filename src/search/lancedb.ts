// LanceDB, loaded on first use. Its native module is a prebuilt binary per platform; where none
// fits (or the optional package was left out), only the index and search commands are affected,
// so nothing that the CLI always loads may import LanceDB at the top level: this loader is the one
// way in, and it turns the failure into one line.
//
// LanceDB's JavaScript side is CommonJS and builds its Arrow objects with the CommonJS copy of
// apache-arrow; tables made with the ESM copy fail its `instanceof` checks ("schemas must be
// equivalent"). So apache-arrow is required from LanceDB's own location, never imported.
import { createRequire } from 'node:module';
import type * as LanceDBModule from '@lancedb/lancedb';
import type * as ArrowModule from 'apache-arrow';
import { firstLine, UserError } from '../errors.ts';
import { installedVersion } from '../version.ts';

export type LanceDB = typeof LanceDBModule;
export type Arrow = typeof ArrowModule;

export interface LanceModules {
  lancedb: LanceDB;
  /** The apache-arrow instance LanceDB itself uses. */
  arrow: Arrow;
  /** LanceDB's package version (for index manifests). */
  version: string;
}

export const LANCEDB_PACKAGE = '@lancedb/lancedb';

const cache = new Map<string, Promise<LanceModules>>();

async function load(name: string): Promise<LanceModules> {
  const require = createRequire(import.meta.url);
  try {
    const entry = require.resolve(name);
    const lancedb = (await import(name)) as LanceDB;
    // Touch the native side now, so a missing binary fails here and not in the middle of a build.
    if (typeof lancedb.connect !== 'function') throw new Error(`${name} has no connect()`);
    const arrow = createRequire(entry)('apache-arrow') as Arrow;
    return { lancedb, arrow, version: installedVersion(name) ?? 'unknown' };
  } catch (err) {
    throw new UserError(
      `hardneg index: LanceDB's native module could not be loaded for this platform (${process.platform}-${process.arch}: ${firstLine(err)}); the rest of hardneg works without it`,
    );
  }
}

/** LanceDB and its apache-arrow, or a UserError saying that this platform has none. `name` is for tests. */
export function loadLanceDB(name: string = LANCEDB_PACKAGE): Promise<LanceModules> {
  let p = cache.get(name);
  if (!p) {
    p = load(name);
    // A failed load is not cached: a later call (after installing) may succeed.
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}
