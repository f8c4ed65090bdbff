// One entry point for a file of weights, whatever wrote it: a torch.save checkpoint (zip or legacy
// format) or safetensors, told apart by their first bytes rather than by the file name.
import { closeSync, openSync, readSync } from 'node:fs';
import type { HostTensor } from './host_tensor.ts';
import { readTorchCheckpoint, type SelectOptions, sniffFormat, type StateDictFile, TorchCheckpointError } from './pth.ts';
import { readSafetensors, SafetensorsError } from './safetensors.ts';

function head(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const out = new Uint8Array(512);
    return out.subarray(0, readSync(fd, out, 0, out.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** `key` and `stripPrefix` over flat names (safetensors): 'teacher' selects 'teacher.*'. */
function selectNames(tensors: Map<string, HostTensor>, path: string, opts: SelectOptions): StateDictFile {
  let out = tensors;
  if (opts.key !== undefined) {
    const p = `${opts.key}.`;
    out = new Map([...out].filter(([n]) => n.startsWith(p)).map(([n, t]) => [n.slice(p.length), t]));
    if (out.size === 0) throw new TorchCheckpointError(`${path}: has no entry '${opts.key}' (no tensor name starts with '${p}')`);
  }
  let outsidePrefix = 0;
  const prefix = opts.stripPrefix;
  if (prefix) {
    const kept = new Map([...out].filter(([n]) => n.startsWith(prefix) && n.length > prefix.length).map(([n, t]) => [n.slice(prefix.length), t]));
    if (kept.size === 0) {
      throw new TorchCheckpointError(
        `${path}: no tensor name starts with '${prefix}' (names are like ${[...out.keys()]
          .slice(0, 3)
          .map((n) => `'${n}'`)
          .join(', ')})`,
      );
    }
    outsidePrefix = out.size - kept.size;
    out = kept;
  }
  return { format: 'safetensors', tensors: out, nonTensors: [], outsidePrefix };
}

/**
 * The named tensors of a weights file: a PyTorch checkpoint (.pth/.pt/.bin/.ckpt, either
 * torch.save format) or safetensors, picked by content. `key` descends into one entry first (DINO
 * full checkpoints: 'teacher'); `stripPrefix` keeps the names that start with it, without it.
 */
export function readStateDict(path: string, opts: SelectOptions = {}): StateDictFile {
  const kind = sniffFormat(head(path));
  if (kind === 'safetensors') {
    try {
      return selectNames(readSafetensors(path).tensors, path, opts);
    } catch (err) {
      if (err instanceof SafetensorsError) throw new TorchCheckpointError(err.message);
      throw err;
    }
  }
  return readTorchCheckpoint(path, opts);
}
