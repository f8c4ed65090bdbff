// One subcommand of `hardneg`: main.ts lists them, each file in commands/ exports one.
export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
  /**
   * True when the command handles SIGINT itself for these arguments (a server that drains its
   * requests and exits 0), so main.ts does not install its exit-130 handler.
   */
  ownsSignals?(argv: string[]): boolean;
}
