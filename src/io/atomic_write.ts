// Atomic file replacement: write a sibling temporary file, flush it, then rename over the target.
// On any failure the temporary file is removed and the error names the target, not the
// temporary file (the error boundary turns it into one line).
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

function aboutTarget(err: unknown, path: string): unknown {
  if (err && typeof err === 'object' && 'code' in err) Object.assign(err, { path, dest: undefined });
  return err;
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (err) {
    throw aboutTarget(err, path);
  }
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw aboutTarget(err, path);
  }
}
