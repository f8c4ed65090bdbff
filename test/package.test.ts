// hardneg as a package: `npm pack` on a copy of this working tree, the tarball installed offline
// into an empty project, then what a user of the library does there: import it with plain node,
// type-check and run the README's library program against the shipped declarations, and run the
// hardneg command.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './helpers/cli.ts';
import { makeImageFolder } from './helpers/image_folder.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-package-'));
const copy = join(tmp, 'hardneg');
const consumer = join(tmp, 'consumer');
const data = join(tmp, 'images');
// No network, no CUDA download, no native build in the consumer (the addon is tested elsewhere).
const ENV = {
  ...process.env,
  ONNXRUNTIME_NODE_INSTALL: 'skip',
  HARDNEG_NATIVE: '0',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], cwd: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { cwd, env: ENV, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

/** The README's library program (the ```ts block of its Library section). */
function readmeProgram(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'README.md has a ```ts block in its Library section');
  return m[1] as string;
}

let tarball = '';

/** The consumer's TypeScript file checked strictly against the installed package's declarations. */
function typecheck(file: string): { code: number; out: string } {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck'];
  return run(process.execPath, [tsc, ...flags, '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), file], consumer);
}

/**
 * The empty project's lockfile: hardneg from the tarball, and hardneg's own dependencies exactly as
 * this checkout's package-lock.json resolves them (what `npm install` of the tarball would pick).
 * With a lockfile npm installs from its cache by integrity, so `npm ci --offline` needs no
 * network; without one it would ask the registry for every package's metadata.
 */
function consumerLock(tarballName: string): object {
  type Entry = {
    version?: string;
    dev?: boolean;
    license?: string;
    dependencies?: object;
    bin?: object;
    engines?: object;
    integrity?: string;
    resolved?: string;
    link?: boolean;
  };
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Entry> };
  const self = lock.packages[''] as Entry;
  const packages: Record<string, object> = {
    '': { name: 'consumer', dependencies: { hardneg: `file:${tarballName}` } },
    'node_modules/hardneg': {
      version: self.version,
      resolved: `file:${tarballName}`,
      license: self.license,
      hasInstallScript: true,
      dependencies: self.dependencies,
      bin: self.bin,
      engines: self.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev) continue;
    // This machine's npm writes lockfiles without registry addresses (omit-lockfile-registry-resolved);
    // without one, `npm ci --offline` asks for the package's metadata, which the cache need not
    // hold. The tarball's address is the registry's fixed pattern, and the cache holds the tarball.
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const registry = entry.version !== undefined && entry.integrity !== undefined && entry.resolved === undefined && !entry.link;
    packages[path] = registry
      ? { ...entry, resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop() as string}-${entry.version as string}.tgz` }
      : entry;
  }
  return { name: 'consumer', lockfileVersion: 3, requires: true, packages };
}

before(async () => {
  // A copy of the working tree as git sees it (tracked and untracked-not-ignored files), so the
  // pack's build never touches this checkout's dist/ while other tests run the command.
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    try {
      copyFileSync(join(ROOT, f), join(copy, f));
    } catch {
      // deleted in the working tree but still in the index
    }
  }
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const packed = run(NPM, ['pack', '--pack-destination', tmp], copy);
  assert.equal(packed.code, 0, packed.out);
  tarball = join(tmp, readdirSync(tmp).find((f) => f.endsWith('.tgz')) as string);
  mkdirSync(consumer);
  const name = tarball.split(/[\\/]/).pop() as string;
  copyFileSync(tarball, join(consumer, name));
  // The consumer drops LanceDB's unused extras as hardneg's own package.json does (docs/search.md).
  const { overrides } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { overrides: Record<string, string> };
  mkdirSync(join(consumer, 'deps', 'absent'), { recursive: true });
  copyFileSync(join(ROOT, 'deps', 'absent', 'package.json'), join(consumer, 'deps', 'absent', 'package.json'));
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { hardneg: `file:${name}` }, overrides }),
  );
  writeFileSync(join(consumer, 'package-lock.json'), JSON.stringify(consumerLock(name)));
  await makeImageFolder(data, 'train', ['a', 'b', 'c', 'd', 'e', 'f'], 8, 1);
  await makeImageFolder(data, 'test', ['g', 'h', 'i'], 4, 2);
});

after(() => rmSync(tmp, { recursive: true, force: true }));

test('the tarball holds the compiled library, its declarations, the CLI and the shipped data, and no sources', () => {
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const f of [
    'package/dist/index.js',
    'package/dist/index.d.ts',
    'package/dist/cli/main.js',
    'package/bin/hardneg',
    'package/data/fashion-mnist/README.md',
    'package/configs/presets/g-cub200.yaml',
    'package/native/binding.gyp',
  ]) {
    assert.ok(listing.includes(f), `${f} in the tarball`);
  }
  assert.ok(
    listing.some((f) => f.startsWith('package/test/fixtures/golden/pub_')),
    'the public golden cases (for hardneg doctor)',
  );
  assert.ok(
    !listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/helpers') || f.endsWith('.test.ts')),
    'no TypeScript sources or tests',
  );
});

test('installed offline (npm ci from the cache) into an empty project, it loads with plain node and its types resolve', () => {
  const installed = run(NPM, ['ci', '--offline'], consumer);
  assert.equal(installed.code, 0, installed.out);
  const loaded = run(process.execPath, ['-e', "import('hardneg').then((m) => console.log(typeof m.trainRun, typeof m.runGenerator, m.VERSION))"], consumer);
  assert.equal(loaded.code, 0, loaded.out);
  assert.match(loaded.out, /^function function \d+\.\d+\.\d+/);
  writeFileSync(
    join(consumer, 'types.ts'),
    "import { loadRun, type TrainConfig } from 'hardneg';\nconst epochs: TrainConfig['train']['epochs'] = 3;\nconst load: typeof loadRun = loadRun;\nconsole.log(epochs, load.name);\n// @ts-expect-error: the declarations are precise enough to refuse this\nloadRun(42);\n",
  );
  const checked = typecheck('types.ts');
  assert.equal(checked.code, 0, checked.out);
});

test("the README's library program type-checks against the package and trains and evaluates", () => {
  writeFileSync(join(consumer, 'program.ts'), readmeProgram());
  const checked = typecheck('program.ts');
  assert.equal(checked.code, 0, checked.out);
  const ran = run(process.execPath, ['--import', 'tsx', 'program.ts', data], consumer);
  assert.equal(ran.code, 0, ran.out);
  assert.match(ran.out, /final Recall@1 during training: 0?\.?\d/);
  assert.match(ran.out, /\{ '1': [\d.]+, '2': [\d.]+, '4': [\d.]+ \} [\d.]+/);
});

test('npx hardneg --help works in the consuming project, from the compiled code', () => {
  const r = run(NPM, ['exec', '--offline', '--', 'hardneg', '--help'], consumer);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /usage: hardneg <command> \[options\]/);
  const doctor = run(NPM, ['exec', '--offline', '--', 'hardneg', 'doctor', '--json'], consumer);
  assert.equal(doctor.code, 0, doctor.out);
  const report = JSON.parse(doctor.out.slice(doctor.out.indexOf('{'), doctor.out.lastIndexOf('}') + 1)) as {
    ok: boolean;
    environment: { backend: { engine: string } };
  };
  assert.equal(report.ok, true);
  assert.match(report.environment.backend.engine, /^backend wasm, one thread, without the native kernels: disabled by HARDNEG_NATIVE=0/);
});
