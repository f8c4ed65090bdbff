// Which Debian package installed a font file, its version, and the licences its copyright file
// names: what `hardneg data build-glyphs` records for every font it renders with, so a built set
// says whose work its images are and under which terms. Read from dpkg's own files
// (/var/lib/dpkg/info/*.list, /var/lib/dpkg/status, /usr/share/doc/<package>/copyright); on a
// system without dpkg every font is reported as not from a package.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

export interface FontPackage {
  name: string;
  /** The installed version, from dpkg's status file; null when not found. */
  version: string | null;
  /** Licence names from the copyright file, sorted; empty when none could be read. */
  licenses: string[];
  /** How `licenses` was read: the DEP-5 License fields, or keywords found in a free-text file. */
  licenseSource: 'dep5' | 'keywords' | 'none';
  /** The copyright file (absent when the package has none). */
  copyright: string | null;
}

export interface PackageIndex {
  /** The package that installed `file` (its path or its real path), or null. */
  packageOf(file: string): string | null;
  /** Version and licences of an installed package. */
  describe(name: string): FontPackage;
}

const FONT_FILE = /\.(ttf|otf|ttc|otc)$/i;

function realpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Installed versions from dpkg's status file (stanzas of Package/Status/Version). */
function readVersions(statusFile: string): Map<string, string> {
  const versions = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(statusFile, 'utf8');
  } catch {
    return versions;
  }
  for (const stanza of text.split(/\n\n+/)) {
    const name = /^Package: (.+)$/m.exec(stanza)?.[1];
    const version = /^Version: (.+)$/m.exec(stanza)?.[1];
    const installed = /^Status: .* installed$/m.test(stanza);
    if (name && version && installed) versions.set(name.trim(), version.trim());
  }
  return versions;
}

/** Licences named by a free-text copyright file, by the phrases each licence's text contains. */
function licensesByKeywords(text: string): string[] {
  const found = new Set<string>();
  if (/SIL Open Font License|\bOFL\b/i.test(text)) found.add('OFL-1.1');
  if (/Arphic Public License/i.test(text)) found.add('Arphic-1999');
  if (/IPA Font License/i.test(text)) found.add('IPA');
  if (/Bitstream Vera/i.test(text)) found.add('bitstream-vera');
  if (/Apache License/i.test(text)) found.add('Apache-2.0');
  if (/GNU General Public License/i.test(text)) {
    // The font exception lets documents (and images) made with the font stay outside the GPL.
    const exception = /font (embedding )?exception|special exception.{0,200}(document|font)/is.test(text);
    found.add(exception ? 'GPL with font exception' : 'GPL');
  }
  if (/public domain/i.test(text) && found.size === 0) found.add('public-domain');
  return [...found].sort();
}

/** The License fields of a DEP-5 copyright file, leaving out the paragraphs about debian/ only. */
function licensesDep5(text: string): string[] {
  const found = new Set<string>();
  for (const para of text.split(/\n\s*\n/)) {
    const files = /^Files:\s*(.*(?:\n[ \t].*)*)/m.exec(para)?.[1];
    const license = /^License:[ \t]*(.*)$/m.exec(para)?.[1]?.trim();
    if (files === undefined || !license) continue;
    const patterns = files.split(/\s+/).filter((p) => p.length > 0);
    if (patterns.length > 0 && patterns.every((p) => p.startsWith('debian/'))) continue;
    found.add(license);
  }
  return [...found].sort();
}

function readLicenses(docDir: string, name: string): Pick<FontPackage, 'licenses' | 'licenseSource' | 'copyright'> {
  const copyright = join(docDir, name, 'copyright');
  let text: string;
  try {
    text = readFileSync(copyright, 'utf8');
  } catch {
    return { licenses: [], licenseSource: 'none', copyright: null };
  }
  if (/^Format:/.test(text)) {
    const licenses = licensesDep5(text);
    if (licenses.length > 0) return { licenses, licenseSource: 'dep5', copyright };
  }
  const licenses = licensesByKeywords(text);
  return { licenses, licenseSource: licenses.length > 0 ? 'keywords' : 'none', copyright };
}

export interface PackageIndexOptions {
  /** dpkg's database folder. Default /var/lib/dpkg. */
  dpkgDir?: string;
  /** Where packages keep their copyright files. Default /usr/share/doc. */
  docDir?: string;
}

/** Reads which installed package owns each font file (a few hundred small files, once). */
export function readPackageIndex(opts: PackageIndexOptions = {}): PackageIndex {
  const dpkgDir = opts.dpkgDir ?? '/var/lib/dpkg';
  const docDir = opts.docDir ?? '/usr/share/doc';
  const owner = new Map<string, string>();
  let lists: string[] = [];
  try {
    lists = readdirSync(join(dpkgDir, 'info')).filter((f) => f.endsWith('.list'));
  } catch {
    // no dpkg here: every font is reported as not from a package
  }
  for (const list of lists.sort()) {
    const name = list.slice(0, -'.list'.length).replace(/:.*$/, '');
    let text: string;
    try {
      text = readFileSync(join(dpkgDir, 'info', list), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!FONT_FILE.test(line)) continue;
      owner.set(line, name);
      const real = realpath(line);
      if (real !== line && !owner.has(real)) owner.set(real, name);
    }
  }
  const versions = readVersions(join(dpkgDir, 'status'));
  const described = new Map<string, FontPackage>();
  return {
    packageOf: (file) => owner.get(file) ?? owner.get(realpath(file)) ?? null,
    describe(name) {
      let d = described.get(name);
      if (!d) {
        d = { name, version: versions.get(name) ?? null, ...readLicenses(docDir, name) };
        described.set(name, d);
      }
      return d;
    },
  };
}
