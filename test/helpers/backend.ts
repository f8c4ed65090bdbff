// Every test file imports this first: the same backend as the command line's default on our machines.
// HARDNEG_TEST_BACKEND=cpu (test/golden_fallback.test.ts) or webgpu / tensorflow (scripts/gpu/run.sh,
// on a machine with a GPU) runs the same tests on that backend instead.
import { BACKEND_NAMES, type BackendName, initBackend } from '../../src/engine/backend.ts';

const asked = process.env.HARDNEG_TEST_BACKEND;
export const BACKEND = await initBackend(asked && asked !== 'auto' && BACKEND_NAMES.includes(asked as BackendName) ? (asked as BackendName) : 'wasm');
