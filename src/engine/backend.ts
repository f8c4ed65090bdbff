// Chooses the TensorFlow.js backend. `auto` takes only what the golden tests, trajectories, leak
// tests and benchmarks run on: wasm (SIMD) with the native kernels of the optional addon when it
// is built (see native_kernels.ts), then plain wasm, then the pure-JS cpu backend. `tensorflow`
// (tfjs-node) and `webgpu` are opt-in: used only when named, and then the engine line says that
// no recorded check covers them (VERIFIED_BACKENDS).
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.ts';
import { enableNativeKernels, nativeStatus } from './native_kernels.ts';
import { findBackendCheck } from './backend_checks.ts';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'wasm', 'cpu', 'webgpu'];

/**
 * Backends that the golden tests run on in `npm test` (wasm with and without the native kernels,
 * cpu), fastest first: exactly what `auto` tries, in this order. Any other backend computes
 * through code that no recorded check has covered.
 */
export const VERIFIED_BACKENDS: readonly string[] = ['wasm', 'cpu'];

let initialised: string | null = null;

async function tryImport(specifier: string): Promise<boolean> {
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

/**
 * WebGPU in Node needs a navigator.gpu; Node has none of its own. When the Dawn bindings (the npm
 * package `webgpu`) are installed they provide one. Unverified here: no GPU on our machines.
 */
async function ensureNavigatorGpu(): Promise<boolean> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return true;
  try {
    const specifier = 'webgpu';
    const dawn = (await import(specifier)) as { create: (flags: string[]) => unknown; globals: object };
    Object.assign(globalThis, dawn.globals);
    Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: dawn.create([]) }, configurable: true, writable: true });
    return true;
  } catch {
    return false;
  }
}

async function trySet(name: string): Promise<boolean> {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

const INSTALL_HINTS: Record<string, string> = {
  tensorflow: 'npm install @tensorflow/tfjs-node-gpu (NVIDIA GPU, CUDA) or @tensorflow/tfjs-node (CPU)',
  webgpu: 'npm install @tensorflow/tfjs-backend-webgpu webgpu (WebGPU through the Dawn bindings)',
  wasm: 'npm install @tensorflow/tfjs-backend-wasm',
};

/** The requested backend cannot run here: a user's choice, reported without a stack trace. */
export class BackendUnavailableError extends UserError {
  constructor(requested: string, tried: string[], expected?: string) {
    const hint = INSTALL_HINTS[requested];
    super(
      expected
        ? `unknown backend '${requested}': ${expected}`
        : `backend '${requested}' is not available (tried ${tried.join(', ')})${hint ? `; to use it: ${hint}` : ''}; or use --backend auto`,
    );
    this.name = 'BackendUnavailableError';
  }
}

/** Initialises the backend once per process and returns the name actually in use. */
export async function initBackend(requested: BackendName = 'auto'): Promise<string> {
  if (!BACKEND_NAMES.includes(requested)) throw new BackendUnavailableError(String(requested), [], `expected one of ${BACKEND_NAMES.join(', ')}`);
  if (initialised !== null && (requested === 'auto' || requested === initialised)) return initialised;
  const order: string[] = requested === 'auto' ? [...VERIFIED_BACKENDS] : [requested];
  for (const name of order) {
    if (name === 'tensorflow' && !(await tryImport('@tensorflow/tfjs-node-gpu')) && !(await tryImport('@tensorflow/tfjs-node'))) continue;
    if (name === 'wasm' && !(await tryImport('@tensorflow/tfjs-backend-wasm'))) continue;
    if (name === 'webgpu' && !((await ensureNavigatorGpu()) && (await tryImport('@tensorflow/tfjs-backend-webgpu')))) continue;
    if (await trySet(name)) {
      await tf.ready();
      if (name === 'wasm') enableNativeKernels();
      initialised = name;
      return name;
    }
  }
  throw new BackendUnavailableError(requested, order);
}

/** One line on what computes: the backend, and on wasm whether the native kernels are in use and why not. */
export function describeEngine(): string {
  const backend = tf.getBackend();
  if (!VERIFIED_BACKENDS.includes(backend)) {
    const check = findBackendCheck(backend);
    return check
      ? `backend ${backend} (asked for by name; not covered by the golden tests, but 'hardneg doctor' passed its ${check.cases} public golden cases on it on ${check.date.slice(0, 10)} with these versions)`
      : `backend ${backend} (asked for by name; not covered by the golden tests: 'hardneg doctor --backend ${backend}' checks it)`;
  }
  if (backend !== 'wasm') return `backend ${backend}`;
  const native = nativeStatus();
  return native.active
    ? `backend wasm + native kernels (OpenBLAS, ${native.threads} thread${native.threads === 1 ? '' : 's'})`
    : `backend wasm, one thread, without the native kernels: ${native.reason}`;
}
