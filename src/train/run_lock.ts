// One writer per run folder: an exclusive lock file, DIR/.hardneg.lock, holding the pid, host and
// start time of the process that writes the run. A second writer is refused with who holds it. A
// lock left by a process that is gone (killed, crashed) on this host is stale and taken over, so
// resume after kill -9 needs nothing by hand.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.ts';

export const LOCK_FILE = '.hardneg.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>;
    return typeof v.pid === 'number' && typeof v.host === 'string'
      ? { pid: v.pid, host: v.host, started: String(v.started), command: String(v.command ?? '') }
      : null;
  } catch {
    return null;
  }
}

export class RunLock {
  private released = false;
  private readonly onExit = (): void => this.release();
  /** Locks this process holds, by path, with how many times each was taken (re-entrant). */
  private static held = new Map<string, RunLock>();
  private count = 1;

  private constructor(readonly path: string) {
    process.once('exit', this.onExit);
  }

  /** Takes the lock of `dir` (which must exist) or throws a UserError naming its holder. */
  static acquire(dir: string, command = 'train'): RunLock {
    const path = join(resolve(dir), LOCK_FILE);
    const mine = RunLock.held.get(path);
    if (mine) {
      mine.count++;
      return mine;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = readLock(path);
        const stale = holder === null ? false : holder.host === hostname() && !alive(holder.pid);
        if (stale) {
          try {
            unlinkSync(path);
          } catch {
            /* another process took it over first */
          }
          continue;
        }
        const who = holder
          ? `hardneg ${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.started})`
          : 'another process (its lock file is being written)';
        throw new UserError(`${dir} is in use by ${who}: one writer per run folder; wait for it to finish, or remove ${path} if that process is gone`);
      }
      const info: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command };
      writeSync(fd, `${JSON.stringify(info)}\n`);
      closeSync(fd);
      const lock = new RunLock(path);
      RunLock.held.set(path, lock);
      return lock;
    }
    throw new UserError(`${dir}: could not take the run lock ${path}`);
  }

  /** Gives the lock back (once per acquire); the file goes when the last holder in this process lets go. */
  release(): void {
    if (this.released) return;
    if (--this.count > 0) return;
    this.released = true;
    RunLock.held.delete(this.path);
    process.off('exit', this.onExit);
    const holder = readLock(this.path);
    if (holder && holder.pid === process.pid && holder.host === hostname()) {
      try {
        unlinkSync(this.path);
      } catch {
        /* already gone */
      }
    }
  }
}
