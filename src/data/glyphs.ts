// A many-class image-folder dataset made from the fonts installed on this machine (`hardneg data
// build-glyphs`): each class is one character (Latin, Greek, Cyrillic, Hebrew, Arabic, Devanagari,
// Thai, Hangul, kana, Han: src/data/glyph_scripts.ts), each sample that character drawn by another
// font, with a small seeded shift, scale, rotation and stroke, so that retrieval is about the
// character across fonts, not about pixels. Classes are split class-disjoint (half train, half
// test, by a seeded shuffle within each script), as metric learning is evaluated.
//
// Honest font counts: a glyph is drawn from the font file's own outline (fontkit), never through a
// text renderer, which would silently substitute another font for a character the requested one
// lacks. A font counts for a character only when its character map has the character and the
// glyph is a real drawing (not empty, not the font's .notdef box, not one placeholder drawn for
// several characters), and two fonts whose outlines of that character are identical (the regional
// faces of one CJK collection, a font repackaged under another name) count once. Italic and oblique
// faces are left out (italic shapes turn some letters into others: Cyrillic и, т, п look like Latin
// u, m, n), and so are symbol, dingbat, keycap, emoji and math fonts and a few whose letters are
// ornaments.
//
// Output, read by `--dataset folder` (src/data/image_folder.ts):
//   DIR/train/<script>_U+XXXX/fNNN.png, DIR/test/<script>_U+XXXX/fNNN.png   (fNNN: the font's id)
//   DIR/glyphs.json   what was built: options, every class with its character and fonts, every
//                     font with its file, Debian package, version and licences
//   DIR/README.md     the same in words, with the fonts' licences
// The same fonts and options give byte-identical files. DIR is written as a whole: built in a
// hidden sibling folder and renamed into place, so an interrupted build leaves DIR as it was.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { create, type Font, type FontCollection, type Glyph } from 'fontkit';
import { UserError } from '../errors.ts';
import { Random, STREAMS } from '../engine/random.ts';
import { writeFileAtomic } from '../io/atomic_write.ts';
import { VERSION } from '../version.ts';
import { mapConcurrent } from './concurrency.ts';
import { readPackageIndex, type FontPackage, type PackageIndex, type PackageIndexOptions } from './font_packages.ts';
import { GLYPH_SCRIPT_NAMES, GLYPH_SCRIPTS, scriptCodePoints, type GlyphScript } from './glyph_scripts.ts';
import { loadSharp } from './transforms.ts';

/** The manifest's format name: a folder whose glyphs.json says this was written by buildGlyphSet. */
export const GLYPH_SET_FORMAT = 'hardneg-glyphs';
const FORMAT_VERSION = 1;

export const GLYPH_DEFAULTS = { classes: 400, fontsPerClass: 20, size: 32, seed: 0, fontDirs: ['/usr/share/fonts'] } as const;

/**
 * How a glyph is placed (fractions of the image side or of the em). The em is 0.7 of the image
 * side; the point 0.38 em above the baseline (the middle of a CJK ideograph's em box, near the
 * middle of a Latin capital) is put at the image centre, horizontally the glyph's own centre, so
 * capitals and small letters keep their different heights. Then the seeded variations.
 */
const LAYOUT = {
  em: 0.7,
  centreAboveBaseline: 0.38,
  /** Scale: the em times 1 ± this. */
  scaleJitter: 0.08,
  /** Shift: up to ± this fraction of the side, on each axis. */
  shiftJitter: 0.06,
  /** Rotation: up to ± this many degrees. */
  rotationDegrees: 4,
  /** An outline stroke of up to this fraction of the em: a heavier weight than the font's own. */
  strokeMax: 0.04,
  /** Glyphs that would leave the image are shifted, then shrunk, to keep this margin (px). */
  marginPx: 1,
} as const;

const FONT_FILE = /\.(ttf|otf|ttc|otc)$/i;
const DRAWS_NONE = 'draws none of the characters asked for';
/** Families that are not text: their "letters" are pictures (keycaps, ornaments), or the letters of a formula. */
const NOT_TEXT = /symbol|dingbat|dings|emoji|ornament|math|icon|awesome|music|braille|caladings|keyboard/i;

/**
 * Fonts whose letters are not the letters' shapes, found by looking at every installed font's
 * renderings (by PostScript name): a character drawn by them would be noise, not a hard sample.
 */
const NOT_LETTER_SHAPES: Record<string, string> = {
  Haramain: 'draws each Arabic letter inside an ornamental frame',
  AlManzomah: 'draws isolated Arabic letters as triangles and lozenges',
  D050000L: 'a Zapf Dingbats clone that maps Latin letters to dingbats',
};

/**
 * Packages left out as a whole: display collections whose faces imitate other scripts or reduce
 * letters to strokes.
 */
const NOT_LETTER_PACKAGES: Record<string, string> = {
  'fonts-ldco': 'decorative Hebrew display faces, several drawn as Latin-looking letters or bare strokes',
};

export interface GlyphSetOptions {
  /** The folder to write: new, empty, or a glyph set written before (replaced). */
  out: string;
  /** Classes (characters), split half train, half test. Default 400. */
  classes?: number;
  /** Fonts per class: each class gets exactly this many images, one per distinct font. Default 20. */
  fontsPerClass?: number;
  /** Image side in pixels. Default 32. */
  size?: number;
  seed?: number;
  /** Scripts to draw classes from (names of GLYPH_SCRIPTS). Default: all. */
  scripts?: readonly string[];
  /** Folders searched (recursively) for .ttf, .otf, .ttc and .otc files. Default /usr/share/fonts. */
  fontDirs?: readonly string[];
  /** Images rendered at once. Default 4. */
  concurrency?: number;
  /** Where the Debian package database is (tests). */
  packages?: PackageIndexOptions;
  onProgress?: (phase: 'fonts' | 'images', done: number, total: number) => void;
}

/** One face of a font file (a .ttc holds several). */
export interface FontFace {
  file: string;
  /** Index in a collection; 0 for a single font. */
  index: number;
  postscriptName: string;
  /** Typographic family: fonts for a character are dealt one family at a time within a source. */
  family: string;
  /**
   * The Debian package that installed the font, or its folder when no package did: fonts for a
   * character are dealt one source at a time, so that one large collection does not fill a class.
   */
  source: string;
  style: string;
  weight: number;
}

export interface FontScan {
  /** The usable faces, in file path order then collection order. */
  faces: FontFace[];
  /** Faces left out, and why. */
  skipped: { file: string; index: number; name: string; reason: string }[];
  files: number;
  /**
   * For each code point asked about: the faces that draw it (indices into `faces`), one per
   * distinct outline (the first face in order when several have the same outline).
   */
  coverage: Map<number, number[]>;
}

export interface GlyphClass {
  /** The class folder: `<script>_U+XXXX`. */
  name: string;
  char: string;
  codePoint: string;
  script: string;
  /** Font ids (glyphs.json `fonts`), one image `<id>.png` each. */
  fonts: string[];
}

export interface GlyphFontRecord {
  id: string;
  file: string;
  index: number;
  postscriptName: string;
  family: string;
  style: string;
  weight: number;
  sha256: string;
  package: string | null;
  packageVersion: string | null;
  licenses: string[];
}

export interface GlyphSetManifest {
  format: typeof GLYPH_SET_FORMAT;
  formatVersion: number;
  hardnegVersion: string;
  options: { classes: number; fontsPerClass: number; size: number; seed: number; scripts: string[]; fontDirs: string[] };
  image: { size: number; channels: 1; foreground: 'white'; background: 'black'; layout: typeof LAYOUT };
  counts: {
    train: { classes: number; images: number };
    test: { classes: number; images: number };
    scripts: Record<string, { train: number; test: number; eligible: number }>;
  };
  splits: { train: GlyphClass[]; test: GlyphClass[] };
  fonts: GlyphFontRecord[];
  packages: FontPackage[];
  /**
   * What the font search found: files, usable faces, faces that draw none of the candidate
   * characters, and every other face left out with the reason.
   */
  scan: { files: number; faces: number; drawingNone: number; left: FontScan['skipped'] };
}

export interface GlyphSetSummary {
  out: string;
  manifest: GlyphSetManifest;
  images: number;
  bytes: number;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Fonts

interface FontInternals {
  directory: { tables: Record<string, unknown> };
  getName(key: string): string | null;
}

function facesOf(parsed: Font | FontCollection): Font[] {
  return 'fonts' in parsed ? parsed.fonts : [parsed];
}

const COMMAND_CODE: Record<string, number> = { moveTo: 1, lineTo: 2, quadraticCurveTo: 3, bezierCurveTo: 4, closePath: 5 };

/** A digest of a glyph's outline (null when the glyph draws nothing): equal outlines, equal keys. */
function outlineKey(font: Font, glyph: Glyph): string | null {
  if (glyph.id === 0) return null;
  const commands = glyph.path.commands;
  if (commands.length === 0) return null;
  const box = glyph.cbox;
  if (!(box.width > 0 && box.height > 0)) return null;
  let n = 1;
  for (const c of commands) n += 1 + c.args.length;
  const values = new Float64Array(n);
  let k = 0;
  values[k++] = font.unitsPerEm;
  for (const c of commands) {
    values[k++] = COMMAND_CODE[c.command] ?? 0;
    for (const a of c.args) values[k++] = a;
  }
  return createHash('sha1').update(new Uint8Array(values.buffer)).digest('base64');
}

/**
 * The outline table a face reads its glyphs from: the faces of a collection often share one, and
 * then the same glyph id is the same outline (read once, not once per face).
 */
function outlineTable(font: Font): string {
  const tables = (font as unknown as FontInternals).directory.tables as Record<string, { offset?: number } | undefined>;
  // TrueType outlines are found through 'loca': both must be the same table for the same outline.
  return ['glyf', 'loca', 'CFF ', 'CFF2'].map((tag) => tables[tag]?.offset ?? '-').join('/');
}

/** Why a face is not used, or null when it is. */
function unusable(font: Font): string | null {
  const tables = (font as unknown as FontInternals).directory.tables;
  if (!('glyf' in tables) && !('CFF ' in tables) && !('CFF2' in tables)) return 'no outlines (a bitmap font)';
  if ('COLR' in tables || 'CBDT' in tables || 'sbix' in tables || 'SVG ' in tables) return 'a colour font';
  const os2 = font['OS/2'];
  if (font.italicAngle !== 0 || os2?.fsSelection?.italic || os2?.fsSelection?.oblique || /italic|oblique|slanted|kursiv/i.test(font.subfamilyName ?? ''))
    return 'italic or oblique';
  if (NOT_TEXT.test(font.familyName ?? '') || NOT_TEXT.test(font.postscriptName ?? '')) return 'not a text font (symbols, dingbats, emoji or math)';
  const shapes = NOT_LETTER_SHAPES[font.postscriptName ?? ''];
  if (shapes) return `not letter shapes: ${shapes}`;
  return null;
}

function familyOf(font: Font): string {
  const typographic = (font as unknown as FontInternals).getName('preferredFamily');
  // The regional faces of a CJK collection are one design: one family for choosing fonts.
  return (typographic ?? font.familyName ?? font.postscriptName ?? '?').replace(/\s+(JP|KR|SC|TC|HK|CN|TW)$/, '');
}

/** Font files under `dirs`, recursively, as sorted absolute paths (each real file once). */
export function listFontFiles(dirs: readonly string[]): string[] {
  const found = new Set<string>();
  const seenReal = new Set<string>();
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && FONT_FILE.test(e)) {
        // The same file reached twice (a symlinked folder) is one font.
        const id = `${st.dev}:${st.ino}`;
        if (!seenReal.has(id)) {
          seenReal.add(id);
          found.add(p);
        }
      }
    }
  };
  for (const d of dirs) walk(resolve(d));
  return [...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Opens every font under `dirs` and finds which faces really draw each of `codePoints` (see the
 * header comment: the character map has it, the glyph is a drawing, identical outlines once).
 */
export function scanFonts(
  dirs: readonly string[],
  codePoints: readonly number[],
  opts: { packageOf?: (file: string) => string | null; onProgress?: (done: number, total: number) => void } = {},
): FontScan {
  const { packageOf, onProgress } = opts;
  const files = listFontFiles(dirs);
  /** The file where each PostScript name was first seen: the same font in another format is a copy. */
  const firstSeen = new Map<string, string>();
  const faces: FontFace[] = [];
  const skipped: FontScan['skipped'] = [];
  const drawn = new Map<number, { face: number; key: string }[]>();
  for (const cp of codePoints) drawn.set(cp, []);
  files.forEach((file, fi) => {
    onProgress?.(fi, files.length);
    const pkg = packageOf?.(file) ?? null;
    if (pkg !== null && NOT_LETTER_PACKAGES[pkg]) {
      skipped.push({ file, index: 0, name: basename(file), reason: `not letter shapes (${pkg}): ${NOT_LETTER_PACKAGES[pkg]}` });
      return;
    }
    // Outline keys by (outline table, glyph id), shared by the faces of this file.
    const keys = new Map<string, string | null>();
    let parsed: Font | FontCollection;
    try {
      parsed = create(readFileSync(file));
    } catch (err) {
      skipped.push({ file, index: 0, name: basename(file), reason: `unreadable (${err instanceof Error ? err.message : String(err)})` });
      return;
    }
    facesOf(parsed).forEach((font, index) => {
      const name = font.postscriptName ?? `${basename(file)}#${index}`;
      let why: string | null;
      try {
        why = unusable(font);
      } catch (err) {
        why = `unreadable (${err instanceof Error ? err.message : String(err)})`;
      }
      const copyOf = firstSeen.get(name);
      if (!why && copyOf !== undefined) why = `the same font as ${copyOf} (same PostScript name, another format or copy)`;
      if (why) {
        skipped.push({ file, index, name, reason: why });
        return;
      }
      const faceIndex = faces.length;
      let notdef: string | null = null;
      let any = false;
      try {
        notdef = outlineKey(font, font.getGlyph(0));
      } catch {
        // no drawable .notdef: nothing to compare against
      }
      const table = outlineTable(font);
      const mine: { cp: number; key: string }[] = [];
      try {
        for (const cp of codePoints) {
          if (!font.hasGlyphForCodePoint(cp)) continue;
          const glyph = font.glyphForCodePoint(cp);
          const cacheKey = `${table}:${font.unitsPerEm}:${glyph.id}`;
          let key = keys.get(cacheKey);
          if (key === undefined) {
            key = outlineKey(font, glyph);
            keys.set(cacheKey, key);
          }
          if (key === null || key === notdef) continue;
          mine.push({ cp, key });
        }
      } catch (err) {
        // A damaged table: the face is left out as a whole, not half used.
        skipped.push({ file, index, name, reason: `unreadable (${err instanceof Error ? err.message : String(err)})` });
        return;
      }
      // Two candidate characters drawn alike by one font are a placeholder (a box for every
      // letter the font lacks), not two drawings: neither counts for this font.
      const uses = new Map<string, number>();
      for (const { key } of mine) uses.set(key, (uses.get(key) ?? 0) + 1);
      for (const { cp, key } of mine) {
        if ((uses.get(key) as number) > 1) continue;
        drawn.get(cp)?.push({ face: faceIndex, key });
        any = true;
      }
      if (!any && codePoints.length > 0) {
        skipped.push({ file, index, name, reason: DRAWS_NONE });
        return;
      }
      firstSeen.set(name, file);
      faces.push({
        file,
        index,
        postscriptName: name,
        family: familyOf(font),
        source: pkg ?? dirname(file),
        style: font.subfamilyName ?? '',
        weight: font['OS/2']?.usWeightClass ?? 400,
      });
    });
  });
  onProgress?.(files.length, files.length);
  const coverage = new Map<number, number[]>();
  for (const [cp, list] of drawn) {
    const seen = new Set<string>();
    const distinct: number[] = [];
    for (const { face, key } of list) {
      if (seen.has(key)) continue;
      seen.add(key);
      distinct.push(face);
    }
    coverage.set(cp, distinct);
  }
  return { faces, skipped, files: files.length, coverage };
}

// ---------------------------------------------------------------------------------------------
// Choosing classes, fonts and splits

/** A 48-bit seed from the text of its parts: each character's and image's draws are their own. */
function derivedSeed(...parts: (string | number)[]): number {
  return createHash('sha256').update(parts.join('\u0000')).digest().readUIntBE(0, 6);
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, '0');
}

/** Round-robin over queues: the first of each, then the second of each, … */
function interleave<T>(queues: readonly T[][]): T[] {
  const out: T[] = [];
  const longest = Math.max(0, ...queues.map((q) => q.length));
  for (let round = 0; round < longest; round++) for (const q of queues) if (round < q.length) out.push(q[round] as T);
  return out;
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

/**
 * `n` of the faces drawing a character, as varied as they allow: sources (packages) in a seeded
 * order deal one face each in turn, and within a source its families deal in turn, so no source
 * gives a second face before every source has given one, nor a family before its siblings.
 */
export function chooseFonts(faceIdx: readonly number[], faces: readonly FontFace[], n: number, seed: number, cp: number): number[] {
  const rng = new Random(derivedSeed(seed, cp), STREAMS.glyphFonts);
  const bySource = groupBy(faceIdx, (i) => (faces[i] as FontFace).source);
  const sourceQueues = rng.shuffle([...bySource.keys()].sort()).map((src) => {
    const byFamily = groupBy(bySource.get(src) as number[], (i) => (faces[i] as FontFace).family);
    return interleave(rng.shuffle([...byFamily.keys()].sort()).map((fam) => rng.shuffle([...(byFamily.get(fam) as number[])])));
  });
  return interleave(sourceQueues)
    .slice(0, n)
    .sort((a, b) => a - b);
}

interface Chosen {
  script: GlyphScript;
  cp: number;
  faces: number[];
  split: 'train' | 'test';
}

function chooseClasses(scripts: readonly GlyphScript[], scan: FontScan, classes: number, fontsPerClass: number, seed: number, fontDirs: readonly string[]) {
  const rng = new Random(seed, STREAMS.glyphClasses);
  const eligible = scripts.map((s) => rng.shuffle(scriptCodePoints(s).filter((cp) => (scan.coverage.get(cp)?.length ?? 0) >= fontsPerClass)));
  const total = eligible.reduce((a, e) => a + e.length, 0);
  if (total < classes) {
    const per = scripts.map((s, i) => `${s.name} ${(eligible[i] as number[]).length}`).join(', ');
    throw new UserError(
      `only ${total} characters are drawn by ${fontsPerClass} or more distinct fonts in ${fontDirs.join(', ')} (${per}), ` +
        `${classes} asked for: install more font packages (README, "Glyph dataset") or lower --classes or --fonts`,
    );
  }
  // Deal one character per script in turn, so that every script is represented as far as it goes.
  const taken: number[][] = scripts.map(() => []);
  let n = 0;
  for (let round = 0; n < classes; round++) {
    eligible.forEach((e, i) => {
      if (n < classes && round < e.length) {
        (taken[i] as number[]).push(e[round] as number);
        n++;
      }
    });
  }
  // Class-disjoint split, alternating through each script's shuffled characters (half of each
  // script in train, half in test, the odd ones alternating between the splits).
  const chosen: Chosen[] = [];
  let k = 0;
  scripts.forEach((script, i) => {
    for (const cp of taken[i] as number[]) {
      const faces = chooseFonts(scan.coverage.get(cp) as number[], scan.faces, fontsPerClass, seed, cp);
      chosen.push({ script, cp, faces, split: k++ % 2 === 0 ? 'train' : 'test' });
    }
  });
  const counts: GlyphSetManifest['counts']['scripts'] = {};
  scripts.forEach((s, i) => {
    const mine = chosen.filter((c) => c.script === s);
    counts[s.name] = {
      train: mine.filter((c) => c.split === 'train').length,
      test: mine.filter((c) => c.split === 'test').length,
      eligible: (eligible[i] as number[]).length,
    };
  });
  return { chosen, counts };
}

// ---------------------------------------------------------------------------------------------
// Rendering

function fmt(x: number): string {
  return (Math.round(x * 1e4) / 1e4).toString();
}

/** The SVG of one sample: the glyph's outline, placed as LAYOUT says with its seeded variations. */
function glyphSvg(font: Font, glyph: Glyph, size: number, rng: Random): string {
  const upem = font.unitsPerEm;
  const u = (a: number) => (rng.random() * 2 - 1) * a;
  const emPx = LAYOUT.em * size;
  let scale = (emPx * (1 + u(LAYOUT.scaleJitter))) / upem;
  const theta = (u(LAYOUT.rotationDegrees) * Math.PI) / 180;
  let tx = size / 2 + u(LAYOUT.shiftJitter) * size;
  let ty = size / 2 + u(LAYOUT.shiftJitter) * size;
  const strokePx = rng.random() * LAYOUT.strokeMax * emPx;
  const box = glyph.path.bbox;
  const cx = (box.minX + box.maxX) / 2;
  const cy = LAYOUT.centreAboveBaseline * upem;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  // Font units (y up) → pixels (y down): p' = T + R(θ)·S·(p − c) with S = diag(scale, −scale).
  const extent = () => {
    const xs: number[] = [];
    const ys: number[] = [];
    for (const [x, y] of [
      [box.minX, box.minY],
      [box.minX, box.maxY],
      [box.maxX, box.minY],
      [box.maxX, box.maxY],
    ] as const) {
      const px = scale * (x - cx);
      const py = -scale * (y - cy);
      xs.push(tx + cos * px - sin * py);
      ys.push(ty + sin * px + cos * py);
    }
    return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
  };
  const margin = LAYOUT.marginPx + strokePx / 2;
  const room = size - 2 * margin;
  let e = extent();
  const over = Math.max((e.x1 - e.x0) / room, (e.y1 - e.y0) / room);
  if (over > 1) {
    // Too big for the image (a font with a large design in its em): shrink about the anchor.
    scale /= over;
    e = extent();
  }
  if (e.x0 < margin) tx += margin - e.x0;
  else if (e.x1 > size - margin) tx -= e.x1 - (size - margin);
  if (e.y0 < margin) ty += margin - e.y0;
  else if (e.y1 > size - margin) ty -= e.y1 - (size - margin);
  const a = scale * cos;
  const b = scale * sin;
  const c = scale * sin;
  const d = -scale * cos;
  const ex = tx - a * cx - c * cy;
  const fy = ty - b * cx - d * cy;
  const stroke = strokePx > 0 ? ` stroke="#fff" stroke-width="${fmt(strokePx / scale)}" stroke-linejoin="round"` : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<rect width="${size}" height="${size}" fill="#000"/>` +
    `<path transform="matrix(${[a, b, c, d, ex, fy].map(fmt).join(' ')})" d="${glyph.path.toSVG()}" fill="#fff"${stroke}/>` +
    `</svg>`
  );
}

async function renderPng(svg: string): Promise<Buffer> {
  const sharp = await loadSharp();
  // One grey channel, no metadata, fixed compression: the same SVG gives the same bytes.
  return sharp(Buffer.from(svg))
    .flatten({ background: '#000000' })
    .toColourspace('b-w')
    .png({ compressionLevel: 9, adaptiveFiltering: false, palette: false })
    .toBuffer();
}

// ---------------------------------------------------------------------------------------------
// The output folder

const OWN_ENTRIES = new Set(['train', 'test', 'glyphs.json', 'README.md']);

/** What --out is now: refuses a folder holding anything this command did not write. */
function checkOut(out: string): 'new' | 'empty' | 'glyph-set' {
  let st;
  try {
    st = statSync(out);
  } catch {
    return 'new';
  }
  if (!st.isDirectory()) throw new UserError(`--out ${out}: is a file, expected a folder (new, empty, or a glyph set built before)`);
  const entries = readdirSync(out);
  if (entries.length === 0) return 'empty';
  const refuse = (found: string): never => {
    throw new UserError(`--out ${out}: not empty and not a glyph set written by 'hardneg data build-glyphs' (found ${found}); choose a new or empty folder`);
  };
  let manifest: Partial<GlyphSetManifest>;
  try {
    manifest = JSON.parse(readFileSync(join(out, 'glyphs.json'), 'utf8')) as Partial<GlyphSetManifest>;
  } catch {
    return refuse(entries.includes('glyphs.json') ? 'an unreadable glyphs.json' : `'${entries.sort()[0]}'`);
  }
  if (manifest.format !== GLYPH_SET_FORMAT || !manifest.splits) return refuse('a glyphs.json of another kind');
  for (const e of entries.sort()) if (!OWN_ENTRIES.has(e)) refuse(`'${e}'`);
  for (const split of ['train', 'test'] as const) {
    const dir = join(out, split);
    if (!existsSync(dir)) continue;
    const known = new Map((manifest.splits[split] ?? []).map((c) => [c.name, new Set(c.fonts.map((f) => `${f}.png`))]));
    for (const cls of readdirSync(dir).sort()) {
      const files = known.get(cls);
      if (!files) refuse(`'${split}/${cls}'`);
      for (const f of readdirSync(join(dir, cls)).sort()) if (!files?.has(f)) refuse(`'${split}/${cls}/${f}'`);
    }
  }
  return 'glyph-set';
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const st = statSync(p);
    total += st.isDirectory() ? folderBytes(p) : st.size;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// The README of a built set

function readme(m: GlyphSetManifest): string {
  const byPackage = new Map<string, GlyphFontRecord[]>();
  for (const f of m.fonts) {
    const key = f.package ?? '(not from a Debian package)';
    byPackage.set(key, [...(byPackage.get(key) ?? []), f]);
  }
  const pkgRows = [...byPackage.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, fonts]) => {
      const p = m.packages.find((x) => x.name === name);
      const families = [...new Set(fonts.map((f) => f.family))].sort().join(', ');
      return `| ${name} | ${p?.version ?? ''} | ${p && p.licenses.length > 0 ? p.licenses.join('; ') : 'see the font files'} | ${fonts.length} | ${families} |`;
    });
  const scriptRows = GLYPH_SCRIPTS.filter((s) => m.counts.scripts[s.name]).map((s) => {
    const c = m.counts.scripts[s.name] as { train: number; test: number };
    return `| ${s.title} | ${c.train} | ${c.test} |`;
  });
  const o = m.options;
  return [
    '# Glyph dataset',
    '',
    `Built by \`hardneg data build-glyphs --classes ${o.classes} --fonts ${o.fontsPerClass} --size ${o.size} --seed ${o.seed}` +
      `${o.scripts.length < GLYPH_SCRIPTS.length ? ` --scripts ${o.scripts.join(',')}` : ''}` +
      `${o.fontDirs.join() === GLYPH_DEFAULTS.fontDirs.join() ? '' : o.fontDirs.map((d) => ` --font-dir ${d}`).join('')}\` (hardneg ${m.hardnegVersion}) ` +
      'from the fonts installed on the machine that built it; `glyphs.json` lists every class and every font.',
    '',
    `Each class is one character; its ${o.fontsPerClass} images are that character drawn by ${o.fontsPerClass} different fonts ` +
      `(one image per font, from the font's own outline, never a substitute font), white on black, ${o.size}×${o.size} grey, ` +
      'with a small seeded shift, scale, rotation and stroke. The classes are split class-disjoint: ' +
      `${m.counts.train.classes} characters for training (\`train/\`, ${m.counts.train.images} images), ` +
      `${m.counts.test.classes} others for retrieval (\`test/\`, ${m.counts.test.images} images). ` +
      'A class folder is named `<script>_U+<code point>`; an image is named by its font id in `glyphs.json`.',
    '',
    '| script | train classes | test classes |',
    '|---|---|---|',
    ...scriptRows,
    '',
    'Train on it with `npx hardneg train --dataset folder --data-root <this folder> --set dataset.imageSize=' + `${o.size} …\`.`,
    '',
    '## Fonts and licences',
    '',
    "The images are renderings of glyphs of the fonts below, each installed from the Debian package named; the licences are those the package's",
    '`/usr/share/doc/<package>/copyright` names (where it is free text, the licences recognised in it; read the file itself for the terms).',
    '',
    '| package | version | licences | fonts used | families |',
    '|---|---|---|---|---|',
    ...pkgRows,
    '',
    `Licences named by these packages: ${[...new Set(m.packages.flatMap((p) => p.licenses))].sort().join('; ') || 'none could be read'}.`,
    '',
    'The SIL Open Font License (OFL) governs the font software and says that documents created with the fonts are not thereby under',
    "the OFL; the GPL's font exception says the same of documents that embed the font. Images of rendered glyphs are generally taken",
    'to be such output rather than a copy of the font, but that is a common reading, not a guarantee, and the other licences listed',
    'have their own terms. If you redistribute this dataset, keep this README and `glyphs.json` with it and check the licence of',
    'each package listed. This README is not legal advice.',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The build

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new UserError(`${name} ${v}: expected an integer in [${min}, ${max}]`);
  return v;
}

/** Builds the dataset into `opts.out` (see the header comment); returns what was built. */
export async function buildGlyphSet(opts: GlyphSetOptions): Promise<GlyphSetSummary> {
  const started = Date.now();
  const classes = checkInt('--classes', opts.classes ?? GLYPH_DEFAULTS.classes, 4, 100_000);
  const fontsPerClass = checkInt('--fonts', opts.fontsPerClass ?? GLYPH_DEFAULTS.fontsPerClass, 2, 10_000);
  const size = checkInt('--size', opts.size ?? GLYPH_DEFAULTS.size, 8, 1024);
  const seed = checkInt('--seed', opts.seed ?? GLYPH_DEFAULTS.seed, 0, Number.MAX_SAFE_INTEGER);
  const concurrency = checkInt('concurrency', opts.concurrency ?? 4, 1, 64);
  const scriptNames = opts.scripts ?? GLYPH_SCRIPT_NAMES;
  for (const s of scriptNames)
    if (!GLYPH_SCRIPT_NAMES.includes(s)) throw new UserError(`--scripts: unknown script '${s}', expected some of ${GLYPH_SCRIPT_NAMES.join(', ')}`);
  const scripts = GLYPH_SCRIPTS.filter((s) => scriptNames.includes(s.name));
  if (scripts.length === 0) throw new UserError(`--scripts: no script named, expected some of ${GLYPH_SCRIPT_NAMES.join(', ')}`);
  const out = resolve(opts.out);
  const state = checkOut(out);
  const fontDirs = (opts.fontDirs ?? GLYPH_DEFAULTS.fontDirs).map((d) => resolve(d));
  for (const d of fontDirs) if (!existsSync(d)) throw new UserError(`--font-dir ${d}: no such folder (expected a folder of .ttf, .otf or .ttc fonts)`);

  const pkgIndex: PackageIndex = readPackageIndex(opts.packages);
  const scan = scanFonts(
    fontDirs,
    scripts.flatMap((s) => scriptCodePoints(s)),
    { packageOf: (file) => pkgIndex.packageOf(file), onProgress: (done, total) => opts.onProgress?.('fonts', done, total) },
  );
  const { chosen, counts } = chooseClasses(scripts, scan, classes, fontsPerClass, seed, fontDirs);

  // Font ids in face order, over the faces actually used.
  const used = [...new Set(chosen.flatMap((c) => c.faces))].sort((a, b) => a - b);
  const width = Math.max(3, String(used.length - 1).length);
  const idOf = new Map(used.map((f, i) => [f, `f${String(i).padStart(width, '0')}`]));
  const className = (c: Chosen) => `${c.script.name}_U+${hex(c.cp)}`;

  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.building-${process.pid}`);
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  // An interrupted build (Ctrl-C exits the process) leaves no half-built folder behind.
  process.on('exit', cleanup);
  try {
    cleanup();
    for (const c of chosen) mkdirSync(join(tmp, c.split, className(c)), { recursive: true });

    // Render font file by font file: one font in memory at a time.
    const jobsByFile = new Map<string, { face: number; cls: Chosen }[]>();
    for (const cls of chosen) {
      for (const face of cls.faces) {
        const file = (scan.faces[face] as FontFace).file;
        jobsByFile.set(file, [...(jobsByFile.get(file) ?? []), { face, cls }]);
      }
    }
    const total = chosen.length * fontsPerClass;
    let done = 0;
    const sha = new Map<string, string>();
    for (const file of [...jobsByFile.keys()].sort()) {
      const bytes = readFileSync(file);
      sha.set(file, createHash('sha256').update(bytes).digest('hex'));
      const fonts = facesOf(create(bytes));
      await mapConcurrent(jobsByFile.get(file) as { face: number; cls: Chosen }[], concurrency, async ({ face, cls }) => {
        const f = scan.faces[face] as FontFace;
        const font = fonts[f.index] as Font;
        const rng = new Random(derivedSeed(seed, cls.cp, f.postscriptName, f.index), STREAMS.glyphJitter);
        const png = await renderPng(glyphSvg(font, font.glyphForCodePoint(cls.cp), size, rng));
        writeFileSync(join(tmp, cls.split, className(cls), `${idOf.get(face) as string}.png`), png);
        opts.onProgress?.('images', ++done, total);
      });
    }

    const fonts: GlyphFontRecord[] = used.map((fi) => {
      const f = scan.faces[fi] as FontFace;
      const pkg = pkgIndex.packageOf(f.file);
      const desc = pkg ? pkgIndex.describe(pkg) : null;
      return {
        id: idOf.get(fi) as string,
        file: f.file,
        index: f.index,
        postscriptName: f.postscriptName,
        family: f.family,
        style: f.style,
        weight: f.weight,
        sha256: sha.get(f.file) as string,
        package: pkg,
        packageVersion: desc?.version ?? null,
        licenses: desc?.licenses ?? [],
      };
    });
    const packages = [...new Set(fonts.map((f) => f.package).filter((p): p is string => p !== null))].sort().map((p) => pkgIndex.describe(p));
    const asClass = (c: Chosen): GlyphClass => ({
      name: className(c),
      char: String.fromCodePoint(c.cp),
      codePoint: `U+${hex(c.cp)}`,
      script: c.script.name,
      fonts: c.faces.map((f) => idOf.get(f) as string),
    });
    const byName = (a: GlyphClass, b: GlyphClass) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const train = chosen
      .filter((c) => c.split === 'train')
      .map(asClass)
      .sort(byName);
    const test = chosen
      .filter((c) => c.split === 'test')
      .map(asClass)
      .sort(byName);
    const manifest: GlyphSetManifest = {
      format: GLYPH_SET_FORMAT,
      formatVersion: FORMAT_VERSION,
      hardnegVersion: VERSION,
      options: { classes, fontsPerClass, size, seed, scripts: scripts.map((s) => s.name), fontDirs },
      image: { size, channels: 1, foreground: 'white', background: 'black', layout: LAYOUT },
      counts: {
        train: { classes: train.length, images: train.length * fontsPerClass },
        test: { classes: test.length, images: test.length * fontsPerClass },
        scripts: counts,
      },
      splits: { train, test },
      fonts,
      packages,
      scan: {
        files: scan.files,
        faces: scan.faces.length,
        drawingNone: scan.skipped.filter((x) => x.reason === DRAWS_NONE).length,
        left: scan.skipped.filter((x) => x.reason !== DRAWS_NONE),
      },
    };
    writeFileAtomic(join(tmp, 'README.md'), readme(manifest));
    // Last: a folder with a glyphs.json is a finished glyph set.
    writeFileAtomic(join(tmp, 'glyphs.json'), `${JSON.stringify(manifest, null, 1)}\n`);

    if (state === 'new') renameSync(tmp, out);
    else if (state === 'empty') {
      rmdirSync(out);
      renameSync(tmp, out);
    } else {
      // Replace a glyph set built before: moved aside, deleted once the new one is in place.
      const old = join(parent, `.${basename(out)}.replaced-${process.pid}`);
      rmSync(old, { recursive: true, force: true });
      renameSync(out, old);
      try {
        renameSync(tmp, out);
      } catch (err) {
        renameSync(old, out);
        throw err;
      }
      rmSync(old, { recursive: true, force: true });
    }
    return { out, manifest, images: total, bytes: folderBytes(out), seconds: (Date.now() - started) / 1000 };
  } finally {
    process.off('exit', cleanup);
    cleanup();
  }
}
