// Compiles the library (src/ → dist/: JavaScript, .d.ts and source maps) with tsconfig.build.json.
// Run by `npm install` in a clone and by `npm pack` (package.json "prepare"). It builds into a
// fresh folder and swaps it in, then writes dist/.build-stamp last: bin/hardneg runs dist/ only
// when that stamp is newer than every source file, so a half-built or stale dist/ never runs.
// Without TypeScript (an install without dev dependencies) it says so and exits 0: the command
// then runs the sources through tsx.
/* global process, console */
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.log('hardneg: library not compiled (TypeScript is not installed); bin/hardneg runs the sources through tsx.');
  process.exit(0);
}
const fresh = join(root, 'dist.building');
rmSync(fresh, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', fresh], { stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(fresh, { recursive: true, force: true });
  console.error(`hardneg: tsc exited with ${r.status ?? r.signal}`);
  process.exit(1);
}
const dist = join(root, 'dist');
if (existsSync(dist)) rmSync(dist, { recursive: true, force: true });
renameSync(fresh, dist);
writeFileSync(join(dist, '.build-stamp'), `${new Date().toISOString()}\n`);
console.log('hardneg: library compiled (dist/).');
