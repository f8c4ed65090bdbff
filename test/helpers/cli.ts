// Runs the hardneg command as a user would and captures its output.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function hardneg(args: string[], env?: NodeJS.ProcessEnv): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'hardneg'), ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Settings that make a training run on a tiny image folder take seconds (P=3, K=2, 8-px images). */
export const TINY_RUN = [
  '--set',
  'dataset.imageSize=8',
  '--set',
  'model.embeddingSize=8',
  '--set',
  'model.attentionHeads=2',
  '--set',
  'train.classesPerBatch=3',
  '--set',
  'train.samplesPerClass=2',
  '--set',
  'eval.ks=[1]',
];
