// Builds the optional native addon, native/build/Release/hardneg_native.node: node-gyp against
// this Node's own headers (no download) and OpenBLAS (Debian: apt-get install libopenblas-dev),
// with oneDNN's convolutions when oneDNN is there (Debian: apt-get install libdnnl-dev).
// Run by `npm install` / `npm ci` (package.json "install"). It never fails the install: when
// headers, OpenBLAS, a compiler or node-gyp are missing it says so and exits 0, and the library
// falls back to the pure wasm kernels. HARDNEG_NATIVE=0 skips the build. Without oneDNN (or
// when the build with it fails) it says why and builds the addon without it; HARDNEG_DNNL=0
// leaves it out on purpose.
/* global process, console */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function skip(reason) {
  console.log(`hardneg: native addon not built (${reason}); using the wasm kernels.`);
  process.exit(0);
}

function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency: use npm's own copy below
  }
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

/**
 * Vector instructions for the element-wise kernels: AVX2 + FMA (x86-64-v3) when this CPU has
 * them, else the compiler's baseline. Not -march=native, so the addon also runs on other x86-64
 * CPUs of that level; OpenBLAS picks its own kernels at run time.
 */
function archFlags() {
  if (process.arch !== 'x64') return '';
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    return ['avx2', 'fma', 'bmi2', 'movbe'].every((f) => flags.includes(f)) ? '-march=x86-64-v3' : '';
  } catch {
    return '';
  }
}

function findCblas() {
  const machine = spawnSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).stdout?.trim();
  const dirs = ['/usr/include', '/usr/local/include', '/usr/include/openblas', ...(machine ? [`/usr/include/${machine}`] : [])];
  return dirs.map((d) => join(d, 'cblas.h')).find((f) => existsSync(f));
}

/** Why oneDNN cannot be used, or null when a test program includes dnnl.hpp and links -ldnnl. */
function dnnlMissing() {
  if (process.env.HARDNEG_DNNL === '0') return 'HARDNEG_DNNL=0';
  const probe = '#include <oneapi/dnnl/dnnl.hpp>\nint main() { return dnnl::version()->major > 0 ? 0 : 1; }\n';
  const r = spawnSync('g++', ['-std=c++17', '-x', 'c++', '-', '-ldnnl', '-o', '/dev/null'], { input: probe, encoding: 'utf8' });
  if (r.error) return `no compiler (${r.error.message})`;
  if (r.status !== 0) return 'oneDNN headers or library not found: apt-get install libdnnl-dev';
  return null;
}

function nodeGyp(gyp, nodedir, dnnl) {
  const env = { ...process.env, CXXFLAGS: `${process.env.CXXFLAGS ?? ''} ${archFlags()}`.trim(), HARDNEG_BUILD_DNNL: dnnl ? '1' : '0' };
  return spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: here, stdio: 'inherit', env }).status === 0;
}

if (process.env.HARDNEG_NATIVE === '0') skip('HARDNEG_NATIVE=0');
const nodedir = dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) skip(`no Node headers under ${nodedir}/include/node`);
if (!findCblas()) skip('no cblas.h: install OpenBLAS, e.g. apt-get install libopenblas-dev');
const gyp = findNodeGyp();
if (!gyp) skip('node-gyp not found');
let dnnlNote = dnnlMissing();
let built = nodeGyp(gyp, nodedir, dnnlNote === null);
if (!built && dnnlNote === null) {
  dnnlNote = 'the build with oneDNN failed';
  console.log(`hardneg: ${dnnlNote}; building the addon without it.`);
  built = nodeGyp(gyp, nodedir, false);
}
if (!built) skip('node-gyp failed');
console.log(
  `hardneg: native addon built (native/build/Release/hardneg_native.node), ${dnnlNote === null ? 'with oneDNN convolutions' : `without oneDNN (${dnnlNote})`}.`,
);
