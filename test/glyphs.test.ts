// `hardneg data build-glyphs` (src/data/glyphs.ts) on the fonts this machine already has: DejaVu
// and Liberation (Debian's fonts-dejavu-core and fonts-liberation; CI installs no font package for
// this). A tiny set — 12 classes × 4 fonts — must be a folder dataset the reader opens, split
// class-disjoint, byte-identical when rebuilt, and drawn only by fonts that have each character.
// Where fewer than 2 fonts draw a script, the test says so and skips.
import './helpers/backend.ts';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { create, type Font, type FontCollection } from 'fontkit';
import { hardneg } from './helpers/cli.ts';
import { openImageFolder } from '../src/data/image_folder.ts';
import { buildGlyphSet, listFontFiles, scanFonts, type GlyphSetManifest } from '../src/data/glyphs.ts';
import { GLYPH_SCRIPTS, scriptCodePoints } from '../src/data/glyph_scripts.ts';

const tmp = mkdtempSync(join(tmpdir(), 'hardneg-glyphs-'));
const T = (...p: string[]): string => join(tmp, ...p);
after(() => rmSync(tmp, { recursive: true, force: true }));

const FONT_DIRS = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/truetype/liberation'].filter((d) => existsSync(d));
const SCRIPTS = ['latin', 'greek', 'cyrillic'];
const TINY = { classes: 12, fontsPerClass: 4, size: 24, seed: 7, scripts: SCRIPTS, fontDirs: FONT_DIRS };

/** Why the tiny set cannot be built from the fonts here, or null when it can. */
function missingFonts(): string | null {
  if (FONT_DIRS.length === 0) return 'neither DejaVu nor Liberation is installed (apt-get install fonts-dejavu-core fonts-liberation)';
  const cps = GLYPH_SCRIPTS.filter((s) => SCRIPTS.includes(s.name)).flatMap((s) => scriptCodePoints(s));
  const scan = scanFonts(FONT_DIRS, cps);
  for (const s of GLYPH_SCRIPTS.filter((x) => SCRIPTS.includes(x.name))) {
    const best = Math.max(0, ...scriptCodePoints(s).map((cp) => scan.coverage.get(cp)?.length ?? 0));
    if (best < 2) return `fewer than 2 fonts in ${FONT_DIRS.join(', ')} draw ${s.name} letters`;
  }
  const eligible = cps.filter((cp) => (scan.coverage.get(cp)?.length ?? 0) >= TINY.fontsPerClass).length;
  return eligible < TINY.classes ? `only ${eligible} characters are drawn by ${TINY.fontsPerClass} fonts here` : null;
}
const SKIP = missingFonts();
if (SKIP) console.log(`# glyphs: skipped, ${SKIP}`);

/** Content hash of every file under `dir`, by relative path. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

function fontAt(file: string, index: number): Font {
  const parsed = create(readFileSync(file)) as Font | FontCollection;
  return 'fonts' in parsed ? (parsed.fonts[index] as Font) : parsed;
}

test('a tiny glyph set is a folder dataset: class-disjoint, readable, byte-identical when rebuilt', { skip: SKIP ?? false }, async () => {
  const a = await buildGlyphSet({ ...TINY, out: T('a') });
  const b = await buildGlyphSet({ ...TINY, out: T('b') });
  assert.equal(a.images, 48);
  assert.deepEqual(snapshot(T('b')), snapshot(T('a')), 'the same fonts and options give the same bytes');

  const m = JSON.parse(readFileSync(T('a', 'glyphs.json'), 'utf8')) as GlyphSetManifest;
  assert.equal(m.format, 'hardneg-glyphs');
  assert.equal(m.splits.train.length, 6);
  assert.equal(m.splits.test.length, 6);
  const trainNames = new Set(m.splits.train.map((c) => c.name));
  assert.ok(
    m.splits.test.every((c) => !trainNames.has(c.name) && !m.splits.train.some((t) => t.char === c.char)),
    'no character in both splits',
  );
  for (const c of [...m.splits.train, ...m.splits.test]) {
    assert.equal(new Set(c.fonts).size, 4, `${c.name}: 4 different fonts`);
    assert.match(c.name, /^(latin|greek|cyrillic)_U\+[0-9A-F]{4,}$/);
  }
  assert.ok(existsSync(T('a', 'README.md')));
  assert.match(readFileSync(T('a', 'README.md'), 'utf8'), /not legal advice/);

  // The library's own reader opens it as --dataset folder does.
  const ds = await openImageFolder(T('a'), { size: 24, channels: 1 });
  assert.equal(ds.train.size, 24);
  assert.equal(ds.test.size, 24);
  assert.deepEqual([...ds.train.classNames], [...trainNames].sort());
  assert.deepEqual(ds.warnings, []);
  const { pixels } = await ds.train.load([0, 1]);
  assert.ok(
    pixels.some((v) => v > 0.5),
    'a glyph is drawn (white on black)',
  );

  // Every image is drawn by a font that has the character.
  const byId = new Map(m.fonts.map((f) => [f.id, f]));
  for (const [split, classes] of Object.entries(m.splits)) {
    for (const cls of classes) {
      for (const id of cls.fonts) {
        const f = byId.get(id);
        assert.ok(f, `${cls.name}: font ${id} is listed in fonts`);
        assert.ok(fontAt(f.file, f.index).hasGlyphForCodePoint(cls.char.codePointAt(0) as number), `${f.postscriptName} draws ${cls.char}`);
        assert.ok(existsSync(T('a', split, cls.name, `${id}.png`)));
      }
    }
  }

  // Another seed: another draw of characters, fonts or variations.
  const c = await buildGlyphSet({ ...TINY, seed: 8, out: T('c') });
  assert.notDeepEqual(snapshot(c.out), snapshot(a.out));
  assert.ok(b.bytes > 0);
});

test('a font counts for a character only when it draws it; copies and identical outlines count once', { skip: SKIP ?? false }, () => {
  const hebrew = GLYPH_SCRIPTS.find((s) => s.name === 'hebrew');
  const latin = GLYPH_SCRIPTS.find((s) => s.name === 'latin');
  assert.ok(hebrew && latin);
  const cps = [...scriptCodePoints(latin), ...scriptCodePoints(hebrew)];
  const scan = scanFonts(FONT_DIRS, cps);
  let absent = 0;
  for (const cp of cps) {
    const users = new Set(scan.coverage.get(cp) ?? []);
    scan.faces.forEach((f, i) => {
      const draws = fontAt(f.file, f.index).hasGlyphForCodePoint(cp);
      if (users.has(i)) assert.ok(draws, `${f.postscriptName} is counted for U+${cp.toString(16)} but has no glyph for it`);
      if (!draws) absent++;
    });
  }
  // Liberation 1.x and DejaVu Serif have no Hebrew: the check above must have had something to refuse.
  if (absent === 0) console.log('# glyphs: every font here draws every Hebrew letter; the refusal half is not exercised');

  // A font file copied under another name is one font.
  const dejavu = listFontFiles(FONT_DIRS).find((f) => f.endsWith('DejaVuSans.ttf')) ?? (listFontFiles(FONT_DIRS)[0] as string);
  mkdirSync(T('copies'));
  copyFileSync(dejavu, T('copies', 'a.ttf'));
  copyFileSync(dejavu, T('copies', 'b.ttf'));
  const copies = scanFonts([T('copies')], scriptCodePoints(latin));
  assert.equal(copies.faces.length, 1);
  assert.match(copies.skipped[0]?.reason ?? '', /the same font as/);
  assert.equal(copies.coverage.get(0x41)?.length, 1);
});

test('too few fonts for the classes asked: refused, nothing written', { skip: SKIP ?? false }, async () => {
  await assert.rejects(buildGlyphSet({ ...TINY, fontsPerClass: 500, out: T('too-many') }), /only \d+ characters are drawn by 500 or more distinct fonts/);
  assert.ok(!existsSync(T('too-many')));
});

test('hardneg data build-glyphs: --json, replacing its own set, refusing bad flags and a foreign --out', { skip: SKIP ?? false }, () => {
  const fontDirs = FONT_DIRS.flatMap((d) => ['--font-dir', d]);
  const args = ['data', 'build-glyphs', '--classes', '12', '--fonts', '4', '--size', '24', '--scripts', SCRIPTS.join(','), ...fontDirs];
  // Onto the set the first test built: replaced, and described by --json.
  const r = hardneg([...args, '--out', T('c'), '--json', '--seed', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(readFileSync(T('c', 'glyphs.json'), 'utf8')) as GlyphSetManifest).options.seed, 3);
  const out = JSON.parse(r.stdout) as { classes: { train: number; test: number }; images: number; seed: number };
  assert.deepEqual(out.classes, { train: 6, test: 6 });
  assert.equal(out.images, 48);
  assert.equal(out.seed, 3);
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.startsWith('.')),
    [],
    'no building or replaced folder left beside the output',
  );

  const bad = hardneg([...args, '--out', T('x'), '--fonts', '0']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /^hardneg data: --fonts 0: expected an integer in \[2, 10000\]/);

  mkdirSync(T('theirs'));
  writeFileSync(T('theirs', 'notes.txt'), 'mine\n');
  const refused = hardneg([...args, '--out', T('theirs')]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^hardneg data: --out .*theirs: not empty and not a glyph set .*'notes\.txt'/);
  assert.deepEqual(readdirSync(T('theirs')), ['notes.txt']);
  assert.equal(readFileSync(T('theirs', 'notes.txt'), 'utf8'), 'mine\n');
});
