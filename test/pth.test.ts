// PyTorch checkpoints read without Python (src/io/pth.ts, torch_pickle.ts, zip.ts) and `hardneg
// weights convert`, on files torch.save itself wrote (scripts/fixtures/make_pth.py, torch 1.13):
// every tensor against what PyTorch says the file holds, bit for bit; selection by key and prefix;
// entries that are not tensors; pickles that would run a command under torch.load; damaged files;
// and .pth weights for the torchvision backbones.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.ts';
import { makeImageFolder } from './helpers/image_folder.ts';
import { UserError } from '../src/errors.ts';
import { bytesOf, type HostTensor, toNumbers, widenHalf } from '../src/io/host_tensor.ts';
import { parseNpy, serializeNpy } from '../src/io/npy.ts';
import { flattenCheckpoint, plainValue, readTorchCheckpoint } from '../src/io/pth.ts';
import { PickleError, PickleRefused, PyDict, unpickle } from '../src/io/torch_pickle.ts';
import { parseSafetensors, readSafetensors, serializeSafetensors } from '../src/io/safetensors.ts';
import { readStateDict } from '../src/io/state_dict_file.ts';
import { googlenet } from '../src/models/googlenet.ts';
import { StateDict } from '../src/models/state_dict.ts';
import { loadTorchvisionFile } from '../src/models/torchvision.ts';

const FIX = join(ROOT, 'test', 'fixtures', 'pth');
const F = (name: string): string => join(FIX, name);
const tmp = mkdtempSync(join(tmpdir(), 'hardneg-pth-'));
const T = (...p: string[]): string => join(tmp, ...p);
const MARKER = 'hardneg-pth-marker';
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The command, run from `cwd` (where the hostile fixtures would create their marker). */
function hardnegIn(cwd: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'hardneg'), ...args], { encoding: 'utf8', cwd, timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: { code: number; stderr: string }, words: RegExp): void {
  assert.equal(r.code, 2, `exit 2; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0] as string, /^hardneg [a-z]+: /);
  assert.match(lines[0] as string, words);
  assert.doesNotMatch(r.stderr, /\n\s+at |node:internal/, 'no stack trace');
}

/** Names (in order), dtypes, shapes and bytes equal. Returns the number of tensors compared. */
function assertSameTensors(got: Map<string, HostTensor>, want: Map<string, HostTensor>, what: string): number {
  assert.deepEqual([...got.keys()], [...want.keys()], `${what}: names`);
  for (const [name, w] of want) {
    const g = got.get(name) as HostTensor;
    assert.equal(g.dtype, w.dtype, `${what}: '${name}' dtype`);
    assert.deepEqual(g.shape, w.shape, `${what}: '${name}' shape`);
    assert.ok(Buffer.from(bytesOf(g.data)).equals(Buffer.from(bytesOf(w.data))), `${what}: '${name}' bytes differ`);
  }
  return want.size;
}

const expected = (family: string): Map<string, HostTensor> => readSafetensors(F(`${family}.expected.safetensors`)).tensors;

test('weights convert: every tensor of every fixture bit for bit (zip and legacy formats, pickle protocols 2, 4 and 5, big-endian, rebuild v3)', () => {
  const cases: Array<[family: string, variant: string, format: string, cli: boolean]> = [
    ['tensors', 'zip', 'zip', true],
    ['tensors', 'legacy', 'legacy', true],
    ['tensors', 'zip-p4', 'zip', false],
    ['tensors', 'legacy-p5', 'legacy', false],
    ['tensors', 'be', 'zip', false],
    ['nested', 'zip', 'zip', true],
    ['nested', 'legacy', 'legacy', true],
    ['dino', 'zip', 'zip', true],
    ['dino', 'legacy', 'legacy', true],
    // By hand, as newer PyTorch writes some dtypes: _rebuild_tensor_v3 over an UntypedStorage.
    ['untyped-v3', '', 'zip', false],
  ];
  let compared = 0;
  const dtypes = new Set<string>();
  for (const [family, variant, format, cli] of cases) {
    const input = F(variant === '' ? `${family}.pth` : `${family}.${variant}.pth`);
    const want = expected(family);
    for (const t of want.values()) dtypes.add(t.dtype);
    if (cli) {
      const out = T(`${family}.${variant}.safetensors`);
      const r = hardnegIn(tmp, ['weights', 'convert', input, '--out', out, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { format: string; tensors: Array<{ name: string; dtype: string; shape: number[] }>; output: string };
      assert.equal(report.format, format);
      assert.deepEqual(
        report.tensors.map((t) => t.name),
        [...want.keys()],
      );
      const written = readSafetensors(out);
      assert.deepEqual(written.metadata, { format: 'pt' });
      compared += assertSameTensors(written.tensors, want, `${family}.${variant} (weights convert)`);
    } else {
      const read = readTorchCheckpoint(input);
      assert.equal(read.format, format);
      compared += assertSameTensors(read.tensors, want, `${family}.${variant}`);
    }
  }
  // The fixtures cover every dtype read, the views, the shared storage and the special values.
  assert.deepEqual([...dtypes].sort(), ['BF16', 'BOOL', 'F16', 'F32', 'F64', 'I32', 'I64', 'U8']);
  const tensors = expected('tensors');
  for (const name of [
    'transposed',
    'sliced',
    'stepped',
    'expanded',
    'f16_transposed',
    'shared_a',
    'shared_b',
    'shared_c',
    'special_f32',
    'special_bf16',
    'param',
    'empty',
    'scalar',
  ]) {
    assert.ok(tensors.has(name), name);
  }
  assert.equal(compared, 5 * 24 + 2 * 6 + 2 * 19 + 1);
});

test('weights convert --key teacher --strip-prefix backbone.: the teacher backbone of a DINO-like checkpoint, both formats; safetensors input too', () => {
  const want = expected('dino');
  const backbone = new Map([...want].filter(([n]) => n.startsWith('teacher.backbone.')).map(([n, t]) => [n.slice('teacher.backbone.'.length), t]));
  assert.equal(backbone.size, 7);
  for (const input of [F('dino.zip.pth'), F('dino.legacy.pth'), F('dino.expected.safetensors')]) {
    const out = T('teacher.safetensors');
    const r = hardnegIn(tmp, ['weights', 'convert', input, '--out', out, '--key', 'teacher', '--strip-prefix', 'backbone.', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { outside_prefix: number; non_tensors: unknown[] };
    assert.equal(report.outside_prefix, 2, 'the two head tensors are left out');
    assert.deepEqual(report.non_tensors, []);
    assertSameTensors(readSafetensors(out).tensors, backbone, input);
  }
  // The API: student under DataParallel's module. prefix; a dotted key.
  const student = readStateDict(F('dino.legacy.pth'), { key: 'student', stripPrefix: 'module.backbone.' });
  assert.deepEqual([...student.tensors.keys()], [...backbone.keys()]);
  assert.equal(toNumbers(student.tensors.get('norm.weight') as HostTensor)[0], 2, 'student = teacher + 1');
  const center = readStateDict(F('dino.zip.pth'), { key: 'dino_loss' });
  assert.deepEqual([...center.tensors.keys()], ['center']);
  const inner = readStateDict(F('nested.zip.pth'), { key: 'extra.inner' });
  assert.deepEqual([...inner.tensors.keys()], ['t']);
});

test('weights convert: entries that are not tensors are listed on stderr and in --json, never written', () => {
  const out = T('dino-all.safetensors');
  const r = hardnegIn(tmp, ['weights', 'convert', F('dino.zip.pth'), '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { non_tensors: Array<{ name: string; type: string; value: unknown }> };
  const entry = (name: string) => report.non_tensors.find((e) => e.name === name);
  assert.deepEqual(entry('epoch'), { name: 'epoch', type: 'int', value: 3 });
  const args = entry('args') as { type: string; value: Record<string, unknown> };
  assert.equal(args.type, 'argparse.Namespace');
  assert.equal(args.value.arch, 'vit_small');
  assert.deepEqual(args.value.global_crops_scale, [0.4, 1]);
  assert.equal(args.value.norm_last_layer, true);
  assert.equal(entry('fp16_scaler.scale')?.type, 'float');
  assert.equal(entry('optimizer.param_groups')?.type, 'list of 1');
  assert.match(r.stderr, /^not written \(not tensors\):$/m);
  assert.match(r.stderr, /^ {2}epoch: int 3$/m);
  assert.match(r.stderr, /^ {2}args: argparse\.Namespace \{"arch":"vit_small"/m);
  const names = [...readSafetensors(out).tensors.keys()];
  assert.ok(!names.some((n) => n.startsWith('args') || n === 'epoch' || n.startsWith('optimizer')));
  // Python values as JSON: big ints as strings, tuples as lists, text as text.
  const nested = readTorchCheckpoint(F('nested.legacy.pth'));
  const value = (name: string) => nested.nonTensors.find((e) => e.name === name)?.value;
  assert.equal(value('huge'), '1180591620717411303424');
  assert.equal(value('negative'), -123456789);
  assert.equal(value('name'), 'résnet');
  assert.deepEqual(value('flags'), [true, null]);
  assert.equal(value('extra.count'), 12);
  // A plain-text summary without --json.
  const text = hardnegIn(tmp, ['weights', 'convert', F('nested.zip.pth'), '--out', T('nested.safetensors')]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^wrote 6 tensors \(.*F32 ×3.*\) from nested\.zip\.pth \(zip format\) to /);
});

test('a pickle naming os.system, posix.system or builtins.eval is refused by name and runs nothing (weights convert and model.weights)', async () => {
  const cwd = T('evil');
  await makeImageFolder(T('data'), 'train', ['a', 'b', 'c'], 2, 1);
  await makeImageFolder(T('data'), 'test', ['d', 'e'], 2, 2);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(cwd);
  for (const [file, global] of [
    ['evil-os-system.pth', 'os.system'],
    ['evil-posix-system.legacy.pth', 'posix.system'],
    ['evil-builtins-eval.pth', 'builtins.eval'],
  ] as const) {
    const out = join(cwd, 'out.safetensors');
    const r = hardnegIn(cwd, ['weights', 'convert', F(file), '--out', out]);
    const escaped = global.replace('.', '\\.');
    assertOneLineError(
      r,
      new RegExp(
        `${file.replace(/\./g, '\\.')}: refers to ${escaped}, which hardneg never executes: only tensors, dicts, lists, tuples, numbers and strings are read$`,
      ),
    );
    assert.ok(!existsSync(out), 'nothing written');
    assert.throws(
      () => readStateDict(F(file)),
      (e: unknown) => e instanceof UserError && e.message.includes(`refers to ${global}`),
    );
  }
  const train = hardnegIn(cwd, [
    'train',
    '--dataset',
    'folder',
    '--data-root',
    T('data'),
    '--epochs',
    '1',
    '--out',
    join(cwd, 'run'),
    '--quiet',
    '--set',
    'model.backbone=googlenet',
    '--set',
    `model.weights=${F('evil-os-system.pth')}`,
  ]);
  assertOneLineError(train, /model\.weights .*evil-os-system\.pth: refers to os\.system, which hardneg never executes/);
  assert.deepEqual(
    readdirSync(cwd).filter((f) => f.includes('marker')),
    [],
    `no ${MARKER} was created`,
  );
  assert.ok(!existsSync(join(ROOT, MARKER)) && !existsSync(T(MARKER)));
});

test('truncated and damaged checkpoints: one-line errors naming the file (exit 2), never a crash', () => {
  for (const name of ['tensors.zip.pth', 'tensors.legacy.pth']) {
    const bytes = readFileSync(F(name));
    const cuts = [0, 1, 2, 5, 12, 40, 100, 300, 1000, bytes.length >> 1, bytes.length - 100, bytes.length - 23, bytes.length - 1];
    for (const cut of cuts) {
      const path = T(`cut-${cut}-${name}`);
      writeFileSync(path, bytes.subarray(0, cut));
      assert.throws(
        () => readStateDict(path),
        (e: unknown) => e instanceof UserError && e.message.startsWith(`${path}: `) && !e.message.includes('\n'),
        `${name} cut at ${cut}`,
      );
    }
    // Seeded single-byte damage: either read (the legacy format has no checksum over its data) or a
    // UserError; never a TypeError, a RangeError or a hang.
    let s = 12345;
    const rand = (n: number): number => (s = (s * 1103515245 + 12345) % 2147483648) % n;
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const damaged = Buffer.from(bytes);
      const at = rand(damaged.length);
      damaged[at] = rand(2) === 0 ? (damaged[at] as number) ^ (1 << rand(8)) : rand(256);
      const path = T(`damaged-${name}`);
      writeFileSync(path, damaged);
      try {
        readStateDict(path);
      } catch (e) {
        assert.ok(e instanceof UserError, `byte ${at}: ${(e as Error).stack}`);
        assert.ok(!(e as Error).message.includes('\n'));
        refused++;
      }
    }
    assert.ok(refused > 0);
  }
  copyFileSync(F('tensors.legacy.pth'), T('cut.pth'));
  writeFileSync(T('cut.pth'), readFileSync(F('tensors.legacy.pth')).subarray(0, 2000));
  assertOneLineError(hardnegIn(tmp, ['weights', 'convert', T('cut.pth'), '--out', T('cut.safetensors')]), /cut\.pth: truncated/);
  writeFileSync(T('cut.zip.pth'), readFileSync(F('tensors.zip.pth')).subarray(0, 4000));
  assertOneLineError(
    hardnegIn(tmp, ['weights', 'convert', T('cut.zip.pth'), '--out', T('cut.safetensors')]),
    /cut\.zip\.pth: not a zip archive, or a truncated one/,
  );
  writeFileSync(T('text.pth'), 'hello, not a checkpoint\n');
  assertOneLineError(hardnegIn(tmp, ['weights', 'convert', T('text.pth'), '--out', T('t.safetensors')]), /text\.pth: not a PyTorch checkpoint/);
  assert.ok(!existsSync(T('cut.safetensors')) && !existsSync(T('t.safetensors')));
});

test('weights convert: flag mistakes are one line naming the flag or file', () => {
  const cases: Array<[string[], RegExp]> = [
    [['weights', 'convert', F('dino.zip.pth'), '--out', F('dino.zip.pth')], /--out .*dino\.zip\.pth is the input file/],
    [['weights', 'convert', F('dino.zip.pth')], /needs --out OUT\.safetensors/],
    [['weights', 'convert', T('missing.pth'), '--out', T('m.safetensors')], /missing\.pth: file not found/],
    [
      ['weights', 'convert', F('dino.zip.pth'), '--out', T('k.safetensors'), '--key', 'nope'],
      /has no entry 'nope' \(top-level entries: student, teacher, optimizer, epoch, args/,
    ],
    [
      ['weights', 'convert', F('dino.zip.pth'), '--out', T('k.safetensors'), '--key', 'args'],
      /entry 'args' is of type argparse\.Namespace, expected a dict of named tensors/,
    ],
    [
      ['weights', 'convert', F('dino.zip.pth'), '--out', T('k.safetensors'), '--key', 'teacher', '--strip-prefix', 'trunk.'],
      /no tensor name starts with 'trunk\.'/,
    ],
    [['weights', 'convert', F('dino.zip.pth'), '--out', T('k.safetensors'), '--key', 'optimizer'], /holds no tensors under 'optimizer'/],
    [['weights', 'lst'], /unknown subcommand 'lst'; expected list, fetch or convert/],
  ];
  for (const [args, words] of cases) assertOneLineError(hardnegIn(tmp, args), words);
  assert.ok(!existsSync(T('k.safetensors')));
});

test('model.weights: a torchvision-layout .pth loads into GoogLeNet (stride-0 views of a shared storage); the train command reads it', async () => {
  const inventory = (
    JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'backbones', 'googlenet.json'), 'utf8')) as { state_dict: Array<{ name: string; dtype: string }> }
  ).state_dict;
  const sd = new StateDict();
  const report = loadTorchvisionFile(sd, googlenet(), F('googlenet.pth'));
  assert.deepEqual(report.ignored, ['fc.weight', 'fc.bias']);
  assert.equal(report.loaded.length, inventory.length - 2);
  let k = 0;
  let c = 0;
  for (const e of inventory) {
    if (e.dtype !== 'float32') {
      assert.equal(sd.counter(`feature_extractor.backbone.${e.name}`), c++, e.name);
      continue;
    }
    const want = ++k / 1024;
    if (e.name.startsWith('fc.')) continue;
    const v = sd.get(`feature_extractor.backbone.${e.name}`).dataSync();
    assert.ok(v[0] === want && v[v.length - 1] === want, `${e.name}: ${v[0]} vs ${want}`);
  }
  sd.dispose();
  // Through `train`: a GoogLeNet .pth given to ResNet-50 is read, then refused by the loader.
  await makeImageFolder(T('data2'), 'train', ['a', 'b', 'c'], 2, 1);
  await makeImageFolder(T('data2'), 'test', ['d', 'e'], 2, 2);
  const r = hardnegIn(tmp, [
    'train',
    '--dataset',
    'folder',
    '--data-root',
    T('data2'),
    '--epochs',
    '1',
    '--out',
    T('run-r50'),
    '--quiet',
    '--set',
    'model.backbone=resnet50',
    '--set',
    `model.weights=${F('googlenet.pth')}`,
  ]);
  assertOneLineError(r, /model\.weights .*googlenet\.pth: 'conv1\.conv\.weight' is not a resnet50 parameter/);
});

test('F16 and BF16: safetensors round trip, .npy float16, exact widening to float32 (state dicts accept half-precision weights)', () => {
  const half: HostTensor = { dtype: 'F16', shape: [4], data: Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7c00) };
  const bf: HostTensor = { dtype: 'BF16', shape: [2, 2], data: Uint16Array.of(0x3f80, 0xc040, 0x7fc1, 0x0001) };
  const back = parseSafetensors(serializeSafetensors({ half, bf })).tensors;
  assertSameTensors(
    back,
    new Map([
      ['half', half],
      ['bf', bf],
    ]),
    'safetensors',
  );
  assert.deepEqual(toNumbers(half), [1, -2, 2 ** -24, Infinity]);
  const wide = widenHalf(bf);
  assert.equal(wide.dtype, 'F32');
  assert.deepEqual(
    Array.from(new Uint32Array((wide.data as Float32Array).buffer)),
    [0x3f800000, 0xc0400000, 0x7fc10000, 0x00010000],
    'bits shifted, NaN payload kept',
  );
  const npy = parseNpy(serializeNpy(half));
  assertSameTensors(new Map([['h', npy]]), new Map([['h', half]]), '.npy');
  assert.throws(() => serializeNpy(bf), /no \.npy dtype/);
  const sd = new StateDict();
  sd.load('w', half);
  assert.deepEqual(Array.from(sd.get('w').dataSync()), [1, -2, 2 ** -24, Infinity]);
  sd.dispose();
});

test('the pickle machine: every way to name a function is refused by name; self-referring and malformed pickles are one-line errors', () => {
  const run = (bytes: string) => unpickle(Buffer.from(bytes, 'latin1'), 0, { source: 'p.pkl' }).value;
  const refused = (bytes: string, global: string): void =>
    assert.throws(
      () => run(bytes),
      (e: unknown) =>
        e instanceof PickleRefused &&
        e.message === `p.pkl: refers to ${global}, which hardneg never executes: only tensors, dicts, lists, tuples, numbers and strings are read`,
    );
  refused('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.', 'os.system'); // GLOBAL + REDUCE
  refused('\x80\x04\x8c\x08builtins\x8c\x04eval\x93.', 'builtins.eval'); // STACK_GLOBAL
  refused('(X\x02\x00\x00\x00lsios\nsystem\n.', 'os.system'); // INST (protocol 0 style)
  refused('\x80\x02c__builtin__\ngetattr\n.', 'builtins.getattr'); // Python 2 module names mapped
  refused('\x80\x02csubprocess\nPopen\n.', 'subprocess.Popen');
  // Allowed data constructors: OrderedDict with pairs, argparse.Namespace through copyreg (protocol 1).
  const od = run('\x80\x02ccollections\nOrderedDict\n](X\x01\x00\x00\x00aK\x01la\x85R.');
  assert.ok(od instanceof PyDict && od.type === 'collections.OrderedDict' && od.map.get('a') === 1);
  const ns = run('ccopyreg\n_reconstructor\n(cargparse\nNamespace\ncbuiltins\nobject\nNtR}X\x01\x00\x00\x00xK\x07sb.');
  assert.deepEqual(plainValue(ns), { x: 7 });
  // Malformed: an empty stack, a truncated pickle, an unknown opcode, protocol 0 strings.
  for (const [bytes, words] of [
    ['\x80\x02.', /stack empty/],
    ['\x80\x02X\xff\x00\x00\x00ab', /truncated/],
    ['\x80\x02\xff', /unknown opcode 0xff/],
    ["S'x'\n.", /protocol-0 text opcode S/],
    ['\x80\x02\x82\x01.', /extension registry/],
  ] as const) {
    assert.throws(
      () => run(bytes),
      (e: unknown) => e instanceof PickleError && words.test((e as Error).message) && !(e as Error).message.includes('\n'),
      bytes,
    );
  }
  // A dict that holds itself (memo GET) is refused when flattened, and shown as <itself>.
  const cyclic = run('\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.');
  assert.throws(() => flattenCheckpoint(cyclic, 'p.pkl'), /p\.pkl: entry 'a' holds itself/);
  assert.deepEqual(plainValue(cyclic), { a: '<itself>' });
});
