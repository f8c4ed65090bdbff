// A mistake of the user's (bad flag, missing file, wrong shape): reported as one line, exit code 2.
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
  }
}
