// What a hardneg install computes with: versions, the backend and its kernels, and the optional
// parts (native addon, OpenBLAS, oneDNN, sharp, onnxruntime, LanceDB, Chromium). The first half of
// `hardneg doctor`, and what a bug report should carry.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, platform, arch } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { VERSION, installedVersion } from '../version.ts';
import { VERIFIED_BACKENDS, describeEngine } from './backend.ts';
import { nativeStatus } from './native_kernels.ts';
import { BACKEND_PACKAGES } from './backend_checks.ts';

export interface Component {
  /** Version, path or state when present; null when absent. */
  found: string | null;
  /** What it is for, or how to get it when absent. */
  note: string;
}

export interface EnvironmentReport {
  hardneg: string;
  node: string;
  npm: string | null;
  platform: string;
  backend: { name: string; verified: boolean; engine: string };
  components: Record<string, Component>;
}

function npmVersion(): string | null {
  const agent = /npm\/(\S+)/.exec(process.env.npm_config_user_agent ?? '');
  if (agent) return agent[1] as string;
  const r = spawnSync('npm', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The version of the first of these packages that is installed, or null. */
const firstInstalled = (names: readonly string[] = []): string | null => names.map(installedVersion).find((v) => v !== null) ?? null;

const firstExisting = (paths: string[]): string | null => paths.find((p) => existsSync(p)) ?? null;

function libraryDirs(): string[] {
  const machine = arch() === 'x64' ? 'x86_64-linux-gnu' : arch() === 'arm64' ? 'aarch64-linux-gnu' : '';
  return ['/usr/lib', '/usr/local/lib', ...(machine ? [`/usr/lib/${machine}`] : [])];
}

async function sharpVersions(): Promise<string | null> {
  try {
    const sharp = (await import('sharp')).default as unknown as { versions: Record<string, string> };
    return `${sharp.versions.sharp ?? installedVersion('sharp')} (libvips ${sharp.versions.vips})`;
  } catch {
    return null;
  }
}

function chromium(): string | null {
  const fromEnv = process.env.CHROME_PATH;
  return firstExisting([...(fromEnv ? [fromEnv] : []), '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']);
}

/** Collects the report; the backend must already be initialised (initBackend). */
export async function environmentReport(): Promise<EnvironmentReport> {
  const cpuList = cpus();
  const backend = tf.getBackend();
  const native = nativeStatus();
  const openblas = firstExisting([
    '/usr/include/cblas.h',
    '/usr/include/openblas/cblas.h',
    '/usr/include/x86_64-linux-gnu/cblas.h',
    '/usr/include/aarch64-linux-gnu/cblas.h',
  ]);
  const onednn = firstExisting(libraryDirs().flatMap((d) => [`${d}/libdnnl.so.2`, `${d}/libdnnl.so.3`, `${d}/libdnnl.so`]));
  const optional = (name: string, what: string): Component => {
    const v = installedVersion(name);
    return { found: v, note: v ? what : `not installed (${what})` };
  };
  return {
    hardneg: VERSION,
    node: process.version,
    npm: npmVersion(),
    platform: `${platform()} ${arch()}, ${cpuList.length} CPU${cpuList.length === 1 ? '' : 's'}${cpuList[0] ? ` (${cpuList[0].model.trim()})` : ''}`,
    backend: { name: backend, verified: VERIFIED_BACKENDS.includes(backend), engine: describeEngine() },
    components: {
      'native kernels': native.active
        ? {
            found: `${native.blas || 'OpenBLAS'}, ${native.threads} thread${native.threads === 1 ? '' : 's'}`,
            note: `matrix products, element-wise and fused GNN kernels, k-NN${native.dnnl.active ? ', convolutions (oneDNN)' : ''}`,
          }
        : {
            found: null,
            note: `${native.reason}${openblas ? '' : '; OpenBLAS headers missing (apt-get install libopenblas-dev g++ make), then node native/build.mjs'}`,
          },
      OpenBLAS: { found: openblas, note: openblas ? 'headers for the native addon' : 'not found: apt-get install libopenblas-dev (speed)' },
      oneDNN: {
        found: onednn,
        // In use when the addon was built with it (native/build.mjs) unless HARDNEG_DNNL=0.
        note: native.dnnl.active
          ? `convolutions on oneDNN ${native.dnnl.built} (HARDNEG_DNNL=0 turns them off)`
          : native.dnnl.built
            ? `the addon has oneDNN ${native.dnnl.built}; not in use (${native.active ? 'HARDNEG_DNNL=0' : native.reason})`
            : onednn
              ? 'found, but the addon was built without it: node native/build.mjs'
              : 'not found: apt-get install libdnnl-dev, then node native/build.mjs (fast convolutions)',
      },
      sharp: { found: await sharpVersions(), note: 'image decoding for folder and benchmark datasets' },
      onnxruntime: optional('onnxruntime-node', 'ONNX backbones in frozen-feature mode'),
      LanceDB: optional('@lancedb/lancedb', 'optional: vector search over embeddings'),
      Chromium: { found: chromium(), note: 'headless browser for the report tests; apt-get install chromium' },
      'tfjs-node': { found: firstInstalled(BACKEND_PACKAGES.tensorflow), note: 'opt-in: --backend tensorflow' },
      webgpu: { found: installedVersion('@tensorflow/tfjs-backend-webgpu'), note: 'opt-in: --backend webgpu' },
    },
  };
}
