// The MATLAB v5 reader on files written by scipy.io.savemat and, byte by byte, the way MATLAB
// writes them (test/fixtures/mat, made by scripts/data/make_mat_fixtures.py and checked there with
// scipy.io.loadmat), and its messages for files it cannot read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { MatError, matCharRows, matField, matNumbers, matScalar, matString, matVariable, parseMat, readMat, type MatValue } from '../src/data/matlab_v5.ts';
import { ROOT } from './helpers/cli.ts';

const DIR = join(ROOT, 'test', 'fixtures', 'mat');

// What make_mat_fixtures.py wrote into every cars_annos variant.
const ANNOTATIONS: [string, number, number, number, number, number, number][] = [
  ['car_ims/000001.jpg', 112, 7, 853, 717, 1, 0],
  ['car_ims/000002.jpg', 48, 24, 441, 202, 1, 1],
  ['car_ims/000003.jpg', 7, 4, 277, 180, 99, 0],
  ['car_ims/000004.jpg', 33, 50, 197, 150, 1, 0],
  ['car_ims/000005.jpg', 5, 8, 83, 58, 98, 1],
  ['car_ims/000006.jpg', 1, 1, 300, 200, 196, 0],
  ['car_ims/000007.jpg', 10, 12, 250, 140, 98, 0],
  ['car_ims/000008.jpg', 20, 30, 400, 260, 99, 1],
  ['car_ims/000009.jpg', 3, 3, 60, 40, 196, 1],
  ['car_ims/000010.jpg', 9, 9, 99, 66, 196, 1],
];
const FIELDS = ['relative_im_path', 'bbox_x1', 'bbox_y1', 'bbox_x2', 'bbox_y2', 'class', 'test'];

for (const [file, littleEndian, numericClass] of [
  ['cars_annos_compressed.mat', true, ['uint16', 'uint8']],
  ['cars_annos_plain.mat', true, ['uint16', 'uint8']],
  ['cars_annos_matlab_le.mat', true, ['double', 'double']],
  ['cars_annos_matlab_be.mat', false, ['double', 'double']],
] as const) {
  test(`${file}: the annotations struct array and the class_names cell`, () => {
    const m = readMat(join(DIR, file));
    assert.equal(m.littleEndian, littleEndian);
    assert.match(m.header, /^MATLAB 5\.0 MAT-file/);
    assert.deepEqual([...m.variables.keys()], ['annotations', 'class_names']);
    const a = matVariable(m, 'annotations');
    assert.equal(a.kind, 'struct');
    if (a.kind !== 'struct') return;
    assert.deepEqual(a.dims, [1, 10]);
    assert.deepEqual(a.fields, FIELDS);
    ANNOTATIONS.forEach((want, i) => {
      assert.equal(matString(matField(a, i, 'relative_im_path')), want[0]);
      assert.deepEqual(
        FIELDS.slice(1).map((f) => matScalar(matField(a, i, f))),
        want.slice(1),
      );
    });
    const bbox = matField(a, 0, 'bbox_x1');
    assert.equal(bbox.kind === 'numeric' && bbox.class, numericClass[0]);
    const cls = matField(a, 0, 'class');
    assert.equal(cls.kind === 'numeric' && cls.class, numericClass[1]);
    const names = matVariable(m, 'class_names');
    assert.equal(names.kind, 'cell');
    if (names.kind !== 'cell') return;
    assert.deepEqual(names.dims, [1, 196]);
    const text = names.cells.map((c) => matString(c));
    assert.equal(text[0], 'AM General Hummer SUV 2000');
    assert.equal(text[97], 'Ferrari 458 Italia Coupe 2012');
    assert.equal(text[98], 'Ferrari 458 Italia Convertible 2012');
    assert.equal(text[195], 'smart fortwo Convertible 2012');
    assert.equal(text[1], 'Make002 Model Sedan 2012');
  });
}

test('misc.mat: every numeric class, logical, complex, column-major matrices, chars, empties, nesting', () => {
  const m = readMat(join(DIR, 'misc.mat'));
  const v = (name: string): MatValue => matVariable(m, name);
  const num = (name: string): { cls: string; values: (number | bigint)[]; dims: number[] } => {
    const x = v(name);
    assert.equal(x.kind, 'numeric', name);
    if (x.kind !== 'numeric') throw new Error('unreachable');
    return { cls: x.class, values: Array.from(x.real as ArrayLike<number | bigint>), dims: x.dims };
  };
  assert.deepEqual(num('d'), { cls: 'double', values: [1.5, 3, -2, 4e10], dims: [2, 2] }); // column-major
  assert.deepEqual(num('f32'), { cls: 'single', values: [0.25, -1], dims: [1, 2] });
  assert.deepEqual(num('i8'), { cls: 'int8', values: [-3, 4], dims: [1, 2] });
  assert.deepEqual(num('u8'), { cls: 'uint8', values: [0, 255], dims: [1, 2] });
  assert.deepEqual(num('i16'), { cls: 'int16', values: [-30000, 2], dims: [1, 2] });
  assert.deepEqual(num('u16'), { cls: 'uint16', values: [65535, 1], dims: [1, 2] });
  assert.deepEqual(num('i32'), { cls: 'int32', values: [-2000000000, 5], dims: [1, 2] });
  assert.deepEqual(num('u32'), { cls: 'uint32', values: [4000000000, 6], dims: [1, 2] });
  assert.deepEqual(num('i64'), { cls: 'int64', values: [-(2n ** 40n), 7n], dims: [1, 2] });
  assert.deepEqual(num('u64'), { cls: 'uint64', values: [2n ** 63n + 5n, 8n], dims: [1, 2] });
  assert.deepEqual(matNumbers(v('i64')), [-(2 ** 40), 7]);
  assert.throws(
    () => matNumbers(v('u64')),
    (e: unknown) => e instanceof MatError && /9223372036854775813 cannot be represented exactly/.test(e.message),
  );
  const b = v('b');
  assert.ok(b.kind === 'numeric' && b.logical && b.class === 'uint8', 'logical uint8');
  assert.deepEqual(matNumbers(b), [1, 0, 1]);
  const z = v('z');
  assert.ok(z.kind === 'numeric' && z.imag, 'complex');
  if (z.kind === 'numeric' && z.imag) {
    assert.deepEqual(
      [...(z.real as Float64Array)].map((x) => x + 0),
      [1, 0],
    ); // numpy writes -3j as (-0, -3)
    assert.deepEqual([...(z.imag as Float64Array)], [2, -3]);
  }
  assert.deepEqual(matCharRows(v('s2')), ['abc', 'xyz']);
  assert.throws(() => matString(v('s2')), /expected one string, found a char array \[2×3\]/);
  assert.deepEqual(num('empty'), { cls: 'double', values: [], dims: [0, 0] });
  assert.equal(matString(v('emptystr')), '');
  const nested = v('nested');
  assert.equal(matScalar(matField(nested, 0, 'a')), 1.5);
  const inner = matField(nested, 0, 'inner');
  assert.equal(matString(matField(inner, 0, 'word')), 'deep');
  assert.deepEqual(matNumbers(matField(inner, 0, 'n')), [1, 2, 3]);
  const cell = v('cellmix');
  assert.ok(cell.kind === 'cell', 'a cell');
  if (cell.kind === 'cell') {
    assert.equal(matString(cell.cells[0] as MatValue), 'text');
    assert.equal(matScalar(cell.cells[1] as MatValue), 7);
    assert.deepEqual((cell.cells[2] as MatValue).dims, [0, 0]);
  }
  assert.throws(() => matField(nested, 0, 'nope'), /no field 'nope' \(fields: a, inner\)/);
  assert.throws(() => matScalar(v('s2')), /expected a numeric array, found a char array/);
  assert.throws(() => matVariable(m, 'missing', 'x.mat'), /x\.mat: no variable 'missing' \(found: d, f32/);
});

test('files that are not readable v5 MAT-files get a message saying why', () => {
  const good = readFileSync(join(DIR, 'cars_annos_plain.mat'));
  assert.throws(
    () => parseMat(good.subarray(0, 1000), 'cut.mat'),
    (e: unknown) => e instanceof MatError && /^cut\.mat: truncated file/.test(e.message),
  );
  assert.throws(() => parseMat(Buffer.from('hello world'), 'tiny.mat'), /tiny\.mat: not a MATLAB v5 MAT-file \(11 bytes/);
  assert.throws(
    () => parseMat(Buffer.alloc(200, 0x20), 'text.mat'),
    /text\.mat: not a MATLAB v5 MAT-file: no endian indicator 'IM' or 'MI'.*v4 file or not a MAT-file/,
  );
  const hdf5 = Buffer.concat([Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'), Buffer.alloc(600)]);
  assert.throws(() => parseMat(hdf5, 'v73.mat'), /v73\.mat: an HDF5 file \(MATLAB v7\.3\)/);
  const v73 = Buffer.from(good);
  v73.write('MATLAB 7.3 MAT-file, Platform: GLNXA64', 0, 'latin1');
  assert.throws(() => parseMat(v73, 'v73b.mat'), /MATLAB v7\.3 \(HDF5\) file/);
  const version = Buffer.from(good);
  version.writeUInt16LE(0x0200, 124);
  assert.throws(() => parseMat(version, 'ver.mat'), /unknown MAT-file version 0x200/);
  // A compressed variable whose stream is damaged.
  const z = readFileSync(join(DIR, 'cars_annos_compressed.mat'));
  const broken = Buffer.from(z);
  for (let i = 140; i < 160; i++) broken[i] = 0xff;
  assert.throws(() => parseMat(broken, 'z.mat'), /z\.mat: corrupt compressed variable/);
});

test('hand-built elements: small data elements, uint16 and UTF-8 chars, objects, unsupported classes', () => {
  // One little-endian variable built here, in the compressed form: a 1×2 cell {'hé' (miUINT16), 5 (int32 in a small element)}.
  const tag = (type: number, bytes: Buffer): Buffer => {
    if (bytes.length > 0 && bytes.length <= 4) {
      const t = Buffer.alloc(8);
      t.writeUInt32LE((bytes.length << 16) | type, 0);
      bytes.copy(t, 4);
      return t;
    }
    const h = Buffer.alloc(8);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(bytes.length, 4);
    return Buffer.concat([h, bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
  };
  const u32 = (...v: number[]): Buffer => Buffer.from(new Uint32Array(v).buffer);
  const i32 = (...v: number[]): Buffer => Buffer.from(new Int32Array(v).buffer);
  const matrix = (cls: number, dims: number[], name: string, ...body: Buffer[]): Buffer => {
    const content = Buffer.concat([tag(6, u32(cls, 0)), tag(5, i32(...dims)), tag(1, Buffer.from(name, 'latin1')), ...body]);
    return Buffer.concat([u32(14, content.length), content]);
  };
  const chars = matrix(4, [1, 2], '', tag(4, Buffer.from(new Uint16Array([0x68, 0xe9]).buffer)));
  const utf8 = matrix(4, [1, 3], '', tag(16, Buffer.from('añb', 'utf8')));
  const five = matrix(12, [1, 1], '', tag(5, i32(5)));
  const cell = matrix(1, [1, 3], 'c', chars, five, utf8);
  const obj = matrix(
    3,
    [1, 1],
    'obj',
    tag(1, Buffer.from('MyClass', 'latin1')),
    tag(5, i32(8)),
    tag(1, Buffer.from('x\0\0\0\0\0\0\0', 'latin1')),
    matrix(6, [1, 1], '', tag(9, Buffer.from(new Float64Array([2.5]).buffer))),
  );
  const sparse = matrix(5, [3, 3], 'sp');
  const header = Buffer.alloc(128, 0x20);
  header.write('MATLAB 5.0 MAT-file, hand-built', 0, 'latin1');
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const compressed = deflateSync(cell);
  const file = Buffer.concat([header, u32(15, compressed.length), compressed, obj, sparse]);
  const m = parseMat(file, 'hand.mat');
  const c = matVariable(m, 'c');
  assert.ok(c.kind === 'cell', 'a cell');
  if (c.kind === 'cell') {
    assert.equal(matString(c.cells[0] as MatValue), 'hé');
    assert.equal(matScalar(c.cells[1] as MatValue), 5);
    assert.equal((c.cells[1] as MatValue).kind === 'numeric' && (c.cells[1] as MatValue as { class: string }).class, 'int32');
    assert.equal(matString(c.cells[2] as MatValue), 'añb');
  }
  const o = matVariable(m, 'obj');
  assert.ok(o.kind === 'struct' && o.className === 'MyClass', 'an object');
  assert.equal(matScalar(matField(o, 0, 'x')), 2.5);
  assert.deepEqual(matVariable(m, 'sp'), { kind: 'unsupported', dims: [3, 3], what: 'sparse array' });
});
