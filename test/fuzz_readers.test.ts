// Readers of untrusted files under random damage: truncations, bit flips, byte overwrites and header
// edits of valid safetensors, .npy, MATLAB v5, IDX and log.jsonl files must each end in the
// reader's own one-line error (or a successful read), never another exception, a crash or a hang.
// Seeded, bounded in count and time (npm test stays fast).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '../src/engine/random.ts';
import { SafetensorsError, parseSafetensors } from '../src/io/safetensors.ts';
import { NpyError, parseNpy } from '../src/io/npy.ts';
import { MatError, parseMat } from '../src/data/matlab_v5.ts';
import { IdxError, parseIdx } from '../src/data/idx.ts';
import { parseLogLine } from '../src/report/run_data.ts';
import { GOLDEN } from './helpers/golden.ts';
import { ROOT } from './helpers/cli.ts';

/** Mutated copies per seed file; each kind of damage in turn. */
const PER_FILE = 500;
const BUDGET_MS = 20_000;

type Mutation = (b: Uint8Array, r: Random) => Uint8Array;

const int = (r: Random, n: number): number => Math.floor(r.random() * n);

const MUTATIONS: Record<string, Mutation> = {
  truncate: (b, r) => b.slice(0, int(r, b.length)),
  bitflip: (b, r) => {
    const out = b.slice();
    const flips = 1 + int(r, 8);
    // Mostly near the start, where the headers are.
    for (let i = 0; i < flips; i++) {
      const at = r.random() < 0.7 ? int(r, Math.min(out.length, 512)) : int(r, out.length);
      out[at] = (out[at] as number) ^ (1 << int(r, 8));
    }
    return out;
  },
  overwrite: (b, r) => {
    const out = b.slice();
    const at = int(r, Math.min(out.length, 256));
    const values = [0x00, 0xff, 0x7f, 0x80, 0x20, 0x22, 0x2d, 0x39];
    for (let i = 0; i < 1 + int(r, 6) && at + i < out.length; i++) out[at + i] = values[int(r, values.length)] as number;
    return out;
  },
  extend: (b, r) => {
    const out = new Uint8Array(b.length + 1 + int(r, 64));
    out.set(b);
    for (let i = b.length; i < out.length; i++) out[i] = int(r, 256);
    return out;
  },
};

/** Header edits for the formats with a text header: replace a JSON/Python token with another. */
function headerEdit(text: string, r: Random): string {
  const swaps: [RegExp, string[]][] = [
    [/"shape":\[[^\]]*\]/, ['"shape":null', '"shape":"x"', '"shape":[-1]', '"shape":[1e30]', '"shape":[2.5]', '"shape":{}']],
    [/"data_offsets":\[[^\]]*\]/, ['"data_offsets":[-8,0]', '"data_offsets":[0]', '"data_offsets":null', '"data_offsets":[5,2]', '"data_offsets":[0,1e300]']],
    [/"dtype":"[A-Z0-9]+"/, ['"dtype":"F8_E4M3"', '"dtype":null', '"dtype":7']],
    [/'shape': \([^)]*\)/, ["'shape': (-1,)", "'shape': (abc,)", "'shape': (1e30, 1e30)", "'shape': (2.5,)"]],
    [/'descr': '[^']*'/, ["'descr': '>f4'", "'descr': ''", "'descr': '<U8'"]],
  ];
  const [re, options] = swaps[int(r, swaps.length)] as [RegExp, string[]];
  return text.replace(re, options[int(r, options.length)] as string);
}

interface Format {
  name: string;
  seeds: string[];
  parse: (b: Uint8Array) => unknown;
  ownError: (e: unknown) => boolean;
  textHeader?: boolean;
}

const mats = join(ROOT, 'test', 'fixtures', 'mat');
const FORMATS: Format[] = [
  {
    name: 'safetensors',
    seeds: [join(GOLDEN, 'pub_p4k2_d16_l1.state.safetensors'), join(GOLDEN, 'pub_p4k2_d16_l1.inputs.safetensors')],
    parse: (b) => parseSafetensors(b, 'f'),
    ownError: (e) => e instanceof SafetensorsError,
    textHeader: true,
  },
  {
    name: 'npy',
    seeds: [join(GOLDEN, 'pub_p4k2_d16_l1.z.npy'), join(GOLDEN, 'pub_p4k2_d16_l1.y.npy')],
    parse: (b) => parseNpy(b, 'f'),
    ownError: (e) => e instanceof NpyError,
    textHeader: true,
  },
  {
    name: 'mat',
    seeds: readdirSync(mats)
      .filter((f) => f.endsWith('.mat'))
      .map((f) => join(mats, f)),
    parse: (b) => parseMat(b, 'f'),
    ownError: (e) => e instanceof MatError,
  },
  {
    name: 'idx',
    seeds: [join(ROOT, 'data', 'fashion-mnist', 't10k-labels-idx1-ubyte.gz'), join(ROOT, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz')],
    parse: (b) => parseIdx(b, 'f'),
    ownError: (e) => e instanceof IdxError,
  },
];

let tried = 0;

for (const f of FORMATS) {
  test(`fuzz: damaged ${f.name} files end in the reader's own error, never a crash`, () => {
    assert.ok(f.seeds.length > 0, `seed files for ${f.name}`);
    const rng = new Random(20261206, f.name.length);
    const started = Date.now();
    const failures: string[] = [];
    for (const path of f.seeds) {
      const original = new Uint8Array(readFileSync(path));
      assert.doesNotThrow(() => f.parse(original), `${path} itself parses`);
      const kinds = Object.keys(MUTATIONS).concat(f.textHeader ? ['header'] : []);
      for (let i = 0; i < PER_FILE && Date.now() - started < BUDGET_MS; i++) {
        const kind = kinds[i % kinds.length] as string;
        let damaged: Uint8Array;
        if (kind === 'header') {
          const text = new TextDecoder('latin1').decode(original);
          const edited = headerEdit(text, rng);
          damaged = Uint8Array.from(edited, (c) => c.charCodeAt(0) & 0xff);
        } else {
          damaged = (MUTATIONS[kind] as Mutation)(original, rng);
        }
        tried++;
        try {
          f.parse(damaged);
        } catch (e) {
          if (!f.ownError(e))
            failures.push(`${kind} of ${path.split('/').pop()}: ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message).slice(0, 160)}`);
          else assert.ok(!String((e as Error).message).includes('\n'), `one line: ${(e as Error).message}`);
        }
      }
    }
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} mutations ended in a foreign exception`);
  });
}

test('fuzz: damaged log.jsonl lines are reported as errors, never thrown', () => {
  const rng = new Random(7, 1);
  const line = JSON.stringify({ type: 'evaluation', step: 3, epoch: 1, recall: { 1: 0.5 }, map_at_r: 0.2, r_precision: 0.3, nmi: null });
  const bytes = new TextEncoder().encode(line);
  for (let i = 0; i < 400; i++) {
    const kind = Object.keys(MUTATIONS)[i % 4] as string;
    const damaged = new TextDecoder().decode((MUTATIONS[kind] as Mutation)(bytes, rng));
    tried++;
    assert.doesNotThrow(() => parseLogLine(damaged), damaged);
  }
});

test('fuzz: how many damaged files were tried', () => {
  console.log(`fuzz: ${tried} damaged files parsed, none crashed`);
  assert.ok(tried >= 1000, `${tried} tried`);
});

/** A safetensors file from a header object given as JSON text and `dataBytes` zero bytes. */
function safetensorsWith(headerJson: string, dataBytes: number): Uint8Array {
  const header = new TextEncoder().encode(headerJson);
  const out = new Uint8Array(8 + header.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  return out;
}

const SAFETENSORS_CASES: [string, string, number, RegExp][] = [
  ['header JSON null', 'null', 0, /f: the header is null, expected a JSON object of tensors$/],
  ['header a list', '[1,2]', 0, /f: the header is a list, expected a JSON object of tensors$/],
  ['an entry null', '{"w":null}', 0, /f: tensor 'w' is null, expected \{dtype, shape, data_offsets\}$/],
  ['shape not a list', '{"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}', 16, /f: tensor 'w': shape 4 is not a list of non-negative integers$/],
  ['negative shape', '{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}', 16, /shape \[-4\] is not a list of non-negative integers/],
  [
    'negative data_offsets (would read header bytes)',
    '{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}',
    8,
    /data_offsets \[-8,0\] is not a pair of non-negative integers/,
  ],
  [
    'offsets past the end',
    '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',
    8,
    /byte range \[0, 16\) inconsistent with F32\[4\] \(16 bytes\) and the 8 data bytes/,
  ],
  ['begin after end', '{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', 8, /byte range \[8, 0\)/],
  ['unknown dtype', '{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}', 8, /unsupported dtype "C64"/],
  ['metadata not strings', '{"__metadata__":{"a":1}}', 0, /__metadata__ must be an object of strings/],
];

for (const [what, header, data, message] of SAFETENSORS_CASES) {
  test(`safetensors: ${what} is a one-line error`, () => {
    assert.throws(
      () => parseSafetensors(safetensorsWith(header, data), 'f'),
      (e: unknown) => e instanceof SafetensorsError && message.test((e as Error).message),
    );
  });
}

test('safetensors: a header length beyond the file is refused without reading', () => {
  const b = safetensorsWith('{}', 0);
  new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
  assert.throws(() => parseSafetensors(b, 'f'), /f: header length 9223372036854775808 exceeds the file size 10/);
});
