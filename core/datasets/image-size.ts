import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Width and height from a JPEG or PNG header, without decoding: VOC annotations normally carry
 * <size>, but some hand-made ones do not, and core/ may not import an image library.
 * Returns undefined when the header is not recognised.
 */
export function readImageSize(path: string): { width: number; height: number } | undefined {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64 * 1024);
    const n = readSync(fd, head, 0, head.length, 0);
    return imageSizeFromBytes(head.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

export function imageSizeFromBytes(b: Uint8Array): { width: number; height: number } | undefined {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // PNG: signature, then the IHDR chunk whose first two fields are width and height.
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { width: v.getUint32(16), height: v.getUint32(20) };
  }
  // JPEG: walk the marker segments up to a start-of-frame (SOF0..SOF15 except DHT/JPG/DAC).
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let off = 2;
    while (off + 9 < b.length) {
      if (b[off] !== 0xff) return undefined;
      const marker = b[off + 1]!;
      if (marker === 0xff) {
        off += 1;
        continue;
      }
      const len = v.getUint16(off + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: v.getUint16(off + 7), height: v.getUint16(off + 5) };
      }
      off += 2 + len;
    }
  }
  return undefined;
}
