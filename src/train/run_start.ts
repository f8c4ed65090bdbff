// Starting a run without losing anything of the user's. The output folder is checked before
// anything is written: it must be new, empty, or a hardneg run folder (its files are ours by name,
// and its config.json parses as a run configuration); a run there is replaced only when asked
// (overwrite), and then moved aside first, deleted once the new run has started cleanly and put
// back if the new run fails before that. The folder's lock is held from the first check to the end.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { TrainConfig } from './config.ts';
import { RUN_FILES, isRunDir, readRunConfig, startRunDir } from './run_dir.ts';
import { LOCK_FILE, RunLock } from './run_lock.ts';

const ASIDE_PREFIX = '.replaced-';
const OUR_FILES = new Set<string>([...Object.values(RUN_FILES), LOCK_FILE]);

export interface BeginRunOptions {
  /** Replace a run already in the folder (it is kept aside until the new one has started). */
  overwrite?: boolean;
  /** The command, for the lock file and messages (default 'train'). */
  command?: string;
  /** The flag that named the folder, for messages (default '--out'). */
  flag?: string;
}

export interface RunStart {
  dir: string;
  lock: RunLock;
  /** Whether a run was moved aside to make room. */
  replacing: boolean;
  /** The new run has started cleanly: the run moved aside is deleted. */
  commit(): void;
  /** The new run failed before commit: its files are removed and the old run put back. */
  abort(): void;
}

/** Files in `dir` that hardneg did not write (names other than a run's, its lock and temporaries). */
function foreignEntries(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !OUR_FILES.has(name) && !name.endsWith('.tmp') && !name.startsWith(ASIDE_PREFIX))
    .sort();
}

function listShort(names: string[]): string {
  return names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');
}

/** Checks `dir` can hold a new run and prepares it (lock, old run aside, config.json). */
export function beginRun(dir: string, config: TrainConfig, opts: BeginRunOptions = {}): RunStart {
  const flag = opts.flag ?? '--out';
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`${flag} ${dir}: is a file, expected a folder for the run`);
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const lock = RunLock.acquire(dir, opts.command ?? 'train');
  let aside: string | null = null;
  try {
    const foreign = foreignEntries(dir);
    if (foreign.length > 0) throw new UserError(`${flag} ${dir}: holds files hardneg did not write (${listShort(foreign)}); give a new or empty folder`);
    const left = readdirSync(dir).filter((n) => n.startsWith(ASIDE_PREFIX));
    if (left.length > 0)
      throw new UserError(
        `${flag} ${dir}: ${left[0]} holds a run replaced by an --overwrite that was interrupted; move its files back into ${dir} or delete it, then try again`,
      );
    if (existsSync(join(dir, RUN_FILES.config))) readRunConfig(dir); // refuses a config.json that is not a hardneg run's
    if (isRunDir(dir)) {
      if (!opts.overwrite) throw new UserError(`${flag} ${dir} already holds a run; use --resume ${dir} to continue it or --overwrite to replace it`);
      aside = join(dir, `${ASIDE_PREFIX}${process.pid}`);
      mkdirSync(aside);
      for (const f of Object.values(RUN_FILES)) if (existsSync(join(dir, f))) renameSync(join(dir, f), join(aside, f));
    }
    startRunDir(dir, config);
  } catch (err) {
    if (aside) restore(dir, aside);
    lock.release();
    if (created) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let settled = false;
  return {
    dir,
    lock,
    replacing: aside !== null,
    commit() {
      if (settled) return;
      settled = true;
      if (aside) rmSync(aside, { recursive: true, force: true });
    },
    abort() {
      if (settled) return;
      settled = true;
      for (const f of Object.values(RUN_FILES)) rmSync(join(dir, f), { force: true });
      if (aside) restore(dir, aside);
      else if (created) {
        lock.release();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function restore(dir: string, aside: string): void {
  for (const f of readdirSync(aside)) renameSync(join(aside, f), join(dir, f));
  rmSync(aside, { recursive: true, force: true });
}
