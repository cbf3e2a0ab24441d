// core/jpeg-header.ts: what a JPEG's markers say (frame type, size, components, precision, EXIF
// orientation, ICC profile), checked against sharp's own metadata on files sharp writes, and on
// hand-made EXIF blocks of both byte orders.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readJpegHeader } from '../../core/jpeg-header.js';
import { patternRgb } from '../runtime/helpers.js';

const W = 24, H = 16;
const base = () => sharp(patternRgb(W, H), { raw: { width: W, height: H, channels: 3 } });

/** An APP1 Exif segment whose IFD0 holds one Orientation entry, in the given TIFF byte order. */
function exifSegment(orientation: number, order: 'II' | 'MM'): Uint8Array {
  const le = order === 'II';
  const tiff = new DataView(new ArrayBuffer(8 + 2 + 12 + 4));
  tiff.setUint8(0, order.charCodeAt(0)); tiff.setUint8(1, order.charCodeAt(1));
  tiff.setUint16(2, 42, le); tiff.setUint32(4, 8, le);
  tiff.setUint16(8, 1, le); // one entry
  tiff.setUint16(10, 0x0112, le); tiff.setUint16(12, 3, le); tiff.setUint32(14, 1, le); tiff.setUint16(18, orientation, le);
  const payload = new Uint8Array([...Buffer.from('Exif\0\0', 'latin1'), ...new Uint8Array(tiff.buffer)]);
  const len = payload.length + 2;
  return new Uint8Array([0xff, 0xe1, len >> 8, len & 255, ...payload]);
}

const withSegment = (jpeg: Uint8Array, seg: Uint8Array): Uint8Array => new Uint8Array([...jpeg.subarray(0, 2), ...seg, ...jpeg.subarray(2)]);

describe('readJpegHeader', () => {
  it('reads frame type, size, components and precision as sharp does', async () => {
    const cases = [
      { jpeg: await base().jpeg().toBuffer(), marker: 0xc0, components: 3 },
      { jpeg: await base().jpeg({ progressive: true }).toBuffer(), marker: 0xc2, components: 3 },
      { jpeg: await base().toColourspace('b-w').jpeg().toBuffer(), marker: 0xc0, components: 1 },
      { jpeg: await base().toColourspace('cmyk').jpeg().toBuffer(), marker: 0xc0, components: 4 },
    ];
    for (const c of cases) {
      const h = readJpegHeader(c.jpeg)!;
      const m = await sharp(c.jpeg).metadata();
      expect(h).toEqual({ frameMarker: c.marker, width: W, height: H, precision: 8, components: c.components, orientation: 1, icc: false });
      expect([h.width, h.height, h.components]).toEqual([m.width, m.height, m.channels]);
    }
  });

  it('EXIF orientation 1-8 as sharp reads it, and an ICC profile', async () => {
    for (let o = 1; o <= 8; o++) {
      const jpeg = await base().jpeg().withMetadata({ orientation: o }).toBuffer();
      expect((await sharp(jpeg).metadata()).orientation).toBe(o);
      expect(readJpegHeader(jpeg)!.orientation).toBe(o);
    }
    const p3 = await base().jpeg().withIccProfile('p3').toBuffer();
    expect((await sharp(p3).metadata()).icc).toBeDefined();
    expect(readJpegHeader(p3)!.icc).toBe(true);
  });

  it('hand-made EXIF in both byte orders; an orientation out of range counts as 1', async () => {
    const jpeg = await base().jpeg().toBuffer();
    for (const order of ['II', 'MM'] as const) {
      for (const o of [3, 6, 8]) {
        const j = withSegment(jpeg, exifSegment(o, order));
        expect(readJpegHeader(j)!.orientation).toBe(o);
        expect((await sharp(j).metadata()).orientation).toBe(o);
      }
      expect(readJpegHeader(withSegment(jpeg, exifSegment(9, order)))!.orientation).toBe(1);
    }
  });

  it('not a JPEG, or one that ends before its frame header: undefined', async () => {
    const jpeg = await base().jpeg().toBuffer();
    expect(readJpegHeader(await base().png().toBuffer())).toBeUndefined();
    expect(readJpegHeader(Buffer.from('hello world'))).toBeUndefined();
    expect(readJpegHeader(new Uint8Array(0))).toBeUndefined();
    expect(readJpegHeader(jpeg.subarray(0, 30))).toBeUndefined();
    // A segment length that runs past the end.
    expect(readJpegHeader(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x40, 0x00, 1, 2, 3]))).toBeUndefined();
  });
});
