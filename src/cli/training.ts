// What train, start and compare share: their configuration flags as setup.ts takes them, and
// training with the command line's progress (the engine line once per process, a progress bar per
// epoch, one line per evaluation, dataset warnings; silent when quiet).
import type { TrainConfig } from '../train/config.ts';
import { trainRun, type ConfigSources } from '../train/setup.ts';
import type { TrainResult } from '../train/trainer.ts';
import type { RunStart } from '../train/run_start.ts';
import { formatEval } from './format.ts';
import { ProgressBar } from './progress.ts';

let engineReported = false;

/**
 * Trains with progress. `start` (from beginRun) is committed once the first iteration has run
 * (the run started cleanly: a replaced run is deleted) and aborted if training fails before that
 * (the replaced run is put back); its lock is released at the end either way.
 */
export async function trainWithProgress(config: TrainConfig, runDir: string, resume: boolean, quiet: boolean, start?: RunStart): Promise<TrainResult> {
  const bar = new ProgressBar(`${config.train.method} epoch`, quiet);
  try {
    const result = await train(config, runDir, resume, quiet, bar, () => start?.commit());
    start?.commit();
    return result;
  } catch (err) {
    start?.abort();
    throw err;
  } finally {
    start?.lock.release();
  }
}

function train(config: TrainConfig, runDir: string, resume: boolean, quiet: boolean, bar: ProgressBar, started: () => void): Promise<TrainResult> {
  return trainRun(config, runDir, resume, {
    onEngine: (line) => {
      if (quiet || engineReported) return;
      process.stderr.write(`${line}\n`);
      engineReported = true;
    },
    onWarning: (msg) => {
      if (!quiet) process.stderr.write(`warning: ${msg}\n`);
    },
    onIteration: ({ epoch, iteration, iterations, losses }) => {
      started();
      const terms = Object.entries(losses)
        .filter(([k]) => k.startsWith('J_'))
        .map(([k, x]) => `${k} ${x.toFixed(3)}`)
        .join(' ');
      bar.update(iteration, iterations, `(${epoch + 1}/${config.train.epochs}) ${terms}`);
      if (iteration === iterations) bar.done();
    },
    onEvaluation: (r) => {
      if (!quiet) process.stderr.write(`${formatEval(r)}\n`);
    },
  });
}

/** The configuration flags of train and compare, as setup.ts takes them. */
export function configSources(v: Record<string, unknown>): ConfigSources {
  const str = (k: string): string | undefined => (v[k] === undefined ? undefined : String(v[k]));
  return {
    preset: str('preset'),
    config: str('config'),
    dataset: str('dataset'),
    dataRoot: str('data-root'),
    method: str('method'),
    epochs: str('epochs'),
    seed: str('seed'),
    backend: str('backend'),
    set: v.set as string[] | undefined,
  };
}
