// Worker threads whose entry is a module of hardneg. Run from the TypeScript sources (a clone, via
// tsx), the entry is a .ts file and the worker starts through a small bootstrap that registers tsx
// first, since the loader hooks of this thread do not reach new threads; run from the compiled
// package (dist/), the entry is the sibling .js file and starts directly.
import { Worker } from 'node:worker_threads';

/** The URL of module `name` beside the module at `importMetaUrl`, with that module's extension. */
export function siblingModule(importMetaUrl: string, name: string): URL {
  const ext = importMetaUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, importMetaUrl);
}

export function startModuleWorker(entry: URL): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true });
}
