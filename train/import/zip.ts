/**
 * A minimal, strict zip reader for PyTorch checkpoints. torch.save (>= 1.6) writes a zip whose entries
 * are stored (method 0, no compression), 64-byte aligned through padding in the local extra field, with
 * zip64 records when the archive or an entry is large. Re-zipped files may deflate (method 8; inflated
 * with node:zlib). Everything is read through the central directory, every offset and length is
 * bounds-checked, and each entry's CRC-32 is checked when it is read: a truncated or corrupted file is
 * a one-line SsdError, never a crash or a silent wrong tensor. Written here rather than taken from npm
 * because it is this small and must never extract anything to disk.
 */
import { inflateRawSync } from 'node:zlib';
import { SsdError } from '../../core/errors.js';

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipArchive {
  entries: Map<string, ZipEntry>;
  /** The bytes of one entry (a view into the file for stored entries), CRC-checked. */
  read(name: string): Uint8Array;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

let crcTable: Uint32Array | undefined;
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** True when the bytes start like a zip (a local file header). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export function openZip(bytes: Uint8Array, where: string): ZipArchive {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => { throw new SsdError(`${where}: ${why}`); };
  const u16 = (o: number): number => (o + 2 <= buf.length ? buf.readUInt16LE(o) : fail('truncated zip (record runs past the end of the file)'));
  const u32 = (o: number): number => (o + 4 <= buf.length ? buf.readUInt32LE(o) : fail('truncated zip (record runs past the end of the file)'));
  const u64 = (o: number): number => {
    if (o + 8 > buf.length) fail('truncated zip (record runs past the end of the file)');
    const v = buf.readBigUInt64LE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('corrupt zip (64-bit field out of range)');
    return Number(v);
  };

  // End of central directory: the last 22 bytes plus up to 64 KiB of comment.
  let eocd = -1;
  for (let o = buf.length - 22; o >= Math.max(0, buf.length - 22 - 0xffff); o--) {
    if (buf.readUInt32LE(o) === EOCD_SIG && o + 22 + buf.readUInt16LE(o + 20) === buf.length) { eocd = o; break; }
  }
  if (eocd < 0) fail('not a zip archive or truncated (no end-of-central-directory record)');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== ZIP64_LOCATOR_SIG) fail('corrupt zip (zip64 locator missing)');
    const z = u64(loc + 8);
    if (u32(z) !== ZIP64_EOCD_SIG) fail('corrupt zip (zip64 end record missing)');
    count = u64(z + 32);
    cdSize = u64(z + 40);
    cdOffset = u64(z + 48);
  }
  if (cdOffset + cdSize > buf.length) fail('truncated zip (central directory runs past the end of the file)');

  const entries = new Map<string, ZipEntry>();
  let o = cdOffset;
  for (let i = 0; i < count; i++) {
    if (o + 46 > cdOffset + cdSize || u32(o) !== CENTRAL_SIG) fail(`corrupt zip (central directory entry ${i} is damaged)`);
    const method = u16(o + 10);
    const crc = u32(o + 16);
    let compressedSize = u32(o + 20);
    let size = u32(o + 24);
    const nameLen = u16(o + 28);
    const extraLen = u16(o + 30);
    const commentLen = u16(o + 32);
    let localHeaderOffset = u32(o + 42);
    if (o + 46 + nameLen + extraLen + commentLen > buf.length) fail('truncated zip (central directory)');
    const name = buf.toString('utf8', o + 46, o + 46 + nameLen);
    // Zip64 extended information: the fields that were 0xffffffff, in this order.
    let e = o + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(e);
      const len = u16(e + 2);
      if (id === 0x0001) {
        let p = e + 4;
        if (size === 0xffffffff) { size = u64(p); p += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = u64(p); p += 8; }
        if (localHeaderOffset === 0xffffffff) { localHeaderOffset = u64(p); p += 8; }
      }
      e += 4 + len;
    }
    if (entries.has(name)) fail(`corrupt zip (entry ${name} appears twice)`);
    entries.set(name, { name, method, crc32: crc, compressedSize, size, localHeaderOffset });
    o = extraEnd + commentLen;
  }

  function read(name: string): Uint8Array {
    const entry = entries.get(name);
    if (!entry) return fail(`zip entry ${name} is missing`);
    const h = entry.localHeaderOffset;
    if (u32(h) !== LOCAL_SIG) fail(`corrupt zip (local header of ${name} is damaged)`);
    const start = h + 30 + u16(h + 26) + u16(h + 28);
    if (start + entry.compressedSize > buf.length) fail(`truncated zip (entry ${name} runs past the end of the file)`);
    const raw = buf.subarray(start, start + entry.compressedSize);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size) fail(`corrupt zip (stored entry ${name} has two sizes)`);
      data = raw;
    } else if (entry.method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      } catch (err) {
        throw new SsdError(`${where}: corrupt zip (entry ${name} does not inflate)`, { cause: err });
      }
      if (data.length !== entry.size) fail(`corrupt zip (entry ${name} inflates to ${data.length} bytes, expected ${entry.size})`);
    } else {
      return fail(`zip entry ${name} uses compression method ${entry.method} (only stored and deflate are read)`);
    }
    if (crc32(data) !== entry.crc32) fail(`corrupt zip (CRC mismatch in entry ${name})`);
    return data;
  }

  return { entries, read };
}
