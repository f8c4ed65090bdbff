// Chooses the TensorFlow.js backend: tfjs-node when the user has it installed, otherwise wasm
// (SIMD, XNNPACK), with the pure-JS cpu backend as the last resort.
import * as tf from '@tensorflow/tfjs';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';

export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'wasm', 'cpu', 'webgpu'];

let initialised: string | null = null;

async function tryImport(specifier: string): Promise<boolean> {
  try {
    await import(specifier);
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

/** Initialises the backend once per process and returns the name actually in use. */
export async function initBackend(requested: BackendName = 'auto'): Promise<string> {
  if (initialised !== null && (requested === 'auto' || requested === initialised)) return initialised;
  const order: string[] = requested === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [requested];
  for (const name of order) {
    if (name === 'tensorflow' && !(await tryImport('@tensorflow/tfjs-node-gpu')) && !(await tryImport('@tensorflow/tfjs-node'))) continue;
    if (name === 'wasm' && !(await tryImport('@tensorflow/tfjs-backend-wasm'))) continue;
    if (name === 'webgpu' && !(await tryImport('@tensorflow/tfjs-backend-webgpu'))) continue;
    if (await trySet(name)) {
      await tf.ready();
      initialised = name;
      return name;
    }
  }
  throw new Error(`backend '${requested}' is not available (tried ${order.join(', ')}); install its package or use --backend auto`);
}
