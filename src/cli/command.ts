// One subcommand of `hardneg`: main.ts lists them, each file in commands/ exports one.
export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}
