// A minimal zip reader for torch.save's archives (PyTorch >= 1.6): the central directory (zip64
// included, as PyTorch writes it for large files), stored and deflated entries, CRC-checked. It
// reads from an open file descriptor, entry by entry, so a checkpoint of several gigabytes is
// never held whole; nothing is written or extracted. Every fault is a one-line ZipError.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { UserError } from '../errors.ts';

/** A damaged or unreadable archive: the user's file, so a UserError naming it. */
export class ZipError extends UserError {}

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

let crcTable: Uint32Array | undefined;

/** CRC-32 (zip's polynomial): node:zlib's where it has one (Node >= 20.15), else a table. */
function crc32(bytes: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (native) return native(bytes) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = (crcTable[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly fd: number;
  private readonly size: number;

  /** Opens `path` and reads its central directory; `source` names the file in messages. */
  constructor(
    path: string,
    private readonly source = path,
  ) {
    this.fd = openSync(path, 'r');
    try {
      this.size = fstatSync(this.fd).size;
      this.readDirectory();
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private fail(what: string): never {
    throw new ZipError(`${this.source}: ${what}`);
  }

  private read(position: number, length: number): Uint8Array {
    if (position < 0 || length < 0 || position + length > this.size)
      this.fail(`truncated zip archive (needs bytes ${position}–${position + length} of ${this.size})`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, position + done);
      if (n === 0) this.fail('truncated zip archive (the file ended while reading)');
      done += n;
    }
    return out;
  }

  private readDirectory(): void {
    // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
    const tailLength = Math.min(this.size, 22 + 0xffff + 20);
    const tail = this.read(this.size - tailLength, tailLength);
    const tv = new DataView(tail.buffer);
    let at = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === EOCD) {
        at = i;
        break;
      }
    }
    if (at < 0) this.fail('not a zip archive, or a truncated one (no end-of-central-directory record)');
    let count = tv.getUint16(at + 10, true);
    let dirSize = tv.getUint32(at + 12, true);
    let dirOffset = tv.getUint32(at + 16, true);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      const loc = at - 20;
      if (loc < 0 || tv.getUint32(loc, true) !== ZIP64_LOCATOR) this.fail('zip64 archive without its locator record');
      const eocd64 = Number(tv.getBigUint64(loc + 8, true));
      const rec = new DataView(this.read(eocd64, 56).buffer);
      if (rec.getUint32(0, true) !== ZIP64_EOCD) this.fail('damaged zip64 end-of-central-directory record');
      count = Number(rec.getBigUint64(32, true));
      dirSize = Number(rec.getBigUint64(40, true));
      dirOffset = Number(rec.getBigUint64(48, true));
    }
    const dir = this.read(dirOffset, dirSize);
    const dv = new DataView(dir.buffer);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > dir.length || dv.getUint32(p, true) !== CENTRAL) this.fail(`damaged central directory (entry ${i} of ${count})`);
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const crc = dv.getUint32(p + 16, true);
      let compressedSize = dv.getUint32(p + 20, true);
      let size = dv.getUint32(p + 24, true);
      const nameLength = dv.getUint16(p + 28, true);
      const extraLength = dv.getUint16(p + 30, true);
      const commentLength = dv.getUint16(p + 32, true);
      let localHeaderOffset = dv.getUint32(p + 42, true);
      if (p + 46 + nameLength + extraLength > dir.length) this.fail(`damaged central directory (entry ${i} of ${count})`);
      const name = new TextDecoder().decode(dir.subarray(p + 46, p + 46 + nameLength));
      // Zip64: the sizes and offset that overflowed 32 bits follow, in this order, in extra field 1.
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = dv.getUint16(e, true);
        const len = dv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          const next = (): number => {
            if (q + 8 > Math.min(e + 4 + len, extraEnd)) this.fail(`damaged zip64 field of '${name}'`);
            const v = Number(dv.getBigUint64(q, true));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + len;
      }
      if (flags & 1) this.fail(`'${name}' is encrypted`);
      this.entries.set(name, { name, method, crc32: crc, compressedSize, size, localHeaderOffset });
      p = extraEnd + commentLength;
    }
  }

  /** The bytes of one entry (a fresh, 8-byte-aligned buffer), checked against its size and CRC. */
  readEntry(entry: ZipEntry): Uint8Array {
    const local = new DataView(this.read(entry.localHeaderOffset, 30).buffer);
    if (local.getUint32(0, true) !== LOCAL) this.fail(`damaged entry '${entry.name}' (no local header at ${entry.localHeaderOffset})`);
    const start = entry.localHeaderOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size) this.fail(`damaged entry '${entry.name}' (stored, but its sizes differ)`);
      data = this.read(start, entry.size);
    } else if (entry.method === 8) {
      try {
        // Never more than the directory announces (a damaged or hostile entry could inflate to gigabytes).
        const raw = zlib.inflateRawSync(this.read(start, entry.compressedSize), { maxOutputLength: Math.max(1, entry.size) });
        data = new Uint8Array(raw.length);
        data.set(raw);
      } catch (err) {
        if (err instanceof ZipError) throw err;
        this.fail(`damaged entry '${entry.name}' (deflate data does not decompress)`);
      }
      if (data.length !== entry.size) this.fail(`damaged entry '${entry.name}' (${data.length} bytes, the directory says ${entry.size})`);
    } else {
      this.fail(`entry '${entry.name}' uses compression method ${entry.method} (only stored and deflated entries are read)`);
    }
    if (crc32(data) !== entry.crc32) this.fail(`damaged entry '${entry.name}' (CRC mismatch)`);
    return data;
  }
}
