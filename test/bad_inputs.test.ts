// Every command's bad inputs from one table: the input, the exit code, words the one-line message
// must hold, and the user's files that must be left exactly as they were. New commands add rows.
// The rules for every row: the message is one line `hardneg <command>: …` (no stack trace, no
// library source), and no temporary file is left next to an output.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT as REPO, TINY_RUN, hardneg } from './helpers/cli.ts';
import { GOLDEN } from './helpers/golden.ts';
import { makeImageFolder } from './helpers/image_folder.ts';
import { f32, i64 } from '../src/io/host_tensor.ts';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-bad-'));
const T = (...p: string[]): string => join(tmp, ...p);
const CASE = join(GOLDEN, 'pub_p3k3_d32_l2');
const GEN = ['--embeddings', `${CASE}.z.npy`, '--labels', `${CASE}.y.npy`, '--heads', '4', '--alpha', '5', '--j-avg', '2.5'];
const PTH = (name: string): string => join(REPO, 'test', 'fixtures', 'pth', name);
const TINY = TINY_RUN;
const TRAIN = (out: string, ...extra: string[]): string[] => [
  'train',
  '--dataset',
  'folder',
  '--data-root',
  T('data'),
  '--epochs',
  '1',
  '--out',
  out,
  '--quiet',
  ...TINY,
  ...extra,
];

const FEATURES = (input: string, out: string, ...extra: string[]): string[] => [
  'features',
  '--backbone',
  'googlenet',
  '--weights',
  PTH('googlenet.pth'),
  '--input',
  input,
  '--out',
  out,
  ...extra,
];

/** A safetensors file from a header given as JSON text and `dataBytes` zero bytes. */
function rawSafetensors(path: string, headerJson: string, dataBytes: number): string {
  const header = Buffer.from(headerJson);
  const out = Buffer.alloc(8 + header.length + dataBytes);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  writeFileSync(path, out);
  return path;
}

/** Content hashes of every file under `dir` (recursively), to check nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

interface Row {
  name: string;
  args: () => string[];
  code: number;
  words: RegExp;
  /** Files or folders that must be unchanged (content and set of files). */
  unchanged?: () => string[];
  /** Files that must not exist afterwards. */
  absent?: () => string[];
}

before(async () => {
  await makeImageFolder(T('data'), 'train', ['a', 'b', 'c', 'd'], 6, 1);
  await makeImageFolder(T('data'), 'test', ['e', 'f', 'g'], 3, 2);
  // A finished run to protect and to resume from.
  const r = hardneg(TRAIN(T('run')));
  assert.equal(r.code, 0, r.stderr);
  // A copy whose checkpoint lacks the trainer state, and one whose config disagrees with it.
  for (const name of ['no-state', 'other-config']) {
    mkdirSync(T(name));
    for (const f of readdirSync(T('run'))) if (!f.startsWith('.')) copyFileSync(T('run', f), T(name, f));
  }
  const ckpt = readSafetensors(T('run', 'checkpoint.safetensors'));
  writeSafetensors(T('no-state', 'checkpoint.safetensors'), ckpt.tensors, {});
  const config = JSON.parse(readFileSync(T('run', 'config.json'), 'utf8'));
  config.model.embeddingSize = 12;
  writeFileSync(T('other-config', 'config.json'), JSON.stringify(config));
  // A folder holding the runs of an earlier start.
  mkdirSync(T('start-out', 'gca-hng'), { recursive: true });
  for (const f of readdirSync(T('run'))) if (!f.startsWith('.')) copyFileSync(T('run', f), T('start-out', 'gca-hng', f));
  // Someone else's folder with a config.json of their own.
  mkdirSync(T('theirs'));
  writeFileSync(T('theirs', 'config.json'), '{"learning_rate": 0.1}\n');
  writeFileSync(T('a-file'), 'not a folder\n');
  mkdirSync(T('a-folder'));
  rawSafetensors(T('null-header.safetensors'), 'null', 0);
  rawSafetensors(T('null-entry.safetensors'), '{"gnn.x":null}', 0);
  rawSafetensors(T('shape-not-list.safetensors'), '{"gnn.x":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}', 16);
  rawSafetensors(T('negative-offsets.safetensors'), '{"gnn.x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', 8);
  const z = readFileSync(`${CASE}.z.npy`);
  writeFileSync(T('z.npy'), z);
  // The case's own embeddings [9, 32] with one NaN.
  const zt = readNpy(`${CASE}.z.npy`);
  const nan = Float32Array.from(zt.data as Float32Array);
  nan[5] = NaN;
  writeNpy(T('nan.npy'), f32(nan, zt.shape));
  writeNpy(T('random-outside.npy'), f32([0.1, 0.2, 1.5, 0.3, 0.4, 0.5], [6]));
  writeNpy(T('singletons.npy'), f32([0, 1, 1, 0, 2, 2], [3, 2]));
  writeNpy(T('singleton-labels.npy'), i64([0, 1, 2], [3]));
  copyFileSync(PTH('tensors.zip.pth'), T('own.pth'));
  writeFileSync(T('truncated.pth'), readFileSync(PTH('tensors.legacy.pth')).subarray(0, 3000));
  // Image batches for `features`: one right, and one wrong in each way.
  const pixels = (n: number) => Array.from({ length: n }, (_, i) => (i % 7) / 7);
  writeNpy(T('images.npy'), f32(pixels(3 * 8 * 8), [1, 3, 8, 8]));
  writeNpy(
    T('images-int.npy'),
    i64(
      pixels(3 * 8 * 8).map(() => 1),
      [1, 3, 8, 8],
    ),
  );
  writeNpy(T('images-rank3.npy'), f32(pixels(3 * 8 * 8), [3, 8, 8]));
  writeNpy(T('images-nhwc.npy'), f32(pixels(3 * 8 * 8), [1, 8, 8, 3]));
});

after(() => rmSync(tmp, { recursive: true, force: true }));

const ROWS: Row[] = [
  // Damaged checkpoints (were TypeErrors with a stack trace).
  {
    name: 'checkpoint header null',
    args: () => ['generate', '--checkpoint', T('null-header.safetensors'), ...GEN, '--out', T('n.npy')],
    code: 2,
    words: /null-header\.safetensors: the header is null, expected a JSON object of tensors/,
  },
  {
    name: 'checkpoint entry null',
    args: () => ['generate', '--checkpoint', T('null-entry.safetensors'), ...GEN, '--out', T('n.npy')],
    code: 2,
    words: /tensor 'gnn\.x' is null/,
  },
  {
    name: 'checkpoint shape not a list',
    args: () => ['generate', '--checkpoint', T('shape-not-list.safetensors'), ...GEN, '--out', T('n.npy')],
    code: 2,
    words: /shape 4 is not a list of non-negative integers/,
  },
  {
    name: 'checkpoint negative offsets',
    args: () => ['generate', '--checkpoint', T('negative-offsets.safetensors'), ...GEN, '--out', T('n.npy')],
    code: 2,
    words: /data_offsets \[-8,0\] is not a pair of non-negative integers/,
  },
  // Outputs that cannot be written (were ENOENT/EISDIR traces, a .tmp left behind).
  {
    name: 'generate --out into a missing folder',
    args: () => ['generate', '--checkpoint', `${CASE}.state.safetensors`, ...GEN, '--out', T('missing', 'n.npy')],
    code: 2,
    words: /missing\/n\.npy: no such file or folder/,
  },
  {
    name: 'generate --out onto a folder',
    args: () => ['generate', '--checkpoint', `${CASE}.state.safetensors`, ...GEN, '--out', T('a-folder')],
    code: 2,
    words: /a-folder: is a folder, expected a file/,
    unchanged: () => [T('a-folder')],
  },
  {
    name: 'reference-check --out into a missing folder',
    args: () => ['reference-check', '--fixture', join(GOLDEN, 'pub_p4k2_d16_l1'), '--out', T('missing', 'o.safetensors')],
    code: 2,
    words: /missing\/o\.safetensors: no such file or folder/,
  },
  {
    name: 'reference-check --out onto a folder',
    args: () => ['reference-check', '--fixture', join(GOLDEN, 'pub_p4k2_d16_l1'), '--out', T('a-folder')],
    code: 2,
    words: /a-folder: is a folder, expected a file/,
    unchanged: () => [T('a-folder')],
  },
  {
    name: 'reference-check --out onto the fixture itself',
    args: () => ['reference-check', '--fixture', join(GOLDEN, 'pub_p4k2_d16_l1'), '--out', join(GOLDEN, 'pub_p4k2_d16_l1.expected.safetensors')],
    code: 2,
    words: /that is one of the fixture's own files/,
    unchanged: () => [join(GOLDEN, 'pub_p4k2_d16_l1.expected.safetensors')],
  },
  {
    name: 'train --out onto a file',
    args: () => TRAIN(T('a-file')),
    code: 2,
    words: /--out .*a-file: is a file, expected a folder/,
    unchanged: () => [T('a-file')],
  },
  {
    name: 'compare --out onto a file',
    args: () => ['compare', '--dataset', 'folder', '--data-root', T('data'), '--epochs', '1', '--out', T('a-file'), '--quiet', ...TINY],
    code: 2,
    words: /a-file/,
    unchanged: () => [T('a-file')],
  },
  // Runs: resume that cannot work, and folders that are not ours.
  {
    name: 'resume without trainer state',
    args: () => ['train', '--resume', T('no-state'), '--quiet'],
    code: 2,
    words: /checkpoint\.safetensors: no trainer state in its metadata/,
  },
  {
    name: 'resume with a config that disagrees with the checkpoint',
    args: () => ['train', '--resume', T('other-config'), '--quiet'],
    code: 2,
    words: /checkpoint\.safetensors does not fit the run's config\.json: .*shape/,
  },
  {
    name: 'resume with configuration flags',
    args: () => ['train', '--resume', T('run'), '--seed', '5', '--data-root', T('elsewhere')],
    code: 2,
    words: /--resume uses the run's saved configuration; --data-root, --seed cannot be combined with it/,
    unchanged: () => [T('run')],
  },
  {
    name: 'overwrite with a typo in --data-root keeps the old run',
    args: () => ['train', '--dataset', 'folder', '--data-root', T('dta'), '--epochs', '1', '--out', T('run'), '--overwrite', '--quiet', ...TINY],
    code: 2,
    words: /dta/,
    unchanged: () => [T('run')],
  },
  { name: "someone else's config.json", args: () => TRAIN(T('theirs')), code: 2, words: /theirs\/config\.json/, unchanged: () => [T('theirs')] },
  {
    name: 'weights of another model',
    args: () => [...TRAIN(T('weights')), '--set', 'model.backbone=googlenet', '--set', `model.weights=${JSON.stringify(T('run', 'model.safetensors'))}`],
    code: 2,
    words: /model\.weights .*model\.safetensors: .*googlenet/,
    absent: () => [T('weights')],
  },
  // PyTorch checkpoints.
  {
    name: 'weights convert of a pickle that would run os.system',
    args: () => ['weights', 'convert', PTH('evil-os-system.pth'), '--out', T('evil.safetensors')],
    code: 2,
    words: /evil-os-system\.pth: refers to os\.system, which hardneg never executes/,
    absent: () => [T('evil.safetensors'), join(process.cwd(), 'hardneg-pth-marker')],
  },
  {
    name: 'weights convert onto its own input',
    args: () => ['weights', 'convert', T('own.pth'), '--out', T('own.pth')],
    code: 2,
    words: /--out .*own\.pth is the input file/,
    unchanged: () => [T('own.pth')],
  },
  {
    name: 'weights convert of a truncated checkpoint',
    args: () => ['weights', 'convert', T('truncated.pth'), '--out', T('truncated.safetensors')],
    code: 2,
    words: /truncated\.pth: truncated/,
    absent: () => [T('truncated.safetensors')],
  },
  // Numbers.
  {
    name: 'start --epochs abc',
    args: () => ['start', '--epochs', 'abc', '--out', T('start')],
    code: 2,
    words: /--epochs abc: expected a positive integer/,
    absent: () => [T('start')],
  },
  {
    name: 'start --epochs 0',
    args: () => ['start', '--epochs', '0', '--out', T('start')],
    code: 2,
    words: /--epochs 0: expected a positive integer/,
    absent: () => [T('start')],
  },
  {
    name: 'generate --alpha -5 (a negative value after a space)',
    args: () => [
      'generate',
      '--checkpoint',
      `${CASE}.state.safetensors`,
      '--embeddings',
      `${CASE}.z.npy`,
      '--labels',
      `${CASE}.y.npy`,
      '--heads',
      '4',
      '--alpha',
      '-5',
      '--j-avg',
      '2.5',
      '--out',
      T('n.npy'),
    ],
    code: 2,
    words: /--alpha -5: expected a non-negative number/,
  },
  {
    name: 'generate with NaN embeddings',
    args: () => [
      'generate',
      '--checkpoint',
      `${CASE}.state.safetensors`,
      '--embeddings',
      T('nan.npy'),
      '--labels',
      `${CASE}.y.npy`,
      '--heads',
      '4',
      '--alpha',
      '5',
      '--j-avg',
      '2.5',
      '--out',
      T('n.npy'),
    ],
    code: 2,
    words: /nan\.npy holds NaN at flat index 5: expected finite numbers/,
    absent: () => [T('n.npy')],
  },
  {
    name: 'generate with mixing draws outside [0, 1)',
    args: () => ['generate', '--checkpoint', `${CASE}.state.safetensors`, ...GEN, '--random', T('random-outside.npy'), '--out', T('n.npy')],
    code: 2,
    words: /random-outside\.npy: value 1\.5 at index 2 is outside \[0, 1\)/,
    absent: () => [T('n.npy')],
  },
  {
    name: 'generate --out onto its own input',
    args: () => [
      'generate',
      '--checkpoint',
      `${CASE}.state.safetensors`,
      '--embeddings',
      T('z.npy'),
      '--labels',
      `${CASE}.y.npy`,
      '--heads',
      '4',
      '--alpha',
      '5',
      '--j-avg',
      '2.5',
      '--out',
      T('z.npy'),
    ],
    code: 2,
    words: /--out .*z\.npy: that is an input of this command/,
    unchanged: () => [T('z.npy')],
  },
  {
    name: 'evaluate with no usable query',
    args: () => ['evaluate', '--embeddings', T('singletons.npy'), '--labels', T('singleton-labels.npy'), '--no-nmi'],
    code: 2,
    words: /no usable query: every class has a single sample/,
  },
  {
    name: 'start --out holding runs, without --overwrite',
    args: () => ['start', '--out', T('start-out'), '--epochs', '1', '--quiet'],
    code: 2,
    words: /--out .*start-out\/gca-hng already holds a run; .*--overwrite to replace it/,
    unchanged: () => [T('start-out')],
  },
  // Flags.
  {
    name: 'a misspelt --method',
    args: () => TRAIN(T('typo'), '--method', 'nnoe'),
    code: 2,
    words: /--method nnoe: expected gca-hng, .* or daml-lite$/,
    absent: () => [T('typo')],
  },
  // data build-glyphs: refused before any font is read.
  {
    name: 'build-glyphs --fonts 1',
    args: () => ['data', 'build-glyphs', '--out', T('glyphs'), '--fonts', '1'],
    code: 2,
    words: /--fonts 1: expected an integer in \[2, 10000\]$/,
    absent: () => [T('glyphs')],
  },
  {
    name: 'build-glyphs --scripts with an unknown script',
    args: () => ['data', 'build-glyphs', '--out', T('glyphs'), '--scripts', 'latin,klingon'],
    code: 2,
    words: /--scripts latin,klingon: expected a comma-separated list of latin, .*, han$/,
    absent: () => [T('glyphs')],
  },
  {
    name: "build-glyphs onto someone else's folder",
    args: () => ['data', 'build-glyphs', '--out', T('theirs')],
    code: 2,
    words: /--out .*theirs: not empty and not a glyph set written by 'hardneg data build-glyphs' \(found 'config\.json'\)/,
    unchanged: () => [T('theirs')],
  },
  {
    name: 'build-glyphs --font-dir missing',
    args: () => ['data', 'build-glyphs', '--out', T('glyphs'), '--font-dir', T('no-fonts')],
    code: 2,
    words: /--font-dir .*no-fonts: no such folder/,
    absent: () => [T('glyphs')],
  },
  {
    name: "the authors' name of a method implemented only simplified",
    args: () => TRAIN(T('hdml'), '--method', 'hdml'),
    code: 2,
    words: /--method hdml: the official HDML .* is not implemented; 'hdml-lite' is its interpolation alone/,
    absent: () => [T('hdml')],
  },
  {
    name: 'features of int64 images',
    args: () => FEATURES(T('images-int.npy'), T('f-int.npy')),
    code: 2,
    words: /images-int\.npy: is I64 \[1, 3, 8, 8\]; expected float32 images \[N, 3, H, W\]/,
    absent: () => [T('f-int.npy')],
  },
  {
    name: 'features of a rank-3 array',
    args: () => FEATURES(T('images-rank3.npy'), T('f-rank3.npy')),
    code: 2,
    words: /images-rank3\.npy: has rank 3 .*expected float32 images \[N, 3, H, W\] \(NCHW/,
    absent: () => [T('f-rank3.npy')],
  },
  {
    name: 'features of NHWC images (8 channels on axis 1)',
    args: () => FEATURES(T('images-nhwc.npy'), T('f-nhwc.npy')),
    code: 2,
    words: /images-nhwc\.npy: has 8 channels on axis 1 \(F32 \[1, 8, 8, 3\]\)/,
    absent: () => [T('f-nhwc.npy')],
  },
  {
    name: 'features with a missing weights file',
    args: () => ['features', '--backbone', 'resnet50', '--weights', T('no-such.safetensors'), '--input', T('images.npy'), '--out', T('f-noweights.npy')],
    code: 2,
    words: /--weights .*no-such\.safetensors: no such file/,
    absent: () => [T('f-noweights.npy')],
  },
  {
    name: 'features with weights of another backbone (a registry name)',
    args: () => ['features', '--backbone', 'googlenet', '--weights', 'resnet50', '--input', T('images.npy'), '--out', T('f-r50.npy')],
    code: 2,
    words: /--weights resnet50: these are resnet50 weights, but --backbone is googlenet/,
    absent: () => [T('f-r50.npy')],
  },
  {
    name: 'features of an unknown backbone',
    args: () => ['features', '--backbone', 'vgg16', '--weights', T('own.pth'), '--input', T('images.npy'), '--out', T('f-vgg.npy')],
    code: 2,
    words: /--backbone vgg16: expected a backbone with pretrained weights: resnet50, googlenet or dino-vits16/,
    absent: () => [T('f-vgg.npy')],
  },
  {
    name: 'features --out onto its own --input',
    args: () => FEATURES(T('images.npy'), T('images.npy')),
    code: 2,
    words: /--out .*images\.npy: that is the --input file/,
    unchanged: () => [T('images.npy')],
  },
  {
    name: 'train with model.frozen on the small CNN',
    args: () => TRAIN(T('frozen-small'), '--set', 'model.frozen=true'),
    code: 2,
    words: /'model\.frozen': small-cnn has no pretrained weights to freeze/,
    absent: () => [T('frozen-small')],
  },
  // hardneg embed: inputs checked before any output is touched.
  {
    name: 'embed a folder that is not a run',
    args: () => ['embed', T('theirs'), '--images', T('data', 'test'), '--out', T('e.npy')],
    code: 2,
    words: /theirs: not a run directory/,
    absent: () => [T('e.npy'), T('e.json'), T('e.npy.partial')],
  },
  {
    name: 'embed with both --images and --input',
    args: () => ['embed', T('run'), '--images', T('data', 'test'), '--input', T('z.npy'), '--out', T('e.npy')],
    code: 2,
    words: /exactly one of --images DIR and --input X\.npy/,
    absent: () => [T('e.npy')],
  },
  {
    name: 'embed --input of the wrong shape',
    args: () => ['embed', T('run'), '--input', T('z.npy'), '--out', T('e.npy')],
    code: 2,
    words: /--input .*z\.npy: expected float32 \[N, 3, 8, 8\] \(NCHW, the run's evaluation transform\), got F32 \[9, 32\]/,
    unchanged: () => [T('z.npy')],
    absent: () => [T('e.npy'), T('e.npy.partial')],
  },
  {
    name: 'embed --out onto its --input',
    args: () => ['embed', T('run'), '--input', T('z.npy'), '--out', T('z.npy')],
    code: 2,
    words: /--out .*z\.npy: that is the --input file/,
    unchanged: () => [T('z.npy')],
  },
  {
    name: 'embed --shard out of range',
    args: () => ['embed', T('run'), '--images', T('data', 'test'), '--out', T('e.npy'), '--shard', '2/2'],
    code: 2,
    words: /--shard 2\/2: expected i\/n with 0 ≤ i < n/,
    absent: () => [T('e.npy')],
  },
  {
    name: 'embed --images without images',
    args: () => ['embed', T('run'), '--images', T('a-folder'), '--out', T('e.npy')],
    code: 2,
    words: /--images .*a-folder: no image files/,
    absent: () => [T('e.npy')],
  },
  {
    name: 'embed --weights unknown',
    args: () => ['embed', T('run'), '--images', T('data', 'test'), '--out', T('e.npy'), '--weights', 'last'],
    code: 2,
    words: /--weights last: expected final or best/,
  },
  // hardneg export
  {
    name: 'export --opset below 13',
    args: () => ['export', T('run'), '--out', T('m.onnx'), '--opset', '11'],
    code: 2,
    words: /--opset 11: expected an integer in \[13, 21\]/,
    absent: () => [T('m.onnx')],
  },
  {
    name: 'export --out onto a folder',
    args: () => ['export', T('run'), '--out', T('a-folder')],
    code: 2,
    words: /a-folder: is a folder, expected a file name/,
    unchanged: () => [T('a-folder')],
  },
  {
    name: 'export a folder that is not a run',
    args: () => ['export', T('theirs'), '--out', T('m.onnx')],
    code: 2,
    words: /theirs: not a run directory/,
    absent: () => [T('m.onnx')],
  },
  { name: 'an unknown flag', args: () => ['train', '--bogus'], code: 2, words: /Unknown option '--bogus'\. See 'hardneg train --help'\.$/ },
  { name: 'an unknown command', args: () => ['trian'], code: 2, words: /unknown command 'trian'/ },
];

for (const row of ROWS) {
  test(`bad input: ${row.name}`, () => {
    const watched = row.unchanged?.() ?? [];
    const before = watched.map((p) => (statSync(p).isDirectory() ? snapshot(p) : { '': createHash('sha256').update(readFileSync(p)).digest('hex') }));
    const r = hardneg(row.args());
    assert.equal(r.code, row.code, `exit code; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
    assert.match(lines[0] as string, /^hardneg( [a-z-]+)?: /);
    assert.match(lines[0] as string, row.words);
    assert.doesNotMatch(r.stderr, /\n\s+at |node:internal|webpack|function\(/, 'no stack trace or source');
    watched.forEach((p, i) => {
      const now = statSync(p).isDirectory() ? snapshot(p) : { '': createHash('sha256').update(readFileSync(p)).digest('hex') };
      assert.deepEqual(now, before[i], `${p} is unchanged`);
    });
    for (const p of row.absent?.() ?? []) assert.ok(!existsSync(p), `${p} was not created`);
    const leftovers = readdirSync(tmp).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, [], 'no temporary file left');
  });
}

test('two trainers into one folder: the second is refused while the first runs, and the first finishes consistent', async () => {
  const { spawn } = await import('node:child_process');
  const { ROOT } = await import('./helpers/cli.ts');
  const out = T('shared');
  // Long enough (60 epochs of a tiny set) that the first is still training while the others try.
  const first = spawn(process.execPath, [join(ROOT, 'bin', 'hardneg'), ...TRAIN(out).map((a) => (a === '1' ? '60' : a))], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let firstErr = '';
  let firstDone = false;
  first.stderr.on('data', (d) => {
    firstErr += String(d);
  });
  const exited = new Promise<number>((resolve) =>
    first.on('exit', (code) => {
      firstDone = true;
      resolve(code ?? -1);
    }),
  );
  const logPath = join(out, 'log.jsonl');
  const deadline = Date.now() + 120_000;
  while (!(existsSync(logPath) && readFileSync(logPath, 'utf8').includes('"iteration"')) && !firstDone && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(join(out, '.hardneg.lock')), 'the first trainer holds the lock');
  const second = hardneg([...TRAIN(out), '--overwrite', '--seed', '5']);
  const third = hardneg(['train', '--resume', out, '--quiet']);
  assert.ok(!firstDone, 'the first trainer was still running while the others were refused (else this test proves nothing)');
  assert.equal(await exited, 0, firstErr);
  assert.equal(second.code, 2, second.stderr);
  assert.match(second.stderr, /is in use by hardneg train \(pid \d+ on /);
  assert.equal(third.code, 2, third.stderr);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.train.seed, 0, "config.json is the first trainer's");
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step: number });
  const steps = log.filter((e) => e.type === 'iteration').map((e) => e.step);
  assert.deepEqual(
    steps,
    steps.map((_, i) => i + 1),
    'one writer: the log counts its steps once',
  );
  assert.ok(!existsSync(join(out, '.hardneg.lock')), 'the lock is gone when the run ends');
});

test('--overwrite replaces a run: the old one is kept aside until the new one has started, then deleted', () => {
  const out = T('replace');
  assert.equal(hardneg(TRAIN(out)).code, 0);
  const r = hardneg([...TRAIN(out), '--overwrite', '--seed', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).train.seed, 3);
  assert.deepEqual(
    readdirSync(out).filter((f) => f.startsWith('.')),
    [],
    'nothing left aside, no lock',
  );
});
