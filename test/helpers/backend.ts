// Every test file imports this first: the same backend as the command line's default on our machines.
import { initBackend } from '../../src/engine/backend.ts';

export const BACKEND = await initBackend(process.env.HARDNEG_TEST_BACKEND === 'cpu' ? 'cpu' : 'wasm');
