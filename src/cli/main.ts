// The hardneg command line: dispatches `hardneg <command> [options]` to one module per command.
import type { Command } from './command.ts';
import { EXIT, reportError } from './error_boundary.ts';
import { VERSION } from '../version.ts';

const COMMANDS: Record<string, () => Promise<Command>> = {
  start: async () => (await import('./commands/start.ts')).command,
  train: async () => (await import('./commands/train.ts')).command,
  compare: async () => (await import('./commands/compare.ts')).command,
  demo: async () => (await import('./commands/demo.ts')).command,
  generate: async () => (await import('./commands/generate.ts')).command,
  'reference-check': async () => (await import('./commands/reference_check.ts')).command,
  evaluate: async () => (await import('./commands/evaluate.ts')).command,
  embed: async () => (await import('./commands/embed.ts')).command,
  export: async () => (await import('./commands/export.ts')).command,
  index: async () => (await import('./commands/index_cmd.ts')).command,
  search: async () => (await import('./commands/search.ts')).command,
  report: async () => (await import('./commands/report.ts')).command,
  serve: async () => (await import('./commands/serve.ts')).command,
  data: async () => (await import('./commands/data.ts')).command,
  weights: async () => (await import('./commands/weights.ts')).command,
  features: async () => (await import('./commands/features.ts')).command,
  doctor: async () => (await import('./commands/doctor.ts')).command,
};

async function usage(): Promise<string> {
  const lines = ['hardneg: deep metric learning with GCA-HNG hard negative generation', '', 'usage: hardneg <command> [options]', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const cmd = await (COMMANDS[name] as () => Promise<Command>)();
    lines.push(`  ${name.padEnd(18)}${cmd.summary}`);
  }
  lines.push('', "Run 'hardneg <command> --help' for a command's options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    console.log(VERSION);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`hardneg: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')}`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.help);
    return 0;
  }
  const interrupted = (): void => {
    console.error(`\nhardneg ${name}: interrupted`);
    process.exit(EXIT.interrupted);
  };
  if (!cmd.ownsSignals?.(rest)) process.once('SIGINT', interrupted);
  try {
    return await cmd.run(rest);
  } catch (err) {
    return reportError(err, name);
  } finally {
    process.off('SIGINT', interrupted);
  }
}
