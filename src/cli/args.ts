// Flag parsing shared by the commands: node:util's parseArgs, plus what it lacks for a numeric
// tool: `--flag -1` (a negative number as a value, which parseArgs takes for an option) and
// numeric flags checked with messages that name the flag as the user typed it (src/values.ts).
import { existsSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.ts';
import type { HostTensor } from '../io/host_tensor.ts';
import { NpyError, readNpy } from '../io/npy.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** `['--alpha', '-5']` → `['--alpha=-5']` for string options, so a negative value reaches the check. */
export function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    if (name !== null && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d|inf|nan)/i.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** parseArgs with negative numbers allowed as values. */
export function parseFlags<T extends ParseArgsConfig & { args: string[] }>(config: T): ReturnType<typeof parseArgs<T>> {
  return parseArgs<T>({ ...config, args: joinNegativeValues(config.args, config.options ?? {}) });
}

/** The .npy file a flag names, or one line naming the flag: a missing file, or what is wrong with it. */
export function readNpyFlag(flag: string, path: string): HostTensor {
  if (!existsSync(path) || statSync(path).isDirectory()) throw new UserError(`--${flag} ${path}: file not found`);
  try {
    return readNpy(path);
  } catch (err) {
    if (err instanceof NpyError) throw new UserError(`--${flag} ${err.message}`);
    throw err;
  }
}
