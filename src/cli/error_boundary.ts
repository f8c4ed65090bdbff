// The one place where an error becomes what the user sees: one line, `hardneg <command>: <what>`,
// and a documented exit code. 2: a mistake of the user's (a flag, a file, a value); 1: a failure
// of the program or the machine (a bug, a full disk); 130: interrupted. HARDNEG_DEBUG=1 adds the
// stack, for bug reports. Nothing else is ever printed, so no path dumps minified library source.
import { UserError, firstLine } from '../errors.ts';
import { SafetensorsError } from '../io/safetensors.ts';
import { NpyError } from '../io/npy.ts';

export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/** A message is cut here: some libraries put whole source files into theirs. */
const MAX_MESSAGE = 400;

interface SystemError extends Error {
  code?: string;
  path?: string;
  dest?: string;
  syscall?: string;
}

/** What each file-system error means, in words; the ones a user's path causes are exit 2. */
const FS_ERRORS: Record<string, { what: string; user: boolean }> = {
  ENOENT: { what: 'no such file or folder', user: true },
  ENOTDIR: { what: 'a part of the path is a file, not a folder', user: true },
  EISDIR: { what: 'is a folder, expected a file', user: true },
  EEXIST: { what: 'already exists', user: true },
  EACCES: { what: 'permission denied', user: true },
  EPERM: { what: 'operation not permitted', user: true },
  EROFS: { what: 'read-only file system', user: true },
  ENAMETOOLONG: { what: 'file name too long', user: true },
  ENOTEMPTY: { what: 'folder not empty', user: true },
  ENOSPC: { what: 'no space left on the device', user: false },
  EDQUOT: { what: 'disk quota exceeded', user: false },
  EMFILE: { what: 'too many open files', user: false },
  EIO: { what: 'input/output error', user: false },
};

function clip(s: string): string {
  const line = firstLine(s);
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}…` : line;
}

/** The line (without the `hardneg <command>: ` prefix) and exit code for any thrown value. */
export function describeError(err: unknown, command: string): { message: string; code: number } {
  if (err instanceof UserError) return { message: clip(err.message), code: err.exitCode };
  if (err instanceof SafetensorsError || err instanceof NpyError) return { message: clip(err.message), code: EXIT.usage };
  const e = err as SystemError;
  if (e instanceof TypeError && e.code?.startsWith('ERR_PARSE_ARGS'))
    return { message: `${clip(e.message).replace(/\.+$/, '')}. See 'hardneg ${command} --help'.`, code: EXIT.usage };
  const fs = e?.code ? FS_ERRORS[e.code] : undefined;
  if (fs && e.path) {
    const verb = e.syscall ? ` (${e.syscall})` : '';
    const target = e.dest ? `${e.path} → ${e.dest}` : e.path;
    return { message: `${target}: ${fs.what}${verb}`, code: fs.user ? EXIT.usage : EXIT.failure };
  }
  const text = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
  return {
    message: `internal error: ${clip(text)} (a bug: please report it with the output of 'hardneg doctor'; HARDNEG_DEBUG=1 prints the stack)`,
    code: EXIT.failure,
  };
}

/** Prints the one line (and with HARDNEG_DEBUG=1 the stack) and returns the exit code. */
export function reportError(err: unknown, command: string): number {
  const { message, code } = describeError(err, command);
  console.error(`hardneg ${command}: ${message}`);
  if (process.env.HARDNEG_DEBUG === '1' && err instanceof Error && err.stack) console.error(err.stack);
  return code;
}
