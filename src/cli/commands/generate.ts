import type { Command } from '../main.ts';
export const command: Command = { summary: 'generate', help: 'generate', async run() { return 0; } };
