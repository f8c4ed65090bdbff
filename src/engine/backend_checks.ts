// Records of `hardneg doctor` runs that passed every public golden case on a backend, kept in the
// user's cache. The engine line of a backend outside VERIFIED_BACKENDS cites such a record, for
// the same versions of hardneg, TensorFlow.js and the backend's package, instead of warning.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../cache.ts';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { VERSION, installedVersion } from '../version.ts';

/** The npm package that provides each backend beyond TensorFlow.js itself. */
export const BACKEND_PACKAGES: Record<string, string[]> = {
  wasm: ['@tensorflow/tfjs-backend-wasm'],
  cpu: [],
  tensorflow: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
  webgpu: ['@tensorflow/tfjs-backend-webgpu', 'webgpu'],
};

export interface BackendCheck {
  backend: string;
  /** hardneg, @tensorflow/tfjs and the backend's packages, as installed when checked. */
  versions: Record<string, string | null>;
  cases: number;
  date: string;
}

const recordPath = (): string => join(cacheDir(), 'backend-checks.json');

export function currentVersions(backend: string): Record<string, string | null> {
  const versions: Record<string, string | null> = { hardneg: VERSION, '@tensorflow/tfjs': installedVersion('@tensorflow/tfjs') };
  for (const pkg of BACKEND_PACKAGES[backend] ?? []) versions[pkg] = installedVersion(pkg);
  return versions;
}

function readRecords(): Record<string, BackendCheck> {
  try {
    const parsed = JSON.parse(readFileSync(recordPath(), 'utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, BackendCheck>) : {};
  } catch {
    return {}; // none yet, or unreadable: no record is the safe answer
  }
}

/** The passing check recorded for this backend with today's versions, or null. */
export function findBackendCheck(backend: string): BackendCheck | null {
  const record = readRecords()[backend];
  if (!record || typeof record.versions !== 'object') return null;
  const now = currentVersions(backend);
  const same = Object.keys(now).every((k) => record.versions[k] === now[k]);
  return same ? record : null;
}

/** Stores a passing check; best effort (a read-only home must not fail the doctor). */
export function recordBackendCheck(backend: string, cases: number): string | null {
  try {
    const dir = cacheDir();
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    const records = readRecords();
    records[backend] = { backend, versions: currentVersions(backend), cases, date: new Date().toISOString() };
    writeFileAtomic(recordPath(), `${JSON.stringify(records, null, 2)}\n`);
    return recordPath();
  } catch {
    return null;
  }
}
