// A mistake of the user's (bad flag, missing file, wrong shape): reported as one line, exit code 2.
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** The first non-empty line of an error's message, for one-line reports. */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg.split('\n').find((l) => l.trim().length > 0) ?? msg).trim();
}
