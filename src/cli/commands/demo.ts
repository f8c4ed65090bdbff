// `hardneg demo`: placeholder replaced below.
import type { Command } from '../main.ts';
export const command: Command = { summary: 'demo', help: 'demo', async run() { return 0; } };
